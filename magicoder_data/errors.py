"""The one exception tree of magicoder-data.

Every error a user can cause derives from :class:`MagicoderDataError`; the CLI catches that root,
prints its message on one line and exits 1, so user errors never show a traceback::

    MagicoderDataError
    ├── ConfigError        invalid options, config file or language mix
    ├── SourceError        a seed source that is missing, unreachable or corrupt
    ├── RunError           a run directory that cannot be used as asked
    │   └── RunMismatchError   RUN was started with a different config
    ├── ProviderError      the LLM provider refuses the whole run (bad key, unknown model)
    └── HubError           the Hugging Face Hub refuses a push (no token, no rights, offline)

Messages say what to do next, and never contain secrets.
"""

from __future__ import annotations


class MagicoderDataError(Exception):
    """Root of every error the tool raises on purpose."""


class ConfigError(MagicoderDataError):
    """Options or configuration that cannot be used."""


class SourceError(MagicoderDataError):
    """A seed source that is missing, unreachable or unreadable."""


class RunError(MagicoderDataError):
    """A run directory or its database that cannot be used as asked."""


class RunMismatchError(RunError):
    """A stage was re-run on RUN with settings other than those it was started with."""


class ProviderError(MagicoderDataError):
    """An LLM provider answer that no retry can fix and that every request would get."""


class HubError(MagicoderDataError):
    """A push the Hugging Face Hub refused or could not be reached for."""
