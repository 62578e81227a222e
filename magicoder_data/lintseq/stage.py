"""LintSeq over programs: one record per sampled edit sequence, each verified before it is kept.

`edit_sequences` is the pure core (a program in, records or a rejection reason out); `run_stage`
applies it to a run's kept samples, `run_file` to any instruction+program dataset. Programs are
spread over worker processes; none of them is ever executed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from ..config import OPTIONS
from ..errors import ConfigError
from ..languages import canonical
from ..outputs import replacing_file
from ..records import Drop
from ..store import RunStore
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


def process(task: tuple[str, str, str, LintSeqConfig]) -> tuple[list[dict[str, Any]], str | None]:
    """Worker entry point: (records, None) or ([], reason) for one (key, program, language)."""
    key, program, language, config = task
    try:
        return edit_sequences(program, language, config, key), None
    except Rejected as exc:
        return [], str(exc)
    except RecursionError:
        return [], "too_deep"


Task = tuple[str, str, str, LintSeqConfig]
Result = tuple[list[dict[str, Any]], str | None]
#: Programs handed to the workers at a time: memory holds one batch, and a run commits each.
BATCH = 256


@contextmanager
def _linting(workers: int) -> Iterator[Callable[[list[Task]], list[Result]]]:
    """A function that runs `process` over a batch of tasks, in order, on `workers` processes."""
    if workers <= 1:
        yield lambda tasks: [process(task) for task in tasks]
        return
    with get_context("spawn").Pool(workers) as pool:
        yield lambda tasks: pool.map(process, tasks, chunksize=4)


def run_stage(store: RunStore, config: LintSeqConfig, workers: int) -> Counter[str]:
    """LintSeq over the solutions `clean` and `decontaminate` kept; returns outcomes."""
    store.begin_stage(STAGE, config.__dict__)
    outcome: Counter[str] = Counter()
    with _linting(workers) as lint:
        for page in store.programs_for_lintseq(BATCH):
            tasks = [(str(s["seed_id"]), s["solution_code"], s["language"], config) for s in page]
            records, drops = [], []
            for sample, (found, reason) in zip(page, lint(tasks), strict=True):
                if reason:
                    drops.append(Drop(sample["language"], reason, str(sample["seed_id"])))
                    outcome[reason] += 1
                else:
                    records += [
                        (sample["seed_id"], r["sample"], json.dumps(r["edits"]), r["text"])
                        for r in found
                    ]
                    outcome["ok"] += 1
            store.record_lintseq(records, drops)
    total = Counter(store.stage_summary(STAGE) or {}) + outcome
    store.finish_stage(STAGE, dict(total))
    return outcome


def read_dataset(source: str) -> Iterator[dict[str, Any]]:
    """Rows of a local jsonl/json/parquet file or a Hub dataset's train split, streamed.

    A missing file or an unreachable Hub dataset raises here, before anything is written.
    """
    from ..decontam.benchmarks import open_dataset

    return open_dataset(source)


def run_file(
    source: str,
    output: Path,
    instruction_field: str,
    code_field: str,
    language_field: str | None,
    default_language: str,
    config: LintSeqConfig,
    workers: int,
    *,
    overwrite: bool = False,
) -> Counter[str]:
    """LintSeq over any instruction+program dataset; rejected rows go to OUTPUT.rejected.jsonl.

    Both files appear only when the whole input is done; existing ones are replaced only with
    `overwrite`, and never when one of them is the input.
    """
    from ..decontam.benchmarks import missing_field

    default = canonical(default_language)
    rows = enumerate(read_dataset(source))

    def language_of(number: int, row: dict[str, Any]) -> str | None:
        """The row's canonical language, None for one unknown; raises for a missing field."""
        for name in (code_field, instruction_field):
            if name not in row:
                raise ConfigError(missing_field(source, number, name, row))
        if not language_field:
            return default
        if language_field not in row:
            raise ConfigError(
                missing_field(source, number, language_field, row, "--language-field", True)
                + "; leave --language-field out to use --language for every row"
            )
        given = row[language_field]
        if given is None or given == "":  # the row does not say: --language
            return default
        try:
            return canonical(given) if isinstance(given, str) else None
        except ConfigError:
            return None

    def task_of(number: int, row: dict[str, Any], language: str | None) -> Task | str:
        """The row's lint task, or the reason it is rejected without linting."""
        program = row[code_field]
        if program is not None and not isinstance(program, str):
            return "not_text"  # a number, list or object is no program: never its str()
        if language is None:
            return "unknown_language"
        return (str(row.get("id", number)), program or "", language, config)

    outcome: Counter[str] = Counter()
    rejected_path = output.with_name(output.name + ".rejected.jsonl")
    inputs = [Path(source).expanduser()]
    with (
        replacing_file(output, inputs=inputs, overwrite=overwrite, what="--output") as out,
        replacing_file(
            rejected_path, inputs=inputs, overwrite=overwrite, what="rejected rows' file"
        ) as rejected,
        _linting(workers) as lint,
    ):
        while batch := [(n, row, language_of(n, row)) for n, row in islice(rows, BATCH)]:
            tasks = [task_of(n, row, lang) for n, row, lang in batch]
            linted = iter(lint([task for task in tasks if not isinstance(task, str)]))
            results: list[Result] = [
                ([], task) if isinstance(task, str) else next(linted) for task in tasks
            ]
            for (number, row, language), (found, reason) in zip(batch, results, strict=True):
                provenance = {"row": number, "id": row.get("id", number), "source": source}
                if reason:
                    outcome[reason] += 1
                    rejected.write(json.dumps({**provenance, "reason": reason}) + "\n")
                    continue
                outcome["ok"] += 1
                for record in found:
                    out.write(
                        json.dumps(
                            {
                                "instruction": row[instruction_field],
                                "program": row[code_field],
                                "language": language,
                                **record,
                                **provenance,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
    return outcome
