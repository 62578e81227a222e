"""Benchmark: LintSeq programs/s per core, next to a pylint-per-state baseline.

Programs are real Python: the top-level functions and classes of 15-80 lines in this Python's
standard library. The fast linters (compile and the compiler's symbol tables, in process) run
over all of them on one core; the baseline (pylint, errors only, on a temporary file per state,
as the reference does) runs over the first --baseline of them in the same command, and so do
the fast linters again for a like-for-like ratio. Both draw 5 sequences per program.

Usage: python bench/bench_lintseq.py [--programs 300] [--baseline 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from magicoder_data.lintseq.sampler import Rejected
from magicoder_data.lintseq.stage import LintSeqConfig, edit_sequences
from tests.parity import stdlib_programs


def run(programs: list[str], config: LintSeqConfig) -> tuple[float, int, int]:
    start = time.process_time()
    wall = time.perf_counter()
    done = rejected = 0
    for number, program in enumerate(programs):
        try:
            edit_sequences(program, "python", config, key=str(number))
            done += 1
        except Rejected:
            rejected += 1
    cpu = time.process_time() - start
    return max(cpu, time.perf_counter() - wall), done, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--baseline", type=int, default=20)
    args = parser.parse_args()
    programs = stdlib_programs(args.programs, with_imports=False)
    lines = sum(p.count("\n") + 1 for p in programs) / len(programs)
    print(f"{len(programs)} stdlib programs, {lines:.0f} lines on average, 5 sequences each")
    seconds, done, rejected = run(programs, LintSeqConfig())
    print(
        f"fast linters, all programs    : {len(programs) / seconds:8.2f} programs/s on one "
        f"core ({done} done, {rejected} rejected)"
    )
    subset = programs[: args.baseline]
    seconds, _, _ = run(subset, LintSeqConfig())
    fast = len(subset) / seconds
    print(f"fast linters, first {len(subset):<3} ones : {fast:8.2f} programs/s")
    seconds, done, rejected = run(subset, LintSeqConfig(fidelity=True))
    slow = len(subset) / seconds
    print(
        f"pylint per state, same ones   : {slow:8.2f} programs/s ({done} done, {rejected} rejected)"
    )
    print(f"speed-up on the same programs: {fast / slow:,.0f}x")


if __name__ == "__main__":
    main()
