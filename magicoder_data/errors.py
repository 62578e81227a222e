"""The one exception tree of magicoder-data.

Every error a user can cause derives from :class:`MagicoderDataError`; the CLI catches that root,
prints its message on one line and exits 1, so user errors never show a traceback::

    MagicoderDataError
    ├── ConfigError        invalid options, config file or language mix
    │   └── InvalidOption      one setting out of range or of the wrong type (names it)
    ├── SourceError        a seed source that is missing, unreachable or corrupt
    ├── RunError           a run directory that cannot be used as asked
    │   ├── RunMismatchError   RUN was started with a different config
    │   └── RunBusyError       another process is writing RUN
    ├── ProviderError      the LLM provider refuses the whole run (bad key, unknown model)
    ├── SandboxError       generated code cannot be run isolated here (and no unsafe flag)
    └── HubError           the Hugging Face Hub refuses a push (no token, no rights, offline)

Messages say what to do next, and never contain secrets.
"""

from __future__ import annotations


class MagicoderDataError(Exception):
    """Root of every error the tool raises on purpose."""


class ConfigError(MagicoderDataError):
    """Options or configuration that cannot be used."""


class InvalidOption(ConfigError):
    """One setting that cannot be used; the CLI names it as the user typed it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid setting {field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class SourceError(MagicoderDataError):
    """A seed source that is missing, unreachable or unreadable."""


class RunError(MagicoderDataError):
    """A run directory or its database that cannot be used as asked."""


class RunMismatchError(RunError):
    """A stage was re-run on RUN with settings other than those it was started with."""


class RunBusyError(RunError):
    """Another process holds the run's writer lock."""


class ProviderError(MagicoderDataError):
    """An LLM provider answer that no retry can fix and that every request would get."""


class SandboxError(MagicoderDataError):
    """No sandbox can be had on this machine, and running code unprotected was not asked for."""


class HubError(MagicoderDataError):
    """A push the Hugging Face Hub refused or could not be reached for."""
