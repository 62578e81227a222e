"""The LLM client: the official `openai` SDK over aiohttp, with client-side limits and retries.

One `ChatClient` serves every request of a run. It keeps requests inside the provider's budget
(bounded concurrency is the caller's; requests and tokens per minute are here), honours
`Retry-After` and the `x-ratelimit-*` headers, retries what a retry can fix (429, 5xx, timeouts,
dropped connections, malformed bodies) with exponential backoff and jitter, and stops the whole
run at once on what it cannot (401, 403, 404, an endpoint that does not speak the API). It never
writes the API key anywhere.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai
from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from .config import OPTIONS
from .errors import ProviderError

log = logging.getLogger("magicoder_data")

#: US$ per million (input, output) tokens. Extend with --price MODEL=IN,OUT; a dated model name
#: (gpt-4o-2024-08-06) takes the price of its longest listed prefix.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-3.5-turbo-1106": (1.00, 2.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


#: What the Batch API charges, as a share of the listed prices (OpenAI, Azure OpenAI, Groq,
#: Together and Fireworks all halve them).
BATCH_DISCOUNT = 0.5


def price_of(
    model: str, extra: Mapping[str, tuple[float, float]] | None = None
) -> tuple[float, float] | None:
    """(input, output) US$ per million tokens for `model`, or None when unknown."""
    table = {**PRICES, **(extra or {})}
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


def cost(price: tuple[float, float] | None, prompt_tokens: int, completion_tokens: int) -> float:
    if price is None:
        return 0.0
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


class TokenCounter:
    """Counts prompt tokens with tiktoken when it can, else estimates four characters a token.

    tiktoken downloads its encodings on first use; offline that fails or hangs, so the load runs
    in a thread with a deadline, and a failure is said once and falls back to the estimate.
    """

    LOAD_TIMEOUT = 10.0

    def __init__(self, model: str) -> None:
        self._encoding: Any = None
        if offline():
            log.warning("offline: estimating 4 characters per token instead of using tiktoken")
            return
        result: dict[str, Any] = {}

        def load() -> None:
            try:
                import tiktoken

                try:
                    result["encoding"] = tiktoken.encoding_for_model(model)
                except KeyError:
                    result["encoding"] = tiktoken.get_encoding("o200k_base")
            except Exception as exc:  # any failure to load is a reason to estimate instead
                result["error"] = exc

        thread = threading.Thread(target=load, daemon=True, name="tiktoken-load")
        thread.start()
        thread.join(self.LOAD_TIMEOUT)
        self._encoding = result.get("encoding")
        if self._encoding is None:
            reason = result.get("error") or "timed out"
            log.warning(
                "tiktoken encodings unavailable (%s); estimating 4 characters per token",
                str(reason).splitlines()[0][:120],
            )

    @property
    def exact(self) -> bool:
        return self._encoding is not None

    def count(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens of a chat, with OpenAI's few tokens of framing per message."""
        text_tokens = sum(self._tokens(m["content"]) for m in messages)
        return text_tokens + 4 * len(messages) + 3

    def _tokens(self, text: str) -> int:
        if self._encoding is None:
            return (len(text) + 3) // 4
        return len(self._encoding.encode(text, disallowed_special=()))


def offline() -> bool:
    """Whether the user asked for no network access (MAGICODER_DATA_OFFLINE or HF_HUB_OFFLINE)."""
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("MAGICODER_DATA_OFFLINE", "HF_HUB_OFFLINE")
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str | None) -> float | None:
    """Seconds in an `x-ratelimit-reset-*` value such as `6ms`, `1.5s` or `1m30s`."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = _DURATION.findall(text)
    return sum(float(n) * unit[u] for n, u in parts) if parts else None


class RateLimiter:
    """Client-side requests- and tokens-per-minute budgets, and a shared pause after 429s.

    Tokens are reserved before a request (prompt + max_tokens) and corrected with the real usage
    afterwards. A pause (Retry-After, or an exhausted `x-ratelimit-remaining-*`) holds back every
    request, not only the one that was refused.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.rpm, self.tpm = rpm, tpm
        now = time.monotonic()
        # Start with a second's worth (at least one request), not a whole minute's burst.
        self._requests = max(1.0, (rpm or 0) / 60)
        self._tokens = float(tpm or 0) / 60
        self._stamp = now
        self._pause_until = 0.0
        self._strikes = 0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        elapsed, self._stamp = now - self._stamp, now
        if self.rpm:
            self._requests = min(self.rpm, self._requests + elapsed * self.rpm / 60)
        if self.tpm:
            self._tokens = min(self.tpm, self._tokens + elapsed * self.tpm / 60)

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of about `tokens` tokens fits the budgets."""
        if not (self.rpm or self.tpm):
            while (delay := self._pause_until - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            return
        if self.tpm:
            tokens = min(tokens, int(self.tpm))  # one request larger than the budget still goes
        async with self._lock:
            while True:
                now = time.monotonic()
                self._refill(now)
                waits = [self._pause_until - now]
                if self.rpm and self._requests < 1:
                    waits.append((1 - self._requests) * 60 / self.rpm)
                if self.tpm and self._tokens < tokens:
                    waits.append((tokens - self._tokens) * 60 / self.tpm)
                delay = max(waits)
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            if self.rpm:
                self._requests -= 1
            if self.tpm:
                self._tokens -= tokens

    def settle(self, reserved: int, used: int) -> None:
        """Give back what a request reserved but did not use (or take what it overran)."""
        if self.tpm:
            self._tokens = min(self.tpm, self._tokens + min(reserved, int(self.tpm)) - used)

    def pause(self, seconds: float | None) -> None:
        """Hold every request back: `seconds` when the provider said, else a growing backoff."""
        self._strikes += 1
        if seconds is None:
            seconds = min(60.0, 0.5 * 2 ** min(self._strikes, 7))
        self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    def succeeded(self, headers: Mapping[str, str]) -> None:
        """Learn from a successful response's rate-limit headers."""
        self._strikes = 0
        for kind in ("requests", "tokens"):
            if headers.get(f"x-ratelimit-remaining-{kind}") == "0":
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
                self._pause_until = max(self._pause_until, time.monotonic() + (reset or 1.0))


@dataclass
class Completion:
    """The outcome of one request after its retries: `ok`, `truncated` or `failed`."""

    status: str
    content: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 0
    raw: str | None = None
    error_kind: str | None = None
    error: str | None = None


class Stopped(Exception):
    """The run is stopping, so this request was not sent (nothing to store, nothing paid)."""


class _Failed(Exception):
    """A failed request that no retry would fix, but that says nothing about the others."""

    def __init__(self, kind: str, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.raw = raw


class _Retryable(_Failed):
    """A failed attempt worth another try; `kind` names it for the failure counts."""

    def __init__(
        self, kind: str, message: str, raw: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(kind, message, raw)
        self.retry_after = retry_after


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name == "retry-after-ms" else seconds
    return None


@pydantic_dataclass(frozen=True, config=OPTIONS)
class ClientSettings:
    """How to reach the provider; none of it changes what a sample says."""

    model: str = Field(min_length=1)
    base_url: str | None = None
    timeout: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    max_attempts: int = Field(default=8, ge=1)
    concurrency: int = Field(default=64, ge=1)
    rpm: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tpm: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    backoff_max: float = Field(default=60.0, gt=0)


class ChatClient:
    """Sends chat completions for a run; use as an async context manager."""

    def __init__(
        self, settings: ClientSettings, api_key: str, *, redact: Callable[[str], str]
    ) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.rpm, settings.tpm)
        #: Checked before each attempt goes out; once true, requests raise Stopped unsent.
        self.stopping: Callable[[], bool] = lambda: False
        #: Whether the endpoint ever gave this client a well-formed chat completion.
        self._proven = False
        #: Answers in no OpenAI shape seen while `_proven` was still False, over all requests.
        self._foreign = 0
        self._redact = redact
        limits = _limits(settings.concurrency)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=settings.base_url,
            timeout=settings.timeout,
            max_retries=0,  # retries are ours: one policy, counted, and sharing the 429 pause
            http_client=openai.DefaultAioHttpClient(limits=limits, timeout=settings.timeout),
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()

    async def complete(self, body: dict[str, Any], *, reserve: int) -> Completion:
        """One chat completion with retries; raises ProviderError when the whole run must stop.

        The first attempt goes straight out; the retry machinery is only set up for the few
        requests that need it.
        """
        started = time.monotonic()
        attempts = 1
        try:
            try:
                completion = await self._attempt(body, reserve)
            except _Retryable as first:
                if self.settings.max_attempts <= 1:
                    raise
                await asyncio.sleep(self._delay(first, 1))
                retrying = AsyncRetrying(
                    stop=stop_after_attempt(self.settings.max_attempts - 1),
                    wait=lambda state: self._delay(
                        state.outcome.exception() if state.outcome else None,
                        state.attempt_number + 1,
                    ),
                    retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
                    reraise=True,
                )
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        completion = await self._attempt(body, reserve)
        except _Failed as exc:
            return Completion(
                status="failed",
                attempts=attempts,
                latency_s=time.monotonic() - started,
                error_kind=exc.kind,
                error=self._redact(str(exc))[:2000],
                raw=self._redact(exc.raw) if exc.raw else None,
            )
        completion.attempts = attempts
        completion.latency_s = time.monotonic() - started
        return completion

    def _delay(self, failure: BaseException | None, attempt: int) -> float:
        """Seconds before the next try: the provider's hint, else exponential with jitter."""
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return failure.retry_after
        base = min(self.settings.backoff_max, 2.0 ** (attempt - 1))
        return base / 2 + random.uniform(0, base / 2)

    #: How many answers in no OpenAI shape (see `_not_openai`) this client takes, before its
    #: first well-formed completion, until it stops the run.
    FOREIGN_LIMIT = 3

    async def _attempt(self, body: dict[str, Any], reserve: int) -> Completion:
        await self.limiter.acquire(reserve)
        if self.stopping():
            raise Stopped
        used = reserve
        try:
            # The SDK's low-level post: its auth, base URL, errors and transport, without the
            # typed-params transform and model construction that cost ~1.5 ms a request.
            response = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=_HTTP.Response,
            )
            text = response.text
            data: Any = None
            try:
                data = json.loads(text)
                completion = completion_of(data, text)
            except MALFORMED as exc:
                if not self._proven and not _has_choices(data):
                    self._not_openai(response.status_code, response.headers, text)
                raise _Retryable(
                    "malformed_response", f"unreadable response: {type(exc).__name__}: {exc}", text
                ) from None
            self._proven = True
            self.limiter.succeeded(response.headers)
            used = completion.prompt_tokens + completion.completion_tokens or reserve
            return completion
        except openai.APIStatusError as exc:
            used = 0
            self._raise_for_status(exc)
            raise  # unreachable: _raise_for_status always raises
        except openai.APITimeoutError:
            raise _Retryable("timeout", f"no answer within {self.settings.timeout:g}s") from None
        except openai.APIConnectionError as exc:
            raise _Retryable("connection", f"connection failed: {exc.__cause__ or exc}") from None
        finally:
            self.limiter.settle(reserve, used)

    def _raise_for_status(self, exc: openai.APIStatusError) -> None:
        status = exc.status_code
        body = exc.response.text
        message = status_message(exc, self._redact)
        if status in (401, 403):
            raise ProviderError(
                f"the provider refused the API key ({status}: {message}); check the key in "
                "the variable named by --api-key-env (default OPENAI_API_KEY)"
            )
        if status == 404:
            raise ProviderError(
                f"model {self.settings.model!r} or the endpoint was not found (404: {message}); "
                "check --model and --base-url"
            )
        if status == 429:
            retry_after = _retry_after(exc.response.headers)
            self.limiter.pause(retry_after)
            if "insufficient_quota" in message:
                raise ProviderError(f"the account is out of quota (429: {message})")
            raise _Retryable("rate_limited", f"429: {message}", body, retry_after)
        if status >= 500 or status in (408, 409):
            hint = _retry_after(exc.response.headers)
            raise _Retryable(f"http_{status}", f"{status}: {message}", body, hint)
        if not self._proven and not isinstance(exc.body, dict):
            self._not_openai(status, exc.response.headers, body)
            # Not yet the limit: try this seed again rather than store a failure for it.
            raise _Retryable(f"http_{status}", f"{status}: {message}", body)
        raise _Failed(f"http_{status}", f"{status}: {message}", body)

    def _not_openai(self, status: int, headers: Mapping[str, str], body: str) -> None:
        """Count an answer in no OpenAI shape; stop the run at the `FOREIGN_LIMIT`-th.

        The caller has already checked the shape, and calls this only while the endpoint has
        never given this client a well-formed completion: a 2xx whose body is not a JSON object
        with a `choices` list, or a 4xx other than 401, 403, 404, 408, 409 and 429 whose body is
        not a JSON object (OpenAI's errors are `{"error": {...}}`). 429 and 5xx are retried
        whatever their body: proxies in front of real APIs serve HTML pages for those.

        Why a few and not one, even for an HTML page: a single odd answer while a run starts
        can be a load balancer or proxy that is not ready yet, and one answer alone cannot tell
        that from a web page; three before any good one, counted over every concurrent
        request of this client, can. At concurrency 3 or more that is the first wave of answers
        (not `max_attempts` tries of every seed); at concurrency 1 it is one seed's first three
        tries, at most 3 s of backoff. Answers below the limit are retried, not stored as
        failures. Once one well-formed completion has arrived, the endpoint is known to speak
        the API, and odd answers are a flaky proxy's: retried or failed per seed, as usual.
        """
        self._foreign += 1
        if self._foreign < self.FOREIGN_LIMIT:
            return
        url = display_url(str(self._client.base_url))
        # Redact before quoting: a key cut in two by the quote's end would slip past redact.
        answer = f"{status} {_describe_body(headers, self._redact(body))}"
        raise ProviderError(
            self._redact(
                f"{url} does not speak the OpenAI API: POST /chat/completions answered "
                f"{answer}; check --base-url"
            )
        )


#: What `completion_of` raises for a body that is not a chat completion.
MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError)


def completion_of(data: Any, raw: str) -> Completion:
    """A decoded chat.completion body (`raw` its text) as an `ok` or `truncated` Completion;
    one of MALFORMED when it has no `choices[0].message` object."""
    choice = data["choices"][0]
    message = choice["message"]
    if not isinstance(message, dict):
        raise TypeError("choices[0].message is not an object")
    usage = data.get("usage") or {}
    return Completion(
        status="truncated" if choice.get("finish_reason") == "length" else "ok",
        content=message.get("content") or "",
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
        system_fingerprint=data.get("system_fingerprint"),
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        raw=raw,
    )


def _has_choices(data: Any) -> bool:
    """Whether a decoded body has the shape of a chat completion: an object with a list of
    `choices` (whatever is wrong inside it)."""
    return isinstance(data, dict) and isinstance(data.get("choices"), list)


#: How many characters of a body an error message quotes.
QUOTE_CHARS = 80


def _describe_body(headers: Mapping[str, str], body: str) -> str:
    """`text/html "<!DOCTYPE html><html>…"`: a body's media type and start, on one line.

    Pass the body redacted: this quotes its first `QUOTE_CHARS` characters, runs of whitespace
    made one space and other control characters `?`.
    """
    media = headers.get("content-type", "").partition(";")[0].strip() or "no content type"
    text = " ".join(body.split())
    if not text:
        return f"{media} with an empty body"
    quoted = "".join(c if c.isprintable() else "?" for c in text[:QUOTE_CHARS])
    return f'{media} "{quoted}{"…" if len(text) > QUOTE_CHARS else ""}"'


def display_url(url: str) -> str:
    """`url` to show: without a trailing slash, or a user name and password in it."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts).rstrip("/")


def status_message(exc: openai.APIStatusError, redact: Callable[[str], str]) -> str:
    """An error answer on one line, redacted: OpenAI's message when the body is its JSON error,
    else the body's media type and start."""
    if isinstance(exc.body, dict):  # the SDK parsed a JSON object: OpenAI's error shape
        return redact(_error_message(exc))
    return _describe_body(exc.response.headers, redact(exc.response.text))


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc.message or exc)


def _http_module() -> Any:
    try:
        return importlib.import_module("httpx2")  # the SDK's fork of httpx (openai >= 3)
    except ImportError:
        return importlib.import_module("httpx")


_HTTP = _http_module()


def _limits(concurrency: int) -> Any:
    """Connection limits that let `concurrency` requests be in flight at once."""
    return _HTTP.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
