"""LintSeq parity with pylint: how many intermediate states have a pylint error (errors only)
that their original did not, on real programs.

Sequences are made with the fast in-process linter; every state of every program, and every
original, goes to one pylint process (`tests/parity.py`). Prints the states checked and the
new errors by pylint message, for each seed.

Usage: python bench/lintseq_parity.py [--programs 2000] [--sequences 2] [--seeds 16,99]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.parity import check, stdlib_programs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--seeds", default="16,99")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the standard library's own SyntaxWarnings
    programs = stdlib_programs(args.programs)
    for seed in map(int, args.seeds.split(",")):
        started = time.perf_counter()
        found = check(programs, args.sequences, seed)
        share = len(found.new_errors) / max(found.states, 1)
        print(
            f"seed {seed}: {found.programs} programs ({found.rejected} rejected), "
            f"{found.sequences} sequences, {found.states:,} states; {len(found.new_errors)} with a "
            f"new pylint error ({share:.2%}) in {time.perf_counter() - started:.0f}s"
        )
        for symbol, count in sorted(found.by_symbol.items(), key=lambda kv: -kv[1]):
            print(f"  {symbol}: {count}")


if __name__ == "__main__":
    main()
