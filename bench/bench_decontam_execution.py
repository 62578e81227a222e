"""Benchmark: `decontaminate` against HumanEval with the execution method, beside text only.

Builds a run in the Magicoder mix (as bench_verify does: 40 of every 75 samples Python) whose
Python samples are shaped like generated ones: a problem and one fenced solution of 1-3
top-level functions, each either a generated-style helper (bench_verify's templates, renamed)
or a real top-level function of the bundled Python corpus with its module's standard-library
imports. The execution method runs HumanEval's tests against every function whose arity fits
an item's entry point: most fail at once, some raise, a few loop until the time limit. One
Python sample in 500 is a HumanEval canonical solution renamed (real contamination; its body
is verbatim, so the text methods catch it too). Two of the helpers solve HumanEval tasks by
behaviour: the bracket checker is HumanEval/61 generalised, and running totals with
`accumulate` return a string's prefixes (HumanEval/14), so they dominate the execution drops;
the top items are printed to show it. Then `magicoder-data decontaminate RUN --benchmarks
humaneval` runs in a fresh process on two copies of the run: all methods, and text methods only
(substring, ngram, tfidf). Prints wall time, samples/s and the stage process's peak RSS (sandbox
workers are separate processes). Target: 75K samples in at most 20 minutes and 2 GB on 2 cores.

Usage: python bench/bench_decontam_execution.py [--samples 75000]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from bench_decontam import WORDS
from bench_verify import TEMPLATES, Sample, make_mixed_run, mix, problem_text
from peak import measure

from magicoder_data import RunStore, bundled_corpus
from magicoder_data.decontam.benchmarks import BenchmarkItem, load, resolve

ALL = "substring,ngram,execution,tfidf"
TEXT = "substring,ngram,tfidf"
#: Share of Python samples that are a renamed HumanEval solution.
COPIED = 0.002


def corpus_functions() -> list[str]:
    """Top-level functions of the bundled Python corpus, each after its module's stdlib imports
    (third-party ones are left out, as a self-contained answer would)."""
    folder = bundled_corpus() / "python"
    found = []
    for path in sorted(folder.glob("*.parquet")):
        for text in pq.read_table(path).column("content").to_pylist():
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                continue
            imports = [
                ast.get_source_segment(text, node) or ""
                for node in tree.body
                if isinstance(node, ast.Import | ast.ImportFrom) and _stdlib(node)
            ]
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    body = ast.get_source_segment(text, node) or ""
                    found.append("\n".join([*imports, "", body]).strip())
    return found


def _stdlib(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return not node.level and (node.module or "").split(".")[0] in sys.stdlib_module_names
    return all(alias.name.split(".")[0] in sys.stdlib_module_names for alias in node.names)


def template_functions() -> list[str]:
    """bench_verify's function templates (not the class), each renamed per use."""
    return [t.code for t in TEMPLATES if not t.code.startswith("class")]


class PythonSamples:
    """Draws generated-like Python samples; callable as make_mixed_run's `python`."""

    def __init__(self, items: list[BenchmarkItem]) -> None:
        self.corpus = corpus_functions()
        self.templates = template_functions()
        self.items = items

    def __call__(self, rng: random.Random) -> Sample:
        if rng.random() < COPIED:
            item = rng.choice(self.items)
            name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"
            code = (item.texts["prompt"] + item.texts["solution"]).replace(item.entry_point, name)
            topic = "a small utility"
        else:
            parts = []
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.5:
                    name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"
                    parts.append(rng.choice(self.templates).replace("{fn}", name))
                else:
                    parts.append(rng.choice(self.corpus))
            code = "\n\n\n".join(parts)
            topic = "a helper for " + " ".join(rng.choice(WORDS) for _ in range(3))
        solution = f"Here is a solution:\n```python\n{code.strip()}\n```\nIt runs in linear time."
        return Sample(problem_text(rng, topic), solution, "python", code, None)


@dataclass(frozen=True)
class Outcome:
    """What one decontaminate run took and found."""

    wall: float
    rss: float
    dropped: dict[str, int]
    #: Samples flagged by execution per HumanEval item, most first: which tasks collide.
    executed: dict[str, int]


def decontaminate(run: Path, methods: str) -> Outcome:
    """Run the stage in a fresh process, then read what it dropped and why."""
    command = ["magicoder_data", "decontaminate", str(run), "--benchmarks", "humaneval"]
    wall, rss, _ = measure([*command, "--methods", methods, "--plain"])
    with RunStore.open(run, readonly=True) as store:
        dropped = dict(sorted(store.drop_totals("decontaminate").items()))
        executed = store.pairs(
            "SELECT item_id, COUNT(DISTINCT seed_id) FROM contamination "
            "WHERE method = 'execution' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 6"
        )
    return Outcome(wall, rss, dropped, executed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=75_000)
    args = parser.parse_args()
    size = args.samples
    items = load(resolve(["humaneval"])[0])
    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        run = make_mixed_run(Path(tmp), size, PythonSamples(items), name="execution")
        text_run = shutil.copytree(run, Path(tmp) / f"text-{size}")
        built = time.perf_counter() - begin
        print(f"built {size:,} samples ({json.dumps(mix(size))}) in {built:.1f}s")
        for label, methods, target in (
            ("text+execution", ALL, run),
            ("text only", TEXT, text_run),
        ):
            done = decontaminate(target, methods)
            print(
                f"{label:>14}: {size:>8,} samples vs 164 items: {done.wall:7.1f}s  "
                f"{size / done.wall:7,.0f} samples/s  peak RSS {done.rss:6,.0f} MiB  "
                f"(75K extrapolated: {75_000 / size * done.wall / 60:.1f} min)"
            )
            print(f"{'':>16}dropped: {json.dumps(done.dropped)}")
            if done.executed:
                print(f"{'':>16}execution flags per item (top): {json.dumps(done.executed)}")


if __name__ == "__main__":
    main()
