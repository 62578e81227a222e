"""Benchmark: `export` of large runs to parquet (oss-instruct and sft configs).

Builds runs of 75K and 300K generated-like samples (as bench_decontam does) and times
`magicoder-data export RUN --out DIR` in a fresh process: wall time, peak RSS and the size of
what it wrote. Shards stream, so peak memory should not grow with the run.

Usage: python bench/bench_export.py [--sizes 75000,300000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_decontam import code_lines, make_run
from peak import measure

from magicoder_data import RunStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="75000,300000")
    args = parser.parse_args()
    lines = code_lines("python")
    with tempfile.TemporaryDirectory() as tmp:
        for size in map(int, args.sizes.split(",")):
            run = make_run(Path(tmp), size, lines)
            with RunStore.open(run) as store:
                store.finish_stage("generate", {})
            out = Path(tmp) / f"dataset-{size}"
            wall, rss, stdout = measure(["magicoder_data", "export", str(run), "--out", str(out)])
            written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
            print(
                f"{size:>8,} samples: {wall:6.1f}s  {size / wall:8,.0f} samples/s  "
                f"peak RSS {rss:6,.0f} MiB  wrote {written:,.0f} MiB  ({stdout.strip()})"
            )


if __name__ == "__main__":
    main()
