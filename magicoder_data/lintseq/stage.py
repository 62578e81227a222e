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
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError
from ..languages import canonical
from ..records import Drop
from ..store import RunStore
from .diffs import SEPARATOR, apply, forward_states, insertion_diffs
from .linters import linter_for
from .sampler import BackwardSampler, Rejected, normalise

STAGE = "lintseq"


@dataclass(frozen=True)
class LintSeqConfig:
    samples: int = 5  # edit sequences per program (the paper's setting)
    seed: int = 0
    indent_bias: float | None = 1.0
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
    """Rows of a local jsonl/parquet file or a Hub dataset's train split."""
    from ..decontam.benchmarks import read_rows

    path = Path(source).expanduser()
    if path.is_file():
        yield from read_rows(path)
        return
    if path.exists() or "/" not in source:
        raise SourceError(f"input {source} not found: give a jsonl/parquet file or a Hub name")
    import datasets

    try:
        rows = datasets.load_dataset(source, split="train", streaming=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SourceError(
            f"cannot load Hub dataset {source} ({reason}); pass a local file"
        ) from None
    yield from rows


def run_file(
    source: str,
    output: Path,
    instruction_field: str,
    code_field: str,
    language_field: str | None,
    default_language: str,
    config: LintSeqConfig,
    workers: int,
) -> Counter[str]:
    """LintSeq over any instruction+program dataset; rejected rows go to OUTPUT.rejected.jsonl."""
    canonical(default_language)
    rows = enumerate(read_dataset(source))

    def language_of(row: dict[str, Any]) -> str:
        if code_field not in row or instruction_field not in row:
            missing = code_field if code_field not in row else instruction_field
            raise ConfigError(
                f"{source} has no field {missing!r}; its fields: {', '.join(sorted(row))}"
            )
        given = row.get(language_field) if language_field else None
        return canonical(str(given) if given else default_language)

    outcome: Counter[str] = Counter()
    tmp = output.with_name(output.name + ".tmp")
    rejected_path = output.with_name(output.name + ".rejected.jsonl")
    with (
        tmp.open("w", encoding="utf-8") as out,
        rejected_path.open("w", encoding="utf-8") as rejected,
        _linting(workers) as lint,
    ):
        while batch := [(n, row, language_of(row)) for n, row in islice(rows, BATCH)]:
            tasks = [
                (str(row.get("id", n)), str(row[code_field] or ""), lang, config)
                for n, row, lang in batch
            ]
            for (number, row, language), (found, reason) in zip(batch, lint(tasks), strict=True):
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
    tmp.replace(output)
    return outcome
