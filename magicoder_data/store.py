"""The run store: a directory per run, its SQLite database (WAL) the single source of truth.

Only this module speaks SQL. Every stage writes through it in transactions, so a process killed at
any moment leaves the last committed state intact and the stage resumes from there. The schema is
a list of named migrations applied, each in its own transaction, when the store opens.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import RunBusyError, RunError, RunMismatchError
from .records import Drop, Seed

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
]

#: Columns of `samples` a stage writes (all but the timestamp).
SAMPLE_COLUMNS = (
    "seed_id",
    "status",
    "model",
    "system_fingerprint",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_s",
    "attempts",
    "template_sha256",
    "request_seed",
    "response",
    "error_kind",
    "error",
    "problem",
    "solution",
    "solution_lang",
    "solution_code",
)

#: Seeds still to send (parameters: retry_failed, part count, part index).
_PENDING = (
    "FROM seeds s LEFT JOIN samples x ON x.seed_id = s.id "
    "WHERE (x.seed_id IS NULL OR (? AND x.status IN ('failed', 'truncated'))) "
    "AND s.id % ? = ?"
)


def _dropped_by(*stages: str) -> str:
    """A subquery of the seed ids that `stages` dropped."""
    names = ", ".join(f"'{stage}'" for stage in stages)
    return f"(SELECT CAST(item AS INTEGER) FROM drops WHERE stage IN ({names}))"


#: Parsed samples (alias x) that a stage still has to handle: what it reads, and what
#: `unseen` counts once it has finished and more samples were generated.
PENDING = {
    "decontaminate": f"x.status = 'ok' AND x.seed_id NOT IN {_dropped_by('clean')} "
    "AND x.seed_id NOT IN (SELECT seed_id FROM similarity)",
    "lintseq": f"x.status = 'ok' AND x.seed_id NOT IN "
    f"{_dropped_by('clean', 'decontaminate', 'lintseq')} "
    "AND x.seed_id NOT IN (SELECT seed_id FROM lintseq)",
}

#: What shows that a stage has stored work (from then on its config may not change).
PROGRESS = {
    "sample": "SELECT 1 FROM shards WHERE stage = 'sample' LIMIT 1",
    "generate": "SELECT 1 FROM samples LIMIT 1",
    "decontaminate": "SELECT 1 FROM similarity LIMIT 1",
    "lintseq": "SELECT 1 FROM lintseq LIMIT 1",
}

SEED_COLUMNS = "language, rank, doc_id, source, repo, path, stars, start_line, end_line, snippet"


def _seed_row(s: Seed) -> tuple:
    return (
        s.language,
        s.rank,
        s.doc_id,
        s.source,
        s.repo,
        s.path,
        s.stars,
        s.start_line,
        s.end_line,
        s.snippet,
    )


def _dicts(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    names = [c[0] for c in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def reason_totals(stage_status: dict[str, Any]) -> Counter[str]:
    """A stage's drops (from `RunStore.status`) summed over languages: reason -> count."""
    totals: Counter[str] = Counter()
    for reasons in stage_status.get("drops", {}).values():
        totals.update(reasons)
    return totals


def _now() -> str:
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
                    "--wait to queue behind it"
                ) from None
            log.warning("%s is being written by %s; waiting for it to finish", root, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = json.dumps({"pid": os.getpid(), "command": command, "since": since})
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

    def _query(self, sql: str, params: tuple = ()) -> Iterator[dict[str, Any]]:
        """Rows of a query as dicts, streamed."""
        yield from _dicts(self._conn.execute(sql, params))

    def _pages(
        self, sql: str, params: tuple, key: str, size: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a query ordered by `key`, each read whole: callers may write in between.

        `sql` ends with `key > ? ORDER BY key LIMIT ?`, filled in here.
        """
        last = -1
        while rows := list(self._query(sql, (*params, last, size))):
            yield rows
            last = rows[-1][key]

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
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, _now()))

    # -- stages -------------------------------------------------------------------------------

    def stage_config(self, stage: str) -> dict[str, Any] | None:
        """The config `stage` was started with, or None when it never ran."""
        row = self._conn.execute("SELECT config FROM stages WHERE stage = ?", (stage,)).fetchone()
        return json.loads(row[0]) if row else None

    def begin_stage(self, stage: str, config: dict[str, Any]) -> None:
        """Record that `stage` runs with `config`.

        Once the stage has stored work, another config is an error: mixing settings in one run
        would make its rows mean nothing. Before that, the new config simply replaces the old.
        """
        stored = self.stage_config(stage)
        if stored == config:
            return
        if stored is not None and self._has_progress(stage):
            changed = [
                k for k in sorted(set(stored) | set(config)) if stored.get(k) != config.get(k)
            ]
            diffs = ", ".join(f"{k}={stored.get(k)!r} (not {config.get(k)!r})" for k in changed)
            raise RunMismatchError(
                f"{self.root} was started with a different {stage} config: {diffs}; "
                "use a new run directory or the original options"
            )
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO stages (stage, config, status, started_at) "
                "VALUES (?, ?, 'running', ?) "
                "ON CONFLICT (stage) DO UPDATE SET config = excluded.config",
                (stage, json.dumps(config, sort_keys=True), _now()),
            )
        self._write_config_file()

    def _has_progress(self, stage: str) -> bool:
        """Whether `stage` has stored any work (until then its config may still change)."""
        stored = self._conn.execute(PROGRESS[stage]).fetchone() if stage in PROGRESS else None
        return stored is not None or self.stage_status(stage) == "complete"

    def stage_status(self, stage: str) -> str | None:
        row = self._conn.execute("SELECT status FROM stages WHERE stage = ?", (stage,)).fetchone()
        return row[0] if row else None

    def stage_summary(self, stage: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT summary FROM stages WHERE stage = ?", (stage,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def _write_config_file(self) -> None:
        """Mirror every stage's config into RUN/config.json for people to read (atomically)."""
        configs = {
            stage: json.loads(config)
            for stage, config in self._conn.execute(
                "SELECT stage, config FROM stages ORDER BY rowid"
            )
        }
        tmp = self.root / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(configs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.root / CONFIG_NAME)

    # -- sample stage -------------------------------------------------------------------------

    def finished_shards(self, stage: str, language: str) -> dict[str, int]:
        """Shards of `language` that `stage` has fully consumed, with their document counts."""
        rows = self._conn.execute(
            "SELECT shard, documents FROM shards WHERE stage = ? AND language = ?",
            (stage, language),
        )
        return dict(rows.fetchall())

    def seed_pool(self, language: str) -> list[Seed]:
        """The reservoir of `language` as of its last checkpoint."""
        rows = self._conn.execute(
            f"SELECT {SEED_COLUMNS} FROM seed_pool WHERE language = ?", (language,)
        )
        return [Seed(*row) for row in rows]

    def checkpoint_shard(
        self,
        language: str,
        shard: str,
        documents: int,
        added: Iterable[Seed],
        removed: Iterable[tuple[int, str]],
        drops: Iterable[Drop],
    ) -> None:
        """Atomically mark `shard` consumed, with the reservoir changes and drops it brought."""
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM seed_pool WHERE language = ? AND rank = ? AND doc_id = ?",
                ((language, rank, doc_id) for rank, doc_id in removed),
            )
            conn.executemany(
                f"INSERT INTO seed_pool ({SEED_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (_seed_row(seed) for seed in added),
            )
            self._insert_drops(conn, "sample", drops)
            conn.execute(
                "INSERT INTO shards VALUES ('sample', ?, ?, ?, ?)",
                (language, shard, documents, _now()),
            )

    def finish_sample(self, order: list[str], cutoffs: dict[str, int], summary: dict) -> None:
        """Turn the reservoirs into numbered seeds and close the stage, in one transaction.

        `cutoffs` gives, per language that met its quota, the largest selected rank: documents
        ranked after it were never drawn, so drops recorded for them are discarded, which makes
        the drop counts independent of the order in which shards were read.
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM seeds")
            for language in order:
                conn.execute(
                    f"INSERT INTO seeds (id, {SEED_COLUMNS}) "
                    "SELECT (SELECT COUNT(*) FROM seeds) - 1 + "
                    "ROW_NUMBER() OVER (ORDER BY rank, doc_id), "
                    f"{SEED_COLUMNS} FROM seed_pool WHERE language = ?",
                    (language,),
                )
            for language, cutoff in cutoffs.items():
                conn.execute(
                    "DELETE FROM drops WHERE stage = 'sample' AND language = ? AND rank > ?",
                    (language, cutoff),
                )
            conn.execute("DELETE FROM seed_pool")
            self._complete(conn, "sample", summary)

    # -- generate stage -----------------------------------------------------------------------

    def pending_seeds(
        self, retry_failed: bool, part: tuple[int, int] = (0, 1), chunk: int = 1_000
    ) -> Iterator[dict[str, Any]]:
        """Seeds with no stored response (and, when `retry_failed`, failed or truncated ones).

        Only those whose id % part[1] == part[0], so that processes can share a run. Streamed a
        chunk at a time by id, so memory stays flat and writes may interleave.
        """
        for page in self._pages(
            f"SELECT s.id, s.language, s.snippet {_PENDING} AND s.id > ? ORDER BY s.id LIMIT ?",
            (retry_failed, *part[::-1]),
            "id",
            chunk,
        ):
            yield from page

    def count_pending(self, retry_failed: bool, part: tuple[int, int] = (0, 1)) -> int:
        row = self._conn.execute(
            f"SELECT COUNT(*) {_PENDING}", (retry_failed, *part[::-1])
        ).fetchone()
        return int(row[0])

    def record_samples(self, samples: Iterable[dict[str, Any]]) -> None:
        """Store responses, committed together; a re-sent sample replaces its earlier try but
        keeps paying for it (tokens, cost and attempts add up)."""
        rows = [(*(sample.get(c) for c in SAMPLE_COLUMNS), _now()) for sample in samples]
        summed = ("prompt_tokens", "completion_tokens", "cost_usd", "attempts")
        updates = ", ".join(
            f"{c} = samples.{c} + excluded.{c}" if c in summed else f"{c} = excluded.{c}"
            for c in (*SAMPLE_COLUMNS[1:], "created_at")
        )
        with self.transaction() as conn:
            conn.executemany(
                f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}, created_at) "
                f"VALUES ({', '.join('?' * len(SAMPLE_COLUMNS))}, ?) "
                f"ON CONFLICT (seed_id) DO UPDATE SET {updates}",
                rows,
            )

    def spend(self) -> float:
        """US$ spent on every stored response."""
        return float(self._conn.execute("SELECT TOTAL(cost_usd) FROM samples").fetchone()[0])

    def finish_stage(self, stage: str, summary: dict[str, Any]) -> None:
        with self.transaction() as conn:
            self._complete(conn, stage, summary)

    @staticmethod
    def _complete(conn: sqlite3.Connection, stage: str, summary: dict[str, Any]) -> None:
        conn.execute(
            "UPDATE stages SET status = 'complete', finished_at = ?, summary = ? WHERE stage = ?",
            (_now(), json.dumps(summary), stage),
        )

    def iter_samples(self) -> Iterator[dict[str, Any]]:
        """Every stored response with its seed, in seed order."""
        yield from self._query(
            "SELECT s.id AS seed_id, s.language, s.snippet AS seed, x.status, x.problem, "
            "x.solution, x.solution_lang, x.solution_code, x.model, x.system_fingerprint, "
            "x.finish_reason, x.prompt_tokens, x.completion_tokens, x.cost_usd, x.latency_s, "
            "x.attempts, x.request_seed, x.template_sha256, x.error_kind, x.error, x.response "
            "FROM samples x JOIN seeds s ON s.id = x.seed_id ORDER BY s.id"
        )

    # -- clean stage --------------------------------------------------------------------------

    def parsed_samples(self) -> Iterator[dict[str, Any]]:
        """Every sample that parsed into problem and solution, with its seed, in seed order."""
        yield from self._query(
            "SELECT x.seed_id, s.language, s.snippet AS seed, x.problem, x.solution, "
            "x.solution_lang, x.solution_code FROM samples x JOIN seeds s ON s.id = x.seed_id "
            "WHERE x.status = 'ok' ORDER BY x.seed_id"
        )

    def count_parsed(self) -> int:
        return int(
            self._conn.execute("SELECT COUNT(*) FROM samples WHERE status = 'ok'").fetchone()[0]
        )

    def unseen(self, stage: str) -> int:
        """Parsed samples that finished `stage` has not seen (more were generated); else 0."""
        if self.stage_status(stage) != "complete":
            return 0
        if stage == "clean":  # clean checks everything at once and records how many
            return self.count_parsed() - (self.stage_summary(stage) or {}).get("checked", 0)
        query = f"SELECT COUNT(*) FROM samples x WHERE {PENDING[stage]}"
        return int(self._conn.execute(query).fetchone()[0])

    def replace_drops(self, stage: str, drops: Iterable[Drop], summary: dict[str, Any]) -> None:
        """Store a whole stage's drops at once and close the stage."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM drops WHERE stage = ?", (stage,))
            self._insert_drops(conn, stage, drops)
            self._complete(conn, stage, summary)

    # -- export -------------------------------------------------------------------------------

    def kept_samples(self) -> Iterator[dict[str, Any]]:
        """Samples that parsed and that no later stage dropped, in seed order."""
        yield from self._query(
            "SELECT x.seed_id, s.language, s.snippet AS seed, x.system_fingerprint, x.problem, "
            "x.solution FROM samples x JOIN seeds s ON s.id = x.seed_id WHERE x.status = 'ok' "
            f"AND x.seed_id NOT IN {_dropped_by('clean', 'decontaminate')} ORDER BY x.seed_id"
        )

    def fingerprints(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT system_fingerprint FROM samples WHERE system_fingerprint IS NOT NULL "
            "ORDER BY 1"
        )
        return [row[0] for row in rows]

    # -- lintseq stage ------------------------------------------------------------------------

    def programs_for_lintseq(self, chunk: int = 256) -> Iterator[list[dict[str, Any]]]:
        """Chunks of solutions kept by clean and decontaminate that LintSeq has not handled yet."""
        return self._pages(
            "SELECT x.seed_id, s.language, x.problem, x.solution_code FROM samples x "
            f"JOIN seeds s ON s.id = x.seed_id WHERE {PENDING['lintseq']} "
            "AND x.seed_id > ? ORDER BY x.seed_id LIMIT ?",
            (),
            "seed_id",
            chunk,
        )

    def record_lintseq(
        self, rows: Iterable[tuple[int, int, str, str]], drops: Iterable[Drop]
    ) -> None:
        with self.transaction() as conn:
            conn.executemany("INSERT INTO lintseq VALUES (?, ?, ?, ?)", rows)
            self._insert_drops(conn, "lintseq", drops)

    def iter_lintseq(self) -> Iterator[dict[str, Any]]:
        cursor = self._conn.execute(
            "SELECT l.seed_id, l.sample, s.language, x.problem AS instruction, "
            "x.solution_code AS program, l.edits, l.text FROM lintseq l "
            "JOIN samples x ON x.seed_id = l.seed_id JOIN seeds s ON s.id = l.seed_id "
            f"WHERE l.seed_id NOT IN {_dropped_by('clean', 'decontaminate')} "
            "ORDER BY l.seed_id, l.sample"
        )
        for row in _dicts(cursor):
            row["edits"] = json.loads(row["edits"])
            yield row

    # -- decontaminate stage ------------------------------------------------------------------

    def samples_to_scan(self, chunk: int = 2_000) -> Iterator[list[dict[str, Any]]]:
        """Chunks of parsed samples that cleaning kept and that are not scanned yet, by seed id."""
        return self._pages(
            "SELECT x.seed_id, s.language, x.problem, x.solution FROM samples x "
            f"JOIN seeds s ON s.id = x.seed_id WHERE {PENDING['decontaminate']} "
            "AND x.seed_id > ? ORDER BY x.seed_id LIMIT ?",
            (),
            "seed_id",
            chunk,
        )

    def record_scan(
        self,
        similarity: Iterable[tuple[int, float, str, str]],
        matches: Iterable[tuple[int, str, str, str, float, str]],
        drops: Iterable[Drop],
    ) -> None:
        """Store one chunk's similarities, evidence and drops together."""
        with self.transaction() as conn:
            conn.executemany("INSERT INTO similarity VALUES (?, ?, ?, ?)", similarity)
            conn.executemany("INSERT INTO contamination VALUES (?, ?, ?, ?, ?, ?)", matches)
            self._insert_drops(conn, "decontaminate", drops)

    def iter_contamination(self) -> Iterator[dict[str, Any]]:
        yield from self._query(
            "SELECT seed_id, benchmark, item_id, method, score, span FROM contamination "
            "ORDER BY seed_id, rowid"
        )

    @staticmethod
    def _insert_drops(conn: sqlite3.Connection, stage: str, drops: Iterable[Drop]) -> None:
        conn.executemany(
            "INSERT INTO drops (stage, language, reason, item, rank, detail) VALUES (?,?,?,?,?,?)",
            ((stage, d.language, d.reason, d.item, d.rank, d.detail) for d in drops),
        )

    # -- reading ------------------------------------------------------------------------------

    def iter_seeds(self) -> Iterator[dict[str, Any]]:
        """Every numbered seed, streamed in id order."""
        yield from self._query(
            "SELECT id, language, source, doc_id, repo, path, stars, start_line, end_line, snippet "
            "FROM seeds ORDER BY id"
        )

    def iter_drops(self) -> Iterator[dict[str, Any]]:
        """Every discarded item with its stage and reason."""
        yield from self._query(
            "SELECT stage, language, reason, item, detail FROM drops ORDER BY rowid"
        )

    # -- pushes to the Hub ---------------------------------------------------------------------

    def record_push(
        self,
        repo_id: str,
        revision: str,
        commit: tuple[str, str],
        rows: dict[str, int],
        changed: bool,
    ) -> None:
        """Remember where the run was published: commit (oid, url) and rows per config."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO pushes (repo_id, revision, commit_oid, commit_url, rows, changed, "
                "pushed_at) VALUES (?,?,?,?,?,?,?)",
                (repo_id, revision, *commit, json.dumps(rows), int(changed), _now()),
            )

    def pushes(self) -> list[dict[str, Any]]:
        """Every push of this run, oldest first."""
        rows = list(self._query("SELECT * FROM pushes ORDER BY id"))
        for row in rows:
            row["rows"], row["changed"] = json.loads(row["rows"]), bool(row["changed"])
        return rows

    def status(self) -> dict[str, Any]:
        """Counts per stage: status, rows per language, drops per language and reason."""
        stages: dict[str, Any] = {}
        for stage, status, started, finished, summary in self._conn.execute(
            "SELECT stage, status, started_at, finished_at, summary FROM stages ORDER BY rowid"
        ):
            stages[stage] = {
                "status": status,
                "started_at": started,
                "finished_at": finished,
                "summary": json.loads(summary) if summary else None,
                "drops": {},
                "documents": {},
            }
        for stage, language, reason, count in self._conn.execute(
            "SELECT stage, language, reason, COUNT(*) FROM drops GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ):
            stages[stage]["drops"].setdefault(language, {})[reason] = count
        for stage, language, shards, documents in self._conn.execute(
            "SELECT stage, language, COUNT(*), SUM(documents) FROM shards GROUP BY 1, 2"
        ):
            stages[stage]["documents"][language] = {"shards": shards, "documents": documents}
        seeds = dict(self._conn.execute("SELECT language, COUNT(*) FROM seeds GROUP BY language"))
        pool = dict(self._conn.execute("SELECT language, COUNT(*) FROM seed_pool GROUP BY 1"))
        if "sample" in stages:
            stages["sample"]["rows"] = seeds or pool
        if "generate" in stages:
            stages["generate"].update(self._generate_status())
        return {"run": str(self.root), "stages": stages, "pushes": self.pushes()}

    def funnel(self) -> dict[str, dict[str, int]]:
        """Per language, what is left after each stage that ran: seeds, parsed, cleaned, ..."""
        ok = "FROM samples x JOIN seeds s ON s.id = x.seed_id WHERE x.status = 'ok'"
        queries = {
            "seeds": ("sample", "SELECT language, COUNT(*) FROM seeds GROUP BY 1"),
            "parsed": ("generate", f"SELECT s.language, COUNT(*) {ok} GROUP BY 1"),
            "cleaned": (
                "clean",
                f"SELECT s.language, COUNT(*) {ok} AND x.seed_id NOT IN "
                f"{_dropped_by('clean')} GROUP BY 1",
            ),
            "decontaminated": (
                "decontaminate",
                f"SELECT s.language, COUNT(*) {ok} AND x.seed_id NOT IN "
                f"{_dropped_by('clean', 'decontaminate')} GROUP BY 1",
            ),
        }
        columns = {c: sql for c, (stage, sql) in queries.items() if self.stage_status(stage)}
        languages: dict[str, dict[str, int]] = {}
        for column, sql in columns.items():
            for language, count in self._conn.execute(sql):
                languages.setdefault(language, dict.fromkeys(columns, 0))[column] = count
        return dict(sorted(languages.items()))

    def _generate_status(self) -> dict[str, Any]:
        rows: dict[str, int] = {}
        by_status: dict[str, dict[str, int]] = {}
        for language, status, count in self._conn.execute(
            "SELECT s.language, x.status, COUNT(*) FROM samples x JOIN seeds s ON s.id = x.seed_id "
            "GROUP BY 1, 2"
        ):
            if status == "ok":
                rows[language] = count
            else:
                by_status.setdefault(language, {})[status] = count
        failures = dict(
            self._conn.execute(
                "SELECT error_kind, COUNT(*) FROM samples WHERE status = 'failed' GROUP BY 1"
            )
        )
        totals = self._conn.execute(
            "SELECT TOTAL(prompt_tokens), TOTAL(completion_tokens), TOTAL(cost_usd), COUNT(*) "
            "FROM samples"
        ).fetchone()
        return {
            "rows": rows,
            "drops": by_status,
            "failures": failures,
            "prompt_tokens": int(totals[0]),
            "completion_tokens": int(totals[1]),
            "cost_usd": round(totals[2], 6),
            "responses": totals[3],
        }
