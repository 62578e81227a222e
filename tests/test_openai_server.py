"""The fake OpenAI server itself: SDK compatibility, fault scripts, auth, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import openai
import pytest

from tests.openai_server import RATE_LIMIT_HEADERS, FakeOpenAI, expected_content

REPO = Path(__file__).resolve().parent.parent


def chat_body(seed: int | None, model: str = "gpt-test", text: str = "x" * 40) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": text}]}
    if seed is not None:
        body["seed"] = seed
    return body


async def post(
    session: aiohttp.ClientSession, base_url: str, body: object, **kwargs: object
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(f"{base_url}/chat/completions", json=body, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, dict(resp.headers), await resp.read()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(faults={}, api_key="sk-test-key-0123456789abcd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("aiohttp_transport", [False, True], ids=["httpx", "aiohttp"])
def test_sdk_gets_ok_completion(fake: FakeOpenAI, aiohttp_transport: bool) -> None:
    async def go() -> tuple[object, dict[str, str]]:
        http_client = openai.DefaultAioHttpClient() if aiohttp_transport else None
        async with openai.AsyncOpenAI(
            base_url=fake.base_url,
            api_key="sk-test-key-0123456789abcd",
            max_retries=0,
            http_client=http_client,
        ) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-test",
                messages=[
                    {"role": "system", "content": "s" * 8},
                    {"role": "user", "content": "u" * 32},
                ],
                seed=7,
            )
            return raw.parse(), dict(raw.headers)

    completion, headers = asyncio.run(go())
    assert completion.model == "gpt-test"  # type: ignore[attr-defined]
    assert completion.system_fingerprint == "fp_fake"  # type: ignore[attr-defined]
    choice = completion.choices[0]  # type: ignore[attr-defined]
    content = expected_content(7)
    assert choice.message.role == "assistant"
    assert choice.message.content == content
    assert "def solve_7():" in content
    assert choice.finish_reason == "stop"
    usage = completion.usage  # type: ignore[attr-defined]
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, len(content) // 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    for name, value in RATE_LIMIT_HEADERS.items():
        assert headers[name] == value
    assert fake.seen_seeds() == [7]
    (req,) = fake.requests
    assert req["seed"] == 7 and req["fault"] == "ok" and req["authorization_present"]
    assert req["body"]["model"] == "gpt-test"


def test_fault_script_applies_in_order_then_ok() -> None:
    script = ["429", "500", "429-no-retry-after", "503", "timeout"]
    with FakeOpenAI(faults={5: script[:-1]}, default_fault="ok", latency=0.001) as fake:

        async def go() -> list[tuple[int, dict[str, str], bytes]]:
            async with aiohttp.ClientSession() as s:
                out = [await post(s, fake.base_url, chat_body(5)) for _ in range(6)]
                out.append(await post(s, fake.base_url, chat_body(6)))  # not scripted
                fake.set_fault(6, ["404", "400", "403", "401"])
                out += [await post(s, fake.base_url, chat_body(6)) for _ in range(5)]
                return out

        results = asyncio.run(go())

    statuses = [status for status, _, _ in results]
    assert statuses == [429, 500, 429, 503, 200, 200, 200, 404, 400, 403, 401, 200]
    assert results[0][1]["Retry-After"] == "0.2"
    assert "Retry-After" not in results[2][1]
    err = json.loads(results[0][2])["error"]
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
    assert json.loads(results[1][2])["error"]["type"] == "server_error"
    not_found = json.loads(results[7][2])["error"]
    assert not_found["code"] == "model_not_found" and "gpt-test" in not_found["message"]
    assert "x-ratelimit-limit-requests" not in results[0][1]
    assert results[4][1]["x-ratelimit-remaining-tokens"] == "1999000"
    assert [r["fault"] for r in fake.requests] == [
        *script[:-1],
        "ok",
        "ok",
        "ok",
        "404",
        "400",
        "403",
        "401",
        "ok",
    ]
    assert fake.seen_seeds() == [5, 5, 6, 6]


def test_drop_closes_connection() -> None:
    with FakeOpenAI(default_fault="drop") as fake:

        async def go() -> None:
            async with aiohttp.ClientSession() as s:
                await post(s, fake.base_url, chat_body(1))

        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            asyncio.run(go())
        assert fake.requests[0]["fault"] == "drop"
        assert fake.seen_seeds() == []


def test_malformed_and_truncate_empty_garbage() -> None:
    faults = {1: ["malformed"], 2: ["truncate"], 3: ["empty"], 4: ["garbage"]}
    with FakeOpenAI(faults=faults) as fake:

        async def go() -> list[tuple[int, dict[str, str], bytes]]:
            async with aiohttp.ClientSession() as s:
                return [await post(s, fake.base_url, chat_body(seed)) for seed in (1, 2, 3, 4)]

        (malformed, truncated, empty, garbage) = asyncio.run(go())

    assert malformed[0] == 200 and malformed[1]["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed[2])
    body = json.loads(truncated[2])
    full = expected_content(2)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == full[: len(full) // 2]
    assert json.loads(empty[2])["choices"][0]["message"]["content"] == ""
    text = json.loads(garbage[2])["choices"][0]["message"]["content"]
    assert text and "[Solution]" not in text
    assert fake.seen_seeds() == [2, 3, 4]


def test_answers_of_a_server_that_is_no_openai_api() -> None:
    faults = {1: ["html"], 2: ["wrong_shape"], 3: ["405"]}
    with FakeOpenAI(faults=faults) as fake:

        async def go() -> list[tuple[int, dict[str, str], bytes]]:
            async with aiohttp.ClientSession() as s:
                return [await post(s, fake.base_url, chat_body(seed)) for seed in (1, 2, 3, 1)]

        html, wrong_shape, not_allowed, again = asyncio.run(go())

    assert html[0] == 200 and html[1]["Content-Type"].startswith("text/html")
    assert html[2].startswith(b"<!DOCTYPE html>")
    assert wrong_shape[0] == 200 and json.loads(wrong_shape[2]) == {"status": "ok"}
    assert not_allowed[0] == 405 and not_allowed[1]["Content-Type"].startswith("text/html")
    assert b"405 Not Allowed" in not_allowed[2]
    assert again[0] == 200 and json.loads(again[2])["choices"]  # the script is used up: "ok"
    assert fake.seen_seeds() == [1]


def test_wrong_api_key_gets_401_without_echoing_key(fake: FakeOpenAI) -> None:
    wrong = "sk-wrong-secret-key-9876wxyz"

    async def go() -> tuple[list[tuple[int, dict[str, str], bytes]], Exception]:
        bad = {"Authorization": f"Bearer {wrong}"}
        async with aiohttp.ClientSession() as s:
            raw = [
                await post(s, fake.base_url, chat_body(1), headers=bad),
                await post(s, fake.base_url, chat_body(2)),
            ]
        async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=wrong, max_retries=0) as c:
            try:
                await c.chat.completions.create(model="m", messages=[], seed=3)
            except openai.AuthenticationError as exc:
                return raw, exc
        raise AssertionError("no AuthenticationError")

    raw, exc = asyncio.run(go())
    (status, _, body), (status_none, _, _) = raw
    assert status == status_none == 401
    assert wrong.encode() not in body
    err = json.loads(body)["error"]
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
    assert "sk-...wxyz" in err["message"]
    assert isinstance(exc, openai.AuthenticationError) and wrong not in str(exc)
    assert [r["authorization_present"] for r in fake.requests] == [True, False, True]
    assert fake.seen_seeds() == []


def test_stop_is_prompt_with_timeout_request_in_flight() -> None:
    fake = FakeOpenAI(default_fault="timeout")
    fake.start()
    stopped_after: list[float] = []

    async def go() -> BaseException | None:
        async with aiohttp.ClientSession() as s:
            request = asyncio.ensure_future(post(s, fake.base_url, chat_body(1)))
            while not fake.requests:
                await asyncio.sleep(0.01)
            t0 = time.monotonic()
            await asyncio.to_thread(fake.stop)
            stopped_after.append(time.monotonic() - t0)
            try:
                await asyncio.wait_for(request, 5)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                return exc
            return None

    exc = asyncio.run(go())
    assert stopped_after[0] < 2.0
    assert isinstance(exc, aiohttp.ClientError)  # connection closed, no 30 s wait
    assert fake.requests[0]["fault"] == "timeout"
    assert not any(t.name == "FakeOpenAI" for t in threading.enumerate())


def test_command_line_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--latency", "0", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")

        async def go() -> tuple[int, dict[str, str], bytes]:
            async with aiohttp.ClientSession() as s:
                return await post(s, base_url, chat_body(11))

        status, _, body = asyncio.run(go())
        assert status == 200
        assert json.loads(body)["choices"][0]["message"]["content"] == expected_content(11)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
