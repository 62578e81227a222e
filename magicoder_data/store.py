"""The run store's core: a directory per run, its SQLite database (WAL) the single source of truth.

The core owns the connection, the writer lock, the schema (named migrations applied, each in its
own transaction, when the store opens), the stages' bookkeeping, the drops ledger and paging.
Each stage's own queries live beside the stage and return typed rows. Every write happens in a
transaction, so a process killed at any moment leaves the last committed state intact and the
stage resumes from there.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .errors import RunBusyError, RunError, RunMismatchError
from .records import Drop

DB_NAME = "run.db"
LOCK_NAME = "run.lock"
log = logging.getLogger("magicoder_data")
CONFIG_NAME = "config.json"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_stages_and_seeds",
        """
        CREATE TABLE stages (
            stage TEXT PRIMARY KEY,
            config TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT
        );
        CREATE TABLE shards (
            stage TEXT NOT NULL,
            language TEXT NOT NULL,
            shard TEXT NOT NULL,
            documents INTEGER NOT NULL,
            finished_at TEXT NOT NULL,
            PRIMARY KEY (stage, language, shard)
        );
        CREATE TABLE seed_pool (
            language TEXT NOT NULL,
            rank INTEGER NOT NULL,
            doc_id TEXT NOT NULL,
            source TEXT NOT NULL,
            repo TEXT,
            path TEXT,
            stars INTEGER,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            snippet TEXT NOT NULL,
            PRIMARY KEY (language, rank, doc_id)
        );
        CREATE TABLE seeds (
            id INTEGER PRIMARY KEY,
            language TEXT NOT NULL,
            rank INTEGER NOT NULL,
            doc_id TEXT NOT NULL,
            source TEXT NOT NULL,
            repo TEXT,
            path TEXT,
            stars INTEGER,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            snippet TEXT NOT NULL
        );
        CREATE TABLE drops (
            stage TEXT NOT NULL,
            language TEXT NOT NULL,
            reason TEXT NOT NULL,
            item TEXT NOT NULL,
            rank INTEGER,
            detail TEXT
        );
        CREATE INDEX drops_by_reason ON drops (stage, language, reason);
        """,
    ),
    (
        "002_samples",
        """
        CREATE TABLE samples (
            seed_id INTEGER PRIMARY KEY REFERENCES seeds (id),
            status TEXT NOT NULL,
            model TEXT,
            system_fingerprint TEXT,
            finish_reason TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_s REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            template_sha256 TEXT NOT NULL,
            request_seed INTEGER,
            response TEXT,
            error_kind TEXT,
            error TEXT,
            problem TEXT,
            solution TEXT,
            solution_lang TEXT,
            solution_code TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX samples_by_status ON samples (status)
        """,
    ),
    (
        "003_contamination",
        """
        CREATE TABLE contamination (
            seed_id INTEGER NOT NULL,
            benchmark TEXT NOT NULL,
            item_id TEXT NOT NULL,
            method TEXT NOT NULL,
            score REAL NOT NULL,
            span TEXT
        );
        CREATE INDEX contamination_by_seed ON contamination (seed_id);
        CREATE TABLE similarity (
            seed_id INTEGER PRIMARY KEY,
            score REAL NOT NULL,
            benchmark TEXT NOT NULL,
            item_id TEXT NOT NULL
        )
        """,
    ),
    (
        "004_lintseq",
        """
        CREATE TABLE lintseq (
            seed_id INTEGER NOT NULL,
            sample INTEGER NOT NULL,
            edits TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (seed_id, sample)
        )
        """,
    ),
    (
        "005_pushes",
        """
        CREATE TABLE pushes (
            id INTEGER PRIMARY KEY,
            repo_id TEXT NOT NULL,
            revision TEXT NOT NULL,
            commit_oid TEXT NOT NULL,
            commit_url TEXT NOT NULL,
            rows TEXT NOT NULL,
            changed INTEGER NOT NULL,
            pushed_at TEXT NOT NULL
        )
        """,
    ),
    (
        "006_verification",
        """
        ALTER TABLE samples ADD COLUMN tests TEXT;
        CREATE TABLE verification (
            seed_id INTEGER PRIMARY KEY,
            status TEXT NOT NULL,
            detail TEXT NOT NULL,
            output TEXT NOT NULL,
            seconds REAL NOT NULL
        )
        """,
    ),
    (
        "007_batches",
        """
        CREATE TABLE batches (
            key TEXT PRIMARY KEY,
            endpoint TEXT NOT NULL,
            status TEXT NOT NULL,
            requests INTEGER NOT NULL,
            reserved_usd REAL NOT NULL,
            input_file_id TEXT,
            batch_id TEXT,
            completed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            output_file_id TEXT,
            error_file_id TEXT,
            errors TEXT,
            cost_usd REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            collected_at TEXT
        );
        CREATE TABLE batch_requests (
            batch_key TEXT NOT NULL REFERENCES batches (key),
            seed_id INTEGER NOT NULL REFERENCES seeds (id),
            state TEXT NOT NULL,
            PRIMARY KEY (batch_key, seed_id)
        );
        CREATE INDEX batch_requests_by_state ON batch_requests (state, seed_id)
        """,
    ),
]


def dropped_by(*stages: str) -> str:
    """A subquery of the seed ids that `stages` dropped (for `x.seed_id NOT IN ...`)."""
    names = ", ".join(f"'{stage}'" for stage in stages) or "NULL"
    return f"(SELECT CAST(item AS INTEGER) FROM drops WHERE stage IN ({names}))"


T = TypeVar("T")


@dataclass(frozen=True)
class StageRecord:
    """A stage's row in the `stages` table: what it was started with and where it stands."""

    stage: str
    config: dict[str, Any]
    status: str
    started_at: str
    finished_at: str | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class DropRow:
    """One discarded item: the stage that dropped it, why, and which (`dump RUN drops`)."""

    stage: str
    language: str
    reason: str
    item: str
    detail: str | None


def run_files(root: Path) -> list[Path]:
    """The files of RUN that the tool owns: no output may ever replace them."""
    return [
        root / name
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", CONFIG_NAME, LOCK_NAME)
    ]


def now() -> str:
    """The current UTC time as every table stores it (ISO 8601, to the second)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _connect_readonly(db: Path) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, or `immutable` where even the WAL's shared
    memory cannot be created (a read-only folder, whose run nobody can be writing)."""
    errors = []
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        wal = db.with_name(db.name + "-wal")
        if "immutable" in flags and wal.exists() and wal.stat().st_size > 0:
            raise RunError(
                f"cannot read {db.parent}: it is read-only and its newest writes are still in "
                f"{wal.name}; open it once where it is writable (e.g. `magicoder-data status`)"
            )
        try:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?{flags}", uri=True)
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = '_migrations'"
            ).fetchone():
                conn.close()
                raise RunError(f"{db} is not a run database (no run tables)")
        except sqlite3.OperationalError as exc:
            errors.append(str(exc))
            continue
        except sqlite3.DatabaseError as exc:
            raise RunError(f"{db} is not a usable run database: {exc}") from None
        applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        if not {name for name, _ in MIGRATIONS} <= applied:
            conn.close()
            raise RunError(
                f"{db.parent} was written by an older magicoder-data; run one of its stages "
                "(e.g. `magicoder-data clean`) once to upgrade it"
            )
        return conn
    raise RunError(f"cannot read run database {db}: {errors[-1]}")


def _holder(fd: int) -> str:
    """Who holds a run's lock, from what they wrote into the lock file."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} ({info['command']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def writer(root: Path) -> str | None:
    """Who is writing RUN now (a process holding its lock), or None; reads, never writes."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # never locked, or unreadable: nobody we can see
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)
    return None


def _acquire(root: Path, wait: bool) -> int:
    """Take RUN's writer lock (an OS lock, so a crashed holder never leaves it stale)."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise RunError(
            f"cannot lock {root} for writing ({exc.strerror}); read-only runs can still be "
            "read with status, dump and export"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise RunBusyError(
                    f"{root} is being written by {holder}; wait for it to finish, or pass "
                    "--queue to wait behind it"
                ) from None
            log.warning("%s is being written by %s; waiting for it to finish", root, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
        record = json.dumps({"pid": os.getpid(), "command": command, "since": now()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the lock


class RunStore:
    """A run directory and its database; open with :meth:`open`, use as a context manager."""

    def __init__(self, root: Path, conn: sqlite3.Connection, lock_fd: int | None = None) -> None:
        self.root = root
        self._conn = conn
        self._lock_fd = lock_fd

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        wait: bool = False,
        lock: bool = True,
    ) -> RunStore:
        """Open RUN (creating it when `create`), applying any pending migrations.

        A writer holds the run's lock until it closes: a second writer gets RunBusyError naming
        the holder, or with `wait` blocks until the lock is free. `readonly` opens without the
        lock and without writing anything, so readers work beside a writer and on read-only
        runs. `lock=False` is only for worker processes of a process that holds the lock.
        """
        root = Path(root)
        db = root / DB_NAME
        if root.exists() and not root.is_dir():
            raise RunError(f"run path {root} exists and is not a directory")
        if not db.exists():
            if not create or readonly:
                raise RunError(
                    f"{root} is not a run directory (no {DB_NAME}); start one with "
                    f"`magicoder-data sample {root} --source ...`"
                )
            root.mkdir(parents=True, exist_ok=True)
        elif db.stat().st_size == 0:
            raise RunError(f"{db} is empty, not a run database; remove it or use another folder")
        if readonly:
            return cls(root, _connect_readonly(db))
        lock_fd = _acquire(root, wait) if lock else None
        try:
            conn = sqlite3.connect(db, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL keeps every committed transaction through a crash of this process (kill -9);
            # only an OS crash could lose the newest ones, never corrupt the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(root, conn, lock_fd)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            _release(lock_fd)
            raise RunError(f"cannot open run database {db}: {exc}") from None
        except BaseException:
            _release(lock_fd)
            raise
        return store

    def rows(self, sql: str, params: tuple = (), *, as_: Callable[..., T]) -> Iterator[T]:
        """Rows of a query, streamed, each built by `as_` from the columns by name (by position
        when `as_` is a dataclass whose fields are the columns in order: the same, faster)."""
        cursor = self._conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        positional = is_dataclass(as_) and [f.name for f in fields(as_)] == names
        if positional:
            yield from (as_(*row) for row in cursor)
            return
        for row in cursor:
            yield as_(**dict(zip(names, row, strict=True)))

    def value(self, sql: str, params: tuple = ()) -> Any:
        """The first column of a query's first row (None when there is none)."""
        row = self._conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def pairs(self, sql: str, params: tuple = ()) -> dict[Any, Any]:
        """A two-column query as a dict (`SELECT key, value ...`)."""
        return dict(self._conn.execute(sql, params).fetchall())

    def pages(
        self, sql: str, params: tuple, key: str, size: int, as_: Callable[..., T]
    ) -> Iterator[list[T]]:
        """Pages of a query ordered by `key`, each read whole: callers may write in between.

        `sql` ends with `key > ? ORDER BY key LIMIT ?`, filled in here.
        """
        last = -1
        while rows := list(self.rows(sql, (*params, last, size), as_=as_)):
            yield rows
            last = rows[-1][key] if isinstance(rows[-1], dict) else getattr(rows[-1], key)

    def attach(self, path: Path, alias: str) -> None:
        """Make another SQLite file's tables readable in this store's queries as `alias.NAME`,
        read-only (the viewer's search index beside a run it must not write)."""
        self._conn.execute("ATTACH DATABASE ? AS " + alias, (f"{path.resolve().as_uri()}?mode=ro",))

    def close(self) -> None:
        self._conn.close()
        _release(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        try:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            done = {row[0] for row in self._conn.execute("SELECT name FROM _migrations")}
        except sqlite3.DatabaseError as exc:
            raise RunError(f"{self.root / DB_NAME} is not a usable run database: {exc}") from None
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with self.transaction() as conn:
                for statement in filter(str.strip, sql.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))

    # -- stage bookkeeping ---------------------------------------------------------------------

    def stage_record(self, stage: str) -> StageRecord | None:
        """Where `stage` stands, or None when it never ran."""
        return next(self._stage_records("WHERE stage = ?", (stage,)), None)

    def stage_records(self) -> list[StageRecord]:
        """Every stage that ran, in the order they first ran."""
        return list(self._stage_records("", ()))

    def _stage_records(self, where: str, params: tuple) -> Iterator[StageRecord]:
        for stage, config, status, started, finished, summary in self._conn.execute(
            "SELECT stage, config, status, started_at, finished_at, summary FROM stages "
            f"{where} ORDER BY rowid",
            params,
        ):
            summary = json.loads(summary) if summary else None
            yield StageRecord(stage, json.loads(config), status, started, finished, summary)

    def stage_config(self, stage: str) -> dict[str, Any] | None:
        """The config `stage` was started with, or None when it never ran."""
        record = self.stage_record(stage)
        return record.config if record else None

    def stage_status(self, stage: str) -> str | None:
        """`running` or `complete`, or None when it never ran."""
        return self.value("SELECT status FROM stages WHERE stage = ?", (stage,))

    def stage_summary(self, stage: str) -> dict[str, Any] | None:
        record = self.stage_record(stage)
        return record.summary if record else None

    def begin_stage(self, stage: str, config: dict[str, Any], progress_sql: str | None) -> None:
        """Record that `stage` runs with `config`.

        Once the stage has stored work (a row for `progress_sql`, or it finished), another config
        is an error: mixing settings in one run would make its rows mean nothing. Before that,
        the new config simply replaces the old.
        """
        stored = self.stage_config(stage)
        if stored == config:
            return
        started = progress_sql is not None and self.value(progress_sql) is not None
        if stored is not None and (started or self.stage_status(stage) == "complete"):
            changed = [
                k for k in sorted(set(stored) | set(config)) if stored.get(k) != config.get(k)
            ]
            diffs = ", ".join(f"{k}={stored.get(k)!r} (not {config.get(k)!r})" for k in changed)
            raise RunMismatchError(
                f"{self.root} was started with a different {stage} config: {diffs}; "
                "leave those options out to reuse the stored ones, or use a new run directory"
            )
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO stages (stage, config, status, started_at) "
                "VALUES (?, ?, 'running', ?) "
                "ON CONFLICT (stage) DO UPDATE SET config = excluded.config",
                (stage, json.dumps(config, sort_keys=True), now()),
            )
        self._write_config_file()

    def finish_stage(self, stage: str, summary: dict[str, Any]) -> None:
        with self.transaction() as conn:
            self.complete(conn, stage, summary)

    @staticmethod
    def complete(conn: sqlite3.Connection, stage: str, summary: dict[str, Any]) -> None:
        """Mark `stage` complete inside the caller's transaction, with its summary."""
        conn.execute(
            "UPDATE stages SET status = 'complete', finished_at = ?, summary = ? WHERE stage = ?",
            (now(), json.dumps(summary), stage),
        )

    def _write_config_file(self) -> None:
        """Mirror every stage's config into RUN/config.json for people to read (atomically)."""
        configs = {record.stage: record.config for record in self.stage_records()}
        tmp = self.root / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(configs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.root / CONFIG_NAME)

    # -- the drops ledger ----------------------------------------------------------------------

    @staticmethod
    def insert_drops(conn: sqlite3.Connection, stage: str, drops: Iterable[Drop]) -> None:
        """Add `drops` to the ledger inside the caller's transaction."""
        conn.executemany(
            "INSERT INTO drops (stage, language, reason, item, rank, detail) VALUES (?,?,?,?,?,?)",
            ((stage, d.language, d.reason, d.item, d.rank, d.detail) for d in drops),
        )

    def replace_drops(self, stage: str, drops: Iterable[Drop], summary: dict[str, Any]) -> None:
        """Store a whole stage's drops at once and close the stage."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM drops WHERE stage = ?", (stage,))
            self.insert_drops(conn, stage, drops)
            self.complete(conn, stage, summary)

    def drop_counts(self, stage: str) -> dict[str, dict[str, int]]:
        """A stage's drops per language and reason."""
        counts: dict[str, dict[str, int]] = {}
        for language, reason, count in self._conn.execute(
            "SELECT language, reason, COUNT(*) FROM drops WHERE stage = ? GROUP BY 1, 2 "
            "ORDER BY 1, 2",
            (stage,),
        ):
            counts.setdefault(language, {})[reason] = count
        return counts

    def drop_totals(self, stage: str) -> Counter[str]:
        """A stage's drops per reason, over every language."""
        return Counter(
            self.pairs(
                "SELECT reason, COUNT(*) FROM drops WHERE stage = ? GROUP BY 1 ORDER BY 1",
                (stage,),
            )
        )

    def iter_drops(self) -> Iterator[DropRow]:
        """Every discarded item with its stage and reason, in the order they were dropped."""
        return self.rows(
            "SELECT stage, language, reason, item, detail FROM drops ORDER BY rowid", as_=DropRow
        )
