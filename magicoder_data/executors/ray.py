"""The Ray executor: a job's batches spread over a Ray cluster.

A run's pending rows go through Ray Data: each batch is one row of a dataset read by a
datasource whose read tasks stay on the driver's node (the run's SQLite file lives there), and
`map_batches` runs the job in an actor pool, one actor per CPU of the cluster, each building
the job's worker once (indexes, a sandbox) and keeping it for every batch it gets. Plain
batches (the sampler's shards, a file mode's rows) go to a pool of the same actors, fed a
batch at a time as actors free up: Ray Data fixes a dataset's inputs when it starts, while a
batch made late can use what earlier ones gave (a shard's bound), and a file is never read
whole. Results come back to the driver in the input's order; it alone writes the run, a
batch at a time, so a killed driver resumes exactly where it stopped. A dead worker costs
the batches in flight: what the driver has not had is sent again.

Ray is an optional extra (`pip install 'magicoder-data[ray]'`); nodes need magicoder-data
installed too, as any Ray application's dependencies.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

from ..errors import ConfigError, MagicoderDataError, RunError
from .base import BatchJob, Executor, In, Out, StoreRows

if TYPE_CHECKING:
    import pyarrow as pa

    from ..store import RunStore

INSTALL = "pip install 'magicoder-data[ray]'"
#: Times a map goes on after a worker failed (a killed process, a lost node).
RETRIES = 3
#: Batches an actor pool takes per actor ahead of the oldest one the driver still waits for.
WINDOW = 2


def require_ray() -> Any:
    """The ray module, or a ConfigError naming the install command."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the tool sends no telemetry
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


class RayExecutor(Executor):
    """Jobs as Ray Data `map_batches` over a cluster (joined at `address`, else started here)."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._started = False

    def _connect(self) -> Any:
        ray = require_ray()
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address or "local",  # not a cluster started here earlier
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"reach the Ray cluster at {self.address}" if self.address else "start Ray"
                raise ConfigError(f"cannot {where}: {_first_line(exc)}") from None
            self._started = True
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        with warnings.catch_warnings():  # its first use warns of a setting nobody made
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # progress shows in the tool's own display
        context.print_on_execution_start = False
        context.raise_original_map_exception = True  # the tool's own error, not Ray's wrapper
        context.execution_options.preserve_order = True  # the driver writes in input order
        return ray

    def close(self) -> None:
        if self._started:
            require_ray().shutdown()
            self._started = False

    def map(
        self,
        job: BatchJob[In, Out],
        batches: StoreRows[In] | Iterable[list[In]],
        store: RunStore | None = None,
    ) -> Iterator[tuple[list[In], list[Out]]]:
        ray = self._connect()
        if not isinstance(batches, StoreRows):
            yield from self._pool(ray, job, iter(batches))
            return
        assert store is not None, "StoreRows are counted in the driver's store"
        ranges = dict(enumerate(batches.ranges(store)))
        for attempt in range(RETRIES + 1):
            try:
                for number, pair in self._attempt(ray, job, batches, ranges):
                    del ranges[number]  # the driver has it: never sent again
                    yield pair
                return
            except ray.exceptions.RayError as exc:
                _going_on(exc, attempt)

    def _pool(
        self, ray: Any, job: BatchJob[In, Out], batches: Iterator[list[In]]
    ) -> Iterator[tuple[list[In], list[Out]]]:
        """Plain batches over an actor pool, given back in order. A free actor takes the next
        batch at once (up to WINDOW batches per actor past the oldest one the driver waits
        for), so a slow batch holds up the driver, not the other workers."""
        worker = ray.remote(num_cpus=1, max_restarts=0)(_worker_class(job))
        cpus = _cpus(ray)
        flight: deque[_Flight[In, Out]] = deque()  # in the input's order
        actors: list[Any] = []
        failures = 0

        def refill() -> None:
            busy = {id(f.actor) for f in flight if f.results is None}
            idle = [actor for actor in actors if id(actor) not in busy]
            while len(flight) < WINDOW * cpus and (idle or len(actors) < cpus):
                if (batch := next(batches, None)) is None:
                    return
                if not idle:
                    actors.append(worker.remote())
                actor = idle.pop() if idle else actors[-1]
                flight.append(_Flight(batch, actor, actor.work.remote(batch)))

        try:
            refill()
            while flight:
                if (results := flight[0].results) is not None:
                    yield flight.popleft().batch, results
                    refill()  # after the driver has taken it: a shard's bound is tighter
                    continue
                running = [f.ref for f in flight if f.results is None]
                ready = ray.wait(running, num_returns=1)[0][0]
                entry = next(f for f in flight if f.ref == ready)
                try:
                    entry.results = ray.get(ready)
                except ray.exceptions.RayError as exc:
                    _going_on(exc, failures)
                    failures += 1
                    ray.kill(entry.actor)  # it may live on, holding the CPU its successor needs
                    successor = worker.remote()
                    actors[actors.index(entry.actor)] = successor
                    entry.actor, entry.ref = successor, successor.work.remote(entry.batch)
                    continue
                if entry is not flight[0]:
                    refill()
        finally:
            for actor in actors:
                ray.kill(actor)

    def _attempt(
        self,
        ray: Any,
        job: BatchJob[In, Out],
        batches: StoreRows[In],
        ranges: dict[int, tuple[int, int]],
    ) -> Iterator[tuple[int, tuple[list[In], list[Out]]]]:
        """One pass over the key ranges the driver has not had yet, each with its number."""
        if not ranges:
            return
        # One reader at a time: a read is a few milliseconds, and each concurrent one would
        # start a Python worker process of its own on the driver's node.
        dataset = ray.data.read_datasource(
            _store_source(batches, ranges),
            override_num_blocks=len(ranges),
            num_cpus=0,
            concurrency=1,
        )
        with warnings.catch_warnings():  # Ray names no other way to set max_restarts yet
            warnings.simplefilter("ignore", DeprecationWarning)
            mapped = dataset.map_batches(
                _worker_class(job),
                batch_size=1,
                batch_format="pyarrow",
                concurrency=min(_cpus(ray), len(ranges)),
                num_cpus=1,
                # A dead worker fails its batch; `map` then goes on with what is left, so Ray
                # need not restart actors (a restart Ray Data's object-store arguments make
                # fragile, and warn about on the terminal).
                max_restarts=0,
            )
        for block in mapped.iter_batches(batch_size=None, batch_format="pyarrow"):
            numbers, pairs = block.column("number").to_pylist(), block.column("pair").to_pylist()
            for number, pair in zip(numbers, pairs, strict=True):
                yield number, pickle.loads(pair)


def _cpus(ray: Any) -> int:
    """The cluster's CPUs: one actor each."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _store_source(rows: StoreRows[Any], ranges: dict[int, tuple[int, int]]) -> Any:
    """A Ray Data datasource over StoreRows: one read task per key range, each giving one row
    holding the range's number and its whole batch. Reads run on the driver's node, where the
    run is. (The class is made here so that this module imports without Ray.)"""
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class StoreSource(Datasource):  # type: ignore[misc]
        supports_distributed_reads = False  # the run's database is on the driver's disk

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(
            self,
            parallelism: int,
            per_task_row_limit: int | None = None,
            data_context: Any = None,
        ) -> list[ReadTask]:
            metadata = BlockMetadata(num_rows=1, size_bytes=None, exec_stats=None, input_files=None)
            return [
                ReadTask(_reader(rows, number, after, upto), metadata)
                for number, (after, upto) in ranges.items()
            ]

    return StoreSource()


def _reader(rows: StoreRows[Any], number: int, after: int, upto: int) -> Any:
    def read() -> Iterator[pa.Table]:
        import pyarrow as pa

        from ..store import RunStore

        with RunStore.open(Path(rows.run), readonly=True) as store:
            batch = rows.between(store, after, upto)
        yield pa.table({"number": [number], "batch": [pickle.dumps(batch)]})

    return read


@dataclass
class _Flight(Generic[In, Out]):
    """A batch sent to an actor, and its results once they are in."""

    batch: list[In]
    actor: Any
    ref: Any
    results: list[Out] | None = None


class _Worker:
    """One actor's worker: the job built once, then fed one batch per call."""

    job: BatchJob[Any, Any]

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._failed: MagicoderDataError | None = None
        try:
            self._work = self._stack.enter_context(self.job.open(1))
        except MagicoderDataError as exc:
            # Said by the first call: Ray reports an actor that fails to start without it.
            self._failed = exc

    def work(self, batch: list[Any]) -> list[Any]:
        """A plain batch's results (`RayExecutor._pool`)."""
        if self._failed is not None:
            raise self._failed
        return self._work(batch)

    def __call__(self, table: pa.Table) -> pa.Table:
        """Ray Data's call: rows each holding a pickled batch, to rows of (batch, results)."""
        import pyarrow as pa

        pairs = [
            pickle.dumps((b, self.work(b))) for b in map(pickle.loads, table["batch"].to_pylist())
        ]
        return pa.table({"number": table["number"], "pair": pairs})

    def __del__(self) -> None:
        # `ray.remote` subclasses this class for its handle, whose instances never ran
        # `__init__` on the driver.
        if stack := getattr(self, "_stack", None):
            stack.close()


def _worker_class(job: BatchJob[Any, Any]) -> type[_Worker]:
    """A worker class holding `job`: shipped with the class, so that Ray can restart a dead
    actor from the class alone (constructor arguments would live in the object store, which
    a failure may take with it)."""
    return type("Worker", (_Worker,), {"job": job})


def _going_on(exc: BaseException, failures: int) -> None:
    """After a Ray failure: the tool's own error (a corrupt shard, no sandbox on a node) is
    raised as it is, Ray's once it has failed too often as one line; else a warning, and the
    map goes on with what is left."""
    if (error := _own_error(exc)) is not None:
        raise error from None
    if failures >= RETRIES:
        raise RunError(
            f"the ray executor failed: {_first_line(exc)}; what finished is stored, "
            "re-run to resume"
        ) from None
    logging.getLogger("magicoder_data").warning(
        "a Ray worker failed (%s); going on with the batches left", _first_line(exc)
    )


def _own_error(exc: BaseException) -> MagicoderDataError | None:
    """The tool's own error inside a Ray failure, if it is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # Ray's task error subclasses the error it carries, but says it with a traceback.
        inner = getattr(current, "cause", None)
        if inner is None and isinstance(current, MagicoderDataError):
            return current
        current = inner or current.__cause__
    return None


def _first_line(exc: BaseException) -> str:
    """What went wrong, in one line: the error a task raised (Ray's own first line only
    names the task), else Ray's first line, without its terminal colours."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
