"""Benchmark: `sample`, `lintseq` and `verify` with the local executor and with Ray, 1 and 2
workers each, on this machine; and whether every executor stored the same rows.

Inputs: the starcoderdata-shaped parquet corpus of bench_sample.py (cached under bench/.data/)
for `sample`, and the mixed run of bench_verify.py (Python samples with tests, the other
languages' real code) for `lintseq` and `verify`. Ray runs on a local instance started with
`ray start --head --num-cpus N` for each N (its start is timed apart: a cluster is started once
and serves many stages). Each stage runs as the CLI, in a fresh process, on a fresh copy of
the input run.

Usage: python bench/bench_executors.py [--documents 100000] [--total 8000] [--samples 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_sample import HERE, generate
from bench_verify import make_mixed_run, python_sample

RAY = str(Path(sys.executable).with_name("ray"))
START = ("--include-dashboard", "false", "--disable-usage-stats")
QUERIES = {
    "sample": "SELECT * FROM seeds ORDER BY id",
    "lintseq": "SELECT * FROM lintseq ORDER BY 1, 2",
    "verify": "SELECT seed_id, status FROM verification ORDER BY 1",
}


def corpus(documents: int) -> Path:
    root = HERE / ".data" / f"starcoderdata-{documents}"
    if not root.exists():
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate(tmp, documents)
        tmp.rename(root)
    return root


def start_ray(cpus: int) -> tuple[str, float]:
    """A local Ray instance of `cpus` CPUs: its address, and how long it took to start."""
    subprocess.run([RAY, "stop", "--force"], capture_output=True, check=False)
    begin = time.perf_counter()
    out = subprocess.run(
        [RAY, "start", "--head", "--num-cpus", str(cpus), "--port", "0", *START],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    address = next(line.split("'")[1] for line in out.splitlines() if "--address=" in line)
    return address, time.perf_counter() - begin


def timed(args: list[str]) -> float:
    begin = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "magicoder_data", *args, "--plain"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - begin


def digest(run: Path, stage: str) -> str:
    with sqlite3.connect(run / "run.db") as conn:
        rows = conn.execute(QUERIES[stage]).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=8_000)
    parser.add_argument("--samples", type=int, default=2_000)
    args = parser.parse_args()
    os.environ["RAY_AUTH_MODE"] = "token"  # the token `ray start` writes to ~/.ray
    source = corpus(args.documents)
    digests: dict[str, set[str]] = {stage: set() for stage in QUERIES}
    print(f"cores: {os.cpu_count()}; corpus {args.documents:,} documents; run {args.samples:,}")
    with tempfile.TemporaryDirectory() as tmp:
        base = make_mixed_run(Path(tmp), args.samples, python_sample, "base")
        for executor, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            extra = ["--workers", str(workers), "--executor", executor]
            started = ""
            if executor == "ray":
                address, seconds = start_ray(workers)
                extra += ["--ray-address", address]
                started = f"  (ray start: {seconds:.1f}s)"
            label = f"{executor} x{workers}"
            run = Path(tmp) / f"sample-{executor}-{workers}"
            wall = timed(
                ["sample", str(run), "--source", str(source), "--total", str(args.total), *extra]
            )
            digests["sample"].add(digest(run, "sample"))
            line = f"{label:9} sample {args.documents / wall:9,.0f} docs/s ({wall:5.1f}s)"
            for stage, options in (("lintseq", ["-s", "5"]), ("verify", ["--timeout", "2"])):
                run = Path(tmp) / f"{stage}-{executor}-{workers}"
                shutil.copytree(base, run)
                wall = timed([stage, str(run), *options, *extra])
                digests[stage].add(digest(run, stage))
                line += f"  {stage} {args.samples / wall:6,.1f} samples/s ({wall:5.1f}s)"
            print(line + started, flush=True)
        subprocess.run([RAY, "stop", "--force"], capture_output=True, check=False)
    same = all(len(found) == 1 for found in digests.values())
    print(f"every executor stored the same seeds, edit sequences and verdicts: {same}")


if __name__ == "__main__":
    main()
