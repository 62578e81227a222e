"""Export and push as stages: their configs, the rows they read, and the pushes they record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import field_validator

from ..config import StrictModel
from ..errors import RunError
from ..stage import Progress, Report, Stage, kept_sql
from ..store import RunStore, now

#: The configs an export can hold, the first being the dataset's default.
CONFIGS = ("oss-instruct", "sft", "lintseq")


class _Configs(StrictModel):
    config: str = "oss-instruct,sft"
    """oss-instruct, sft, lintseq or all (comma-separated)."""
    license: str = "other"
    """Licence in the dataset card."""

    @field_validator("config")
    @classmethod
    def _known(cls, config: str) -> str:
        names = configs_of(config)
        unknown = [c for c in names if c not in CONFIGS]
        if unknown or not names:
            raise ValueError(
                f"unknown config {unknown[0] if unknown else ''!r}; use {', '.join(CONFIGS)} or all"
            )
        return config

    @property
    def configs(self) -> list[str]:
        return configs_of(self.config)


def configs_of(config: str) -> list[str]:
    """`all` or a comma-separated list, as config names."""
    return list(CONFIGS) if config == "all" else [c.strip() for c in config.split(",") if c.strip()]


class ExportOptions(_Configs):
    """The `export` command's options."""

    out: Path
    """Folder to write: new, empty, or an earlier export (which is replaced)."""
    overwrite: bool = False
    """Replace an existing output even if magicoder-data did not write it."""


class PushOptions(_Configs):
    """The `push` command's options (the token comes from HF_TOKEN or `hf auth login`)."""

    repo_id: str
    """Hub dataset repo, ORG/NAME (created if new)."""
    private: bool = False
    """Make the repo private."""
    revision: str | None = None
    """Branch to push to (created from main if new)."""


def _rows_line(rows: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,} rows" for name, count in rows.items())


@dataclass
class ExportReport(Report):
    rows: dict[str, int]
    out: Path

    def line(self) -> str:
        return f"export: {_rows_line(self.rows)} -> {self.out}"


@dataclass
class PushReport(Report):
    url: str
    commit: str
    changed: bool
    rows: dict[str, int]

    def line(self) -> str:
        state = "pushed" if self.changed else "unchanged, nothing pushed"
        return f"push: {_rows_line(self.rows)} {state} -> {self.url} (commit {self.commit[:12]})"


def check_finished(store: RunStore, configs: list[str]) -> None:
    """An export of a half-done stage would silently miss rows: say what to resume instead."""
    from ..pipeline import STAGES

    if store.stage_status("generate") is None:
        raise RunError(f"{store.root}: nothing to export yet; run `magicoder-data generate` first")
    if "lintseq" in configs and store.stage_status("lintseq") is None:
        raise RunError(f"{store.root}: no LintSeq edits; run `magicoder-data lintseq {store.root}`")
    upstream = STAGES[: [s.name for s in STAGES].index(Export.name)]
    for stage in upstream:
        status = store.stage_status(stage.name)
        if status not in (None, "complete"):
            raise RunError(
                f"{store.root}: {stage.name} has not finished ({status}); resume it with "
                f"`magicoder-data {stage.name} {store.root}` before exporting"
            )
    for stage in upstream:
        if missing := stage.unseen(store):
            raise RunError(
                f"{store.root}: {stage.name} has not seen {missing:,} newer samples; re-run "
                f"`magicoder-data {stage.name} {store.root}` before exporting"
            )


@dataclass(frozen=True)
class KeptSample:
    """A sample that parsed and that no filtering stage dropped: a row of the dataset."""

    seed_id: int
    language: str
    snippet: str  # the seed snippet (the `seed` column of Magicoder's schema)
    system_fingerprint: str | None
    problem: str
    solution: str
    tests: str | None
    verify_status: str | None  # None: verify did not run on it
    verify_detail: str | None


def kept_samples(store: RunStore) -> Iterator[KeptSample]:
    """Every kept sample with its tests and verdict, in seed order."""
    return store.rows(
        "SELECT x.seed_id, s.language, s.snippet, x.system_fingerprint, x.problem, "
        "x.solution, x.tests, v.status AS verify_status, v.detail AS verify_detail FROM samples x "
        "JOIN seeds s ON s.id = x.seed_id LEFT JOIN verification v ON v.seed_id = x.seed_id "
        f"WHERE {kept_sql()} ORDER BY x.seed_id",
        as_=KeptSample,
    )


class Export(Stage[ExportOptions, ExportReport]):
    """Write a Hub-ready dataset folder: parquet shards per config and a dataset card."""

    name = "export"
    Config = ExportOptions
    example = "magicoder-data export runs/demo --out dataset/ --config all"
    writes = False

    def run(
        self, store: RunStore, config: ExportOptions, progress: Progress | None = None
    ) -> ExportReport:
        from .writer import export

        rows = export(store, config.out, config.configs, config.license, overwrite=config.overwrite)
        return ExportReport(rows, config.out)


class Push(Stage[PushOptions, PushReport]):
    """Export the run and upload it to a Hub dataset repo; pushing again updates it in place.

    The token comes from HF_TOKEN or `hf auth login`.
    """

    name = "push"
    Config = PushOptions
    example = "magicoder-data push runs/demo --repo-id my-org/oss-instruct-75k --private"

    def run(
        self, store: RunStore, config: PushOptions, progress: Progress | None = None
    ) -> PushReport:
        from .push import push

        result = push(
            store,
            config.repo_id,
            config.configs,
            private=config.private,
            revision=config.revision,
            license=config.license,
        )
        return PushReport(**result)


@dataclass(frozen=True)
class PushRecord:
    """Where and when the run was published (`status` shows the last one)."""

    id: int
    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    rows: dict[str, int]
    changed: bool
    pushed_at: str


def record_push(
    store: RunStore,
    repo_id: str,
    revision: str,
    commit: tuple[str, str],
    rows: dict[str, int],
    changed: bool,
) -> None:
    """Remember where the run was published: commit (oid, url) and rows per config."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO pushes (repo_id, revision, commit_oid, commit_url, rows, changed, "
            "pushed_at) VALUES (?,?,?,?,?,?,?)",
            (repo_id, revision, *commit, json.dumps(rows), int(changed), now()),
        )


def pushes(store: RunStore) -> list[PushRecord]:
    """Every push of this run, oldest first."""

    def record(**row: Any) -> PushRecord:
        return PushRecord(
            **{**row, "rows": json.loads(row["rows"]), "changed": bool(row["changed"])}
        )

    return list(store.rows("SELECT * FROM pushes ORDER BY id", as_=record))
