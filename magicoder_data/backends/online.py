"""The online backend: any OpenAI-compatible endpoint, over the official async SDK.

Many requests are in flight at once (`concurrency` workers share one client and its limits).
Every answer is committed the moment it arrives, so a killed run loses only the requests in
flight. A cost budget stops dispatching before it would be exceeded. Past about 700 requests/s
one event loop saturates a core, so the seeds can be split over worker processes (by id), each
with its share of the concurrency, the rate limits, the request limit and the budget.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from typing_extensions import Self

from .. import generate
from ..errors import ConfigError, MagicoderDataError, ProviderError, RunError
from ..llm import ChatClient, ClientSettings, Stopped, TokenCounter, cost, price_of
from ..store import RunStore
from ..workers import QuietSpawnContext, unblock
from .base import Backend, SendRequest

if TYPE_CHECKING:
    from ..generate import AnswerRow, GenerateOptions, GenerateStats, PendingSeed
    from ..stage import Progress, Report

log = logging.getLogger("magicoder_data")
#: Where requests go when no base URL is given (the SDK's default).
OPENAI_URL = "https://api.openai.com/v1"
#: Set by a stop signal that reaches a worker process before its event loop handles it.
_STOP_BEFORE_LOOP = threading.Event()


class OnlineBackend(Backend):
    """An OpenAI-compatible endpoint: `settings.base_url`, else OpenAI's own."""

    name = "openai"

    def __init__(self, settings: ClientSettings, api_key: str) -> None:
        self.settings = settings
        self.api_key = api_key

    @classmethod
    def from_options(cls, options: GenerateOptions, settings: ClientSettings, api_key: str) -> Self:
        """A key is needed, unless a base URL names a server that may not want one."""
        if not api_key:
            if settings.base_url is None:
                raise ConfigError(
                    f"set {options.api_key_env} or pass --api-key-env VAR "
                    "(or --base-url for a server that needs no key)"
                )
            api_key = "no-key"
        return cls(settings, api_key)

    def check(self) -> None:
        _check_reachable(self.settings.base_url or OPENAI_URL)

    def send(
        self, store: RunStore, request: SendRequest, progress: Progress | None = None
    ) -> GenerateStats:
        """With `workers` > 1 the seeds are split over that many processes (by id)."""
        settings = replace(self.settings, model=request.config.model)
        workers = request.options.workers or max(
            1, min(os.cpu_count() or 1, settings.concurrency // 256)
        )
        jobs = _jobs(store, request, settings, self.api_key, workers)
        return run_job(jobs[0], store, progress) if workers == 1 else _run_parallel(jobs, progress)


def _check_reachable(url: str) -> None:
    """Fail at once, not after every seed's retries, when nothing listens at `url`."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=10).close()
    except OSError as exc:
        raise ProviderError(
            f"cannot reach {parts.scheme}://{parts.hostname}:{port} ({exc.strerror or exc}); "
            "check --base-url and the network"
        ) from None


class Budget:
    """Spend so far plus the worst case of requests in flight, kept under `limit`."""

    def __init__(self, limit: float | None, spent: float) -> None:
        self.limit = limit
        self.spent = spent
        self._reserved = 0.0

    def reserve(self, amount: float) -> bool:
        if self.limit is not None and self.spent + self._reserved + amount > self.limit:
            return False
        self._reserved += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        self._reserved -= reserved
        self.spent += actual


@dataclass(frozen=True)
class Job:
    """Everything one process needs to send its part of the pending seeds (picklable)."""

    run: Path
    request: SendRequest
    settings: ClientSettings
    api_key: str
    limit: int | None = None  # requests this job may send
    budget: float | None = None  # US$ this job may spend
    part: tuple[int, int] = (0, 1)  # (k, n): seeds whose id % n == k
    stop_signal: int = signal.SIGINT  # worker processes stop on SIGUSR1 from their parent


def _jobs(
    store: RunStore, request: SendRequest, settings: ClientSettings, api_key: str, workers: int
) -> list[Job]:
    """One job per worker, each with its share of the limits and of the budget left."""
    limit, max_cost = request.options.limit, request.options.max_cost
    left = None if max_cost is None else max(0.0, max_cost - generate.spend(store))
    share = replace(
        settings,
        concurrency=-(-settings.concurrency // workers),
        rpm=settings.rpm / workers if settings.rpm else None,
        tpm=settings.tpm / workers if settings.tpm else None,
    )
    return [
        Job(
            run=store.root,
            request=request,
            settings=share,
            api_key=api_key,
            limit=None if limit is None else limit // workers + (k < limit % workers),
            budget=None if left is None else left / workers,
            part=(k, workers),
            stop_signal=signal.SIGINT if workers == 1 else signal.SIGUSR1,
        )
        for k in range(workers)
    ]


def run_job(job: Job, store: RunStore, progress: Progress | None = None) -> GenerateStats:
    """Send one job's seeds from this process."""
    retry_failed = job.request.options.retry_failed
    total = generate.count_pending(store, retry_failed, job.part)
    stats = generate.GenerateStats(total=min(total, job.limit) if job.limit is not None else total)
    pending = generate.pending_seeds(store, retry_failed, job.part)
    if job.limit is not None:
        pending = islice(pending, job.limit)
    _run_async(_send_all(store, job, pending, stats, progress))
    return stats


class _Sender:
    """What a job's workers share: the budget, the token counter, and the answers not yet saved.

    Each worker takes the next pending seed, sends it and stores its answer; answers that arrive
    in the same turn of the event loop are committed together, before any new request.
    """

    def __init__(
        self,
        store: RunStore,
        job: Job,
        stats: GenerateStats,
        progress: Progress | None,
        stopping: _Stopping,
    ) -> None:
        self.store = store
        self.request = job.request
        self.stats = stats
        self.progress = progress
        self.stopping = stopping
        self.price = price_of(job.request.config.model, job.request.prices)
        self.budget = Budget(job.budget, 0.0)
        self.counter = TokenCounter(job.request.config.model)
        self.unsaved: list[AnswerRow] = []

    def save(self) -> None:
        """Commit every answer that arrived during this turn of the event loop, together."""
        rows = self.unsaved[:]
        self.unsaved.clear()
        generate.record_samples(self.store, rows)

    async def work(self, client: ChatClient, pending: Iterator[PendingSeed]) -> None:
        """One worker: send seeds one after another until none is left or the run stops."""
        for seed in pending:
            if self.stopping.requested.is_set() or not await self._send(client, seed):
                return

    async def _send(self, client: ChatClient, seed: PendingSeed) -> bool:
        """Send one seed and store its answer; False when this worker must stop."""
        config = self.request.config
        messages = self.request.template.messages(seed.snippet, seed.language)
        prompt_tokens = self.counter.count(messages)
        worst = cost(self.price, prompt_tokens, config.max_tokens)
        if not self.budget.reserve(worst):
            self.stats.stopped_by_budget = True
            return False
        self.stopping.in_flight += 1
        try:
            completion = await client.complete(
                self.request.body(messages, seed.id), reserve=prompt_tokens + config.max_tokens
            )
        except Stopped:  # stopped before this request went out: nothing to store
            self.budget.settle(worst, 0.0)
            return False
        except BaseException:
            self.budget.settle(worst, 0.0)
            raise
        finally:
            self.stopping.in_flight -= 1
        row = generate.AnswerRow.of(seed, completion, config, self.price)
        self.unsaved.append(row)
        await asyncio.sleep(0)  # let the other answers of this turn of the loop arrive
        if self.unsaved:  # the first worker back saves them all, before any new request
            self.save()
        self.budget.settle(worst, row.cost_usd)
        self.stats.count(row)
        if self.progress:
            self.progress(self.stats)
        return True


async def _send_all(
    store: RunStore,
    job: Job,
    pending: Iterator[PendingSeed],
    stats: GenerateStats,
    progress: Progress | None,
) -> None:
    stopping = _Stopping(job.request.options.grace)
    sender = _Sender(store, job, stats, progress, stopping)
    async with ChatClient(job.settings, job.api_key, redact=_redactor(job.api_key)) as client:
        client.stopping = stopping.requested.is_set
        workers = [
            asyncio.create_task(sender.work(client, pending))
            for _ in range(job.settings.concurrency)
        ]
        handled = _handle_signal(job.stop_signal, stopping.signal)
        if _STOP_BEFORE_LOOP.is_set():  # a worker process told to stop while it was starting
            stopping.signal()
        try:
            await stopping.wait(workers, stats)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if sender.unsaved:
                sender.save()
            if handled:  # only now: a signal during the last save must not interrupt it
                asyncio.get_running_loop().remove_signal_handler(job.stop_signal)
                if job.stop_signal != signal.SIGINT:
                    signal.signal(job.stop_signal, signal.SIG_IGN)


class _Stopping:
    """How a run stops sending: a first stop signal, or a fatal error, ends dispatching and
    waits `grace` seconds for the requests in flight (their answers are paid for); a second
    signal ends the wait."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.requested = asyncio.Event()
        self.in_flight = 0  # requests sent and not yet answered
        self._quit = asyncio.Event()

    def signal(self) -> None:
        if self.requested.is_set():
            self._quit.set()
            return
        self.requested.set()
        log.warning(
            "stopping: no new requests; storing the answers to the %d in flight that arrive "
            "within %gs (press Ctrl-C again to quit now)",
            self.in_flight,
            self.grace,
        )

    async def wait(self, workers: list[asyncio.Task[None]], stats: GenerateStats) -> None:
        """Until every worker is done, or a stop and its grace period; then raise the fatal
        error of a worker, if one had one."""
        everything = asyncio.gather(*workers)
        everything.add_done_callback(lambda f: f.cancelled() or f.exception())  # read per task
        stopped: asyncio.Future[Any] = asyncio.ensure_future(self.requested.wait())
        await asyncio.wait([everything, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        interrupted = self.requested.is_set()
        if running := [task for task in workers if not task.done()]:
            self.requested.set()  # a fatal error stops dispatching too
            stats.interrupted = interrupted
            rest = asyncio.gather(*running, return_exceptions=True)
            quitting: asyncio.Future[Any] = asyncio.ensure_future(self._quit.wait())
            await asyncio.wait(
                [rest, quitting], timeout=self.grace, return_when=asyncio.FIRST_COMPLETED
            )
            quitting.cancel()
            stats.abandoned = self.in_flight
        for task in workers:
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]


def _handle_signal(signum: int, callback: Callable[[], None]) -> bool:
    """Route `signum` to `callback` in the running loop; False where that is impossible
    (not the main thread, or a platform without loop signal handlers)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signum, callback)
    except (ValueError, RuntimeError, NotImplementedError):
        return False
    return True


def _run_parallel(jobs: list[Job], progress: Progress | None) -> GenerateStats:
    """Run each job in its own process; relay their counts; stop all at the first fatal error."""
    context = QuietSpawnContext()
    queue: Any = context.Queue()
    processes = [
        context.Process(target=_job_process, args=(job, queue, os.getpid()), daemon=True)
        for job in jobs
    ]
    latest = {job.part[0]: generate.GenerateStats(total=0) for job in jobs}
    started = time.monotonic()
    finished: set[int] = set()

    def forward(signum: int, frame: object) -> None:
        """Ctrl-C reaches the workers as SIGUSR1: they stop gracefully, or at once the 2nd time."""
        log.warning("stopping: no new requests; storing the answers in flight")
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGUSR1)

    try:
        previous = signal.signal(signal.SIGINT, forward)
    except ValueError:  # not the main thread: leave SIGINT alone
        previous = None
    try:
        for process in processes:
            process.start()
        while len(finished) < len(jobs):
            try:
                kind, part, payload = queue.get(timeout=0.5)
            except Empty:
                crashed = [p for p in processes if p.exitcode not in (None, 0)]
                if crashed:
                    code = crashed[0].exitcode
                    raise RunError(f"a generate worker died (exit code {code})") from None
                continue
            if kind == "error":
                raise payload
            latest[part] = payload
            if kind == "done":
                finished.add(part)
            if progress:
                progress(_combined(latest.values(), started))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
    return _combined(latest.values(), started)


def _job_process(job: Job, queue: Any, parent: int) -> None:
    """Body of a worker process: run the job, report counts, and die with the parent.

    Ctrl-C reaches the parent, which relays it as SIGUSR1 (see `_run_parallel`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, lambda signum, frame: _STOP_BEFORE_LOOP.set())
    unblock()
    last = 0.0

    def report(stats: Report) -> None:
        nonlocal last
        if os.getppid() != parent:  # orphaned (the parent was killed): stop at once
            os._exit(70)
        if (now := time.monotonic()) - last >= 0.25:
            last = now
            queue.put(("stats", job.part[0], stats))

    try:
        with RunStore.open(job.run, create=False, lock=False) as store:  # the parent holds it
            stats = run_job(job, store, report)
        queue.put(("done", job.part[0], stats))
    except MagicoderDataError as exc:
        queue.put(("error", job.part[0], exc))
    except KeyboardInterrupt:
        pass


def _combined(parts: Iterable[GenerateStats], started: float) -> GenerateStats:
    total = generate.GenerateStats(total=0, started=started)
    for part in parts:
        total.total += part.total
        total.done += part.done
        total.statuses += part.statuses
        total.failures += part.failures
        total.prompt_tokens += part.prompt_tokens
        total.completion_tokens += part.completion_tokens
        total.spent += part.spent
        total.stopped_by_budget |= part.stopped_by_budget
        total.interrupted |= part.interrupted
        total.abandoned += part.abandoned
    return total


def _run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (a faster event loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def _redactor(secret: str) -> Callable[[str], str]:
    """Removes the API key (and its long tail) from any text before it is shown or stored."""

    def redact(text: str) -> str:
        if len(secret) >= 8:  # real keys are long; placeholders like "local" are not secrets
            text = text.replace(secret, "***")
        return text

    return redact
