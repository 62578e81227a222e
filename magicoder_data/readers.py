"""Rows of any dataset: Hub name, jsonl/json/parquet file, or a run.

`audit`, `lintseq --input` and local benchmark copies all read datasets the same way, so a path
is never mistaken for a Hub name in one command and not in another, and every bad row is named
the same way. Rows are streamed: memory holds a line or a parquet batch, never the whole file.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import SourceError
from .records import json_kind

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


def is_run(path: Path) -> bool:
    """Whether `path` is a run folder, whose rows are its parsed samples."""
    from .store import DB_NAME  # lazily: no import cycle, and files never need the store

    return (path / DB_NAME).is_file()


def open_dataset(source: str) -> Iterator[dict[str, Any]]:
    """Rows of a local jsonl/json/parquet file, a run, or a Hub dataset's train split, streamed.

    A source is a local file when one exists at that path, and a run when it is a folder holding
    a run's database; otherwise it is a Hub dataset only when :func:`is_hub_name` says it looks
    like one, and "file not found" when it does not. Not found and unreachable sources raise
    here, at once; unreadable rows raise as they are read.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return read_rows(path)
    if path.is_dir():
        return _run_rows(path, source)
    if not is_hub_name(source):
        raise SourceError(
            f"file {source} not found; give an existing jsonl/json/parquet file "
            "or a Hub dataset as ORG/NAME"
        )
    return _hub_stream(source)


def _run_rows(path: Path, source: str) -> Iterator[dict[str, Any]]:
    """A run's samples that parsed, in seed order; each row's `seed_id` identifies it."""
    from .generate import iter_samples  # lazily: no import cycle, and files never need these
    from .store import DB_NAME, RunStore

    if not is_run(path):
        raise SourceError(
            f"{source} is a folder but not a run (it has no {DB_NAME}); give a run, "
            "a jsonl/json/parquet file or a Hub dataset as ORG/NAME"
        )

    def samples() -> Iterator[dict[str, Any]]:
        with RunStore.open(path, readonly=True) as store:
            yield from (asdict(sample) for sample in iter_samples(store) if sample.status == "ok")

    return samples()


def load_hub(repo: str, explain: Callable[[str], str], /, **options: Any) -> Any:
    """`datasets.load_dataset(repo, **options)`, every failure a SourceError: `explain` turns
    the first line of why (offline, gated, renamed, no such split...) into what to do."""
    import datasets

    try:
        return datasets.load_dataset(repo, **options)
    except Exception as exc:  # datasets raises many unrelated types for "cannot load"
        raise SourceError(explain(why(exc))) from None


def why(exc: Exception) -> str:
    """The first line of an exception's message (its type when it has none), at most 200
    characters: enough to say what failed inside a one-line error."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _hub_stream(name: str) -> Iterator[dict[str, Any]]:
    def explain(reason: str) -> str:
        return (
            f"cannot load Hub dataset {name} ({reason}), and there is no local file of that "
            "name: check the path, or download the dataset as jsonl or parquet and pass the file"
        )

    rows = load_hub(name, explain, split="train", streaming=True)

    def stream() -> Iterator[dict[str, Any]]:
        try:
            yield from rows
        except Exception as exc:  # the connection or a data file failing mid-stream
            raise SourceError(explain(why(exc))) from None

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
            except RecursionError:
                raise SourceError(
                    f"cannot read {path}: line {number} is nested too deeply"
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
        except RecursionError:
            raise SourceError(f"cannot read {path}: it is nested too deeply") from None
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
