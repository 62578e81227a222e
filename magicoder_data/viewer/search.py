"""Full-text search over a run's problems and solutions, without writing the run.

The run is opened read-only, so its FTS5 index lives in a private SQLite file of the viewer's
own (a temporary folder, deleted when the viewer stops). It is filled on the first search and
brought up to date before each one: answers stored since (a run being generated) are added,
and an answer that was replaced (`--retry-failed`) is indexed again.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
import threading
from pathlib import Path

from ..store import RunStore

_WORD = re.compile(r"\w+", re.UNICODE)


class SearchIndex:
    """An FTS5 index of one run's answers, kept in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "search.db"
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS answers USING fts5(problem, solution)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS seen (seed_id INTEGER PRIMARY KEY, at TEXT)")
        self._lock = threading.Lock()
        self._mark: str | None = None  # the samples' state at the last refresh

    def refresh(self, store: RunStore) -> None:
        """Index the answers stored (or replaced) since the last refresh; nothing to read when
        the samples' count, newest time and attempts are as they were."""
        mark = store.value(
            "SELECT COUNT(*) || '/' || COALESCE(MAX(created_at), '') || '/' || TOTAL(attempts) "
            "FROM samples"
        )
        if mark == self._mark:
            return
        self._mark = mark
        last = self._conn.execute("SELECT COALESCE(MAX(at), '') FROM seen").fetchone()[0]
        fresh = list(
            store.rows(
                "SELECT seed_id, created_at, COALESCE(problem, '') AS problem, "
                "COALESCE(solution, '') AS solution FROM samples WHERE created_at >= ?",
                (last,),
                as_=lambda seed_id, created_at, problem, solution: (
                    seed_id,
                    created_at,
                    problem,
                    solution,
                ),
            )
        )
        if not fresh:
            return
        with self._conn:
            self._conn.executemany(
                "DELETE FROM answers WHERE rowid = ?", ((row[0],) for row in fresh)
            )
            self._conn.executemany(
                "INSERT INTO answers (rowid, problem, solution) VALUES (?, ?, ?)",
                ((seed_id, problem, solution) for seed_id, _, problem, solution in fresh),
            )
            self._conn.executemany(
                "INSERT OR REPLACE INTO seen VALUES (?, ?)", ((r[0], r[1]) for r in fresh)
            )

    def condition(self, store: RunStore, text: str) -> tuple[str, tuple[str, ...]]:
        """SQL on `samples x` (and its parameters) true for the samples whose problem or
        solution has every word of `text`, as prefixes; the index is brought up to date and
        attached to `store` (read-only) first."""
        words = _WORD.findall(text)
        if not words:
            return "0", ()
        with self._lock:
            self.refresh(store)
        store.attach(self.path, "viewer_search")
        query = " ".join(f'"{word}"*' for word in words)
        return (
            "x.seed_id IN (SELECT rowid FROM viewer_search.answers WHERE answers MATCH ?)",
            (query,),
        )


class SearchIndexes:
    """One index per run, in one temporary folder that lives as long as the viewer."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="magicoder-data-viewer-")
        self._indexes: dict[str, SearchIndex] = {}
        self._lock = threading.Lock()

    def of(self, name: str) -> SearchIndex:
        with self._lock:
            if name not in self._indexes:
                folder = Path(self._folder.name) / str(len(self._indexes))
                folder.mkdir()
                self._indexes[name] = SearchIndex(folder)
            return self._indexes[name]

    def close(self) -> None:
        self._folder.cleanup()
