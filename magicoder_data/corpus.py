"""Seed corpus readers: a Hub dataset, a local starcoderdata-shaped folder, or a source tree.

Every source splits each language into named shards. A shard streams its documents and asks the
caller, a batch of ids at a time through `select(ids)`, which it wants before paying to
materialise them: the sampler only wants documents whose random rank could still enter its
reservoir.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .errors import SourceError
from .languages import language_of_path
from .readers import is_hub_name, load_hub
from .records import Document, json_kind

#: Called with a batch of document ids; returns (position in the batch, rank) of the wanted ones.
Select = Callable[[list[str]], list[tuple[int, int]]]
BATCH = 1024
READ_AHEAD = 2

SHARD_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json.gz")
METADATA_COLUMNS = ("max_stars_repo_name", "max_stars_repo_path", "max_stars_count")


class Shard(Protocol):
    """A named, independently resumable slice of one language's documents."""

    name: str

    def documents(self, select: Select) -> Iterator[tuple[int, Document]]:
        """Yield (rank, document) for each document that `select` wants."""
        ...


class Source(Protocol):
    """Where seed documents come from."""

    description: str

    def shards(self, language: str, data_dir: str) -> list[Shard]:
        """The shards of `language`, whose starcoderdata folder is `data_dir`."""
        ...


def bundled_corpus() -> Path:
    """The small real corpus shipped inside the package (see its NOTICE.md)."""
    return Path(str(resources.files("magicoder_data") / "sample_corpus"))


def open_source(spec: str, kind: str = "auto") -> Source:
    """Resolve a --source value into a reader, or say clearly why it cannot be read."""
    if kind == "bundled" or (kind == "auto" and spec == "bundled"):
        return FolderSource(bundled_corpus(), description="bundled")
    path = Path(spec).expanduser()
    if kind in ("folder", "tree") or (kind == "auto" and path.exists()):
        if not path.is_dir():
            raise SourceError(
                f"source {spec} is not a folder"
                if path.exists()
                else f"source folder {spec} does not exist"
            )
        if kind == "tree" or (kind == "auto" and not _has_shards(path)):
            return TreeSource(path)
        return FolderSource(path)
    if kind == "hub" or is_hub_name(spec):
        return HubSource(spec)
    raise SourceError(
        f"source {spec!r} not found: give a folder, a source tree, `bundled`, "
        "or a Hub dataset name such as bigcode/starcoderdata"
    )


def _has_shards(root: Path) -> bool:
    """True when `root` looks like starcoderdata: LANG/ folders holding data shards."""
    return any(child.is_dir() and _shard_files(child) for child in root.iterdir())


def _shard_files(folder: Path) -> list[Path]:
    """Entries named like data shards that are not folders: FIFOs and the like included.

    Only names and stat are looked at here, which never blocks; what each entry really is gets
    decided by opening it with `open_regular`.
    """
    return sorted(
        p for p in folder.rglob("*") if not p.is_dir() and p.name.endswith(SHARD_SUFFIXES)
    )


# -- opening files that may not be files -------------------------------------------------------


class Unusable(Exception):
    """A path that is not read as a document or shard; `reason` is the drop reason to record."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path, within: Path | None = None) -> BinaryIO:
    """Open `path` for binary reading if it is a regular file; never blocks.

    Raises `Unusable` with reason `symlink_outside_tree` when `path` resolves (through symlinks)
    outside the folder `within`, `special_file` for FIFOs, sockets, devices and folders, and
    `unreadable` when it cannot be opened (a dangling symlink, no permission, vanished).
    O_NONBLOCK keeps the open of a FIFO or device from waiting, and the file type is checked with
    fstat on the opened descriptor itself, so a path swapped after it was listed cannot slip
    through.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # absent on Windows, which has no FIFOs to block on
    target = str(path)
    if within is not None:
        target = os.path.realpath(path)
        if not Path(target).is_relative_to(os.path.realpath(within)):
            raise Unusable("symlink_outside_tree", f"{path} leads outside {within}, to {target}")
        flags |= getattr(os, "O_NOFOLLOW", 0)  # the resolved path has no symlink left
    try:
        fd = os.open(target, flags)
    except OSError as exc:  # a socket cannot be opened at all (ENXIO): say what it is
        try:
            mode = os.stat(target).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise Unusable("special_file", f"{path} is {_kind(mode)}") from None
        dangling = mode is None and os.path.islink(path)
        why = "a dangling symlink" if dangling else (exc.strerror or str(exc))
        raise Unusable("unreadable", f"{path}: {why}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise Unusable("special_file", f"{path} is {_kind(mode)}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# -- local starcoderdata-shaped folder ---------------------------------------------------------


class FolderSource:
    """A folder laid out like bigcode/starcoderdata: `LANG/*.parquet` or `LANG/*.jsonl[.gz]`."""

    def __init__(self, root: Path, description: str | None = None) -> None:
        self.root = root
        self.description = description or str(root)

    def shards(self, language: str, data_dir: str) -> list[Shard]:
        folder = self.root / data_dir
        if not folder.is_dir():
            return []
        shards: list[Shard] = []
        for path in _shard_files(folder):
            name = path.relative_to(self.root).as_posix()
            try:
                open_regular(path, self.root).close()
            except Unusable as exc:
                shards.append(SkippedShard(name, language, exc.reason, exc.detail))
                continue
            if path.suffix == ".parquet":
                shards.append(ParquetShard(path, name, language, self.description, self.root))
            else:
                shards.append(JsonlShard(path, name, language, self.description, self.root))
        return shards


@dataclass
class SkippedShard:
    """A shard-named entry that is not read: a FIFO, a device, a symlink leading outside.

    It yields no documents; the sampler records it as a drop of `reason`, the shard name as item.
    """

    name: str
    language: str
    reason: str
    detail: str

    def documents(self, select: Select) -> Iterator[tuple[int, Document]]:
        return iter(())


def _open_shard(path: Path, within: Path | None) -> BinaryIO:
    """Open a listed shard; one that stopped being a regular file since is a SourceError."""
    try:
        return open_regular(path, within)
    except Unusable as exc:
        raise SourceError(f"cannot read shard {path}: {exc.detail}") from None


def _document(language: str, doc_id: str, content: Any, source: str, row: dict) -> Document:
    """A row as a Document; `content` that is neither text nor bytes makes it a `not_text` drop."""
    stars = row.get("max_stars_count")
    is_text = isinstance(content, str | bytes)
    return Document(
        language=language,
        doc_id=doc_id,
        content=content if is_text else "",
        source=source,
        repo=row.get("max_stars_repo_name"),
        path=row.get("max_stars_repo_path"),
        stars=int(stars) if isinstance(stars, int | float) else None,
        reason=None if is_text else "not_text",
        detail=None if is_text else f"content is {json_kind(content)}",
    )


@dataclass
class ParquetShard:
    """One parquet file, its row groups read by threads that stay READ_AHEAD groups ahead.

    Arrow decodes without holding the GIL, so reading overlaps with the sampler's own work;
    Python objects are made only for the rows `select` wants.
    """

    path: Path
    name: str
    language: str
    source: str
    within: Path | None = None  # the source folder; a path resolving outside it is not read

    def documents(self, select: Select) -> Iterator[tuple[int, Document]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            with _open_shard(self.path, self.within) as handle:
                file = pq.ParquetFile(handle)
                names = set(file.schema_arrow.names)
                row_groups = file.num_row_groups
            if "content" not in names:
                raise SourceError(f"shard {self.path} has no `content` column")
            wanted_columns = [c for c in ("id", "content", *METADATA_COLUMNS) if c in names]

            def read(group: int) -> pa.Table:  # a file object per read: safe across threads
                with _open_shard(self.path, self.within) as handle:
                    return pq.ParquetFile(handle).read_row_group(group, wanted_columns)

            with ThreadPoolExecutor(READ_AHEAD) as reader:
                ahead = deque(reader.submit(read, g) for g in range(row_groups)[:READ_AHEAD])
                first_row = 0
                for group in range(row_groups):
                    table = ahead.popleft().result()
                    if group + READ_AHEAD < row_groups:
                        ahead.append(reader.submit(read, group + READ_AHEAD))
                    columns = {name: table.column(name) for name in table.column_names}
                    if "id" in columns:
                        ids = [str(v) for v in columns.pop("id").to_pylist()]
                    else:
                        ids = [f"{self.name}:{first_row + i}" for i in range(table.num_rows)]
                    first_row += table.num_rows
                    for i, rank in select(ids):  # cell by cell: Table.take would import pandas
                        row = {name: column[i].as_py() for name, column in columns.items()}
                        yield (
                            rank,
                            _document(self.language, ids[i], row["content"], self.source, row),
                        )
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"corrupt or unreadable shard {self.path}: {exc}") from None


@dataclass
class JsonlShard:
    """One JSON-lines file (optionally gzipped) with starcoderdata's fields."""

    path: Path
    name: str
    language: str
    source: str
    within: Path | None = None  # the source folder; a path resolving outside it is not read

    def documents(self, select: Select) -> Iterator[tuple[int, Document]]:
        try:
            with self._lines() as lines:
                numbered = ((n, line) for n, line in enumerate(lines) if line.strip())
                while chunk := list(islice(numbered, BATCH)):
                    rows = [self._row(number, line) for number, line in chunk]
                    ids = [
                        str(row["id"]) if row.get("id") is not None else f"{self.name}:{number}"
                        for (number, _), row in zip(chunk, rows, strict=True)
                    ]
                    for i, rank in select(ids):
                        yield (
                            rank,
                            _document(
                                self.language, ids[i], rows[i]["content"], self.source, rows[i]
                            ),
                        )
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise SourceError(f"corrupt or unreadable shard {self.path}: {exc}") from None

    @contextmanager
    def _lines(self) -> Iterator[io.TextIOWrapper]:
        with _open_shard(self.path, self.within) as handle:
            raw = (
                gzip.GzipFile(fileobj=handle, mode="rb")
                if self.path.name.endswith(".gz")
                else handle
            )
            with io.TextIOWrapper(raw, encoding="utf-8") as lines:  # closes a GzipFile, not handle
                yield lines

    def _row(self, number: int, line: str) -> dict[str, Any]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"corrupt shard {self.path}, line {number + 1}: {exc.msg}") from None
        if not isinstance(row, dict) or "content" not in row:
            raise SourceError(f"shard {self.path}, line {number + 1}: no `content` field")
        return row


# -- plain source tree -------------------------------------------------------------------------


class TreeSource:
    """A source tree or git checkout; languages come from file extensions, .gitignore applies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)
        self._files: dict[str, list[str]] | None = None

    def shards(self, language: str, data_dir: str) -> list[Shard]:
        if self._files is None:
            self._files = {}
            for rel in self._list_files():
                lang = language_of_path(rel)
                if lang:
                    self._files.setdefault(lang, []).append(rel)
        files = self._files.get(language, [])
        return [TreeShard(self.root, f"tree:{language}", language, sorted(files))] if files else []

    def _list_files(self) -> list[str]:
        try:
            out = subprocess.run(
                [
                    "git",
                    "-C",
                    str(self.root),
                    "ls-files",
                    "-z",
                    "--cached",
                    "--others",
                    "--exclude-standard",
                ],
                capture_output=True,
                check=True,
                timeout=300,
            ).stdout
            return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
        except (OSError, subprocess.SubprocessError):
            files: list[str] = []
            for folder, dirs, names in os.walk(self.root):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                rel = Path(folder).relative_to(self.root)
                files.extend((rel / n).as_posix() for n in names)
            return files


@dataclass
class TreeShard:
    """All files of one language in a source tree; a file is read only when wanted."""

    root: Path
    name: str
    language: str
    files: list[str]

    def documents(self, select: Select) -> Iterator[tuple[int, Document]]:
        """Wanted files; one that cannot be read yields an empty Document carrying the reason.

        FIFOs, sockets and devices (`special_file`), symlinks leading outside the tree
        (`symlink_outside_tree`) and files that cannot be opened or read (`unreadable`) are
        never read, and never block.
        """
        for first in range(0, len(self.files), BATCH // 4):
            batch = self.files[first : first + BATCH // 4]
            for i, rank in select(batch):
                reason = detail = None
                try:
                    with open_regular(self.root / batch[i], self.root) as handle:
                        content = handle.read()
                except Unusable as exc:
                    content, reason, detail = b"", exc.reason, exc.detail
                except OSError as exc:
                    content, reason, detail = b"", "unreadable", f"{batch[i]}: {exc.strerror}"
                yield (
                    rank,
                    Document(
                        self.language,
                        batch[i],
                        content,
                        str(self.root),
                        self.root.name,
                        batch[i],
                        0,
                        reason,
                        detail,
                    ),
                )


# -- Hugging Face Hub --------------------------------------------------------------------------


class HubSource:
    """A Hub dataset shaped like bigcode/starcoderdata, streamed with `datasets`.

    The token comes from the environment (HF_TOKEN) or `huggingface-cli login`, as
    huggingface_hub finds it; gated sets need their terms accepted on the Hub first.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = name

    def shards(self, language: str, data_dir: str) -> list[Shard]:
        stream = load_hub(
            self.name,
            lambda reason: self._explain(data_dir, reason),
            data_dir=data_dir,
            split="train",
            streaming=True,
        )
        count = stream.n_shards
        return [
            HubShard(stream, i, count, f"{data_dir}#{i:05d}-of-{count:05d}", language, self.name)
            for i in range(count)
        ]

    def _explain(self, data_dir: str, reason: str) -> str:
        offline = (
            os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        )
        hint = (
            "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE); "
            if offline
            else "check the name, your network, and HF_TOKEN for gated sets; "
        )
        return (
            f"cannot load Hub dataset {self.name} ({data_dir}/): {reason}; {hint}or download it "
            f"(huggingface-cli download --repo-type dataset {self.name} --include '{data_dir}/*' "
            "--local-dir DIR) and pass --source DIR"
        )


@dataclass
class HubShard:
    """One of the streamed dataset's shards (one or more of its data files)."""

    stream: Any
    index: int
    count: int
    name: str
    language: str
    source: str

    def documents(self, select: Select) -> Iterator[tuple[int, Document]]:
        shard = self.stream.shard(num_shards=self.count, index=self.index)
        try:
            numbered = enumerate(shard)
            while chunk := list(islice(numbered, BATCH)):
                ids = [
                    str(row["id"]) if row.get("id") is not None else f"{self.name}:{number}"
                    for number, row in chunk
                ]
                for i, rank in select(ids):
                    row = chunk[i][1]
                    yield (
                        rank,
                        _document(self.language, ids[i], row.get("content"), self.source, row),
                    )
        except Exception as exc:  # network errors and corrupt files surface here mid-stream
            raise SourceError(f"reading {self.name} from {self.source} failed: {exc}") from None
