"""Validated settings for each stage, parsed from CLI options or a config file.

Option models reject unknown fields, so a typo in a config file is an error naming its path
rather than a setting silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError, InvalidOption
from .languages import LANGUAGES, MAGICODER_MIX, canonical

SourceKind = Literal["auto", "bundled", "hub", "folder", "tree"]
#: The most processes `--workers` starts on one machine: more is a typo, not a machine.
MAX_WORKERS = 256
#: Config of every settings dataclass (pydantic.dataclasses): unknown fields are errors.
OPTIONS = ConfigDict(extra="forbid")


T = TypeVar("T")


class StrictModel(BaseModel):
    """Base for every settings model: unknown keys are errors, values are immutable, and a
    field's docstring is its description (the CLI's help for the option it becomes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SampleConfig(StrictModel):
    """How the `sample` stage draws seed snippets (defaults follow Magicoder's OSS-Instruct)."""

    source: str = Field(description="bundled, a Hub dataset name, a folder or a source tree")
    source_kind: SourceKind = "auto"
    mix: dict[str, int] = Field(default_factory=lambda: dict(MAGICODER_MIX))
    seed: int = 976
    min_lines: int = Field(1, ge=1)
    max_lines: int = Field(15, ge=1)
    max_doc_bytes: int = Field(1_000_000, gt=0, description="larger documents are dropped")
    max_line_length: int = Field(1_000, gt=0, description="a longer line marks a minified file")
    data_dirs: dict[str, str] = Field(
        default_factory=dict, description="language -> folder name, over the starcoderdata ones"
    )

    @field_validator("mix")
    @classmethod
    def _check_mix(cls, mix: dict[str, int]) -> dict[str, int]:
        quotas: dict[str, int] = {}
        for name, count in mix.items():
            lang = canonical(name)
            if lang in quotas:
                raise ValueError(f"language {lang!r} appears twice in the mix")
            if count < 0:
                raise ValueError(f"{lang}={count}: a quota cannot be negative")
            quotas[lang] = count
        if sum(quotas.values()) == 0:
            raise ValueError("the mix asks for no seeds at all")
        return quotas

    @field_validator("data_dirs")
    @classmethod
    def _check_data_dirs(cls, data_dirs: dict[str, str]) -> dict[str, str]:
        return {canonical(name): folder for name, folder in data_dirs.items()}

    @model_validator(mode="after")
    def _check_lines(self) -> SampleConfig:
        if self.min_lines > self.max_lines:
            raise ValueError(f"min_lines ({self.min_lines}) exceeds max_lines ({self.max_lines})")
        return self

    def data_dir(self, language: str) -> str:
        """The folder that holds `language` in a starcoderdata-shaped source."""
        return self.data_dirs.get(language, LANGUAGES[language].data_dir)


class GenerateConfig(StrictModel):
    """What decides a sample's text; a run keeps one, so its samples are comparable."""

    model: str = Field(min_length=1)
    template: str = "oss-instruct"
    template_sha256: str
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int = Field(2500, gt=0)
    seed: int = Field(
        976,
        ge=-(2**31),
        le=2**31 - 1,  # seed + i must stay a request seed providers and SQLite both take
        description="request seed of sample i is seed + i, as Magicoder did",
    )
    grammar: str | None = Field(None, description="GBNF constraint (llama.cpp servers)")


def parse_mix(text: str) -> dict[str, int]:
    """Parse `python=40000,cpp=5000` into a quota per canonical language name."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, count = part.partition("=")
        if not sep or not count.strip().lstrip("-").isdigit():
            raise ConfigError(f"bad mix entry {part!r}: write LANG=COUNT, e.g. python=40000")
        lang = canonical(name)
        if lang in mix:
            raise ConfigError(f"language {lang!r} appears twice in the mix")
        mix[lang] = int(count)
    if not mix:
        raise ConfigError("empty mix: write e.g. --mix python=40000,cpp=5000")
    return mix


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """Parse `a=b,c=d` options such as --data-dirs."""
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"bad {what} entry {part!r}: write KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def scale_mix(mix: dict[str, int], total: int) -> dict[str, int]:
    """Scale quotas to sum to `total`, keeping proportions (largest-remainder rounding)."""
    if total <= 0:
        raise ConfigError(f"--total must be positive, not {total}")
    weight = sum(mix.values())
    if weight <= 0:
        raise ConfigError("the mix asks for no seeds at all")
    exact = {lang: count * total / weight for lang, count in mix.items()}
    quotas = {lang: int(value) for lang, value in exact.items()}
    order = sorted(mix, key=lambda lang: -(exact[lang] - quotas[lang]))
    for lang in order[: total - sum(quotas.values())]:
        quotas[lang] += 1
    return quotas


def build(model: type[T], values: dict[str, Any], names: dict[str, str] | None = None) -> T:
    """Validate `values` into `model` (a pydantic model or dataclass); InvalidOption names the
    first bad setting, as `names` calls it where the caller's name differs from the field's."""
    try:
        return TypeAdapter(model).validate_python(values)
    except ValidationError as exc:
        problem = invalid_option(exc)
        field = (names or {}).get(problem.field, problem.field)
        raise InvalidOption(field, problem.reason) from None


def invalid_option(exc: ValidationError) -> InvalidOption:
    """Pydantic's report as one InvalidOption: the first bad setting (empty when the settings
    disagree with each other), why, and what was given."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if "input" in first and first["type"] != "missing" and not isinstance(first["input"], dict):
        message += f" (got {first['input']!r})"
    return InvalidOption(where, message)
