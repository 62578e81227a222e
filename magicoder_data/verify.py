"""The verify stage: run each Python sample's solution against the tests written with it, in the
sandbox, and drop the samples whose tests do not pass.

Every kept sample gets one `verification` row: passed, failed, error, timeout or memory when it
ran; no_tests when it came without tests or its tests checked nothing (kept unless
`require_tests`); unsupported_language
for other languages (kept: no toolchain runs them here). A chunk's rows and drops are committed
together, so a killed run resumes after the last chunk. `run_file` does the same for any
dataset with code and tests fields, one output row per input row.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from .config import MAX_WORKERS, StrictModel, build
from .errors import ConfigError
from .execution.sandbox import STATUSES, Check, Job, Limits, Sandbox
from .executors import BatchJob, Executor, ExecutorOptions
from .languages import canonical
from .outputs import json_line, replacing_file
from .readers import missing_field, open_dataset
from .records import Drop
from .stage import FileMode, Progress, Report, Stage, StageStatus
from .store import RunStore, StageRecord

STAGE = "verify"
#: Samples run and committed together.
CHUNK = 64
#: Statuses of samples that were not run, beside the sandbox's own.
NOT_RUN = ("no_tests", "unsupported_language")
#: Statuses of samples whose tests ran and checked something (what the pass rate counts).
RAN = tuple(status for status in STATUSES if status not in NOT_RUN)
#: The drop reason of each status that removes a sample.
REASONS = {
    "failed": "failed_tests",
    "error": "execution_error",
    "timeout": "timeout",
    "memory": "memory_limit",
    "no_tests": "no_tests",
}
#: Programs and tests longer than this (characters together) are not run.
MAX_SOURCE = 1_000_000
#: Characters of a failing run's output kept beside its detail.
OUTPUT_KEPT = 1_000


class VerifySettings(StrictModel):
    """What decides a verdict; a run keeps one, so its verdicts are comparable."""

    timeout: float = Field(default=5.0, gt=0, le=600)
    memory_mb: int = Field(default=4096, ge=64)
    require_tests: bool = False
    sandbox: str = "bubblewrap"

    def limits(self) -> Limits:
        return Limits(timeout=self.timeout, memory=self.memory_mb << 20)


class VerifyOptions(ExecutorOptions):
    """The `verify` command's options; unset ones keep what RUN's verify was started with."""

    timeout: float | None = None
    """Seconds for one sample's program and tests together (5)."""
    memory_mb: int | None = None
    """Address space of each process of a sample, MiB (4096)."""
    require_tests: bool | None = None
    """Drop samples that came without tests (by default they are kept, as no_tests)."""
    workers: int = Field(default=0, ge=0, le=MAX_WORKERS)
    """Sandboxed workers; 0: one per core."""
    unsafe_no_sandbox: bool = False
    """Run generated code WITHOUT isolation (only where no sandbox can be had; never the
    default): it can then read and write your files and reach the network."""

    @model_validator(mode="after")
    def _in_range(self) -> VerifyOptions:
        """Bad values fail here, before any run is opened (InvalidOption names the key)."""
        self.settings()
        return self

    def settings(self, stored: dict[str, Any] | None = None) -> VerifySettings:
        """Given values over `stored` ones over the defaults (InvalidOption names a bad one)."""
        given = self.model_dump(
            exclude_none=True, exclude={"workers", "unsafe_no_sandbox", *self.EXECUTION}
        )
        given["sandbox"] = "none" if self.unsafe_no_sandbox else "bubblewrap"
        return build(VerifySettings, {**(stored or {}), **given})

    def sandboxes(self) -> Executor:
        """Its executor: locally, one sandbox with `workers` processes (one per core by
        default); on Ray, a sandbox per actor."""
        return self.executor_for(self.workers or os.cpu_count())


class FileOptions(FileMode):
    """`verify --input F --output F`: any dataset with code and tests fields."""

    output: Path
    """JSONL output for --input: each input row with verify_status and verify_detail."""
    code_field: str = "solution"
    """Field of --input holding the program."""
    tests_field: str = "tests"
    """Field of --input holding the tests (text, or a list of assert lines)."""


@dataclass(frozen=True)
class Verdict:
    """What verifying one program said."""

    status: str
    detail: str = ""
    output: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ToVerify:
    """A program with its tests (either may be missing)."""

    language: str | None
    code: str | None
    tests: str | None


def triage(item: ToVerify | Pending) -> Verdict | Job:
    """The job that verifies `item`, or the verdict when it cannot be run."""
    if item.language != "python":
        return Verdict("unsupported_language", f"not run: {item.language or 'unknown'} code")
    if not (item.tests or "").strip():
        return Verdict("no_tests", "the sample has no tests")
    if not (item.code or "").strip():
        return Verdict("error", "the sample has no code")
    if len(item.code or "") + len(item.tests or "") > MAX_SOURCE:
        return Verdict("error", f"program and tests are longer than {MAX_SOURCE:,} characters")
    return Job(item.code or "", [Check(item.tests or "")])


def verify_all(sandbox: Sandbox, items: Sequence[ToVerify | Pending]) -> list[Verdict]:
    """A verdict for each item, in order; the runnable ones run in parallel."""
    triaged = [triage(item) for item in items]
    results = sandbox.map(job for job in triaged if isinstance(job, Job))
    verdicts = []
    for job in triaged:
        if isinstance(job, Verdict):
            verdicts.append(job)
            continue
        result = next(results)
        outcome = result.outcomes[0]
        output = "" if outcome.status == "passed" else result.output[-OUTPUT_KEPT:]
        verdicts.append(Verdict(outcome.status, outcome.detail, output, result.seconds))
    return verdicts


@dataclass(frozen=True)
class Pending:
    """A kept sample verify has not seen yet."""

    seed_id: int
    language: str
    code: str | None
    tests: str | None


@dataclass(frozen=True)
class VerifyJob(BatchJob[Any, Verdict]):
    """Verification as a pure function over batches: each worker starts a sandbox once, with
    a process per core it is given, and runs every batch in it."""

    settings: VerifySettings
    parallel = True

    @contextmanager
    def open(self, cores: int) -> Iterator[Callable[[list[Any]], list[Verdict]]]:
        unsafe = self.settings.sandbox == "none"
        with Sandbox(self.settings.limits(), cores, unsafe=unsafe) as sandbox:
            yield lambda items: verify_all(sandbox, items)


@dataclass(frozen=True)
class VerificationRow:
    """A sample's verdict, as `dump RUN verification` writes it."""

    seed_id: int
    language: str
    status: str
    detail: str
    output: str
    seconds: float


def iter_verification(store: RunStore) -> Iterator[VerificationRow]:
    """Every verdict, in seed order."""
    return store.rows(
        "SELECT v.seed_id, s.language, v.status, v.detail, v.output, v.seconds "
        "FROM verification v JOIN seeds s ON s.id = v.seed_id ORDER BY v.seed_id",
        as_=VerificationRow,
    )


def has_tests(store: RunStore) -> bool:
    """Whether any sample came with tests (then verify is expected, and exports carry them)."""
    return store.value("SELECT 1 FROM samples WHERE tests IS NOT NULL LIMIT 1") is not None


def verdict_counts(store: RunStore) -> Counter[str]:
    """Samples per verdict."""
    return Counter(store.pairs("SELECT status, COUNT(*) FROM verification GROUP BY 1 ORDER BY 1"))


def pass_rate(counts: Counter[str]) -> float | None:
    """Share of the samples that ran whose tests passed (None when none ran)."""
    ran = sum(counts[status] for status in RAN)
    return counts["passed"] / ran if ran else None


@dataclass
class VerifyReport(Report):
    """Verdicts over the whole run, and the isolation they ran under."""

    counts: Counter[str]
    sandbox: str

    def line(self) -> str:
        detail = ", ".join(f"{k} {n:,}" for k, n in sorted(self.counts.items())) or "nothing"
        rate = pass_rate(self.counts)
        passed = f"; {rate:.1%} of those run passed" if rate is not None else ""
        return f"verify: {detail}{passed} (sandbox: {self.sandbox})"


class Verify(Stage[VerifyOptions, VerifyReport]):
    """Run each Python sample's solution against its tests in the sandbox; drop failures.

    Needs tests with the samples (generate with `--template oss-instruct-tests`). Options
    left out keep the values RUN's verify was started with.
    """

    name = STAGE
    Config = VerifyOptions
    example = "magicoder-data verify runs/demo --timeout 10 --require-tests"
    requires = ("clean",)
    filters = True
    funnel = "verified"
    progress_sql = "SELECT 1 FROM verification LIMIT 1"
    pending_sql = "x.seed_id NOT IN (SELECT seed_id FROM verification)"
    dumps = (("verification", iter_verification),)
    FileOptions = FileOptions

    def run_file(self, config: VerifyOptions, files: BaseModel) -> str:
        assert isinstance(files, FileOptions)
        return run_file(config, files)

    def run(
        self, store: RunStore, config: VerifyOptions, progress: Progress | None = None
    ) -> VerifyReport:
        self.check_ready(store)
        settings = config.settings(store.stage_config(STAGE))
        store.begin_stage(STAGE, settings.model_dump(), self.progress_sql)
        report = VerifyReport(verdict_counts(store), settings.sandbox)
        todo = self.todo(
            store, "x.seed_id, s.language, x.solution_code AS code, x.tests", CHUNK, Pending
        )
        with config.sandboxes() as executor:
            for chunk, verdicts in executor.map(VerifyJob(settings), todo, store):
                _record(store, chunk, verdicts, settings)
                report.counts = verdict_counts(store)
                if progress:
                    progress(report)
        store.finish_stage(STAGE, dict(report.counts))
        return report

    def expected(self, store: RunStore) -> bool:
        return has_tests(store)

    def status(self, store: RunStore, record: StageRecord) -> StageStatus:
        """Verdict counts as the summary, also while the stage runs, and as a line."""
        base = super().status(store, record)
        counts = verdict_counts(store)
        base.summary = dict(counts)
        base.note = VerifyReport(counts, (record.config or {}).get("sandbox", "")).line()
        return base


def _record(
    store: RunStore, chunk: list[Pending], verdicts: list[Verdict], settings: VerifySettings
) -> None:
    """Store one chunk's verdicts and the drops they make, together."""
    rows = [
        (p.seed_id, v.status, v.detail, v.output, v.seconds)
        for p, v in zip(chunk, verdicts, strict=True)
    ]
    drops = [
        Drop(p.language, REASONS[v.status], str(p.seed_id), None, v.detail[:1000])
        for p, v in zip(chunk, verdicts, strict=True)
        if v.status in REASONS and (v.status != "no_tests" or settings.require_tests)
    ]
    with store.transaction() as conn:
        conn.executemany("INSERT INTO verification VALUES (?, ?, ?, ?, ?)", rows)
        store.insert_drops(conn, STAGE, drops)


def run_file(config: VerifyOptions, files: FileOptions) -> str:
    """Verify every row of any dataset; OUTPUT gets each row with `verify_status` and
    `verify_detail`, and appears only when the whole input is done. Returns a summary line."""
    settings = config.settings()
    default = canonical(files.language)
    rows = enumerate(open_dataset(files.input))  # a missing input raises before any output
    counts: Counter[str] = Counter()
    with (
        replacing_file(
            files.output,
            inputs=[Path(files.input).expanduser()],
            overwrite=files.overwrite,
            what="--output",
        ) as out,
        config.sandboxes() as executor,
    ):
        batches: deque[list[tuple[int, dict[str, Any]]]] = deque()

        def items() -> Iterator[list[ToVerify]]:
            while batch := list(islice(rows, CHUNK)):
                batches.append(batch)
                yield [_item(files, default, number, row) for number, row in batch]

        for _, verdicts in executor.map(VerifyJob(settings), items()):
            for (_, row), verdict in zip(batches.popleft(), verdicts, strict=True):
                counts[verdict.status] += 1
                record = {**row, "verify_status": verdict.status, "verify_detail": verdict.detail}
                out.write(json_line(record))
    return f"{VerifyReport(counts, settings.sandbox).line()} -> {files.output}"


def _item(files: FileOptions, default: str, number: int, row: dict[str, Any]) -> ToVerify:
    """What one input row asks to verify; a dataset without the code field is an error."""
    if files.code_field not in row and number == 0:
        raise ConfigError(missing_field(files.input, 0, files.code_field, row, "--code-field"))
    language: str | None = default
    if files.language_field:
        given = row.get(files.language_field)
        try:
            language = canonical(given) if isinstance(given, str) and given else default
        except ConfigError:
            language = given if isinstance(given, str) else None
    return ToVerify(language, _text(row.get(files.code_field)), _text(row.get(files.tests_field)))


def _text(value: Any) -> str | None:
    """A field's text; a list of tests becomes lines, anything else that is not text None."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return value if isinstance(value, str) else None
