"""A two-node Ray cluster on one machine (`ray start --head` and a second `ray start
--address`): a stage keeps going when a worker is killed under it, resumes after its driver is
killed, and stores what the local executor stores."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import code_doc, doc, ray_token, run_cli, run_generate, table
from tests.openai_server import FakeOpenAI

RAY = str(Path(sys.executable).with_name("ray"))
FIRST = 976


def program(seed: int) -> str:
    """A program worth taking apart (a class and two functions), different for every seed."""
    n = seed - FIRST
    code = f"""class Bucket{n}:
    def __init__(self, limit={n}):
        self.limit = limit
        self.low = []
        self.high = []

    def add(self, value):
        if value < self.limit:
            self.low.append(value)
        else:
            self.high.append(value)
        return self


def split_{n}(values):
    bucket = Bucket{n}()
    for value in values:
        bucket.add(value)
    total = sum(bucket.high) - sum(bucket.low)
    return bucket.low, bucket.high, total


def report_{n}(values):
    low, high, total = split_{n}(values)
    lines = [f"low: {{len(low)}}", f"high: {{len(high)}}"]
    if total > 0:
        lines.append("more above")
    return "\\n".join(lines)
"""
    return (
        f"[Problem Description]\nSplit the values around {n} for seed {seed}.\n\n"
        f"[Solution]\n```python\n{code}```\n"
    )


def ray(*args: str) -> str:
    return subprocess.run(
        [RAY, *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head node and a worker node, one CPU each, asking for the tests' token."""
    with ray_token():
        yield from _cluster()


def _cluster() -> Iterator[str]:
    subprocess.run([RAY, "stop", "--force"], capture_output=True, check=False)
    head = ray(
        "start",
        "--head",
        "--num-cpus",
        "1",
        "--port",
        "0",
        "--disable-usage-stats",
        "--include-dashboard",
        "false",
    )
    address = next(line.split("'")[1] for line in head.splitlines() if "--address=" in line)
    try:
        ray("start", "--address", address, "--num-cpus", "1", "--disable-usage-stats")
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, check=False)


def stored(run: Path) -> list[tuple]:
    return table(run, "SELECT * FROM lintseq ORDER BY 1, 2")


def done(run: Path) -> int:
    return int(table(run, "SELECT COUNT(DISTINCT seed_id) FROM lintseq")[0][0])


def workers(title: bytes = b"ray::MapWorker") -> list[int]:
    """Processes of Ray's actors of one kind (their title names the class: Ray Data's map
    actors, or `Worker` for the actor pool that takes plain batches)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(title):
                found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.timeout(300)
def test_a_killed_worker_and_a_killed_driver_lose_nothing(tmp_path: Path, cluster: str):
    # The standard library's modules, copied out of any git checkout they may sit in.
    tree = tmp_path / "stdlib"
    skip = ("test", "tests", "idle_test", "site-packages", "lib-dynload", "config-*", "__py*")
    shutil.copytree(sysconfig.get_paths()["stdlib"], tree, ignore=shutil.ignore_patterns(*skip))
    base = tmp_path / "base"
    run_cli(
        "sample",
        base,
        "--source",
        tree,
        "--source-kind",
        "tree",
        "--mix",
        "python=600",
        check=True,
    )
    with FakeOpenAI(answer=program) as server:
        run_generate(base, server.base_url, check=True)
    local, remote = tmp_path / "local", tmp_path / "remote"
    shutil.copytree(base, local)
    shutil.copytree(base, remote)
    run_cli("lintseq", local, "-s", "3", "--plain", check=True)
    expected = stored(local)
    assert len({row[0] for row in expected}) == 600

    command = [
        sys.executable,
        "-m",
        "magicoder_data",
        "lintseq",
        str(remote),
        "-s",
        "3",
        "--executor",
        "ray",
        "--ray-address",
        cluster,
        "--plain",
    ]
    # A worker killed in its first batch: its batch is done again, the stage goes on.
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(workers()) == 2)
    os.kill(workers()[0], signal.SIGKILL)
    # The driver killed once some batches are stored: the next run does the rest.
    wait_for(lambda: done(remote) > 0)
    first.send_signal(signal.SIGKILL)
    _, errors = first.communicate(timeout=60)
    assert "Traceback" not in errors, errors
    assert 0 < done(remote) < 600
    finished = run_cli(*command[3:], check=True)
    assert "Traceback" not in finished.stderr
    assert stored(remote) == expected


@pytest.mark.timeout(300)
def test_a_worker_killed_while_reading_shards_costs_only_its_shard(
    tmp_path: Path, cluster: str, corpus
):
    rows = [doc(str(i), code_doc(i, lines=120)) for i in range(6000)]
    root = corpus({"python": rows}, shards=40)
    options = ["--source", str(root), "--mix", "python=400", "--plain"]
    run_cli("sample", tmp_path / "local", *options, check=True)
    remote = tmp_path / "remote"
    command = [sys.executable, "-m", "magicoder_data", "sample", str(remote), *options]
    command += ["--executor", "ray", "--ray-address", cluster]
    sampling = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: bool(workers(b"ray::Worker")))
    os.kill(workers(b"ray::Worker")[0], signal.SIGKILL)
    _, errors = sampling.communicate(timeout=240)
    assert sampling.returncode == 0 and "Traceback" not in errors, errors
    assert "a Ray worker failed" in errors
    query = "SELECT * FROM seeds ORDER BY id"
    assert table(remote, query) == table(tmp_path / "local", query)
    shards = "SELECT shard, documents FROM shards ORDER BY 1"
    assert table(remote, shards) == table(tmp_path / "local", shards)
    assert len(table(remote, shards)) == 40
