"""The generation stage end to end: the real openai SDK over HTTP to a loopback fake server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest

from magicoder_data import generate
from magicoder_data.backends import BACKENDS, LocalBackend, OnlineBackend, choose_backend
from magicoder_data.backends.local import LOCAL_MODEL
from magicoder_data.config import build
from magicoder_data.errors import ConfigError
from magicoder_data.generate import Generate, GenerateOptions
from magicoder_data.store import RunStore
from tests.conftest import run_cli, run_generate
from tests.openai_server import FakeOpenAI

KEY = "sk-test-SECRETKEY-0123456789abcdef"
BASE = 976  # request seed of sample i is BASE + i


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A run with 24 seeds sampled from the bundled corpus."""
    run = tmp_path / "run"
    run_cli("sample", run, "--source", "bundled", "--mix", "python=16,rust=8", check=True)
    return run


def gen(run: Path, server: FakeOpenAI, *args: str, key: str = KEY) -> subprocess.CompletedProcess:
    return run_generate(run, server.base_url, "--timeout", "2", *args, key=key)


def samples(run: Path) -> dict[int, dict]:
    return {
        s["seed_id"]: s
        for s in map(json.loads, run_cli("dump", run, "samples", check=True).stdout.splitlines())
    }


def test_faults_are_retried_or_recorded(seeded: Path):
    faults = {
        BASE + 0: ["429", "500", "503"],
        BASE + 1: ["429-no-retry-after"],
        BASE + 2: ["timeout"],
        BASE + 3: ["drop", "malformed"],
        BASE + 4: ["truncate"],
        BASE + 5: ["garbage"],
        BASE + 6: ["empty"],
        BASE + 7: ["400"],
    }
    with FakeOpenAI(latency=0.01, faults=faults) as server:
        result = gen(seeded, server, "--concurrency", "8")
        assert result.returncode == 0, result.stderr
        tried = Counter(r["seed"] for r in server.requests)
    rows = samples(seeded)
    assert len(rows) == 24
    assert [rows[i]["status"] for i in range(8)] == [
        "ok",
        "ok",
        "ok",
        "ok",
        "truncated",
        "unparsable",
        "unparsable",
        "failed",
    ]
    assert [rows[i]["attempts"] for i in range(4)] == [4, 2, 2, 3]
    assert tried[BASE + 0] == 4 and tried[BASE + 7] == 1  # 400 is not retried
    assert rows[7]["error_kind"] == "http_400"
    assert all(rows[i]["status"] == "ok" for i in range(8, 24))
    ok = rows[10]
    assert ok["problem"] == f"Write a function for seed {BASE + 10}."
    assert ok["solution_lang"] == "python" and "def solve_" in ok["solution_code"]
    assert ok["system_fingerprint"] == "fp_fake" and ok["request_seed"] == BASE + 10
    assert ok["prompt_tokens"] > 0 and ok["cost_usd"] > 0
    assert json.loads(ok["response"])["choices"][0]["finish_reason"] == "stop"
    assert (
        rows[5]["response"]
        and "turtles" in json.loads(rows[5]["response"])["choices"][0]["message"]["content"]
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_rerun_sends_nothing_stored_and_retry_failed_resends_only_failures(
    seeded: Path, workers: str
):
    with FakeOpenAI(latency=0.0, faults={BASE + 2: ["400"], BASE + 3: ["truncate"]}) as server:
        assert gen(seeded, server, "--limit", "10", "--workers", workers).returncode == 0
        assert len(samples(seeded)) == 10
        assert gen(seeded, server, "--workers", workers).returncode == 0
        assert gen(seeded, server).returncode == 0  # finished: nothing left to send
        first = Counter(r["seed"] for r in server.requests)
        assert set(first.values()) == {1} and len(first) == 24
        assert gen(seeded, server, "--retry-failed").returncode == 0
        again = Counter(r["seed"] for r in server.requests) - first
    assert set(again) == {BASE + 2, BASE + 3}
    rows = samples(seeded)
    assert rows[2]["status"] == "ok" and rows[3]["status"] == "ok"
    assert rows[3]["attempts"] == 2  # the truncated try was paid for: it still counts
    assert rows[3]["cost_usd"] > rows[5]["cost_usd"]
    status = json.loads(run_cli("status", seeded, "--json", check=True).stdout)
    assert status["stages"]["generate"]["status"] == "complete"
    assert status["stages"]["generate"]["responses"] == 24


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_key_stops_at_once_without_leaking_it(seeded: Path, workers: str):
    with FakeOpenAI(api_key="sk-the-right-one-123456") as server:
        result = gen(seeded, server, "--concurrency", "4", "--workers", workers)
        sent = len(server.requests)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: the provider refused the API key")
    )
    assert sent <= 4  # the requests already in flight, not 24 failures
    assert KEY not in result.stderr + result.stdout
    assert samples(seeded) == {}


def test_unknown_model_stops_at_once(seeded: Path):
    with FakeOpenAI(default_fault="404") as server:
        result = gen(seeded, server, "--concurrency", "2")
    assert result.returncode == 1
    assert "gpt-4o-mini" in result.stderr and "not found" in result.stderr


def test_the_key_is_never_stored(seeded: Path):
    with FakeOpenAI(faults={BASE: ["500"]}) as server:
        assert gen(seeded, server).returncode == 0
    for path in seeded.iterdir():
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in run_cli("dump", seeded, "samples", check=True).stdout


def test_max_cost_stops_before_the_budget(seeded: Path):
    with FakeOpenAI() as server:
        result = gen(seeded, server, "--max-cost", "0.0008", "--max-tokens", "100")
    assert result.returncode == 0
    assert "stopped" in result.stderr
    spent = json.loads(run_cli("status", seeded, "--json", check=True).stdout)
    generated = spent["stages"]["generate"]
    assert 0 < generated["responses"] < 24
    assert generated["cost_usd"] <= 0.0008


def test_missing_key_and_model_are_one_line_errors(seeded: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    result = run_cli("generate", seeded, "--model", "gpt-4o-mini", env=env)
    assert result.returncode == 1 and "set OPENAI_API_KEY or pass --api-key-env" in result.stderr
    result = run_cli("generate", seeded, env={**env, "OPENAI_API_KEY": KEY})
    assert result.returncode == 1 and "pass --model" in result.stderr
    result = run_cli(
        "generate", seeded, "--model", "m", "--template", "nope", env={**env, "OPENAI_API_KEY": KEY}
    )
    assert result.returncode == 1 and "unknown prompt template 'nope'" in result.stderr


def _stored(db: Path) -> set[int]:
    with sqlite3.connect(db, timeout=5) as conn:
        return {row[0] for row in conn.execute("SELECT request_seed FROM samples")}


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_mid_run_then_resume_repeats_no_stored_request(seeded: Path, workers: int):
    with FakeOpenAI(latency=0.3) as server:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        cmd = [
            sys.executable,
            "-m",
            "magicoder_data",
            "generate",
            str(seeded),
            "--model",
            "gpt-4o-mini",
            "--base-url",
            server.base_url,
            "--plain",
            "--concurrency",
            "4",
            "--workers",
            str(workers),
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_stored(seeded / "run.db")) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)  # worker processes notice the parent is gone and stop
        before = _stored(seeded / "run.db")
        seen_before = len(server.requests)
        assert 6 <= len(before) < 24
        time.sleep(1.0)
        assert _stored(seeded / "run.db") == before  # nothing runs on after the kill
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        resent = [r["seed"] for r in server.requests[seen_before:]]
    assert not set(resent) & before
    assert len(_stored(seeded / "run.db")) == 24


def test_an_unreachable_server_is_one_line_at_once(seeded: Path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    result = run_cli(
        "generate",
        seeded,
        "--model",
        "gpt-4o-mini",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: cannot reach http://127.0.0.1:{port}")
    assert samples(seeded) == {}


def test_generate_runs_from_python_with_typed_rows(seeded: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(faults={BASE + 1: ["400"]}) as server:
        options = build(GenerateOptions, {"model": "gpt-4o-mini", "base_url": server.base_url})
        seen: list[str] = []
        with RunStore.open(seeded, create=False) as store:
            stats = Generate().run(store, options, lambda report: seen.append(report.line()))
            rows = list(generate.iter_samples(store))
            spent = generate.usage(store)
            assert store.stage_status("generate") == "complete"
    assert stats.done == 24 and stats.statuses == Counter(ok=23, failed=1) and len(seen) == 24
    assert stats.line().startswith("24/24 done")
    assert [row.seed_id for row in rows] == list(range(24))
    assert rows[1].error_kind == "http_400" and rows[2].request_seed == BASE + 2
    assert spent.responses == 24 and spent.failures == {"http_400": 1}
    assert sum(spent.parsed.values()) == 23 and spent.cost_usd == pytest.approx(stats.spent)


def test_the_backend_choices_are_the_registered_backends():
    choices = get_args(GenerateOptions.model_fields["backend"].annotation)
    assert set(choices) == {"auto", *BACKENDS}


def test_auto_is_the_local_model_only_when_nothing_points_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    options = build(GenerateOptions, {})
    assert isinstance(choose_backend(options, None), LocalBackend)
    assert isinstance(choose_backend(options, {"model": LOCAL_MODEL}), LocalBackend)
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY or pass --api-key-env"):
        choose_backend(options, {"model": "gpt-4o-mini"})  # a run started elsewhere
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # read as `generate` does
    online = choose_backend(options, None)
    assert isinstance(online, OnlineBackend) and online.settings.base_url.endswith(":9/v1")
    assert online.api_key == "no-key"
