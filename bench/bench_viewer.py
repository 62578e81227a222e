"""Benchmark: the viewer's pages on a 75K-sample run, and its memory against the run's size.

A run of `--seeds` seeds is made (answers from the loopback Batch API, then clean and
decontaminate with the text methods, so it has drops and flags), `magicoder-data serve` is
started on it, and each kind of page is requested `--requests` times with varied parameters
(deep pages, filters, full-text searches, random samples). It prints p50/p95/max per page and the
server's peak RSS; then the same on a run a tenth the size, so memory can be compared.

Usage: python bench/bench_viewer.py [--seeds 75000] [--requests 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_generate import make_run

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.batch_server import FakeBatchAPI  # noqa: E402

KEY = "sk-bench"


def cli(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "magicoder_data", *args],
        check=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )


def build(folder: Path, seeds: int) -> Path:
    """A run with `seeds` answers, cleaned and decontaminated."""
    run = make_run(folder, seeds)
    with FakeBatchAPI(delay=1.0, api_key=KEY) as api:
        cli(
            "generate", str(run), "--model", "gpt-4o-mini", "--base-url", api.base_url,
            "--batch", "--plain", "--poll-interval", "1",
            env={"OPENAI_API_KEY": KEY, "MAGICODER_DATA_OFFLINE": "1"},
        )  # fmt: skip
    cli("clean", str(run), "--min-problem", "0")
    cli(
        "decontaminate", str(run), "--benchmarks", "humaneval", "--methods",
        "substring,ngram,tfidf",
    )  # fmt: skip
    return run


def paths(seeds: int, kept: int, requests: int, chooser: random.Random) -> dict[str, list[str]]:
    """Each kind of page, with `requests` varied URLs (`kept`: pages of kept samples)."""
    pages = max(1, seeds // 50)
    words = ["function", "list", "sorted", "values", "task", "return", "number", "seed"]
    return {
        "/": ["/"] * requests,
        "/samples": [f"/samples?page={chooser.randint(1, pages)}" for _ in range(requests)],
        "/samples?status=kept": [
            f"/samples?status=kept&page={chooser.randint(1, kept)}" for _ in range(requests)
        ],
        "/samples?reason=": [
            f"/samples?reason={r}" for r in ["near_duplicate", "humaneval/ngram"] * requests
        ][:requests],
        "/samples?q=": [f"/samples?q={chooser.choice(words)}" for _ in range(requests)],
        "/samples/{id}": [f"/samples/{chooser.randrange(seeds)}" for _ in range(requests)],
        "/drops": ["/drops"] * requests,
        "/contamination": ["/contamination"] * requests,
        "/api/samples": [f"/api/samples?page={chooser.randint(1, pages)}" for _ in range(requests)],
    }


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM"))) / 1024


def measure(run: Path, requests: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "magicoder_data", "serve", str(run), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/runs").close()
                break
            except OSError:
                time.sleep(0.1)
        seeds = int(run.name.rsplit("-", 1)[1])
        urllib.request.urlopen(base + "/samples?q=warm").close()  # the search index's build
        with urllib.request.urlopen(base + "/api/samples?status=kept") as answer:
            kept = json.load(answer)["pages"]
        for name, urls in paths(seeds, kept, requests, random.Random(15)).items():
            times = []
            for url in urls:
                start = time.perf_counter()
                with urllib.request.urlopen(base + url) as answer:
                    answer.read()
                times.append(1000 * (time.perf_counter() - start))
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            print(
                f"  {name:22s} p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  "
                f"max {times[-1]:6.1f} ms"
            )
        print(f"  server peak RSS {rss_mib(server.pid):,.0f} MiB")
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=75_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seeds in (args.seeds, args.seeds // 10):
            started = time.perf_counter()
            run = build(Path(tmp) / str(seeds), seeds)
            print(f"run of {seeds:,} samples (made in {time.perf_counter() - started:.0f}s):")
            measure(run, args.requests)


if __name__ == "__main__":
    main()
