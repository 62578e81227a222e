"""A --base-url that is no OpenAI-compatible API: the run stops in seconds with one line."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_generate
from tests.openai_server import FakeOpenAI

KEY = "sk-test-SECRETKEY-0123456789abcdef"
BASE = 976  # request seed of sample i is BASE + i
SEEDS = 20

ANSWERS = {  # what the error line says came back: at most 80 characters of the body
    "html": '200 text/html "<!DOCTYPE html> <html> <head> <title>Welcome to nginx!</title> '
    '</head> <body> <h…"',
    "wrong_shape": '200 application/json "{"status": "ok"}"',
    "405": '405 text/html "<html> <head><title>405 Not Allowed</title></head> <body> '
    '<center><h1>405 Not Al…"',
}


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run_cli("sample", run, "--source", "bundled", "--mix", f"python={SEEDS}", check=True)
    return run


def samples(run: Path) -> dict[int, dict]:
    return {
        s["seed_id"]: s
        for s in map(json.loads, run_cli("dump", run, "samples", check=True).stdout.splitlines())
    }


def error_lines(stderr: str) -> list[str]:
    """stderr without the `warning:` lines logging may add (offline token counting)."""
    return [line for line in stderr.splitlines() if not line.startswith("warning:")]


@pytest.mark.parametrize(("fault", "concurrency"), [("html", 4), ("wrong_shape", 64), ("405", 1)])
def test_an_endpoint_that_is_no_openai_api_stops_the_run_in_seconds(
    seeded: Path, fault: str, concurrency: int
):
    with FakeOpenAI(default_fault=fault) as server:
        started = time.monotonic()
        result = run_generate(seeded, server.base_url, "--concurrency", str(concurrency), key=KEY)
        elapsed = time.monotonic() - started
        sent = len(server.requests)
    assert result.returncode == 1, result.stderr
    assert elapsed < 20  # it used to take ~85 s of retries per seed
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        f"error: {server.base_url} does not speak the OpenAI API: POST /chat/completions "
        f"answered {ANSWERS[fault]}; check --base-url"
    ]
    assert len(error_lines(result.stderr)[0]) < 250
    # The answers in flight when the third came back, not 8 tries of every seed.
    assert 3 <= sent <= min(concurrency, SEEDS) + 2
    assert KEY not in result.stderr + result.stdout
    assert samples(seeded) == {}  # nothing stored for the seeds it stopped on: all still pending


def test_answers_stored_before_are_kept_when_the_url_is_wrong(seeded: Path):
    with FakeOpenAI() as good:
        assert run_generate(seeded, good.base_url, "--limit", "5", key=KEY).returncode == 0
    before = samples(seeded)
    assert len(before) == 5 and all(s["status"] == "ok" for s in before.values())
    with FakeOpenAI(default_fault="html") as page:
        result = run_generate(seeded, page.base_url, "--concurrency", "4", key=KEY)
    assert result.returncode == 1
    assert error_lines(result.stderr)[-1].startswith(f"error: {page.base_url} does not speak")
    assert samples(seeded) == before
    status = json.loads(run_cli("status", seeded, "--json", check=True).stdout)
    assert status["stages"]["generate"]["responses"] == 5


def test_after_one_good_completion_odd_answers_are_retried_as_before(seeded: Path):
    """The endpoint has proved it speaks the API: more odd answers than would stop a new client
    are a flaky proxy's, retried per seed, and the run goes on."""
    faults = {
        BASE + 1: ["html"],
        BASE + 2: ["wrong_shape"],
        BASE + 3: ["malformed"],
        BASE + 4: ["405"],
    }
    with FakeOpenAI(faults=faults) as server:
        # Concurrency 1: seed 0's good completion comes back before any odd answer.
        result = run_generate(seeded, server.base_url, "--concurrency", "1", key=KEY)
        tried = Counter(r["seed"] for r in server.requests)
    assert result.returncode == 0, result.stderr
    assert "does not speak" not in result.stderr
    rows = samples(seeded)
    assert len(rows) == SEEDS
    assert [rows[i]["status"] for i in range(5)] == ["ok", "ok", "ok", "ok", "failed"]
    assert [rows[i]["attempts"] for i in range(5)] == [1, 2, 2, 2, 1]
    assert rows[4]["error_kind"] == "http_405"  # a 4xx is the seed's own failure, as before
    assert [tried[BASE + i] for i in range(5)] == [1, 2, 2, 2, 1]
    assert all(rows[i]["status"] == "ok" for i in range(5, SEEDS))
