"""Benchmark: 75K requests through the Batch API backend, against the loopback Batch API.

The fake Files + Batch API (tests/batch_server.py) runs in this process; `magicoder-data
generate --batch` runs as a child, so its figures are the client's alone:

- submit (`--no-wait`): building, writing and uploading the input files and creating the
  batches (two: 50,000 + 25,000 requests): wall, CPU, peak RSS;
- collect (a second `generate` once the batches have ended): downloading the output files
  and storing 75K answers: wall, CPU, peak RSS (the files are streamed: the answers are never
  all in memory);
- waiting (a fresh run, `generate --batch` waiting on batches that take `--delay` seconds):
  the API calls made while waiting, with the default poll interval (pauses from 1 s growing
  to 60 s).

Usage: python bench/bench_batch.py [--seeds 75000] [--delay 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench_generate import make_run, measured, responses

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.batch_server import FakeBatchAPI  # noqa: E402

KEY = "sk-bench"  # what bench_generate.measured sends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=75_000)
    parser.add_argument("--delay", type=float, default=300.0, help="seconds a batch takes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = make_run(Path(tmp) / "submit", args.seeds)
        waiting = make_run(Path(tmp) / "wait", args.seeds)
        print(f"two runs of {args.seeds:,} seeds made in {time.perf_counter() - started:.0f}s")
        with FakeBatchAPI(delay=5.0, api_key=KEY) as api:
            wall, cpu, rss, _ = measured(run, api.base_url, "--batch", "--no-wait")
            sizes = [len(b.custom_ids) for b in api.batches.values()]
            uploaded = sum(len(f.content) for f in api.files.values()) / 1e6
            print(
                f"submit : {wall:6.1f}s wall, {cpu:6.1f}s CPU, peak RSS {rss:,.0f} MiB; "
                f"batches of {sizes} requests, {uploaded:,.0f} MB uploaded"
            )
            time.sleep(5.0)
            wall, cpu, rss, _ = measured(run, api.base_url)
            print(
                f"collect: {wall:6.1f}s wall, {cpu:6.1f}s CPU, peak RSS {rss:,.0f} MiB; "
                f"{responses(run):,} answers stored"
            )
        with FakeBatchAPI(delay=args.delay, api_key=KEY) as api:
            wall, cpu, rss, _ = measured(waiting, api.base_url, "--batch")
            calls = Counter(api.calls)
            print(
                f"waiting: {wall:6.1f}s wall for batches of {args.delay:.0f}s, {cpu:6.1f}s CPU, "
                f"peak RSS {rss:,.0f} MiB; {responses(waiting):,} answers stored"
            )
            print(
                f"  API calls: {sum(calls.values())} in all, "
                + ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
            )


if __name__ == "__main__":
    main()
