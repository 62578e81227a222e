"""LintSeq over programs: one record per sampled edit sequence, each verified before it is kept.

`edit_sequences` is the pure core (a program in, records or a rejection reason out); the
`LintSeq` stage applies it to a run's kept samples, `run_file` to any instruction+program
dataset. Programs are spread over worker processes; none of them is ever executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from ..config import MAX_WORKERS, OPTIONS, build
from ..errors import ConfigError
from ..executors import BatchJob, Executor, ExecutorOptions
from ..languages import canonical
from ..outputs import json_line, replacing_file
from ..readers import missing_field, open_dataset
from ..records import Drop
from ..stage import FileMode, Progress, Report, Stage, kept_sql
from ..store import RunStore, dropped_by
from .diffs import SEPARATOR, apply, forward_states, insertion_diffs
from .linters import linter_for
from .sampler import BackwardSampler, Rejected, normalise

STAGE = "lintseq"


@pydantic_dataclass(frozen=True, config=OPTIONS)
class LintSeqConfig:
    samples: int = Field(default=5, ge=1)  # edit sequences per program (the paper's setting)
    seed: int = 0
    indent_bias: float | None = Field(default=1.0, ge=0)
    fidelity: bool = False  # pylint per state for Python, as the reference


def edit_sequences(
    program: str, language: str, config: LintSeqConfig, key: str
) -> list[dict[str, Any]]:
    """`config.samples` verified edit sequences of `program`; raises Rejected with the reason."""
    lines = normalise(program)
    if not any(line.strip() for line in lines):
        raise Rejected("empty_program")
    linter = linter_for(language, config.fidelity)
    sampler = BackwardSampler(lines, language, linter, config.indent_bias)
    records = []
    for index in range(config.samples):
        digest = hashlib.blake2b(f"{config.seed}\0{key}\0{index}".encode(), digest_size=8)
        deletions = sampler.sample(random.Random(int.from_bytes(digest.digest(), "big")))
        states = forward_states(lines, deletions)
        diffs = insertion_diffs(lines, states)
        _verify(lines, states, diffs, sampler)
        records.append({"sample": index, "edits": diffs, "text": SEPARATOR.join(diffs)})
    return records


def _verify(
    lines: list[str], states: list[list[int]], diffs: list[str], sampler: BackwardSampler
) -> None:
    """Rebuild the program from nothing; every state lint-clean; no diff deletes a line."""
    rebuilt: list[str] = []
    for diff in diffs:
        if any(line.startswith("-") for line in diff.split("\n") if not line.startswith("@@")):
            raise Rejected("verification: a diff deletes a line")
        rebuilt = apply(rebuilt, diff)
    if rebuilt != lines:
        raise Rejected("verification: the diffs do not rebuild the program")
    for state in states[1:]:
        text = "\n".join(lines[i] for i in state)
        if any(message not in sampler.known for _, message in sampler.linter.errors(text)):
            raise Rejected("verification: an intermediate state has lint errors")


class Lintable(Protocol):
    """What LintSeq needs of a program: its text, language, and the key its draws hash."""

    @property
    def key(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def solution_code(self) -> str: ...


#: Edit sequences of one program, or ([], the reason it was rejected).
Result = tuple[list[dict[str, Any]], str | None]
#: Programs handed to the executor at a time: memory holds one batch, and a run commits each.
BATCH = 256


@dataclass(frozen=True)
class LintJob(BatchJob[Any, Result]):
    """LintSeq as a pure function over batches of programs; none of them is ever executed."""

    config: LintSeqConfig

    @contextmanager
    def open(self, cores: int) -> Iterator[Callable[[list[Any]], list[Result]]]:
        yield self.lint

    def lint(self, programs: list[Lintable]) -> list[Result]:
        return [self.one(p) for p in programs]

    def one(self, program: Lintable) -> Result:
        if program.solution_code is None:  # an answer without a code block (clean skipped)
            return [], "no_code"
        try:
            return edit_sequences(
                program.solution_code, program.language, self.config, program.key
            ), None
        except Rejected as exc:
            return [], str(exc)
        except RecursionError:
            return [], "too_deep"


def _record_page(store: RunStore, page: list[Program], results: list[Result]) -> Counter[str]:
    """Store one page's edit sequences and rejections together."""
    outcome: Counter[str] = Counter()
    sequences, drops = [], []
    for program, (found, reason) in zip(page, results, strict=True):
        if reason:
            drops.append(Drop(program.language, reason, str(program.seed_id)))
            outcome[reason] += 1
        else:
            sequences += [
                (program.seed_id, r["sample"], json.dumps(r["edits"]), r["text"]) for r in found
            ]
            outcome["ok"] += 1
    with store.transaction() as conn:
        conn.executemany("INSERT INTO lintseq VALUES (?, ?, ?, ?)", sequences)
        store.insert_drops(conn, STAGE, drops)
    return outcome


@dataclass(frozen=True)
class Program:
    """A kept solution to turn into edit sequences."""

    seed_id: int
    language: str
    problem: str | None
    solution_code: str

    @property
    def key(self) -> str:
        return str(self.seed_id)


@dataclass(frozen=True)
class FileProgram:
    """A program of a file's row (`--input`): its key is the row's id, else its number."""

    key: str
    language: str
    solution_code: str


@dataclass(frozen=True)
class EditSequence:
    """One stored edit sequence of a kept sample (`dump RUN lintseq`)."""

    seed_id: int
    sample: int  # which of the program's sequences (0 .. samples-1)
    language: str
    instruction: str
    program: str
    edits: list[str]
    text: str


def iter_lintseq(store: RunStore) -> Iterator[EditSequence]:
    """Every edit sequence of a sample still kept, in seed order."""
    return store.rows(
        "SELECT l.seed_id, l.sample, s.language, x.problem AS instruction, "
        "x.solution_code AS program, l.edits, l.text FROM lintseq l "
        "JOIN samples x ON x.seed_id = l.seed_id JOIN seeds s ON s.id = l.seed_id "
        f"WHERE {kept_sql()} ORDER BY l.seed_id, l.sample",
        as_=_edit_sequence,
    )


def _edit_sequence(edits: str, **columns: Any) -> EditSequence:
    """A row with its edits decoded (stored as one JSON list)."""
    return EditSequence(edits=json.loads(edits), **columns)


class LintSeqOptions(ExecutorOptions):
    """The `lintseq` command's options for a run; unset ones keep what it was started with."""

    samples: int | None = None
    """Edit sequences per program (5)."""
    seed: int | None = None
    """Sampling seed (0)."""
    indent_bias: float | None = None
    """Preference for deleting deeper-indented lines first (1.0)."""
    fidelity: bool | None = None
    """pylint per state for Python (slow, as the reference)."""
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=MAX_WORKERS)
    """Processes (default: all cores)."""

    @model_validator(mode="after")
    def _in_range(self) -> LintSeqOptions:
        """Bad values fail here, before any run is opened (InvalidOption names the key)."""
        self.settings()
        return self

    def settings(self, stored: dict[str, Any] | None = None) -> LintSeqConfig:
        """The LintSeqConfig these options make: given values over `stored`, then defaults."""
        given = self.model_dump(exclude_none=True, exclude={"workers", *self.EXECUTION})
        return build(LintSeqConfig, {**(stored or {}), **given})


class FileOptions(FileMode):
    """`lintseq --input F --output F`: any instruction+program dataset."""

    output: Path
    """JSONL output for --input (rejected rows go beside it, to OUTPUT.rejected.jsonl)."""
    instruction_field: str = "instruction"
    """Instruction field of --input."""
    code_field: str = "response"
    """Program field of --input."""


@dataclass
class LintSeqReport(Report):
    """Programs turned into edits (`ok`) or rejected, per reason, by this call."""

    outcome: Counter[str]

    def line(self) -> str:
        detail = ", ".join(f"{k} {n:,}" for k, n in sorted(self.outcome.items()))
        return f"lintseq: {detail or 'nothing to do'}"


class LintSeq(Stage[LintSeqOptions, LintSeqReport]):
    """Turn kept programs into sequences of error-free insertion diffs (LintSeq)."""

    name = STAGE
    Config = LintSeqOptions
    FileOptions = FileOptions
    example = "magicoder-data lintseq --input data.jsonl --output edits.jsonl -s 5"
    requires = ("generate",)
    progress_sql = "SELECT 1 FROM lintseq LIMIT 1"
    dumps = (("lintseq", iter_lintseq),)
    pending_sql = (
        f"x.seed_id NOT IN {dropped_by(STAGE)} AND x.seed_id NOT IN (SELECT seed_id FROM lintseq)"
    )

    def run(
        self, store: RunStore, config: LintSeqOptions, progress: Progress | None = None
    ) -> LintSeqReport:
        self.check_ready(store)
        settings = config.settings(store.stage_config(STAGE))
        store.begin_stage(STAGE, asdict(settings), self.progress_sql)
        report = LintSeqReport(Counter())
        columns = "x.seed_id, s.language, x.problem, x.solution_code"
        todo = self.todo(store, columns, BATCH, Program)
        with config.executor_for(config.workers) as executor:
            for page, results in executor.map(LintJob(settings), todo, store):
                report.outcome += _record_page(store, page, results)
                if progress:
                    progress(report)
        total = Counter(store.stage_summary(STAGE) or {}) + report.outcome
        store.finish_stage(STAGE, dict(total))
        return report

    def run_file(self, config: LintSeqOptions, files: BaseModel) -> str:
        assert isinstance(files, FileOptions)
        fields = (files.instruction_field, files.code_field, files.language_field, files.language)
        outcome = run_file(
            files.input,
            files.output,
            *fields,
            config.settings(),
            config.executor_for(config.workers),
            overwrite=files.overwrite,
        )
        return (
            f"{LintSeqReport(outcome).line()} -> {files.output} "
            f"(rejected: {files.output.name}.rejected.jsonl)"
        )


@dataclass(frozen=True)
class _InputRows:
    """What `run_file` reads from each row: which fields hold what, and how rows are linted."""

    source: str
    instruction_field: str
    code_field: str
    language_field: str | None
    default_language: str  # canonical
    config: LintSeqConfig

    def language_of(self, number: int, row: dict[str, Any]) -> str | None:
        """The row's canonical language, None for one unknown; raises for a missing field."""
        for name in (self.code_field, self.instruction_field):
            if name not in row:
                raise ConfigError(missing_field(self.source, number, name, row))
        if not self.language_field:
            return self.default_language
        if self.language_field not in row:
            raise ConfigError(
                missing_field(
                    self.source, number, self.language_field, row, "--language-field", True
                )
                + "; leave --language-field out to use --language for every row"
            )
        given = row[self.language_field]
        if given is None or given == "":  # the row does not say: --language
            return self.default_language
        try:
            return canonical(given) if isinstance(given, str) else None
        except ConfigError:
            return None

    def task_of(self, number: int, row: dict[str, Any], language: str | None) -> FileProgram | str:
        """The row's program to lint, or the reason it is rejected without linting."""
        program = row[self.code_field]
        if program is not None and not isinstance(program, str):
            return "not_text"  # a number, list or object is no program: never its str()
        if language is None:
            return "unknown_language"
        return FileProgram(str(row.get("id", number)), language, program or "")

    def linted(
        self, rows: Iterator[tuple[int, dict[str, Any]]], executor: Executor
    ) -> Iterator[tuple[int, dict[str, Any], str | None, Result]]:
        """(number, row, language, result) of every row, linted a batch at a time, in order.

        Every row of a batch is checked before any is linted, so a missing field raises before
        the batch's records are written.
        """
        batches: deque[tuple[list[tuple[int, dict[str, Any], str | None]], list[Any]]] = deque()

        def programs() -> Iterator[list[Lintable]]:
            while batch := [(n, row, self.language_of(n, row)) for n, row in islice(rows, BATCH)]:
                tasks = [self.task_of(n, row, lang) for n, row, lang in batch]
                batches.append((batch, tasks))
                yield [task for task in tasks if not isinstance(task, str)]

        for _, found in executor.map(LintJob(self.config), programs()):
            batch, tasks = batches.popleft()
            linted = iter(found)
            results: list[Result] = [
                ([], task) if isinstance(task, str) else next(linted) for task in tasks
            ]
            for (number, row, language), result in zip(batch, results, strict=True):
                yield number, row, language, result

    def record(
        self,
        row: dict[str, Any],
        language: str | None,
        sequence: dict[str, Any],
        provenance: dict[str, Any],
    ) -> str:
        """One output line: the row's instruction and program with one of its edit sequences."""
        return json_line(
            {
                "instruction": row[self.instruction_field],
                "program": row[self.code_field],
                "language": language,
                **sequence,
                **provenance,
            }
        )


def run_file(
    source: str,
    output: Path,
    instruction_field: str,
    code_field: str,
    language_field: str | None,
    default_language: str,
    config: LintSeqConfig,
    executor: Executor,
    *,
    overwrite: bool = False,
) -> Counter[str]:
    """LintSeq over any instruction+program dataset; rejected rows go to OUTPUT.rejected.jsonl.

    Both files appear only when the whole input is done; existing ones are replaced only with
    `overwrite`, and never when one of them is the input.
    """
    default = canonical(default_language)
    rows = enumerate(open_dataset(source))  # a missing input raises before anything is written
    reader = _InputRows(source, instruction_field, code_field, language_field, default, config)
    outcome: Counter[str] = Counter()
    rejected_path = output.with_name(output.name + ".rejected.jsonl")
    inputs = [Path(source).expanduser()]
    with (
        replacing_file(output, inputs=inputs, overwrite=overwrite, what="--output") as out,
        replacing_file(
            rejected_path, inputs=inputs, overwrite=overwrite, what="rejected rows' file"
        ) as rejected,
        executor,
    ):
        for number, row, language, (found, reason) in reader.linted(rows, executor):
            provenance = {"row": number, "id": row.get("id", number), "source": source}
            if reason:
                outcome[reason] += 1
                rejected.write(json.dumps({**provenance, "reason": reason}) + "\n")
                continue
            outcome["ok"] += 1
            for record in found:
                out.write(reader.record(row, language, record, provenance))
    return outcome
