"""`generate --batch` end to end: the real openai SDK over HTTP to a loopback Batch API, the real
command in a subprocess, the run's real SQLite file."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.batch_server import FakeBatchAPI
from tests.conftest import generate_command, run_cli
from tests.openai_server import FakeOpenAI

KEY = "sk-test-SECRETKEY-0123456789abcdef"
BASE = 976  # request seed of sample i is BASE + i
SEEDS = 24


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A run with 24 seeds sampled from the bundled corpus."""
    run = tmp_path / "run"
    run_cli("sample", run, "--source", "bundled", "--mix", "python=16,rust=8", check=True)
    return run


def command(run: Path, base_url: str, *args: str) -> list[str]:
    """`generate RUN` at `base_url`, polling batches at least every 0.3 s."""
    return generate_command(run, base_url, "--poll-interval", "0.3", *args)


def batch(
    run: Path, api: FakeOpenAI, *args: str, key: str = KEY, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`generate RUN --batch ARGS` against `api`, to the end."""
    env = {**os.environ, "OPENAI_API_KEY": key}
    return subprocess.run(
        command(run, api.base_url, "--batch", *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def submitted(run: Path, api: FakeBatchAPI, env: dict[str, str]) -> subprocess.Popen:
    """`generate RUN --batch` started, once it has recorded its batch's id."""
    proc = subprocess.Popen(
        command(run, api.base_url, "--batch"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not db_rows(run, "SELECT 1 FROM batches WHERE batch_id IS NOT NULL"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def samples(run: Path) -> dict[int, dict]:
    return {
        s["seed_id"]: s
        for s in map(json.loads, run_cli("dump", run, "samples", check=True).stdout.splitlines())
    }


def asked(api: FakeBatchAPI) -> Counter[int]:
    """How often each seed id was put in a batch."""
    return Counter(
        int(custom_id.removeprefix("seed-"))
        for made in api.batches.values()
        for custom_id in made.custom_ids
    )


def db_rows(run: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run / "run.db", timeout=5) as conn:
        return conn.execute(sql).fetchall()


def test_batch_stores_what_online_stores_at_half_the_price(seeded: Path, tmp_path: Path):
    online = tmp_path / "online"
    run_cli("sample", online, "--source", "bundled", "--mix", "python=16,rust=8", check=True)
    with FakeOpenAI(api_key=KEY) as server:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        done = subprocess.run(command(online, server.base_url), env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
    with FakeBatchAPI(delay=0.3, api_key=KEY) as api:
        result = batch(seeded, api, "--batch-size", "10")
        assert result.returncode == 0, result.stderr
        assert [len(b.custom_ids) for b in api.batches.values()] == [10, 10, 4]
        assert api.files == {}  # every file deleted once its lines were stored
    by_batch, by_online = samples(seeded), samples(online)
    assert len(by_batch) == SEEDS
    for seed_id, sample in by_batch.items():
        other = by_online[seed_id]
        for column in ("status", "problem", "solution", "solution_code", "request_seed", "seed"):
            assert sample[column] == other[column], column
        assert sample["cost_usd"] == pytest.approx(other["cost_usd"] / 2)
    status = json.loads(run_cli("status", seeded, "--json", check=True).stdout)
    generate = status["stages"]["generate"]
    assert generate["status"] == "complete"
    assert [b["status"] for b in generate["batches"]] == ["completed"] * 3
    assert sum(b["cost_usd"] for b in generate["batches"]) == pytest.approx(
        generate["cost_usd"], abs=1e-6
    )
    shown = run_cli("status", seeded, check=True).stdout
    assert "batch_000002" in shown and "completed" in shown
    run_cli("clean", seeded, "--min-problem", "0", check=True)
    run_cli("export", seeded, "--out", tmp_path / "out", check=True)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "24 of 24 answers through the Batch API, at 50% of the listed price" in card


def test_lines_with_ids_never_sent_or_twice_are_not_stored_or_counted(seeded: Path):
    """ "seed-05" and "seed-1_0" once overwrote seeds 5 and 10; a duplicate line cost twice."""
    with FakeBatchAPI(delay=0.2, api_key=KEY, foreign=True) as api:
        result = batch(seeded, api, "--batch-size", "10")
        assert result.returncode == 0, result.stderr
    stored = samples(seeded)
    assert len(stored) == SEEDS
    assert not any("FOREIGN" in (sample["solution"] or "") for sample in stored.values())
    assert all(sample["attempts"] == 1 for sample in stored.values())
    status = json.loads(run_cli("status", seeded, "--json", check=True).stdout)
    generate = status["stages"]["generate"]
    spent = sum(sample["cost_usd"] for sample in stored.values())
    assert sum(b["cost_usd"] for b in generate["batches"]) == pytest.approx(spent, abs=1e-9)


def test_only_failed_and_expired_lines_go_out_again(seeded: Path):
    faults = {
        BASE + 1: ["500"],  # retried, then answered
        BASE + 2: ["400"],  # a request another try cannot fix: failed at once
        BASE + 3: ["500", "503", "500"],  # still failing after --max-attempts 3
        BASE + 4: ["truncate"],  # an answer: stored as truncated, not sent again
        BASE + 5: ["garbage"],  # an answer in no template shape: unparsable, not sent again
    }
    with FakeBatchAPI(delay=0.3, faults=faults, batch_faults={0: "expired"}) as api:
        result = batch(seeded, api, "--max-attempts", "3")
        assert result.returncode == 0, result.stderr
        first, *later = [b.custom_ids for b in api.batches.values()]
    assert len(first) == SEEDS
    expired = {int(c.removeprefix("seed-")) for c in first[SEEDS // 2 :]}
    again = Counter(int(c.removeprefix("seed-")) for ids in later for c in ids)
    # The expired half, and the lines that failed for a reason a retry can fix; nothing else.
    assert set(again) == expired | {1, 3}
    assert again[3] == 2 and all(again[s] == 1 for s in expired | {1})
    stored = samples(seeded)
    assert len(stored) == SEEDS
    assert stored[1]["status"] == "ok" and stored[1]["attempts"] == 2
    assert (stored[2]["status"], stored[2]["error_kind"], stored[2]["attempts"]) == (
        "failed",
        "http_400",
        1,
    )
    assert (stored[3]["status"], stored[3]["error_kind"], stored[3]["attempts"]) == (
        "failed",
        "http_500",
        3,
    )
    assert stored[4]["status"] == "truncated"
    assert stored[5]["status"] == "unparsable"
    # --retry-failed sends the failed and truncated ones once more, and only them.
    with FakeBatchAPI(delay=0.2) as api:
        result = batch(seeded, api, "--retry-failed")
        assert result.returncode == 0, result.stderr
        assert sorted(asked(api)) == [2, 3, 4]
    stored = samples(seeded)
    assert stored[3]["status"] == "ok" and stored[3]["attempts"] == 4


def test_batches_respect_the_request_and_size_limits(seeded: Path):
    with FakeBatchAPI(delay=0.2) as api:
        result = batch(seeded, api, "--batch-size", "5")
        assert result.returncode == 0, result.stderr
        assert [len(b.custom_ids) for b in api.batches.values()] == [5, 5, 5, 5, 4]
    fresh = seeded.parent / "fresh"
    run_cli("sample", fresh, "--source", "bundled", "--mix", "python=16,rust=8", check=True)
    with FakeBatchAPI(delay=0.2) as api:
        result = batch(fresh, api, "--batch-mb", "0.01")  # 10 kB input files
        assert result.returncode == 0, result.stderr
        sizes = db_rows(fresh, "SELECT requests FROM batches ORDER BY rowid")
    assert len(sizes) > 2 and sum(n for (n,) in sizes) == SEEDS
    assert all(n > 0 for (n,) in sizes)
    assert len(samples(fresh)) == SEEDS


def _kill_at(proc: subprocess.Popen, seconds: float) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_kill_9_at_random_points_then_resume_asks_nothing_twice(seeded: Path):
    chooser = random.Random(14)
    with FakeBatchAPI(delay=0.6, api_key=KEY) as api:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        cmd = command(seeded, api.base_url, "--batch", "--batch-size", "3")
        for _ in range(6):
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _kill_at(proc, chooser.uniform(0.3, 2.5))
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        counts = asked(api)
    assert sorted(counts) == list(range(SEEDS))
    assert set(counts.values()) == {1}  # no seed was ever in two batches
    assert len(samples(seeded)) == SEEDS
    assert db_rows(seeded, "SELECT COUNT(*) FROM batches WHERE collected_at IS NULL") == [(0,)]


def test_a_kill_between_creating_a_batch_and_recording_it_is_found_again(seeded: Path):
    with FakeBatchAPI(delay=0.3, create_latency=5, api_key=KEY) as api:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        cmd = command(seeded, api.base_url, "--batch")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not api.batches and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # the batch exists; its id never reached the run
        proc.wait()
        assert db_rows(seeded, "SELECT batch_id, input_file_id IS NOT NULL FROM batches") == [
            (None, 1)
        ]
        api.create_latency = 0
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert len(api.batches) == 1 and api.calls["batches.create"] == 1
        assert api.calls["batches.list"] >= 1
    assert len(samples(seeded)) == SEEDS


def test_no_wait_submits_and_returns_then_a_rerun_collects(seeded: Path):
    with FakeBatchAPI(delay=1.5, api_key=KEY) as api:
        result = batch(seeded, api, "--no-wait")
        assert result.returncode == 0, result.stderr
        assert "1 batches still open" in result.stderr and "cancel" in result.stderr
        assert samples(seeded) == {}
        shown = run_cli("status", seeded, check=True).stdout
        assert "batch_000000" in shown and "generate: running" in shown
        time.sleep(1.6)
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        # No --batch: a run with open batches collects them.
        collected = subprocess.run(
            command(seeded, api.base_url), env=env, capture_output=True, text=True, timeout=60
        )
        assert collected.returncode == 0, collected.stderr
        assert len(api.batches) == 1 and not api.requests  # no chat request either
    assert len(samples(seeded)) == SEEDS


def test_a_failed_batch_is_said_and_its_requests_stay_pending(seeded: Path):
    with FakeBatchAPI(delay=0.3, batch_faults={0: "failed"}) as api:
        result = batch(seeded, api)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()[-1:]
        assert line.startswith("error: batch batch_000000 failed (invalid_request: fake failure")
        assert "Traceback" not in result.stderr
        assert samples(seeded) == {}
        again = batch(seeded, api)
        assert again.returncode == 0, again.stderr
        assert len(api.batches) == 2
    assert len(samples(seeded)) == SEEDS


def test_cancel_stops_the_open_batches_and_keeps_what_they_answered(seeded: Path):
    with FakeBatchAPI(delay=30, api_key=KEY) as api:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        proc = submitted(seeded, api, env)
        time.sleep(3.5)  # past validating
        cancelled = run_cli("cancel", seeded, env=env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.strip() == "batch_000000: cancelled"
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "batches were cancelled" in err and f"ok {SEEDS // 2}" in out
        assert len(api.batches) == 1  # nothing resubmitted after a cancel
        kept = samples(seeded)
        assert len(kept) == SEEDS // 2
        assert run_cli("cancel", seeded, env=env).stdout.strip() == f"{seeded} has no open batches"
        api.delay = 0.2
        rest = batch(seeded, api)
        assert rest.returncode == 0, rest.stderr
        assert sorted(asked(api).values()) == [1] * (SEEDS // 2) + [2] * (SEEDS // 2)
    assert len(samples(seeded)) == SEEDS


def test_a_bad_key_stops_at_once_and_the_key_is_never_stored(seeded: Path):
    with FakeBatchAPI(api_key=KEY) as api:
        wrong = batch(seeded, api, key="sk-wrong-KEYVALUE-000000000000")
        assert wrong.returncode == 1
        assert (
            wrong.stderr.strip()
            .splitlines()[-1]
            .startswith("error: the provider refused the API key (401")
        )
        assert "KEYVALUE" not in wrong.stderr
        assert api.calls["files.create"] == 0 and api.calls["batches.create"] == 0
        assert db_rows(seeded, "SELECT COUNT(*) FROM batches") == [(0,)]
        right = batch(seeded, api)
        assert right.returncode == 0, right.stderr
    for path in seeded.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_an_endpoint_without_a_batch_api_is_one_line(seeded: Path):
    with FakeOpenAI() as server:
        result = batch(seeded, server)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "answered 404" in line and "Batch API" in line


def test_max_cost_counts_batches_submitted_but_not_collected(seeded: Path):
    price = ["--price", "gpt-4o-mini=1000,1000"]  # US$ per million tokens: each request counts
    with FakeBatchAPI(delay=5, api_key=KEY) as api:
        first = batch(seeded, api, "--no-wait", "--max-cost", "5", "--max-tokens", "1000", *price)
        assert first.returncode == 0, first.stderr
        assert "could exceed --max-cost" in first.stderr
        submitted = sum(asked(api).values())
        assert 0 < submitted < SEEDS
        second = batch(seeded, api, "--no-wait", "--max-cost", "5", "--max-tokens", "1000", *price)
        assert second.returncode == 0, second.stderr
        assert sum(asked(api).values()) == submitted  # the open batch still holds the budget


def test_polling_backs_off(seeded: Path):
    with FakeBatchAPI(delay=6) as api:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        cmd = command(seeded, api.base_url, "--batch")
        cmd[cmd.index("--poll-interval") + 1] = "60"
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        # Pauses of 1, 1.5, 2.25, 3.4 s: four or five checks in 6 s, not one a second.
        assert api.calls["batches.retrieve"] <= 6


def test_ctrl_c_stops_waiting_and_the_batches_run_on(seeded: Path):
    with FakeBatchAPI(delay=60, api_key=KEY) as api:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        proc = submitted(seeded, api, env)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert "keep running at the provider" in err
        assert f"resume with `magicoder-data generate {seeded}`" in err
        assert api.calls["batches.cancel"] == 0
        api.delay = 0.1  # the batch has ended by now
        result = subprocess.run(
            command(seeded, api.base_url), env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert len(api.batches) == 1
    assert len(samples(seeded)) == SEEDS


def test_a_run_config_that_does_not_wait_stops_after_generate(seeded: Path, tmp_path: Path):
    import yaml

    with FakeBatchAPI(delay=30, api_key=KEY) as api:
        config = tmp_path / "run.yaml"
        generate = {"model": "gpt-4o-mini", "base_url": api.base_url, "batch": True}
        config.write_text(
            yaml.safe_dump(
                {
                    "run": str(seeded),
                    "generate": {**generate, "wait": False, "plain": True},
                    "clean": {},
                }
            )
        )
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        result = run_cli("run", config, env=env)
        assert result.returncode == 0, result.stderr
        assert "1 batches still open" in result.stderr
        assert len(api.batches) == 1
    status = json.loads(run_cli("status", seeded, "--json", check=True).stdout)
    assert "clean" not in status["stages"]
