"""The decontaminate stage: scan a run's kept samples against benchmarks and drop the overlaps.

Samples are scanned in chunks, and each chunk's similarities, evidence and drops are committed
together, so a killed run resumes after the last chunk. A dropped sample's reason names the
benchmark and the strongest method that flagged it (substring, then ngram, then tfidf); all
evidence stays in the `contamination` table.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

from ..errors import RunError
from ..records import Drop
from ..store import RunStore, reason_totals
from .benchmarks import BenchmarkItem
from .methods import METHODS, Match, Scanner, Settings

STAGE = "decontaminate"


def sample_text(sample: dict[str, Any]) -> str:
    """What is compared with benchmarks: problem and solution, as Magicoder did."""
    return f"{sample['problem'] or ''}\n{sample['solution'] or ''}"


def decontaminate(
    store: RunStore,
    items: list[BenchmarkItem],
    settings: Settings,
    config: dict[str, Any],
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Scan what is left to scan; return how many samples each benchmark/method dropped."""
    if store.stage_status("generate") is None:
        raise RunError(f"{store.root}: generate samples first")
    store.begin_stage(STAGE, config)
    scanner = Scanner(items, settings)
    done = 0
    for chunk in store.samples_to_scan():
        ids = [s["seed_id"] for s in chunk]
        matches, best, where = scanner.scan([sample_text(s) for s in chunk])
        similarity = [
            (seed_id, float(score), items[w].benchmark, items[w].item_id)
            for seed_id, score, w in zip(ids, best, where, strict=True)
        ]
        evidence = [
            (ids[m.index], m.benchmark, m.item_id, m.method, m.score, m.span) for m in matches
        ]
        drops = [
            _drop(ids[index], chunk[index]["language"], list(found))
            for index, found in groupby(matches, key=lambda m: m.index)
        ]
        store.record_scan(similarity, evidence, drops)
        done += len(chunk)
        if progress:
            progress(done)
    store.finish_stage(STAGE, {})
    return dict(reason_totals(store.status()["stages"][STAGE]))


def _drop(seed_id: int, language: str, matches: list[Match]) -> Drop:
    strongest = min(matches, key=lambda m: (METHODS.index(m.method), -m.score))
    detail = "; ".join(sorted({f"{m.benchmark}/{m.method} {m.item_id}" for m in matches}))[:1000]
    return Drop(language, f"{strongest.benchmark}/{strongest.method}", str(seed_id), None, detail)
