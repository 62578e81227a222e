"""Benchmark: `decontaminate` with all methods over generated-like samples.

Builds runs of 10K, 75K and 300K samples (problem text plus a solution made of real code from
the bundled corpus), a 1,000-item benchmark of the same shape, and times
`magicoder-data decontaminate RUN --benchmarks humaneval,SPEC` in a fresh process: wall time
and peak RSS. Target: under 60 s and 2 GB for 75K samples on 2 cores.

Usage: python bench/bench_decontam.py [--sizes 10000,75000,300000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from peak import measure

from magicoder_data import RunStore, bundled_corpus
from magicoder_data.records import Seed
from magicoder_data.seeds import checkpoint_shard, finish_sample

WORDS = [
    "given",
    "list",
    "string",
    "number",
    "return",
    "function",
    "value",
    "array",
    "integer",
    "element",
    "sort",
    "count",
    "sum",
    "maximum",
    "minimum",
    "index",
    "character",
    "word",
    "file",
    "line",
    "parse",
    "input",
    "output",
    "result",
    "table",
    "key",
    "map",
    "tree",
    "node",
    "graph",
    "path",
    "cost",
    "time",
    "order",
    "first",
    "last",
    "pair",
    "unique",
    "prefix",
    "suffix",
    "match",
    "binary",
    "window",
    "stack",
    "queue",
    "cache",
    "request",
    "response",
    "user",
    "account",
    "balance",
    "event",
    "matrix",
    "vector",
]


def code_lines(language: str) -> list[str]:
    folder = bundled_corpus() / language
    texts = [
        t for p in folder.glob("*.parquet") for t in pq.read_table(p).column("content").to_pylist()
    ]
    return [line for text in texts for line in text.split("\n")]


def problem_and_solution(rng: random.Random, lines: list[str]) -> tuple[str, str]:
    problem = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 200))) + "."
    start = rng.randrange(len(lines) - 60)
    code = "\n".join(lines[start : start + rng.randint(15, 60)])
    return problem, f"Here is a solution:\n```python\n{code}\n```\nIt runs in linear time."


def make_run(root: Path, size: int, lines: list[str]) -> Path:
    rng = random.Random(size)
    run = root / f"run-{size}"
    with RunStore.open(run) as store:
        store.begin_stage("sample", {"bench": size}, None)
        seeds = [
            Seed("python", i, str(i), "bench", None, None, None, 1, 1, f"x = {i}")
            for i in range(size)
        ]
        checkpoint_shard(store, "python", "bench", size, (seeds, [], []))
        finish_sample(
            store, ["python"], {}, {"python": {"requested": size, "found": size, "documents": size}}
        )
        store.begin_stage("generate", {"bench": size}, None)
        with store.transaction() as conn:
            for i in range(size):
                problem, solution = problem_and_solution(rng, lines)
                conn.execute(
                    "INSERT INTO samples (seed_id, status, template_sha256, problem, solution, "
                    "created_at) VALUES (?, 'ok', 'bench', ?, ?, '')",
                    (i, problem, solution),
                )
    return run


def make_benchmark(root: Path, lines: list[str]) -> Path:
    rng = random.Random(1)
    rows = []
    for i in range(1_000):
        problem, solution = problem_and_solution(rng, lines)
        rows.append({"id": f"B{i}", "prompt": problem, "solution": solution})
    (root / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = root / "bench.json"
    spec.write_text(
        json.dumps(
            {
                "name": "bench1k",
                "path": "bench.jsonl",
                "id": "id",
                "fields": {"prompt": "prompt", "solution": "solution"},
            }
        )
    )
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,75000,300000")
    args = parser.parse_args()
    lines = code_lines("python")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = make_benchmark(root, code_lines("rust"))  # other code, as a real benchmark's
        for size in map(int, args.sizes.split(",")):
            run = make_run(root, size, lines)
            wall, rss, stdout = measure(
                ["magicoder_data", "decontaminate", str(run), "--benchmarks", f"humaneval,{spec}"]
            )
            print(
                f"{size:>8,} samples vs 1,164 items: {wall:6.1f}s  "
                f"{size / wall:8,.0f} samples/s  peak RSS {rss:6,.0f} MiB  "
                f"({stdout.strip()})"
            )


if __name__ == "__main__":
    main()
