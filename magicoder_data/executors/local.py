"""The local executor: this machine's processes, as every stage ran before executors existed.

A job runs in this process when one worker suffices (or when its worker is parallel itself, a
sandbox with a process per core); otherwise each batch is split over `workers` spawned
processes that built the job's worker once, when they started.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from ..workers import QuietSpawnContext, ignore_sigint
from .base import BatchFunction, BatchJob, Executor, In, Out, StoreRows

if TYPE_CHECKING:
    from ..store import RunStore

#: The job's worker in a pool process, built by `_start`, and what keeps it open.
_WORKER: BatchFunction[Any, Any] | None = None
_OPEN = ExitStack()
#: Chunks each worker gets of a batch, so that a slow item holds up little.
CHUNKS_PER_WORKER = 4


def _start(job: BatchJob[Any, Any]) -> None:
    """Pool initializer: build the job's worker once (it lives as long as the process)."""
    global _WORKER
    ignore_sigint()
    _WORKER = _OPEN.enter_context(job.open(1))


def _call(batch: list[Any]) -> list[Any]:
    assert _WORKER is not None
    return _WORKER(batch)


class LocalExecutor(Executor):
    """Batches in order, on this machine: in this process, or split over `workers` processes."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)

    def map(
        self,
        job: BatchJob[In, Out],
        batches: StoreRows[In] | Iterable[list[In]],
        store: RunStore | None = None,
    ) -> Iterator[tuple[list[In], list[Out]]]:
        if isinstance(batches, StoreRows):
            assert store is not None, "StoreRows are read from the driver's store"
            batches = batches.pages(store)
        if job.parallel or self.workers == 1:
            with job.open(self.workers if job.parallel else 1) as work:
                for batch in batches:
                    yield batch, work(batch)
            return
        # spawn, not fork: forking a process that runs pyarrow's threads can deadlock.
        with QuietSpawnContext().Pool(self.workers, _start, (job,)) as pool:
            for batch in batches:
                size = max(1, -(-len(batch) // (self.workers * CHUNKS_PER_WORKER)))
                chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
                yield batch, [out for chunk in pool.map(_call, chunks) for out in chunk]
