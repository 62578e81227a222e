"""Benchmark: requests/s of `generate` next to a bare aiohttp client, against the loopback server.

The fake OpenAI server (tests/openai_server.py) runs in its own process with a fixed latency,
so the ideal rate is in-flight / latency. For each setting this measures, in one run:

- bare: one aiohttp session with that many requests in flight (the transport's limit);
- generate: `magicoder-data generate` (one process, then --workers 2) on a run with enough seeds
  for ~10 s at the ideal rate: its own requests/s, client CPU time per request, peak RSS;
- memory growth: generate over twice as many seeds at the first setting.

Usage: python bench/bench_generate.py [--only 0|1|2] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pyarrow as pa
import pyarrow.parquet as pq
from peak import measure

ROOT = Path(__file__).resolve().parent.parent
ALL_SETTINGS = [(0.0, 256), (0.5, 512), (2.0, 2048)]  # (latency s, requests in flight)
SETTINGS = ALL_SETTINGS
if len(sys.argv) > 1 and sys.argv[1] == "--only":  # --only INDEX: one setting
    SETTINGS = [ALL_SETTINGS[int(sys.argv.pop(2))]]
    sys.argv.pop(1)


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def make_run(folder: Path, seeds: int) -> Path:
    """A run whose sample stage holds `seeds` distinct Python snippets."""
    corpus = folder / f"corpus-{seeds}"
    rows = [
        {"id": str(i), "content": f"def task_{i}(values):\n    return sorted(values)[{i % 7}]\n"}
        for i in range(seeds)
    ]
    (corpus / "python").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), corpus / "python" / "train.parquet")
    run = folder / f"run-{seeds}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "magicoder_data",
            "sample",
            str(run),
            "--source",
            str(corpus),
            "--mix",
            f"python={seeds}",
            "--min-lines",
            "2",
            "--max-lines",
            "2",
            "--plain",
        ],
        check=True,
        capture_output=True,
    )
    return run


async def bare_client(base_url: str, in_flight: int, requests: int) -> float:
    """Requests/s of a plain aiohttp client sending `requests` chat completions."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "x" * 1500}],
        "max_tokens": 2500,
    }
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    left = requests
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def worker(n: int) -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.post(
                    f"{base_url}/chat/completions", json=body | {"seed": n}, headers=headers
                ) as response:
                    json.loads(await response.read())

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(in_flight)))
        return requests / (time.perf_counter() - start)


def measured(run: Path, base_url: str, *args: str) -> tuple[float, float, float, str]:
    """Wall s, client CPU s, peak RSS MiB and stdout of `generate RUN ARGS` (gpt-4o-mini at
    `base_url`) in a child process."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "MAGICODER_DATA_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = ["generate", str(run), "--model", "gpt-4o-mini", "--base-url", base_url]
    wall, rss, stdout = measure(["magicoder_data", *command, "--plain", *args], env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, rss, stdout


def responses(run: Path) -> int:
    """Answers stored in RUN, as `status --json` counts them."""
    status = subprocess.run(
        [sys.executable, "-m", "magicoder_data", "status", str(run), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(status.stdout)["stages"]["generate"]["responses"])


def run_generate(
    run: Path, base_url: str, in_flight: int, workers: int = 1
) -> tuple[float, float, float, int, float]:
    """Wall s, client CPU s, peak RSS MiB, requests stored, and the stage's own requests/s."""
    settings = ("--concurrency", str(in_flight), "--workers", str(workers))
    wall, cpu, rss, stdout = measured(run, base_url, *settings)
    done = responses(run)
    own_rate = float(stdout.split(" done ", 1)[1].split("req/s")[0].replace(",", ""))
    return wall, cpu, rss, done, own_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="target length of each run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for latency, in_flight in SETTINGS:
            ideal = in_flight / latency if latency else None
            requests = int(args.seconds * (ideal or 2_000))
            server, base_url = start_server(latency)
            try:
                bare = asyncio.run(bare_client(base_url, in_flight, requests))
                results = []
                for workers in (1, 2):
                    run = make_run(Path(tmp) / f"speed-{latency}-{workers}", requests)
                    results.append((workers, *run_generate(run, base_url, in_flight, workers)))
            finally:
                server.terminate()
                server.wait()
            ideal_text = f"ideal {ideal:,.0f}/s" if ideal else "no latency"
            print(
                f"latency {latency:.1f}s, {in_flight:,} in flight ({ideal_text}), "
                f"{requests:,} requests:"
            )
            print(f"  bare aiohttp client            : {bare:8,.0f} req/s")
            for workers, wall, cpu, rss, done, rate in results:
                print(
                    f"  magicoder generate --workers {workers}: {rate:8,.0f} req/s "
                    f"({rate / bare:.0%} of bare), {1000 * cpu / max(done, 1):.2f} ms CPU/request, "
                    f"peak RSS {rss:,.0f} MiB (wall {wall:.1f}s with start-up)"
                )
        latency, in_flight = ALL_SETTINGS[1]
        for factor in (1, 2):
            requests = int(args.seconds * in_flight / latency) * factor
            server, base_url = start_server(latency)
            try:
                run = make_run(Path(tmp) / f"mem{factor}", requests)
                wall, cpu, rss, done, _ = run_generate(run, base_url, in_flight)
            finally:
                server.terminate()
                server.wait()
            print(f"memory: {done:,} seeds -> peak RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
