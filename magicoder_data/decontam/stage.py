"""The decontaminate stage: scan a run's kept samples against benchmarks and drop the overlaps.

Samples are scanned in chunks, and each chunk's similarities, evidence and drops are committed
together, so a killed run resumes after the last chunk. A dropped sample's reason names the
benchmark and the strongest method that flagged it (substring, ngram, execution, then tfidf); all
evidence stays in the `contamination` table.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import field_validator, model_validator

from ..config import StrictModel, build
from ..errors import ConfigError, SandboxError
from ..execution.sandbox import Sandbox
from ..executors import BatchJob, ExecutorOptions
from ..records import Drop
from ..stage import DropReport, Progress, Stage
from ..store import RunStore
from .behaviour import suites
from .benchmarks import BenchmarkItem
from .methods import METHODS, Match, Scanner, Settings

STAGE = "decontaminate"
DEFAULTS = Settings()
#: Samples scanned per transaction: a killed scan resumes after the last one.
CHUNK = 2_000


class ScanOptions(StrictModel):
    """Which benchmarks to compare with, and how; shared by `decontaminate` and `audit`."""

    benchmarks: str | None = None
    """Comma-separated: humaneval (default), mbpp, humanevalplus, mbppplus, apps, ds1000, gsm8k,
    livecodebench; NAME=FILE for a local copy; or a JSON spec file for your own."""
    methods: str | list[str] | None = None
    """Any of substring, ngram, execution, fuzzy, tfidf (default all)."""
    ngram: int | None = None
    """Words per n-gram (10)."""
    ngram_share: float | None = None
    """Least share of a benchmark item's n-grams a sample must share (0.05)."""
    min_substring: int | None = None
    """Shortest benchmark text matched (50)."""
    threshold: float | None = None
    """TF-IDF similarity that flags (0.45)."""
    fuzzy_threshold: float | None = None
    """Similarity of identifier-abstracted code tokens that flags (0.75; pairs of fewer than
    25 aligned tokens need 0.9)."""
    candidates: int | None = None
    """Most benchmark items whose tests each Python sample's functions run, closest by TF-IDF
    first, among those taking as many arguments (200)."""
    unsafe_no_sandbox: bool = False
    """Run the execution method's code WITHOUT isolation (only where no sandbox can be had)."""

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: str | list[str] | None) -> list[str] | None:
        if methods is None:
            return None
        chosen = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else methods
        chosen = [m for m in chosen if m]
        unknown = sorted(set(chosen) - set(METHODS))
        if unknown or not chosen:
            raise ValueError(
                f"unknown method {unknown[0] if unknown else ''!r}; use {', '.join(METHODS)}"
            )
        return chosen

    @model_validator(mode="after")
    def _in_range(self) -> ScanOptions:
        """Bad values fail here, before any run is opened (InvalidOption names the key)."""
        self.scan_settings()
        return self

    def resolved(self, stored: dict | None = None) -> dict:
        """The stored config these options make: given values over `stored`, then defaults."""
        defaults = {
            "benchmarks": "humaneval",
            "methods": list(METHODS),
            "ngram": DEFAULTS.ngram,
            "ngram_share": DEFAULTS.ngram_share,
            "min_substring": DEFAULTS.min_substring,
            "threshold": DEFAULTS.tfidf_threshold,
        }
        if stored is not None and "ngram_share" not in stored:
            defaults["ngram_share"] = 0.0  # a run started before the share keeps its n-grams
        if "fuzzy" in (self.methods or (stored or {}).get("methods") or METHODS):
            defaults["fuzzy_threshold"] = DEFAULTS.fuzzy_threshold
        given = self.model_dump(exclude_none=True, exclude={"unsafe_no_sandbox"})
        config = {**defaults, **(stored or {}), **given}
        if "execution" in config["methods"]:  # runs without it keep the config they stored
            config.setdefault("candidates", DEFAULTS.candidates)
            config["sandbox"] = "none" if self.unsafe_no_sandbox else "bubblewrap"
        else:
            config.pop("candidates", None)
        return config

    def settings(self, stored: dict | None = None) -> tuple[Settings, list[BenchmarkItem]]:
        """The validated scan settings and the benchmark items they compare with."""
        from .benchmarks import load, resolve

        config = self.resolved(stored)
        if not isinstance(config["benchmarks"], str):
            raise ConfigError("benchmarks must be one comma-separated text, e.g. humaneval,mbpp")
        specs = resolve(config["benchmarks"].split(","))
        return self.scan_settings(stored), [item for spec in specs for item in load(spec)]

    @contextmanager
    def scanner(self, stored: dict | None = None) -> Iterator[tuple[list[BenchmarkItem], Scanner]]:
        """The benchmark items and a scanner over them, built once, with the sandbox that the
        execution method runs code in started for as long as the scanner is in use."""
        settings, items = self.settings(stored)
        with scanning(items, settings, self.unsafe_no_sandbox) as scanner:
            yield items, scanner

    def scan_settings(self, stored: dict | None = None) -> Settings:
        """The validated scan settings (InvalidOption names a bad key)."""
        config = self.resolved(stored)
        return build(
            Settings,
            {
                "methods": tuple(config["methods"]),
                "ngram": config["ngram"],
                "ngram_share": config["ngram_share"],
                "min_substring": config["min_substring"],
                "tfidf_threshold": config["threshold"],
                "fuzzy_threshold": config.get("fuzzy_threshold", DEFAULTS.fuzzy_threshold),
                "candidates": config.get("candidates", DEFAULTS.candidates),
            },
            names={"tfidf_threshold": "threshold"},
        )


@contextmanager
def scanning(
    items: list[BenchmarkItem], settings: Settings, unsafe: bool, cores: int | None = None
) -> Iterator[Scanner]:
    """A scanner over `items`; the execution method's sandbox (`cores` processes) runs while
    it is in use."""
    if "execution" not in settings.methods:
        yield Scanner(items, settings)
        return
    sandbox = Sandbox(workers=cores, unsafe=unsafe, suites=suites(items))
    try:
        sandbox.__enter__()
    except SandboxError as exc:
        raise SandboxError(
            f"{exc}; or leave execution out (--methods substring,ngram,tfidf)"
        ) from None
    with sandbox:
        yield Scanner(items, settings, sandbox)


def sample_text(problem: str | None, solution: str | None) -> str:
    """What is compared with benchmarks: problem and solution, as Magicoder did."""
    return f"{problem or ''}\n{solution or ''}"


@dataclass(frozen=True)
class ToScan:
    """A kept sample the scan has not seen yet."""

    seed_id: int
    language: str
    problem: str | None
    solution: str | None
    solution_code: str | None


class DecontaminateOptions(ScanOptions, ExecutorOptions):
    """The `decontaminate` command's options: the scan's, and where it runs."""

    def resolved(self, stored: dict | None = None) -> dict:
        return {k: v for k, v in super().resolved(stored).items() if k not in self.EXECUTION}


#: One sample's scan: its highest TF-IDF similarity, that item's position, and what flagged it.
Scanned = tuple[float, int, list[Match]]


@dataclass(frozen=True)
class ScanJob(BatchJob[ToScan, Scanned]):
    """The scan as a pure function over batches: each worker builds the benchmark's indexes
    (and the execution method's sandbox, with a process per core it is given) once."""

    settings: Settings
    items: list[BenchmarkItem]
    unsafe: bool
    parallel = True

    @contextmanager
    def open(self, cores: int) -> Iterator[Callable[[list[ToScan]], list[Scanned]]]:
        with scanning(self.items, self.settings, self.unsafe, cores) as scanner:
            yield lambda chunk: scan_chunk(scanner, chunk)


def scan_chunk(scanner: Scanner, chunk: list[ToScan]) -> list[Scanned]:
    """Each sample's scan, in order."""
    texts = [sample_text(s.problem, s.solution) for s in chunk]
    codes = [s.solution_code if s.language == "python" else None for s in chunk]
    matches, best, where = scanner.scan(texts, codes, [s.language for s in chunk])
    found: list[list[Match]] = [[] for _ in chunk]
    for match in matches:
        found[match.index].append(match)
    return [
        (float(score), int(w), flags) for score, w, flags in zip(best, where, found, strict=True)
    ]


class Decontaminate(Stage[DecontaminateOptions, DropReport]):
    """Drop samples that overlap benchmarks, keeping the evidence of each match.

    Options left out keep the values RUN's decontamination was started with.
    """

    name = STAGE
    Config = DecontaminateOptions
    example = "magicoder-data decontaminate runs/demo --benchmarks humaneval,mbpp=mbpp.jsonl"
    requires = ("generate",)
    filters = True
    funnel = "decontaminated"
    progress_sql = "SELECT 1 FROM similarity LIMIT 1"
    pending_sql = "x.seed_id NOT IN (SELECT seed_id FROM similarity)"

    def run(
        self, store: RunStore, config: DecontaminateOptions, progress: Progress | None = None
    ) -> DropReport:
        """Scan what is left to scan, with the benchmark index built once per worker."""
        self.check_ready(store)
        stored = store.stage_config(STAGE)
        settings, items = config.settings(stored)  # a bad benchmark fails before it is recorded
        store.begin_stage(STAGE, config.resolved(stored), self.progress_sql)
        report = DropReport(STAGE, Counter())
        columns = "x.seed_id, s.language, x.problem, x.solution, x.solution_code"
        job = ScanJob(settings, items, config.unsafe_no_sandbox)
        with config.executor_for(os.cpu_count()) as executor:
            for chunk, scanned in executor.map(
                job, self.todo(store, columns, CHUNK, ToScan), store
            ):
                _record(store, chunk, items, scanned)
                if progress:
                    report.dropped = store.drop_totals(STAGE)
                    progress(report)
        store.finish_stage(STAGE, {})
        report.dropped = store.drop_totals(STAGE)
        return report


def _record(
    store: RunStore, chunk: list[ToScan], items: list[BenchmarkItem], scanned: list[Scanned]
) -> None:
    """Store one chunk's similarities, evidence and drops together."""
    similarity, evidence, drops = [], [], []
    for sample, (score, where, matches) in zip(chunk, scanned, strict=True):
        item = items[where]
        similarity.append((sample.seed_id, score, item.benchmark, item.item_id))
        evidence += [
            (sample.seed_id, m.benchmark, m.item_id, m.method, m.score, m.span) for m in matches
        ]
        if matches:
            drops.append(_drop(sample.seed_id, sample.language, matches))
    with store.transaction() as conn:
        conn.executemany("INSERT INTO similarity VALUES (?, ?, ?, ?)", similarity)
        conn.executemany("INSERT INTO contamination VALUES (?, ?, ?, ?, ?, ?)", evidence)
        store.insert_drops(conn, STAGE, drops)


def _drop(seed_id: int, language: str, matches: list[Match]) -> Drop:
    strongest = min(matches, key=lambda m: (METHODS.index(m.method), -m.score))
    detail = "; ".join(sorted({f"{m.benchmark}/{m.method} {m.item_id}" for m in matches}))[:1000]
    return Drop(language, f"{strongest.benchmark}/{strongest.method}", str(seed_id), None, detail)
