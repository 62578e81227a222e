"""Benchmark: the fuzzy decontamination method on 75K samples against HumanEval + MBPP-sized items.

Items: HumanEval's 164, plus 974 MBPP-shaped items (MBPP's size; their solutions are real
standard-library functions, since MBPP itself loads from the Hub and benchmarks run offline).
Samples: generated-like texts (a problem line and a fenced Python solution), standard-library
functions of 5-60 lines, cycled with renamed identifiers to 75,000. They are scanned in chunks
of 2,000 as the decontaminate stage does, on every core (rapidfuzz's `workers=-1`).

Usage: python bench/bench_fuzzy.py [--samples 75000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from magicoder_data.decontam.benchmarks import BenchmarkItem, load, resolve
from magicoder_data.decontam.methods import Scanner, Settings
from magicoder_data.decontam.stage import CHUNK, sample_text
from tests.parity import stdlib_functions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=75_000)
    args = parser.parse_args()
    code = stdlib_functions(5, 60)
    items = [item for spec in resolve(["humaneval"]) for item in load(spec)]
    items += [
        BenchmarkItem("mbpp-shaped", str(n), {"question": "Write a function.", "solution": c})
        for n, c in enumerate(code[:974])
    ]
    pool = code[974:] or code
    texts = [
        sample_text(
            "Solve the task.", f"```python\n{pool[n % len(pool)].replace('(', f'_{n}(', 1)}\n```"
        )
        for n in range(args.samples)
    ]
    started = time.perf_counter()
    scanner = Scanner(items, Settings(methods=("fuzzy",)))
    built = time.perf_counter() - started
    flagged = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for at in range(0, len(texts), CHUNK):
        matches, _, _ = scanner.scan(texts[at : at + CHUNK])
        flagged += len({m.index for m in matches})
    seconds = time.perf_counter() - started
    print(
        f"{len(texts):,} samples against {len(items):,} items on {os.cpu_count()} cores: "
        f"{seconds:.1f}s ({len(texts) / seconds:,.0f} samples/s, {time.process_time() - cpu:.1f}s "
        f"CPU); index built in {built:.2f}s; {flagged:,} samples flagged"
    )


if __name__ == "__main__":
    main()
