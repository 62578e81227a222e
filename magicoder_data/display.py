"""How reports look in a terminal: live progress, the seeds table, generation totals, status.

Only presentation lives here; the numbers come from the library's reports and status.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .stage import Report, StageStatus

if TYPE_CHECKING:
    from .backends.batch import BatchRow
    from .pipeline import RunStatus


class _Console(Console):
    """Rich's console, except that a reader who closes the pipe early (`status | head`) ends
    the command as a success, silently: it has what it wanted (rich exits 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the last flush too
        raise SystemExit(0)


out = _Console()
err = _Console(stderr=True)


def say(text: str) -> None:
    """One line on stdout, printed as is (no markup, no highlighting, no wrapping)."""
    out.print(text, highlight=False, markup=False, soft_wrap=True)


class Display:
    """Live progress of a stage's report: a rich line on a terminal, a line every 10 s else."""

    def __init__(self, stage: str, plain: bool) -> None:
        self.stage = stage
        self.live = None if plain or not err.is_terminal else Live(console=err, transient=True)
        self._last = time.monotonic()  # the first line after a while, not at once

    def __enter__(self) -> Display:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(None, None, None)

    def update(self, report: Report) -> None:
        now = time.monotonic()
        if now - self._last < (0.25 if self.live else 10.0):
            return
        self._last = now
        if self.live:
            self.live.update(Text(report.line()))
        else:
            err.print(f"{self.stage}: {report.line()}", highlight=False, markup=False)


def show_line(report: Report, run: Path) -> None:
    say(report.line())


def show_seeds(report: Any, run: Path) -> None:
    table = Table(title="seeds", title_justify="left")
    for column in ("language", "requested", "found", "documents scanned"):
        table.add_column(column, justify="left" if column == "language" else "right")
    languages = report.languages
    for lang, r in languages.items():
        table.add_row(lang, f"{r.requested:,}", f"{r.found:,}", f"{r.documents:,}")
    found = sum(r.found for r in languages.values())
    table.add_row("total", f"{sum(r.requested for r in languages.values()):,}", f"{found:,}", "")
    out.print(table)
    for lang, r in languages.items():
        if r.short:
            err.print(
                f"warning: {lang}: only {r.found:,} of {r.requested:,} seeds found "
                f"({r.documents:,} documents scanned)",
                highlight=False,
            )


def show_generated(stats: Any, run: Path) -> None:
    say(f"generate: {stats.line()}")
    states = ", ".join(f"{k} {n:,}" for k, n in sorted(stats.statuses.items())) or "nothing sent"
    say(f"samples: {states}")
    if stats.stopped_by_budget:
        err.print("stopped: the next requests could exceed --max-cost", highlight=False)
    if getattr(stats, "cancelled", False):
        err.print(
            "batches were cancelled: what they answered is stored; the rest goes out again with "
            f"the next `magicoder-data generate {run} --batch`",
            highlight=False,
            markup=False,
        )
    if getattr(stats, "outstanding", 0):
        err.print(
            f"{stats.outstanding:,} batches still open at the provider: `magicoder-data generate "
            f"{run}` collects them, `magicoder-data cancel {run}` cancels them",
            highlight=False,
            markup=False,
        )


def show_status(report: RunStatus) -> None:
    """Each stage's state, then per language its rows, requests, documents and drops."""
    say(f"run {report.run}")
    if not report.stages:
        out.print("no stage has run yet")
    for pushed in report.pushes[-1:]:
        say(
            f"pushed {len(report.pushes)} time(s); last to {pushed.repo_id}@{pushed.revision} "
            f"(commit {pushed.commit_oid[:12]}, {pushed.pushed_at})"
        )
    from .pipeline import STAGES

    funnel = {s.name: s.funnel for s in STAGES if s.funnel}
    for name, stage in report.stages.items():
        out.print(f"\n[bold]{name}[/bold]: {stage.status}")
        out.print(_languages(stage, funnel.get(name) or "rows"))
        if stage.note:
            say(stage.note)
        if stage.usage is not None:
            spent = stage.usage
            failures = ", ".join(f"{k} {n:,}" for k, n in spent.failures.items()) or "none"
            say(
                f"tokens: {spent.prompt_tokens:,} prompt + {spent.completion_tokens:,} "
                f"completion  spend: ${spent.cost_usd:,.4f}  failures: {failures}"
            )
        if stage.batches:
            out.print(_batches(stage.batches))


def _batches(rows: list[BatchRow]) -> Table:
    """A run's batches: where each stands, what it answered and cost, why it failed."""
    table = Table(title="batches (Batch API, half price)", title_justify="left", box=None)
    numbers = ("requests", "answered", "failed", "cost")
    table.add_column("batch", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in numbers:
        table.add_column(column, justify="right")
    errors = any(row.errors for row in rows)
    if errors:
        table.add_column("errors")
    for row in rows:
        ended = row.collected_at is None and row.status in ("completed", "expired", "failed")
        table.add_row(
            Text(row.batch_id or f"(not created yet: {row.key[:8]})"),
            f"{row.status} (to collect)" if ended else row.status,
            f"{row.requests:,}",
            f"{row.completed:,}",
            f"{row.failed:,}",
            f"${row.cost_usd:,.4f}",
            *([Text(row.errors or "")] if errors else []),
        )
    return table


def _languages(stage: StageStatus, rows_are: str = "rows") -> Table:
    """One row per language: requested ones first (in the mix's order), then the others; only
    the columns the stage fills (requests and documents are the sampler's), the rows named for
    what they are (`rows_are`: the stage's funnel column, e.g. parsed)."""
    rows, docs = stage.rows or {}, stage.documents
    summary = stage.summary or {}
    requests = {k: v["requested"] for k, v in summary.items() if isinstance(v, dict)}
    others = sorted((set(rows) | set(docs) | set(stage.drops)) - set(requests))
    cells: dict[str, list[str]] = {"rows": [], "requested": [], "documents": [], "dropped": []}
    languages = [*requests, *others]
    for lang in languages:
        dropped = ", ".join(f"{r} {n:,}" for r, n in stage.drops.get(lang, {}).items())
        requested = requests.get(lang)
        cells["rows"].append(f"{rows.get(lang, 0):,}")
        cells["requested"].append(f"{requested:,}" if requested is not None else "")
        cells["documents"].append(f"{docs.get(lang, {}).get('documents', 0):,}")
        cells["dropped"].append(dropped or "-")
    shown = {
        "rows": True,
        "requested": bool(requests),
        "documents": bool(docs),
        "dropped": True,
    }
    table = Table(box=None, pad_edge=False)
    table.add_column("language")
    for column in cells:
        if shown[column]:
            table.add_column(rows_are if column == "rows" else column, justify="right")
    for n, lang in enumerate(languages):
        table.add_row(lang, *(cells[c][n] for c in cells if shown[c]))
    return table
