"""Contamination audits of any dataset: a run, a local jsonl/parquet file, or a Hub dataset.

The report is a folder: `report.md`, a self-contained `report.html` (the histogram embedded),
`similarity.png` (each sample's highest TF-IDF similarity to any benchmark item, one curve per
dataset, like the Magicoder paper's figure) and `flagged.jsonl` (one line per flagged sample and
match: the sample's `id` field when it has one, else its row number, counted from 0, with the
evidence: the matched text, or which function passed which item's tests).

Only text is compared: a null value of a compared field counts as empty text, and any other
non-string value (a number, a list, an object) is left out rather than turned into its `str()`.
Both are counted per field and listed in the report, so no value is skipped silently. A dataset
with no rows is reported as having no samples.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..outputs import replacing_folder
from ..readers import is_run, missing_field, open_dataset
from ..viewer import render
from ..viewer.render import environment, fenced
from .benchmarks import BenchmarkItem
from .methods import Scanner

CHUNK = 2_000
TOP = 10
#: Flagged samples the report shows beside their benchmark item, per dataset (all are in
#: flagged.jsonl).
SHOWN = 100


@dataclass(frozen=True)
class Shown:
    """A flagged sample as the report shows it: its strongest match and that match's evidence."""

    sample_id: str
    text: str
    benchmark: str
    item_id: str
    method: str
    score: float
    evidence: str


@dataclass
class DatasetAudit:
    """What one dataset's scan found."""

    label: str
    samples: int = 0
    flagged: set[str] = field(default_factory=set)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # samples per (bench, method)
    similarities: list[float] = field(default_factory=list)
    top: list[tuple[float, str, str, int]] = field(default_factory=list)  # score, id, text, item
    #: Values of compared fields that were not text, per "field: kind" (null, int, list...).
    not_text: Counter[str] = field(default_factory=Counter)
    #: The first SHOWN flagged samples, for the report's side-by-side view.
    shown: list[Shown] = field(default_factory=list)


def rows_of(
    source: str, fields: list[str], not_text: Counter[str] | None = None
) -> Iterator[tuple[str, str]]:
    """(id, text) of each row of a run, a local file or a Hub dataset; text joins `fields`.

    A run's rows are named by their seed, others by their `id` field or else their row number.
    A source that is not there raises at once; values that are not strings are compared as
    empty text and counted in `not_text`.
    """
    counted: Counter[str] = Counter() if not_text is None else not_text
    rows = open_dataset(source)
    id_field = "seed_id" if is_run(Path(source).expanduser()) else "id"
    return (
        (str(row.get(id_field, number)), _join(row, number, fields, source, counted))
        for number, row in enumerate(rows)
    )


def _join(
    row: dict[str, Any], number: int, fields: list[str], source: str, not_text: Counter[str]
) -> str:
    missing = [f for f in fields if f not in row]
    if missing:
        raise ConfigError(missing_field(source, number, missing[0], row))
    texts = []
    for name in fields:
        value = row[name]
        if not isinstance(value, str):
            not_text[f"{name}: {'null' if value is None else type(value).__name__}"] += 1
            value = ""
        texts.append(value)
    return "\n".join(texts)


def audit(
    sources: list[str],
    fields: list[str],
    items: list[BenchmarkItem],
    scanner: Scanner,
    report: Path,
    *,
    overwrite: bool = False,
) -> list[DatasetAudit]:
    """Scan every source and write the report folder.

    The folder appears only when complete, and replaces only an earlier report, an empty folder,
    or, with `overwrite`, any folder but an input or one holding an input (see `outputs`).
    """
    audits = [DatasetAudit(label=source) for source in sources]
    streams = [rows_of(a.label, fields, a.not_text) for a in audits]  # a missing one: no report
    inputs = [path for path in map(Path, sources) if path.exists()]
    with (
        replacing_folder(
            report, kind="audit", protect=inputs, overwrite=overwrite, what="--report"
        ) as folder,
        (folder / "flagged.jsonl").open("w", encoding="utf-8") as flagged,
    ):
        for result, rows in zip(audits, streams, strict=True):
            batch: list[tuple[str, str]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == CHUNK:
                    _scan(batch, scanner, items, result, flagged)
                    batch = []
            if batch:
                _scan(batch, scanner, items, result, flagged)
        flagged.close()
        _write(audits, items, scanner, folder)
    return audits


def _scan(
    batch: list[tuple[str, str]],
    scanner: Scanner,
    items: list[BenchmarkItem],
    result: DatasetAudit,
    flagged: Any,
) -> None:
    matches, best, where = scanner.scan([text for _, text in batch])
    strongest: dict[tuple[int, str, str, str], tuple[float, str]] = {}
    for m in matches:  # one line per sample, benchmark item and method: its best evidence
        key = (m.index, m.benchmark, m.item_id, m.method)
        strongest[key] = max((m.score, m.span), strongest.get(key, (0.0, "")))
    for _, benchmark, method in {(i, b, m) for i, b, _, m in strongest}:
        result.counts[benchmark, method] += 1
    best_of: dict[int, Shown] = {}
    for (index, benchmark, item_id, method), (score, evidence) in strongest.items():
        sample_id = batch[index][0]
        result.flagged.add(sample_id)
        shown = Shown(sample_id, batch[index][1], benchmark, item_id, method, score, evidence)
        if index not in best_of or (score, method) > (best_of[index].score, best_of[index].method):
            best_of[index] = shown
        flagged.write(
            json.dumps(
                {
                    "dataset": result.label,
                    "id": sample_id,
                    "benchmark": benchmark,
                    "item_id": item_id,
                    "method": method,
                    "score": score,
                    "evidence": evidence,
                }
            )
            + "\n"
        )
    room = SHOWN - len(result.shown)
    result.shown += [best_of[index] for index in sorted(best_of)][: max(room, 0)]
    result.samples += len(batch)
    result.similarities.extend(float(x) for x in best)
    for row in np.argsort(-best)[:TOP]:
        result.top.append((float(best[row]), batch[row][0], batch[row][1], int(where[row])))
    result.top = sorted(result.top, reverse=True)[:TOP]


def _histogram(audits: list[DatasetAudit], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    bins = [i / 40 for i in range(41)]
    for audit_ in audits:
        if audit_.similarities:
            weights = np.full(len(audit_.similarities), 100 / len(audit_.similarities))
            axes.hist(
                audit_.similarities,
                bins=bins,
                weights=weights,
                histtype="step",
                linewidth=1.5,
                label=audit_.label,
            )
    axes.set_xlabel("highest TF-IDF cosine similarity to a benchmark item")
    axes.set_ylabel("% of samples")
    if any(audit_.similarities for audit_ in audits):
        axes.legend()
    else:  # a legend of no curves warns; say why the plot is empty instead
        axes.text(0.5, 0.5, "no samples", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _write(
    audits: list[DatasetAudit], items: list[BenchmarkItem], scanner: Scanner, report: Path
) -> None:
    """The report's files: the histogram, `report.md`, and `report.html` with the plot inside
    (the viewer's templates: every text escaped, code in code shown as code)."""
    png = report / "similarity.png"
    _histogram(audits, png)
    lines = _summary(audits, items, scanner)
    for a in audits:
        lines += _section(a, items)
    # A lone surrogate in a sample (valid JSON, not UTF-8) is written as its escape.
    (report / "report.md").write_text("\n".join(lines), "utf-8", "backslashreplace")
    by_id = {(item.benchmark, item.item_id): item for item in items}
    page = (
        environment()
        .get_template("audit.html")
        .render(
            summary=render.markdown("\n".join(_summary(audits, items, scanner)[:-2])),
            picture=base64.b64encode(png.read_bytes()).decode(),
            audits=audits,
            items=items,
            by_id=by_id,
            medians={
                a.label: float(np.median(a.similarities)) if a.samples else None for a in audits
            },
            style=render.style_sheet(),
        )
    )
    (report / "report.html").write_text(page, "utf-8", "backslashreplace")


def _summary(audits: list[DatasetAudit], items: list[BenchmarkItem], scanner: Scanner) -> list[str]:
    """The report's head: benchmarks and settings, then flagged samples per dataset and method."""
    benchmarks = sorted({item.benchmark for item in items})
    settings = scanner.settings
    lines = [
        "# Contamination audit",
        "",
        f"Benchmarks: {', '.join(benchmarks)} ({len(items):,} items). Methods: "
        f"{', '.join(settings.methods)} (n-gram n={settings.ngram}, substrings of at least "
        f"{settings.min_substring} characters, TF-IDF threshold {settings.tfidf_threshold}"
        + (
            f"; execution runs the tests of up to {settings.candidates} items (closest first, "
            "fitting signatures) against each Python sample's functions"
            if "execution" in settings.methods
            else ""
        )
        + ").",
        "",
        "| dataset | samples | flagged | "
        + " | ".join(f"{b}/{m}" for b in benchmarks for m in settings.methods)
        + " |",
        "|---|---|---|" + "---|" * (len(benchmarks) * len(settings.methods)),
    ]
    for a in audits:
        share = f"{len(a.flagged):,} ({100 * len(a.flagged) / max(a.samples, 1):.2f}%)"
        cells = " | ".join(f"{a.counts[b, m]:,}" for b in benchmarks for m in settings.methods)
        lines.append(f"| {a.label} | {a.samples:,} | {share} | {cells} |")
    return [*lines, "", "![similarity](similarity.png)", ""]


def _section(a: DatasetAudit, items: list[BenchmarkItem]) -> list[str]:
    """One dataset's part: values left out, the median similarity and its closest matches."""
    lines = [f"## {a.label}", ""]
    if a.not_text:
        counted = ", ".join(f"`{k}` {n:,}" for k, n in sorted(a.not_text.items()))
        lines += [f"Values compared as empty text because they are not text: {counted}.", ""]
    if not a.samples:
        return [*lines, "No samples: the dataset has no rows, so nothing was compared.", ""]
    median = float(np.median(a.similarities))
    lines += [
        f"Median highest similarity: {median:.3f}.",
        "",
        f"Top {len(a.top)} matches by TF-IDF similarity:",
        "",
    ]
    for score, sample_id, text, item in a.top:
        bench = items[item]
        lines += [
            f"### sample {sample_id} ~ {bench.benchmark} {bench.item_id} ({score:.3f})",
            "",
            "Sample:",
            "",
            fenced(text[:1500]),
            "",
            "Benchmark item:",
            "",
            fenced(bench.document[:1500]),
            "",
        ]
    return lines
