"""Benchmark: sandboxed test runs per second, on real HumanEval programs and tests.

Every job is a HumanEval canonical solution (prompt + canonical_solution) with the item's own
`check(candidate)` tests, so its cost is that of a typical short generated program. Three
figures, each in a fresh sandbox so start-up is counted where it matters:

- throughput: --jobs jobs (cycling the 164 items) on one worker per core, start-up apart;
- the 164 canonical solutions verified with `verify_all` (what the verify stage runs), wall
  time including start-up, and how many passed (all should);
- latency of one job on one worker, median and p95, as the caller sees it.

Targets: at least 100 runs/s on 2 cores, the 164 in a few seconds.

Usage: python bench/bench_sandbox.py [--jobs 3000] [--latency 328]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from itertools import cycle, islice

from magicoder_data.decontam.benchmarks import BenchmarkItem, load, resolve
from magicoder_data.execution.sandbox import Check, Job, Sandbox
from magicoder_data.verify import ToVerify, verify_all


def humaneval() -> list[BenchmarkItem]:
    return load(resolve(["humaneval"])[0])


def job_of(item: BenchmarkItem) -> Job:
    """The canonical solution run against the item's own tests, as HumanEval's harness does."""
    program = item.texts["prompt"] + item.texts["solution"]
    return Job(program, [Check(item.tests, call=f"check({item.entry_point})")])


def throughput(items: list[BenchmarkItem], jobs: int) -> None:
    """Runs per second on every core, with the sandbox's start-up measured on its own."""
    work = [job_of(item) for item in islice(cycle(items), jobs)]
    start = time.perf_counter()
    with Sandbox() as sandbox:
        started = time.perf_counter() - start
        begin = time.perf_counter()
        statuses = Counter(r.outcomes[0].status for r in sandbox.map(work))
        wall = time.perf_counter() - begin
        workers = sandbox.size
    print(
        f"throughput: {jobs:,} HumanEval jobs on {workers} workers: {wall:6.2f}s  "
        f"{jobs / wall:7.1f} runs/s  (start-up {started:.2f}s; {dict(statuses)})"
    )


def canonical(items: list[BenchmarkItem]) -> None:
    """The 164 canonical solutions through verify_all, start-up included; all should pass."""
    batch = [
        ToVerify("python", item.texts["prompt"] + item.texts["solution"], _tests(item))
        for item in items
    ]
    start = time.perf_counter()
    with Sandbox() as sandbox:
        verdicts = verify_all(sandbox, batch)
    wall = time.perf_counter() - start
    passed = sum(v.status == "passed" for v in verdicts)
    print(
        f"canonical: {len(items)} HumanEval solutions verified in {wall:5.2f}s "
        f"(start-up included): {passed}/{len(items)} passed"
    )
    for item, verdict in zip(items, verdicts, strict=True):
        if verdict.status != "passed":
            print(f"  {item.item_id}: {verdict.status} {verdict.detail[:200]}")


def _tests(item: BenchmarkItem) -> str:
    """HumanEval's tests as a generated sample's tests are: code that checks by itself."""
    return f"{item.tests}\n\ncheck({item.entry_point})\n"


def latency(items: list[BenchmarkItem], jobs: int) -> None:
    """One worker, one job at a time: what a single call costs the caller."""
    work = [job_of(item) for item in islice(cycle(items), jobs)]
    seconds, inside = [], []
    with Sandbox(workers=1) as sandbox:
        for job in work:
            begin = time.perf_counter()
            result = sandbox.run(job.program, job.checks)
            seconds.append(time.perf_counter() - begin)
            inside.append(result.seconds)
    print(
        f"latency (1 worker, {jobs} jobs): median {_ms(statistics.median(seconds))}  "
        f"p95 {_ms(_p95(seconds))}  max {_ms(max(seconds))}  "
        f"(inside the worker: median {_ms(statistics.median(inside))}, p95 {_ms(_p95(inside))})"
    )


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3_000)
    parser.add_argument("--latency", type=int, default=328, help="jobs timed on one worker")
    args = parser.parse_args()
    items = humaneval()
    print(f"{os.cpu_count()} cores; {len(items)} HumanEval items")
    throughput(items, args.jobs)
    canonical(items)
    latency(items, args.latency)


if __name__ == "__main__":
    main()
