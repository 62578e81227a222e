"""The client's parts that need no server: prices, durations, limits, token counting offline."""

from __future__ import annotations

import asyncio
import time

import pytest

from magicoder_data import llm
from magicoder_data.errors import ProviderError
from magicoder_data.llm import (
    ChatClient,
    ClientSettings,
    RateLimiter,
    TokenCounter,
    cost,
    parse_duration,
    price_of,
)


def test_prices_by_name_prefix_and_extension():
    assert price_of("gpt-4o-mini") == (0.15, 0.60)
    assert price_of("gpt-4o-2024-08-06") == (2.50, 10.00)  # dated name: its listed prefix
    assert price_of("gpt-4o-mini-2024-07-18") == (0.15, 0.60)  # the longest prefix wins
    assert price_of("my-local-model") is None
    assert price_of("my-local-model", {"my-local-model": (0.0, 0.0)}) == (0.0, 0.0)
    assert cost((2.0, 8.0), 1_000_000, 500_000) == pytest.approx(6.0)
    assert cost(None, 10, 10) == 0.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6ms", 0.006), ("1.5s", 1.5), ("1m30s", 90.0), ("2", 2.0), ("", None), ("soon", None)],
)
def test_rate_limit_reset_durations(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_exhausted_headers_and_429s_pause_every_request():
    async def scenario() -> float:
        limiter = RateLimiter()
        limiter.succeeded(
            {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"}
        )
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire(10) for _ in range(3)))
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 0.29


def test_token_budget_is_reserved_then_corrected():
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(tpm=600_000)  # 10,000 tokens a second; it starts with one second's
        await limiter.acquire(5_000)
        limiter.settle(5_000, 1_000)  # the request used far less than it reserved
        after_refund = limiter._tokens
        start = time.monotonic()
        await limiter.acquire(19_000)  # about 9,000 left: waits about a second for the rest
        return after_refund, time.monotonic() - start

    after_refund, waited = asyncio.run(scenario())
    assert after_refund == pytest.approx(9_000, abs=200)
    assert waited >= 0.9


def test_a_new_limiter_allows_a_second_not_a_minute():
    async def scenario() -> float:
        limiter = RateLimiter(rpm=600)  # 10 a second
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire(1) for _ in range(20)))
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 0.9  # 10 at once, then 10 more over a second


def test_token_counting_falls_back_when_tiktoken_cannot_load(monkeypatch, caplog):
    import tiktoken

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MAGICODER_DATA_OFFLINE", raising=False)
    monkeypatch.setattr(llm.TokenCounter, "LOAD_TIMEOUT", 0.2)
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda _: time.sleep(5))  # a hung download
    start = time.monotonic()
    counter = TokenCounter("gpt-4o")
    assert time.monotonic() - start < 2
    assert not counter.exact
    assert counter.count([{"role": "user", "content": "x" * 400}]) == 100 + 4 + 3
    assert "estimating 4 characters per token" in caplog.text


def test_offline_mode_never_tries_to_download(monkeypatch, caplog):
    import tiktoken

    monkeypatch.setenv("MAGICODER_DATA_OFFLINE", "1")
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda _: pytest.fail("went online"))
    assert not TokenCounter("gpt-4o").exact
    assert "offline" in caplog.text


def test_the_not_openai_error_is_one_short_line_without_secrets():
    key = "sk-test-SECRETKEY-0123456789abcdef"
    page = f"<!DOCTYPE html>\n<html>\n  <body>\n\t<p>{key}</p>\n{'x' * 500}\n</body></html>\n"
    headers = {"content-type": "text/html; charset=utf-8"}

    async def scenario() -> str:
        settings = ClientSettings(model="m", base_url="http://user:hunter2@127.0.0.1:9/v1/")
        async with ChatClient(settings, key, redact=lambda t: t.replace(key, "***")) as client:
            for _ in range(ChatClient.FOREIGN_LIMIT - 1):
                client._not_openai(200, headers, page)  # below the limit: counted only
            with pytest.raises(ProviderError) as caught:
                client._not_openai(200, headers, page)
            with pytest.raises(ProviderError) as straddling:  # the key across the quote's end
                client._not_openai(200, headers, "y" * 70 + key + "z" * 100)
            assert f'"{"y" * 70}***{"z" * 7}…"' in str(straddling.value)
            return str(caught.value)

    message = asyncio.run(scenario())
    quoted = "<!DOCTYPE html> <html> <body> <p>***</p> " + "x" * 39
    assert message == (
        "http://127.0.0.1:9/v1 does not speak the OpenAI API: POST /chat/completions answered "
        f'200 text/html "{quoted}…"; check --base-url'
    )
    assert key not in message and "hunter2" not in message
    assert llm._describe_body({}, " \n") == "no content type with an empty body"
    assert llm._describe_body({"content-type": "text/plain"}, "a\x00b") == 'text/plain "a?b"'
