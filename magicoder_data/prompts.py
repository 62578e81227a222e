"""Prompt templates: a folder with `system.txt` and `user.txt`, chosen by name or path.

The user template receives `{code}` (the seed snippet) and `{language}` (its language). A
template's identity is the SHA-256 of its two files, stored with every sample, so a dataset
always says which wording produced it. An optional `grammar.gbnf` holds the answer to the
template's sections for backends that take a grammar (the embedded local model).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError

DEFAULT_TEMPLATE = "oss-instruct"


@dataclass(frozen=True)
class PromptTemplate:
    """A system message and a user message template."""

    name: str
    system: str
    user: str
    grammar: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.system}\0{self.user}".encode()).hexdigest()

    def messages(self, code: str, language: str) -> list[dict[str, str]]:
        """The chat messages asking for a problem and solution inspired by `code`."""
        user = self.user.format_map({"code": code, "language": language})
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def builtin_templates() -> Path:
    return Path(str(resources.files("magicoder_data.prompt_templates")))


def load_template(name_or_path: str = DEFAULT_TEMPLATE) -> PromptTemplate:
    """A bundled template by name (see prompts/), or a folder holding system.txt and user.txt."""
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        folder = builtin_templates() / name_or_path
    if not folder.is_dir():
        known = sorted(p.name for p in builtin_templates().iterdir() if (p / "user.txt").is_file())
        raise ConfigError(
            f"unknown prompt template {name_or_path!r}: give one of {', '.join(known)} "
            "or a folder with system.txt and user.txt"
        )
    try:
        system = (folder / "system.txt").read_text(encoding="utf-8").strip()
        user = (folder / "user.txt").read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"prompt template {folder}: {exc.strerror}: {exc.filename}") from None
    grammar_file = folder / "grammar.gbnf"
    grammar = grammar_file.read_text(encoding="utf-8") if grammar_file.is_file() else None
    template = PromptTemplate(folder.name, system, user, grammar)
    try:
        template.messages("x", "python")
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(
            f"prompt template {folder}/user.txt: bad placeholder {exc}; only {{code}} and "
            "{language} are filled in (write {{ and }} for literal braces)"
        ) from None
    return template
