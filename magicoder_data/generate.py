"""The generation stage: one chat completion per seed, stored as it arrives.

Many requests are in flight at once (`concurrency` workers share one client and its limits).
Every response is committed the moment it arrives, so a killed run loses only the requests in
flight, and a re-run sends no request whose response is stored. `--retry-failed` re-sends only
failed and truncated ones. A cost budget stops dispatching before it would be exceeded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from queue import Empty
from typing import Any

from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .config import OPTIONS, GenerateConfig
from .errors import ConfigError, MagicoderDataError, RunError
from .llm import ChatClient, ClientSettings, Completion, Stopped, TokenCounter, cost, price_of
from .parse import main_code, parse_response
from .prompts import PromptTemplate
from .store import RunStore
from .workers import QuietSpawnContext, unblock

log = logging.getLogger("magicoder_data")
STAGE = "generate"
#: Seconds that answers already requested may still arrive, and be stored, after a Ctrl-C.
GRACE = 10.0
#: Set by a stop signal that reaches a worker process before its event loop handles it.
_STOP_BEFORE_LOOP = threading.Event()


@dataclass
class GenerateStats:
    """Live counts of a generate run, for progress displays and the final summary."""

    total: int
    done: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    spent: float = 0.0
    started: float = field(default_factory=time.monotonic)
    stopped_by_budget: bool = False
    interrupted: bool = False  # a stop signal ended dispatching
    abandoned: int = 0  # requests still unanswered when the grace period ended

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


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


def sample_row(
    seed: Mapping[str, Any],
    completion: Completion,
    config: GenerateConfig,
    price: tuple[float, float] | None,
) -> dict[str, Any]:
    """The `samples` row for one seed's completion: parsed into sections when it is complete."""
    status = completion.status
    parsed = parse_response(completion.content or "") if status == "ok" else None
    if status == "ok" and parsed is None:
        status = "unparsable"
    code = main_code(parsed.code_blocks, seed["language"]) if parsed else None
    return {
        "seed_id": seed["id"],
        "status": status,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "cost_usd": cost(price, completion.prompt_tokens, completion.completion_tokens),
        "latency_s": round(completion.latency_s, 4),
        "attempts": completion.attempts,
        "template_sha256": config.template_sha256,
        "request_seed": config.seed + seed["id"],
        "response": completion.raw,
        "error_kind": completion.error_kind,
        "error": completion.error,
        "problem": parsed.problem if parsed else None,
        "solution": parsed.solution if parsed else None,
        "solution_lang": (code.language or code.tag) if code else None,
        "solution_code": code.code if code else None,
    }


Progress = Callable[[GenerateStats], None]


@dataclass(frozen=True)
class Job:
    """Everything one process needs to send its part of the pending seeds (picklable)."""

    run: Path
    config: GenerateConfig
    template: PromptTemplate
    settings: ClientSettings
    api_key: str
    retry_failed: bool = False
    limit: int | None = None
    budget: float | None = None  # US$ this job may spend
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    part: tuple[int, int] = (0, 1)  # (k, n): seeds whose id % n == k
    grace: float = GRACE  # seconds to wait for answers in flight after a stop signal
    stop_signal: int = signal.SIGINT  # worker processes stop on SIGUSR1 from their parent


@pydantic_dataclass(frozen=True, config=OPTIONS)
class SendOptions:
    """How much of the run to send now, and how; none of it changes what a sample says."""

    retry_failed: bool = False  # re-send failed and truncated samples too
    limit: int | None = Field(default=None, ge=0)  # send at most this many requests
    max_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)  # US$ for the whole run
    workers: int = Field(
        default=1, ge=0
    )  # processes; 0: one per 256 in flight, at most one per core
    grace: float = Field(default=GRACE, ge=0)  # seconds answers in flight may arrive after a Ctrl-C


def generate(
    store: RunStore,
    config: GenerateConfig,
    template: PromptTemplate,
    settings: ClientSettings,
    api_key: str,
    options: SendOptions | None = None,
    *,
    prices: Mapping[str, tuple[float, float]] | None = None,
    progress: Progress | None = None,
) -> GenerateStats:
    """Send the pending seeds of `store` and store every response; see the module docstring.

    With `workers` > 1 the seeds are split over that many processes (by id), each with its share
    of the concurrency, the rate limits and the remaining budget: one event loop saturates a core
    at about 700 requests/s.

    A first Ctrl-C (SIGINT) stops dispatching and stores the answers that arrive within `grace`
    seconds; a second one stops waiting. The returned stats then say `interrupted`.
    """
    if store.stage_status("sample") != "complete":
        raise RunError(f"{store.root}: sample seeds first (`magicoder-data sample {store.root}`)")
    options = options or SendOptions()
    limit, max_cost = options.limit, options.max_cost
    workers = options.workers or max(1, min(os.cpu_count() or 1, settings.concurrency // 256))
    if max_cost is not None and price_of(config.model, prices) is None:
        raise ConfigError(
            f"no price known for model {config.model!r}, so --max-cost cannot be kept; "
            f"add one with --price {config.model}=INPUT,OUTPUT (US$ per million tokens)"
        )
    store.begin_stage(STAGE, config.model_dump(mode="json"))
    left = None if max_cost is None else max(0.0, max_cost - store.spend())
    jobs = [
        Job(
            run=store.root,
            config=config,
            template=template,
            settings=replace(
                settings,
                concurrency=-(-settings.concurrency // workers),
                rpm=settings.rpm / workers if settings.rpm else None,
                tpm=settings.tpm / workers if settings.tpm else None,
            ),
            api_key=api_key,
            retry_failed=options.retry_failed,
            limit=None if limit is None else limit // workers + (k < limit % workers),
            budget=None if left is None else left / workers,
            prices=dict(prices or {}),
            part=(k, workers),
            grace=options.grace,
            stop_signal=signal.SIGINT if workers == 1 else signal.SIGUSR1,
        )
        for k in range(workers)
    ]
    stats = run_job(jobs[0], store, progress) if workers == 1 else _run_parallel(jobs, progress)
    if store.count_pending(False) == 0:
        store.finish_stage(STAGE, {"responses": store.status()["stages"][STAGE]["responses"]})
    return stats


def run_job(job: Job, store: RunStore, progress: Progress | None = None) -> GenerateStats:
    """Send one job's seeds from this process."""
    total = store.count_pending(job.retry_failed, job.part)
    stats = GenerateStats(total=min(total, job.limit) if job.limit is not None else total)
    pending = store.pending_seeds(job.retry_failed, job.part)
    if job.limit is not None:
        pending = islice(pending, job.limit)
    _run_async(_send_all(store, job, pending, stats, progress))
    return stats


async def _send_all(
    store: RunStore,
    job: Job,
    pending: Iterator[dict[str, Any]],
    stats: GenerateStats,
    progress: Progress | None,
) -> None:
    config = job.config
    price = price_of(config.model, job.prices)
    budget = Budget(job.budget, 0.0)
    counter = TokenCounter(config.model)
    params: dict[str, Any] = {"temperature": config.temperature, "max_tokens": config.max_tokens}
    if config.top_p is not None:
        params["top_p"] = config.top_p
    if config.grammar is not None:
        params["grammar"] = config.grammar

    unsaved: list[dict[str, Any]] = []
    stopping = _Stopping(job.grace)

    def save() -> None:
        """Commit every response that arrived during this turn of the event loop, together."""
        rows = unsaved[:]
        unsaved.clear()
        store.record_samples(rows)

    async with ChatClient(job.settings, job.api_key, redact=_redactor(job.api_key)) as client:
        client.stopping = stopping.requested.is_set

        async def worker() -> None:
            for seed in pending:
                if stopping.requested.is_set():
                    return
                messages = job.template.messages(seed["snippet"], seed["language"])
                prompt_tokens = counter.count(messages)
                worst = cost(price, prompt_tokens, config.max_tokens)
                if not budget.reserve(worst):
                    stats.stopped_by_budget = True
                    return
                stopping.in_flight += 1
                try:
                    completion = await client.complete(
                        messages,
                        reserve=prompt_tokens + config.max_tokens,
                        seed=config.seed + seed["id"],
                        **params,
                    )
                except Stopped:  # stopped before this request went out: nothing to store
                    budget.settle(worst, 0.0)
                    return
                except BaseException:
                    budget.settle(worst, 0.0)
                    raise
                finally:
                    stopping.in_flight -= 1
                row = sample_row(seed, completion, config, price)
                unsaved.append(row)
                await asyncio.sleep(0)  # let the other answers of this turn of the loop arrive
                if unsaved:  # the first worker back saves them all, before any new request
                    save()
                budget.settle(worst, row["cost_usd"])
                _count(stats, row)
                if progress:
                    progress(stats)

        workers = [asyncio.create_task(worker()) for _ in range(job.settings.concurrency)]
        handled = _handle_signal(job.stop_signal, stopping.signal)
        if _STOP_BEFORE_LOOP.is_set():  # a worker process told to stop while it was starting
            stopping.signal()
        try:
            await stopping.wait(workers, stats)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if unsaved:
                save()
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
    latest = {job.part[0]: GenerateStats(total=0) for job in jobs}
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

    def report(stats: GenerateStats) -> None:
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
    total = GenerateStats(total=0, started=started)
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


def _count(stats: GenerateStats, row: Mapping[str, Any]) -> None:
    stats.done += 1
    stats.statuses[row["status"]] += 1
    if row["error_kind"]:
        stats.failures[row["error_kind"]] += 1
    stats.prompt_tokens += row["prompt_tokens"]
    stats.completion_tokens += row["completion_tokens"]
    stats.spent += row["cost_usd"]


def _redactor(secret: str) -> Callable[[str], str]:
    """Removes the API key (and its long tail) from any text before it is shown or stored."""

    def redact(text: str) -> str:
        if len(secret) >= 8:  # real keys are long; placeholders like "local" are not secrets
            text = text.replace(secret, "***")
        return text

    return redact
