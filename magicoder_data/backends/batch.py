"""The batch backend: the same requests through the Batch API, at half the price, within 24 h.

The pending seeds' requests (the bodies online generation sends) are written to JSONL input
files of at most 50,000 requests and 200 MB, uploaded (`files.create(purpose="batch")`) and
submitted (`batches.create`), then polled with a growing pause, and collected: each output or
error line becomes its seed's stored answer, and lines that failed for a reason another try
can fix (expired, 429, 5xx) go out again in a new batch, up to `max_attempts` tries a seed.

Nothing is paid twice. A batch is recorded in the run (`batches`, with its seeds in
`batch_requests`) before its file is uploaded, and each provider id is recorded as soon as it
is known; the batch's metadata carries the record's key and names the run. A process killed
at any instant leaves a record that the next run finishes: it uploads the file again if no id
was recorded (an upload alone costs nothing), looks a batch whose creation may have gone out up
among the provider's batches by that key, and collects every batch still open. Seeds in an
open batch are never sent again, by this backend or the online one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import openai

from .. import generate
from ..errors import ProviderError, RunError
from ..llm import (
    BATCH_DISCOUNT,
    MALFORMED,
    Completion,
    TokenCounter,
    completion_of,
    cost,
    display_url,
    price_of,
    status_message,
)
from ..store import RunStore, now
from .base import SendRequest
from .online import OPENAI_URL, Budget, OnlineBackend, _redactor

if TYPE_CHECKING:
    from ..stage import Progress

log = logging.getLogger("magicoder_data")
T = TypeVar("T")

#: Requests one batch may hold (OpenAI's limit; its 200 MB is `batch_mb`'s default, read as
#: 200,000,000 bytes, the safe side).
MAX_REQUESTS = 50_000
ENDPOINT = "/v1/chat/completions"
#: Statuses after which a batch changes no more.
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
#: The metadata keys that tie a batch at the provider to its record in a run.
KEY_FIELD, RUN_FIELD = "magicoder_data_batch", "magicoder_data_run"
#: The first pause between polls, and how much each pause grows (up to `poll_interval`).
POLL_FIRST, POLL_GROWTH = 1.0, 1.5
#: Answers committed together while collecting an output file.
CHUNK = 1_000


# -- the batches and batch_requests tables ------------------------------------------------------


@dataclass(frozen=True)
class BatchRow:
    """One batch of a run: our record of it, and what the provider last said about it.

    `status` is `preparing` until the provider has the batch, then the provider's; a batch is
    open until `collected_at` is set. `reserved_usd` is the most its requests can cost
    (counted against --max-cost while it is open); `cost_usd` what its answers cost.

    Each of its seeds has a `batch_requests` row whose state says what became of it: `open`
    (not collected yet), `answered` or `failed` (its answer is stored), `retry` (a failed try:
    the seed goes out again), `retried` (a failed try of a seed answered since), `unanswered`
    (the batch failed or was cancelled before running it: it goes out again, not as a try).
    """

    key: str
    endpoint: str
    status: str
    requests: int
    reserved_usd: float
    input_file_id: str | None
    batch_id: str | None
    completed: int
    failed: int
    output_file_id: str | None
    error_file_id: str | None
    errors: str | None
    cost_usd: float
    created_at: str
    collected_at: str | None


def batches(store: RunStore, open_only: bool = False) -> list[BatchRow]:
    """The run's batches, oldest first (only those not yet collected, with `open_only`)."""
    where = "WHERE collected_at IS NULL " if open_only else ""
    return list(store.rows(f"SELECT * FROM batches {where}ORDER BY rowid", as_=BatchRow))


def open_batches(store: RunStore) -> list[BatchRow]:
    """The run's batches not yet collected."""
    return batches(store, open_only=True)


def reserved(store: RunStore) -> float:
    """US$ the open batches may still cost: what --max-cost counts beside the stored spend."""
    return float(store.value("SELECT TOTAL(reserved_usd) FROM batches WHERE collected_at IS NULL"))


def batch_answers(store: RunStore) -> int:
    """How many stored answers came through the Batch API (for the dataset card)."""
    return int(store.value("SELECT COUNT(*) FROM batch_requests WHERE state = 'answered'"))


def _seeds_of(store: RunStore, key: str) -> Iterator[generate.PendingSeed]:
    """The seeds batch `key` asked for, in id order."""
    for page in store.pages(
        "SELECT s.id, s.language, s.snippet FROM batch_requests r JOIN seeds s ON s.id = r.seed_id "
        "WHERE r.batch_key = ? AND s.id > ? ORDER BY s.id LIMIT ?",
        (key,),
        "id",
        CHUNK,
        generate.PendingSeed,
    ):
        yield from page


# -- the backend ------------------------------------------------------------------------------


class BatchBackend(OnlineBackend):
    """The online backend's endpoint and key, its requests sent as batches."""

    name = "batch"

    @property
    def endpoint(self) -> str:
        """Where the batches live, as stored and shown (no credentials)."""
        return display_url(self.settings.base_url or OPENAI_URL)

    def prices(self, listed: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        return {m: (i * BATCH_DISCOUNT, o * BATCH_DISCOUNT) for m, (i, o) in listed.items()}

    def check(self) -> None:
        """The endpoint answers, takes the key and has a Batch API, before anything is sent."""
        super().check()
        with self.client() as api:
            api.call("list batches", api.client.batches.list, limit=1)

    @contextmanager
    def client(self) -> Iterator[_Api]:
        client = openai.OpenAI(
            api_key=self.api_key,
            base_url=self.settings.base_url,
            timeout=self.settings.timeout,
            max_retries=5,  # the SDK's backoff, for the few calls a batch makes
        )
        try:
            yield _Api(client, self.endpoint, _redactor(self.api_key))
        finally:
            client.close()

    def send(
        self, store: RunStore, request: SendRequest, progress: Progress | None = None
    ) -> BatchStats:
        """Finish what earlier runs left, submit the pending seeds, and (unless told not to
        wait) poll and collect until every batch has ended."""
        elsewhere = {row.endpoint for row in open_batches(store)} - {self.endpoint}
        if elsewhere:
            raise RunError(
                f"{store.root} has batches open at {', '.join(sorted(elsewhere))}; pass "
                "--base-url with that endpoint to collect them"
            )
        with self.client() as api, _stop_on_sigint() as stop:
            run = _BatchRun(store, request, api, self.settings.max_attempts, stop, progress)
            return run.run()


class Unavailable(ProviderError):
    """A call that failed for a while (no connection, 429, 5xx after the SDK's retries): a run
    waiting on its batches keeps waiting."""


class _Api:
    """The SDK client, with every provider error turned into one redacted line."""

    def __init__(self, client: openai.OpenAI, endpoint: str, redact: Callable[[str], str]) -> None:
        self.client = client
        self.endpoint = endpoint
        self.redact = redact

    def call(self, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)`; ProviderError saying what failed and what to do."""
        with self.errors(what):
            return method(*args, **kwargs)

    def lines(self, what: str, file_id: str) -> Iterator[str]:
        """The lines of a provider file, streamed (an output file can be hundreds of MB)."""
        content = self.client.files.with_streaming_response.content
        with self.errors(what), content(file_id) as body:
            yield from body.iter_lines()

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """SDK errors inside as one line each (the key redacted), saying what to do."""
        try:
            yield
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ProviderError(
                f"the provider refused the API key ({exc.status_code}: "
                f"{status_message(exc, self.redact)}); check the key in the variable named by "
                "--api-key-env (default OPENAI_API_KEY)"
            ) from None
        except openai.NotFoundError as exc:
            raise ProviderError(
                f"{self.endpoint}: {what} answered 404 ({status_message(exc, self.redact)}); "
                "--batch needs a provider with the OpenAI Batch API"
            ) from None
        except openai.APIStatusError as exc:
            kind = Unavailable if _retryable_status(exc.status_code) else ProviderError
            raise kind(
                f"{self.endpoint}: {what} failed ({exc.status_code}: "
                f"{status_message(exc, self.redact)})"
            ) from None
        except openai.APIError as exc:  # no answer: connection refused, timeouts
            raise Unavailable(
                self.redact(f"{self.endpoint}: {what} failed ({exc.message}); check the network")
            ) from None


# -- stopping ---------------------------------------------------------------------------------


@contextmanager
def _stop_on_sigint() -> Iterator[threading.Event]:
    """An event a first Ctrl-C sets (stop submitting and waiting; batches keep running at the
    provider); a second one interrupts at once. Recording a batch is never cut in two by the
    first, and the second is safe too: the next run finds the batch by its key."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning(
            "stopping: no new batches; the open ones keep running at the provider and the next "
            "`generate` collects them (press Ctrl-C again to quit now)"
        )

    try:
        previous = signal.signal(signal.SIGINT, handle)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# -- one run of the backend ---------------------------------------------------------------------


@dataclass
class BatchStats(generate.GenerateStats):
    """Live counts of a batch run: the GenerateStats of the answers collected, plus the
    batches by status and what the provider says of the open ones."""

    batches: Counter[str] = field(default_factory=Counter)
    submitted: int = 0  # batches created by this run
    waiting: int = 0  # requests in open batches
    provider_done: int = 0  # of those, how many the provider says it has answered
    provider_failed: int = 0  # ... and how many failed there
    reserved: float = 0.0  # US$ the open batches may still cost
    next_poll: float = 0.0  # time.monotonic() of the next check
    cancelled: bool = False  # a batch was cancelled (`magicoder-data cancel`): no new ones
    outstanding: int = 0  # batches still open when the run returned

    def line(self) -> str:
        parts = [
            "batches: "
            + (", ".join(f"{n:,} {s}" for s, n in sorted(self.batches.items())) or "none"),
            f"answers stored {self.done:,}/{self.total:,}"
            + (f" ({self.statuses['failed']:,} failed)" if self.statuses["failed"] else ""),
        ]
        if self.waiting:
            parts.append(
                f"at the provider {self.provider_done:,} done, {self.provider_failed:,} failed "
                f"of {self.waiting:,}"
            )
        parts.append(f"${self.spent:,.4f} paid, ${self.reserved:,.4f} reserved")
        poll = self.next_poll - time.monotonic()
        wait = f", next check in {poll:.0f}s" if self.waiting and poll >= 1 else ""
        parts.append(f"{_clock(self.elapsed)} elapsed{wait}")
        return "  ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


@dataclass(frozen=True)
class _Line:
    """One line of an output or error file: the seed it answers and how it went."""

    seed_id: int
    completion: Completion
    retryable: bool  # a failure another try may fix
    counted: bool = True  # a try (not a line the provider never ran)


class _BatchRun:
    """One `send`: resume, submit, poll, collect, resubmit."""

    def __init__(
        self,
        store: RunStore,
        request: SendRequest,
        api: _Api,
        max_attempts: int,
        stop: threading.Event,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.request = request
        self.options = request.options
        self.api = api
        self.max_attempts = max_attempts
        self.stop = stop
        self.progress = progress
        self.config = request.config
        self.price = price_of(self.config.model, request.prices)
        self.sent = 0  # requests submitted by this run (for --limit)
        self.failures: list[str] = []  # batches that failed, said once all others are done
        self._counter: TokenCounter | None = None
        self.stats = BatchStats(
            total=generate.count_pending(store, self.options.retry_failed)
            + sum(row.requests for row in open_batches(store))
        )

    # -- the loop -------------------------------------------------------------------------------

    #: Checks in a row that may fail for a while (see Unavailable) before the run stops.
    UNAVAILABLE_LIMIT = 5

    def run(self) -> BatchStats:
        self._resume()
        first, pause, unavailable = True, POLL_FIRST, 0
        while True:
            try:
                self._poll()
                unavailable = 0
            except Unavailable as exc:
                unavailable += 1
                if not self.options.wait or unavailable >= self.UNAVAILABLE_LIMIT:
                    raise
                log.warning("%s; trying again in %.0fs", exc, pause)
            if not (self.stop.is_set() or self.stats.cancelled or self.failures):
                if self._submit(retry_failed=first and self.options.retry_failed):
                    pause = POLL_FIRST  # a new batch: look again soon
                first = False
            self._show()
            if self.stop.is_set() or not self.options.wait or not self.stats.waiting:
                break
            self._sleep(pause)
            pause = min(pause * POLL_GROWTH, self.options.poll_interval)
        self.stats.interrupted = self.stop.is_set()
        self.stats.outstanding = len(open_batches(self.store))
        if self.failures:
            raise RunError(
                f"{'; '.join(self.failures)}; every answer that arrived is stored, and its "
                f"requests go out again with `magicoder-data generate {self.store.root} --batch`"
            )
        return self.stats

    def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, showing progress each second; a Ctrl-C ends the wait."""
        self.stats.next_poll = time.monotonic() + seconds
        while (left := self.stats.next_poll - time.monotonic()) > 0 and not self.stop.is_set():
            self.stop.wait(min(1.0, left))
            self._show(refresh=False)

    def _show(self, refresh: bool = True) -> None:
        if refresh:
            rows = batches(self.store)
            self.stats.batches = Counter(r.status for r in rows)
            still = [r for r in rows if r.collected_at is None]
            self.stats.waiting = sum(r.requests for r in still)
            self.stats.provider_done = sum(r.completed for r in still)
            self.stats.provider_failed = sum(r.failed for r in still)
            self.stats.reserved = sum(r.reserved_usd for r in still)
        if self.progress:
            self.progress(self.stats)

    # -- submitting -----------------------------------------------------------------------------

    def _line(self, seed: generate.PendingSeed) -> tuple[bytes, list[dict[str, str]]]:
        messages = self.request.template.messages(seed.snippet, seed.language)
        line = {
            "custom_id": f"seed-{seed.id}",
            "method": "POST",
            "url": ENDPOINT,
            "body": self.request.body(messages, seed.id),
        }
        return json.dumps(line, ensure_ascii=False).encode() + b"\n", messages

    def _submit(self, retry_failed: bool) -> bool:
        """Put the pending seeds in new batches within the limits; whether any was made."""
        limit = self.options.limit
        size = min(self.options.batch_size, MAX_REQUESTS)
        max_bytes = int(self.options.batch_mb * 1_000_000)
        budget = Budget(self.options.max_cost, generate.spend(self.store) + reserved(self.store))
        ids: list[int] = []
        made, nbytes, worst = False, 0, 0.0
        for seed in generate.pending_seeds(self.store, retry_failed):
            if (limit is not None and self.sent >= limit) or self.stop.is_set():
                break
            line, messages = self._line(seed)
            if ids and (len(ids) >= size or nbytes + len(line) > max_bytes):
                self._create(ids, worst)
                made, ids, nbytes, worst = True, [], 0, 0.0
            tokens = self.counter.count(messages)
            most = cost(self.price, tokens, self.config.max_tokens)
            if not budget.reserve(most):
                self.stats.stopped_by_budget = True
                break
            ids.append(seed.id)
            nbytes += len(line)
            worst += most
            self.sent += 1
        if ids:
            self._create(ids, worst)
            made = True
        return made

    @property
    def counter(self) -> TokenCounter:
        """Prompt tokens, for the budget (loaded once, and only when a batch is made)."""
        if self._counter is None:
            self._counter = TokenCounter(self.config.model)
        return self._counter

    def _create(self, seed_ids: list[int], worst: float) -> None:
        """Record a batch of `seed_ids` (before anything reaches the provider), then launch it."""
        key = uuid.uuid4().hex
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO batches (key, endpoint, status, requests, reserved_usd, created_at) "
                "VALUES (?, ?, 'preparing', ?, ?, ?)",
                (key, self.api.endpoint, len(seed_ids), worst, now()),
            )
            conn.executemany(
                "INSERT INTO batch_requests (batch_key, seed_id, state) VALUES (?, ?, 'open')",
                ((key, seed_id) for seed_id in seed_ids),
            )
        self._launch(key, None)

    def _launch(self, key: str, file_id: str | None) -> None:
        """Upload batch `key`'s input file unless `file_id` is known, then create the batch."""
        if file_id is None:
            with tempfile.TemporaryFile() as handle:
                self._write_input(key, handle)
                handle.seek(0)
                uploaded = self.api.call(
                    "upload the batch input file",
                    self.api.client.files.create,
                    file=(f"magicoder-data-{key}.jsonl", handle),
                    purpose="batch",
                )
            file_id = uploaded.id
            self._update(key, input_file_id=file_id)
        batch = self.api.call(
            "create a batch",
            self.api.client.batches.create,
            input_file_id=file_id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={KEY_FIELD: key, RUN_FIELD: str(self.store.root.resolve())[-512:]},
        )
        self._record(key, batch)
        self.stats.submitted += 1

    def _write_input(self, key: str, handle: IO[bytes]) -> None:
        """Batch `key`'s input file: the same bodies, whenever (and however often) it is made."""
        for seed in _seeds_of(self.store, key):
            handle.write(self._line(seed)[0])

    def _resume(self) -> None:
        """Launch the batches an earlier run recorded but did not get to the provider; adopt
        those whose creation went out but whose id was never recorded."""
        unsent = [r for r in open_batches(self.store) if r.batch_id is None]
        found = find_batches(self.api, [r for r in unsent if r.input_file_id is not None])
        for row in unsent:
            if row.key in found:
                self._record(row.key, found[row.key])
            else:
                self._launch(row.key, row.input_file_id)

    # -- polling and collecting -----------------------------------------------------------------

    def _update(self, key: str, **values: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        with self.store.transaction() as conn:
            conn.execute(f"UPDATE batches SET {columns} WHERE key = ?", (*values.values(), key))

    def _record(self, key: str, batch: openai.types.Batch) -> None:
        """Store what the provider says of batch `key` now."""
        counts = batch.request_counts
        errors = [
            f"{e.code or 'error'}: {e.message or ''}{f' (line {e.line})' if e.line else ''}"
            for e in ((batch.errors.data or []) if batch.errors else [])
        ]
        self._update(
            key,
            batch_id=batch.id,
            status=batch.status,
            completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            errors=self.api.redact("; ".join(errors))[:2000] if errors else None,
        )
        if batch.status in ("cancelling", "cancelled"):
            self.stats.cancelled = True

    def _poll(self) -> None:
        """Ask after every open batch; collect those that have ended."""
        for row in open_batches(self.store):
            if row.batch_id is None:
                continue  # a launch failed earlier in this run; the next run retries it
            if row.status not in ENDED:
                batch = self.api.call(
                    "check a batch", self.api.client.batches.retrieve, row.batch_id
                )
                self._record(row.key, batch)
                if batch.status not in ENDED:
                    continue
            self._collect(row.key)

    def _collect(self, key: str) -> None:
        """Store every line of an ended batch's output and error files, then close it."""
        row = next(r for r in batches(self.store) if r.key == key)
        unanswered = set(
            self.store.pairs(
                "SELECT seed_id, 1 FROM batch_requests WHERE batch_key = ? AND state = 'open'",
                (key,),
            )
        )
        for file_id, what in ((row.output_file_id, "output"), (row.error_file_id, "error")):
            if file_id is not None:
                lines = self.api.lines(f"download a batch {what} file", file_id)
                for chunk in _chunks(_parse(lines), CHUNK):
                    fresh = []  # one answer per id this batch still owes: no id twice
                    for line in chunk:
                        if line.seed_id in unanswered:
                            unanswered.discard(line.seed_id)
                            fresh.append(line)
                    self._store(key, fresh)
        # Requests with no line: a batch that failed or was cancelled never ran them (no try);
        # any other batch owes them an answer, so they count as a failed try.
        ran = row.status in ("completed", "expired")
        missing = _failed("missing_line", "the batch ended without a line for this request")
        self._store(key, [_Line(seed_id, missing, True, ran) for seed_id in sorted(unanswered)])
        self._update(key, collected_at=now())
        if row.status == "failed":
            self.failures.append(f"batch {row.batch_id} failed ({row.errors or 'no reason given'})")
        self._forget(row)

    def _store(self, key: str, lines: list[_Line]) -> None:
        """Answers, or retries, for `lines` of batch `key` (its open requests), committed
        together with the batch's cost."""
        if not lines:
            return
        ids = [line.seed_id for line in lines]
        languages = self.store.pairs(
            f"SELECT id, language FROM seeds WHERE id IN ({', '.join('?' * len(ids))})",
            tuple(ids),
        )
        tries = self.store.pairs(
            "SELECT seed_id, COUNT(*) FROM batch_requests WHERE state = 'retry' AND seed_id IN "
            f"({', '.join('?' * len(ids))}) GROUP BY 1",
            tuple(ids),
        )
        answers, states = [], []
        for line in lines:
            attempt = tries.get(line.seed_id, 0) + 1
            retry = line.retryable and attempt < self.max_attempts
            if not line.counted or retry:
                states.append(("retry" if line.counted else "unanswered", key, line.seed_id))
                continue
            line.completion.attempts = attempt
            seed = generate.PendingSeed(line.seed_id, languages[line.seed_id], "")
            row = generate.AnswerRow.of(seed, line.completion, self.config, self.price)
            answers.append(row)
            states.append(("failed" if row.status == "failed" else "answered", key, row.seed_id))
        with self.store.transaction() as conn:
            generate.write_samples(conn, answers)
            conn.executemany(
                "UPDATE batch_requests SET state = ? WHERE batch_key = ? AND seed_id = ?", states
            )
            conn.execute(
                "UPDATE batches SET cost_usd = cost_usd + ? WHERE key = ?",
                (sum(row.cost_usd for row in answers), key),
            )
            conn.executemany(
                "UPDATE batch_requests SET state = 'retried' WHERE seed_id = ? AND state = 'retry'",
                ((row.seed_id,) for row in answers),
            )
        for row in answers:
            self.stats.count(row)

    def _forget(self, row: BatchRow) -> None:
        """Delete a collected batch's files at the provider (every line is stored here)."""
        for file_id in (row.input_file_id, row.output_file_id, row.error_file_id):
            if file_id is None:
                continue
            try:
                self.api.client.files.delete(file_id)
            except openai.APIError as exc:
                log.warning("could not delete file %s at the provider: %s", file_id, exc.message)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 409, 429)


#: The ids requests are sent with (`seed-{id}`), exactly as written: no other spelling.
CUSTOM_ID = re.compile(r"seed-(0|[1-9][0-9]*)")


def _parse(lines: Iterable[str]) -> Iterator[_Line]:
    """Each line of an output or error file as the answer, or failure, of its seed."""
    for raw in lines:
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            named = CUSTOM_ID.fullmatch(data["custom_id"])
            if named is None:  # "seed-05" or "seed-1_0" int() to ids we sent: we sent neither
                raise ValueError(data["custom_id"])
            seed_id = int(named.group(1))
        except (ValueError, KeyError, TypeError):
            log.warning("skipping a batch line that names no seed we sent: %.80r", raw)
            continue
        response, error = data.get("response"), data.get("error")
        text = raw
        if isinstance(response, dict) and response.get("status_code") == 200:
            body = response.get("body")
            try:
                yield _Line(seed_id, completion_of(body, json.dumps(body)), retryable=False)
            except MALFORMED as exc:
                failed = _failed("malformed_response", f"unreadable response: {exc}", text)
                yield _Line(seed_id, failed, retryable=True)
        elif isinstance(response, dict):
            status = int(response.get("status_code") or 0)
            body = response.get("body")
            inner = body.get("error") if isinstance(body, dict) else None
            message = inner.get("message") if isinstance(inner, dict) else None
            failed = _failed(f"http_{status}", f"{status}: {message or 'no message'}", text)
            yield _Line(seed_id, failed, retryable=_retryable_status(status))
        else:
            error = error if isinstance(error, dict) else {}
            code = str(error.get("code") or "batch_error")
            failed = _failed(code, f"{code}: {error.get('message') or 'no message'}", text)
            yield _Line(seed_id, failed, retryable=True, counted=code != "batch_cancelled")


def _failed(kind: str, message: str, raw: str | None = None) -> Completion:
    return Completion(status="failed", error_kind=kind, error=message[:2000], raw=raw)


# -- finding and cancelling ---------------------------------------------------------------------


def find_batches(api: _Api, rows: Iterable[BatchRow]) -> dict[str, openai.types.Batch]:
    """The provider's batches for `rows` (records with no batch id), by key: their creation
    may have gone out before a kill. Looks back through the provider's list (newest first) to
    an hour before the oldest record."""
    wanted = {row.key: row for row in rows}
    if not wanted:
        return {}
    oldest = min(datetime.fromisoformat(row.created_at).timestamp() for row in wanted.values())
    found: dict[str, openai.types.Batch] = {}
    after: str | openai.Omit = openai.omit
    while True:
        page = api.call("list batches", api.client.batches.list, limit=100, after=after)
        for batch in page.data:
            key = (batch.metadata or {}).get(KEY_FIELD)
            if key in wanted:
                found[key] = batch
            if len(found) == len(wanted) or batch.created_at < oldest - 3600:
                return found
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id


def cancel(
    run: str | Path, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY"
) -> list[tuple[str, str]]:
    """Ask the provider to cancel RUN's open batches (at `base_url`, default where they were
    made); (batch id, status) of each.

    It writes nothing, so it never waits for a writer: the `generate` waiting on the batches (or
    the next one) records them and collects what they answered before they stopped.
    """
    with RunStore.open(run, readonly=True) as store:
        rows = open_batches(store)
    if not rows:
        return []
    endpoint = base_url or rows[0].endpoint
    options = generate.GenerateOptions(batch=True, base_url=endpoint, api_key_env=api_key_env)
    backend = BatchBackend.from_options(
        options, options.client_settings(endpoint), os.environ.get(api_key_env, "")
    )
    done: list[tuple[str, str]] = []
    with backend.client() as api:
        lost = find_batches(api, [r for r in rows if r.batch_id is None and r.input_file_id])
        ids = [r.batch_id for r in rows if r.batch_id] + [b.id for b in lost.values()]
        for batch_id in ids:
            batch = api.call("check a batch", api.client.batches.retrieve, batch_id)
            if batch.status not in ENDED | {"cancelling"}:
                batch = api.call("cancel a batch", api.client.batches.cancel, batch_id)
            done.append((batch_id, batch.status))
    return done
