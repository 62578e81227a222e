"""A loopback fake of the OpenAI Chat Completions API that injects faults.

For end-to-end tests of a client built on the official `openai` SDK and for throughput
benchmarks (thousands of requests in flight). It listens on 127.0.0.1 only.

In a test::

    with FakeOpenAI(latency=0.01, faults={3: ["429", "drop"]}) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        assert 3 in server.seen_seeds()

From a shell (a benchmark runs it in its own process)::

    python -m tests.openai_server --latency 0.5 --port 0 --default-fault ok

prints the base_url on one line and serves until SIGTERM or SIGINT.

Faults are keyed on the request's ``seed`` body parameter: ``faults[seed]`` lists the
behaviour for attempt 1, 2, ... with that seed; once the list is used up the seed gets
"ok". Seeds not in ``faults`` get ``default_fault`` on every attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"

#: Behaviours whose response is a 200 with a well-formed chat.completion.
SUCCESS_FAULTS = frozenset({"ok", "truncate", "empty", "garbage"})
#: Every behaviour the server knows.
FAULTS = SUCCESS_FAULTS | {
    "429",
    "429-no-retry-after",
    "500",
    "503",
    "400",
    "401",
    "403",
    "404",
    "timeout",
    "drop",
    "malformed",
    "html",
    "wrong_shape",
    "405",
}

TIMEOUT_SLEEP = 30.0
RETRY_AFTER = "0.2"
GARBAGE = "I like turtles."
MALFORMED_BODY = b'{"id": "chatcmpl-x", "choices": ['
#: What a web server that is no OpenAI API answers: "html" (200), "405" (its error page), and
#: "wrong_shape" (200 JSON of another API).
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html>\n  <head>\n    <title>Welcome to nginx!</title>\n  </head>\n"
    b"  <body>\n    <h1>Welcome to nginx!</h1>\n    <p>If you see this page, the web server "
    b"is successfully installed and working.</p>\n  </body>\n</html>\n"
)
NOT_ALLOWED_PAGE = (
    b"<html>\n<head><title>405 Not Allowed</title></head>\n<body>\n"
    b"<center><h1>405 Not Allowed</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
)
WRONG_SHAPE_BODY = b'{"status": "ok"}'
_HTML = "text/html; charset=utf-8"

RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "2000000",
    "x-ratelimit-remaining-tokens": "1999000",
    "x-ratelimit-reset-tokens": "30ms",
}

_JSON = "application/json"


def expected_content(seed: int | None) -> str:
    """The assistant content an "ok" response carries for a request with this seed."""
    s = 0 if seed is None else seed
    return (
        f"[Problem Description]\nWrite a function for seed {s}.\n\n"
        f"[Solution]\n```python\ndef solve_{s}():\n    return {s}\n```\n"
    )


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()


# Static error bodies, encoded once. 401 (bad key) and 404 name the key / model, so
# they are built per request.
_ERROR_BODIES: dict[str, tuple[int, bytes]] = {
    "429": (
        429,
        _error(
            "Rate limit reached for requests. Limit: 10000 / min. Please try again in 200ms.",
            "requests",
            "rate_limit_exceeded",
        ),
    ),
    "500": (
        500,
        _error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
    ),
    "503": (
        503,
        _error(
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        ),
    ),
    "400": (
        400,
        _error(
            "Invalid value for 'messages': this is a fake bad request.",
            "invalid_request_error",
            None,
            "messages",
        ),
    ),
    "403": (
        403,
        _error(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
    ),
}
_ERROR_BODIES["429-no-retry-after"] = _ERROR_BODIES["429"]
_BAD_JSON_BODY = _error(
    "We could not parse the JSON body of your request. (HINT: This likely means you "
    "aren't using your HTTP library correctly.)",
    "invalid_request_error",
    None,
)


def _mask_key(key: str) -> str:
    """OpenAI-style key hint: never the whole key, at most its last 4 characters."""
    tail = key[-min(4, len(key) // 2) :] if len(key) >= 2 else ""
    head = "sk-" if key.startswith("sk-") and len(key) > 7 else ""
    return f"{head}...{tail}"


def _auth_error(authorization: str | None) -> bytes:
    if not authorization:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    else:
        given = authorization.removeprefix("Bearer ").strip()
        message = (
            f"Incorrect API key provided: {_mask_key(given)}. You can find your API key "
            "at https://platform.openai.com/account/api-keys."
        )
    return _error(message, "invalid_request_error", "invalid_api_key")


def _text_len(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return 0


def _check_faults(faults: list[str]) -> list[str]:
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; known: {sorted(FAULTS)}")
    return list(faults)


class FakeOpenAI:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted faults.

    ``start()`` runs it in a background thread with its own event loop; the CLI entry
    (``python -m tests.openai_server``) runs it in the main thread of its own process.
    ``record=False`` stops it keeping ``requests`` / ``seen_seeds`` (for long benchmarks).
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        model: str = "fake-model",
        fingerprint: str = "fp_fake",
        faults: Mapping[int, list[str]] | None = None,
        default_fault: str = "ok",
        api_key: str | None = None,
        rate_limit_headers: bool = True,
        record: bool = True,
        answer: Callable[[int], str] | None = None,
    ) -> None:
        _check_faults([default_fault])
        self.latency = latency
        self.model = model
        self.fingerprint = fingerprint
        self.default_fault = default_fault
        self.api_key = api_key
        self.rate_limit_headers = rate_limit_headers
        self.record = record
        #: The content of an "ok" answer by request seed (default: `expected_content`).
        self.answer = answer or expected_content
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        self._seen: list[int] = []
        self._faults: dict[Any, list[str]] = {
            k: _check_faults(v) for k, v in (faults or {}).items()
        }
        self._attempts: dict[Any, int] = {}
        # Guards _faults, _attempts, requests and _seen; never held across an await.
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ok_headers = {"Content-Type": _JSON}
        if rate_limit_headers:
            self._ok_headers.update(RATE_LIMIT_HEADERS)

    # ----------------------------------------------------------------- public API

    def seen_seeds(self) -> list[int]:
        """Seeds of requests answered with a successful ("ok", "truncate", "empty",
        "garbage") response, in the order the responses were made."""
        with self._lock:
            return list(self._seen)

    def set_fault(self, seed: int, faults: list[str]) -> None:
        """Replace the script for ``seed``; the next request with it is attempt 1."""
        checked = _check_faults(faults)
        with self._lock:
            self._faults[seed] = checked
            self._attempts.pop(seed, None)

    def start(self) -> str:
        """Serve on a free port from a background thread; returns the base_url."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                try:
                    loop.run_until_complete(self._astart(0))
                except BaseException as exc:
                    failure.append(exc)
                    return
                finally:
                    ready.set()
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self._cancel_leftovers())
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="FakeOpenAI", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self.base_url

    def stop(self) -> None:
        """Stop serving: cancels in-flight handlers (a "timeout" one too) and joins."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            if not loop.is_closed():
                fut = asyncio.run_coroutine_threadsafe(self._astop(), loop)
                fut.result(timeout=10)
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None
            self._loop = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        """The endpoints served; a subclass adds its own (the Batch API's)."""
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    async def _astart(self, port: int) -> str:
        app = web.Application(client_max_size=512 * 1024**2)
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port, backlog=4096)
        await site.start()
        self._runner, self._site = runner, site
        bound = runner.addresses[0][1]
        self.base_url = f"http://{HOST}:{bound}/v1"
        return self.base_url

    async def _astop(self) -> None:
        if self._site is not None:
            await self._site.stop()  # stop accepting first
            self._site = None
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _cancel_leftovers(self) -> None:
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        for t in rest:
            t.cancel()
        if rest:
            await asyncio.gather(*rest, return_exceptions=True)

    # ------------------------------------------------------------------- handlers

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        auth = request.headers.get("Authorization")
        if auth == f"Bearer {self.api_key}":
            return None
        return web.Response(status=401, body=_auth_error(auth), headers={"Content-Type": _JSON})

    async def _models(self, request: web.Request) -> web.Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        body = {
            "object": "list",
            "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}],
        }
        return web.Response(body=json.dumps(body).encode(), headers={"Content-Type": _JSON})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            return await self._chat_inner(request)
        finally:
            self._handlers.discard(task)

    async def _chat_inner(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = None
        seed = body.get("seed") if body is not None else None
        auth = request.headers.get("Authorization")
        denied = self._unauthorized(request)

        with self._lock:
            if denied is not None:
                fault = "401"
            elif body is None:
                fault = "400"
            else:
                script = self._faults.get(seed) if seed is not None else None
                if script is None:
                    fault = self.default_fault
                else:
                    n = self._attempts.get(seed, 0)
                    self._attempts[seed] = n + 1
                    fault = script[n] if n < len(script) else "ok"
            if self.record:
                self.requests.append(
                    {
                        "body": body,
                        "seed": seed,
                        "fault": fault,
                        "authorization_present": auth is not None,
                    }
                )

        await asyncio.sleep(TIMEOUT_SLEEP if fault == "timeout" else self.latency)

        if denied is not None:
            return denied
        if body is None:
            return web.Response(status=400, body=_BAD_JSON_BODY, headers={"Content-Type": _JSON})
        if fault in SUCCESS_FAULTS:
            transport = request.transport
            answered = transport is not None and not transport.is_closing()
            if self.record and answered and isinstance(seed, int):
                with self._lock:
                    self._seen.append(seed)
            return self._completion(body, seed, fault)
        if fault == "timeout":  # only reached if the client waited 30 s
            return self._completion(body, seed, "ok")
        if fault == "drop":
            transport = request.transport
            if transport is not None:
                transport.close()
            # Writing to the closed transport raises ConnectionError, which aiohttp
            # takes as a client disconnect: nothing is sent and nothing is logged.
            return web.Response(status=500)
        if fault == "malformed":
            return web.Response(body=MALFORMED_BODY, headers={"Content-Type": _JSON})
        if fault == "html":
            return web.Response(body=HTML_PAGE, headers={"Content-Type": _HTML})
        if fault == "wrong_shape":
            return web.Response(body=WRONG_SHAPE_BODY, headers={"Content-Type": _JSON})
        if fault == "405":
            return web.Response(status=405, body=NOT_ALLOWED_PAGE, headers={"Content-Type": _HTML})
        if fault == "401":
            err = _auth_error("Bearer sk-fake-revoked-key")
            return web.Response(status=401, body=err, headers={"Content-Type": _JSON})
        if fault == "404":
            model = body.get("model") or self.model
            err = _error(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
            return web.Response(status=404, body=err, headers={"Content-Type": _JSON})
        status, err = _ERROR_BODIES[fault]
        headers = {"Content-Type": _JSON}
        if fault == "429":
            headers["Retry-After"] = RETRY_AFTER
        return web.Response(status=status, body=err, headers=headers)

    def _completion(self, body: dict[str, Any], seed: Any, fault: str) -> web.Response:
        n = next(self._ids)
        headers = dict(self._ok_headers)
        headers["x-request-id"] = f"req_fake{n:010d}"
        payload = json.dumps(self.completion_body(body, seed, fault, n)).encode()
        return web.Response(body=payload, headers=headers)

    def completion_body(self, body: dict[str, Any], seed: Any, fault: str, n: int) -> dict:
        """The chat.completion a success fault answers `body` with (the Batch API's too)."""
        if fault == "empty":
            content = ""
        elif fault == "garbage":
            content = GARBAGE
        else:
            content = self.answer(seed if isinstance(seed, int) else 0)
            if fault == "truncate":
                content = content[: len(content) // 2]
        messages = body.get("messages")
        prompt_chars = (
            sum(_text_len(m.get("content")) for m in messages if isinstance(m, dict))
            if isinstance(messages, list)
            else 0
        )
        prompt_tokens = prompt_chars // 4
        completion_tokens = len(content) // 4
        return {
            "id": f"chatcmpl-fake{n:010d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length" if fault == "truncate" else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


# ------------------------------------------------------------------------ command line


def _raise_fd_limit() -> None:
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(server: FakeOpenAI, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    base_url = await server._astart(port)
    sys.stdout.write(base_url + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await server._astop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.openai_server",
        description="Fake OpenAI chat-completions server on 127.0.0.1 (prints its base_url).",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--default-fault", default="ok", choices=sorted(FAULTS))
    p.add_argument("--model", default="fake-model")
    p.add_argument("--fingerprint", default="fp_fake")
    p.add_argument("--api-key", default=None)
    p.add_argument("--no-rate-limit-headers", action="store_true")
    p.add_argument(
        "--record", action="store_true", help="keep every request in memory (off by default)"
    )
    args = p.parse_args(argv)
    _raise_fd_limit()
    server = FakeOpenAI(
        latency=args.latency,
        model=args.model,
        fingerprint=args.fingerprint,
        default_fault=args.default_fault,
        api_key=args.api_key,
        rate_limit_headers=not args.no_rate_limit_headers,
        record=args.record,
    )
    asyncio.run(_serve(server, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
