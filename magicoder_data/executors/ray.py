"""The Ray executor: a job's batches spread over a Ray cluster.

A run's pending rows go through Ray Data: each batch is one row of a dataset read by a
datasource whose read tasks stay on the driver's node (the run's SQLite file lives there), and
`map_batches` runs the job in an actor pool, one actor per CPU of the cluster, each building
the job's worker once (indexes, a sandbox) and keeping it for every batch it gets. Plain
batches (the sampler's shards, a file mode's rows) go to a pool of the same actors, fed a
batch at a time as actors free up: Ray Data fixes a dataset's inputs when it starts, while a
batch made late can use what earlier ones gave (a shard's bound), and a file is never read
whole. Results come back to the driver, which alone writes the run, a batch at a time, so a
killed driver resumes exactly where it stopped; a dead worker costs its batch, done again.

Ray is an optional extra (`pip install 'magicoder-data[ray]'`); nodes need magicoder-data
installed too, as any Ray application's dependencies.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MagicoderDataError, RunError
from .base import BatchJob, Executor, In, Out, StoreRows

if TYPE_CHECKING:
    import pyarrow as pa

    from ..store import RunStore

INSTALL = "pip install 'magicoder-data[ray]'"
#: Times a map goes on after a worker failed (a killed process, a lost node).
RETRIES = 3


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
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # progress shows in the tool's own display
        context.print_on_execution_start = False
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
        *,
        ordered: bool = False,
    ) -> Iterator[tuple[list[In], list[Out]]]:
        ray = self._connect()
        if not isinstance(batches, StoreRows):
            yield from self._pool(ray, job, iter(batches), ordered)
            return
        ray.data.DataContext.get_current().execution_options.preserve_order = ordered
        for attempt in range(RETRIES + 1):
            try:
                yield from self._attempt(ray, job, batches, store)
                return
            except ray.exceptions.RayError as exc:
                _going_on(exc, attempt)

    def _pool(
        self, ray: Any, job: BatchJob[In, Out], batches: Iterator[list[In]], ordered: bool
    ) -> Iterator[tuple[list[In], list[Out]]]:
        """Plain batches over an actor pool, each taken from `batches` when an actor is free,
        after the driver has had every result given before it."""
        worker = ray.remote(num_cpus=1, max_restarts=0)(_worker_class(job))
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors: list[Any] = []
        flight: deque[tuple[Any, list[In], Any]] = deque()  # (result ref, batch, actor)

        def send(batch: list[In], actor: Any, first: bool = False) -> None:
            entry = (actor.work.remote(batch), batch, actor)
            if first:
                flight.appendleft(entry)
            else:
                flight.append(entry)

        try:
            for batch in batches:
                actors.append(worker.remote())
                send(batch, actors[-1])
                if len(actors) == cpus:
                    break
            failures = 0
            while flight:
                if not ordered:
                    ready, _ = ray.wait([ref for ref, _, _ in flight], num_returns=1)
                    flight.rotate(-next(i for i, f in enumerate(flight) if f[0] == ready[0]))
                ref, batch, actor = flight.popleft()
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    _going_on(exc, failures)
                    failures += 1
                    actors.append(worker.remote())
                    send(batch, actors[-1], first=True)
                    continue
                yield batch, results
                if (following := next(batches, None)) is not None:
                    send(following, actor)
        finally:
            for actor in actors:
                ray.kill(actor)

    def _attempt(
        self, ray: Any, job: BatchJob[In, Out], batches: StoreRows[In], store: RunStore | None
    ) -> Iterator[tuple[list[In], list[Out]]]:
        """One pass over the rows still pending (what the driver stored is pending no more)."""
        assert store is not None, "StoreRows are counted in the driver's store"
        ranges = batches.ranges(store)
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
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        with warnings.catch_warnings():  # Ray names no other way to set max_restarts yet
            warnings.simplefilter("ignore", DeprecationWarning)
            mapped = dataset.map_batches(
                _worker_class(job),
                batch_size=1,
                batch_format="pyarrow",
                concurrency=min(cpus, len(ranges)),
                num_cpus=1,
                # A dead worker fails its batch; `map` then goes on with what is left, so Ray
                # need not restart actors (a restart Ray Data's object-store arguments make
                # fragile, and warn about on the terminal).
                max_restarts=0,
            )
        for block in mapped.iter_batches(batch_size=None, batch_format="pyarrow"):
            for pair in block.column("pair").to_pylist():
                yield pickle.loads(pair)


def _store_source(rows: StoreRows[Any], ranges: list[tuple[int, int]]) -> Any:
    """A Ray Data datasource over StoreRows: one read task per key range, each giving one row
    holding the whole batch. Reads run on the driver's node, where the run is. (The class is
    made here so that this module imports without Ray.)"""
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
            return [ReadTask(_reader(rows, after, upto), metadata) for after, upto in ranges]

    return StoreSource()


def _reader(rows: StoreRows[Any], after: int, upto: int) -> Any:
    def read() -> Iterator[pa.Table]:
        import pyarrow as pa

        from ..store import RunStore

        with RunStore.open(Path(rows.run), readonly=True) as store:
            batch = rows.between(store, after, upto)
        yield pa.table({"batch": [pickle.dumps(batch)]})

    return read


class _Worker:
    """One actor's worker: the job built once, then fed one batch per call."""

    job: BatchJob[Any, Any]

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._work = self._stack.enter_context(self.job.open(1))

    def work(self, batch: list[Any]) -> list[Any]:
        """A plain batch's results (`RayExecutor._pool`)."""
        return self._work(batch)

    def __call__(self, table: pa.Table) -> pa.Table:
        """Ray Data's call: rows each holding a pickled batch, to rows of (batch, results)."""
        import pyarrow as pa

        pairs = []
        for data in table.column("batch").to_pylist():
            batch = pickle.loads(data)
            pairs.append(pickle.dumps((batch, self._work(batch))))
        return pa.table({"pair": pairs})

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
    """After a Ray failure: the tool's own error, or Ray's once it has failed too often, is
    raised; else a warning, and the map goes on with what is left."""
    error = _user_error(exc)
    if not isinstance(error, RunError) or failures >= RETRIES:
        raise error from None
    logging.getLogger("magicoder_data").warning(
        "a Ray worker failed (%s); going on with the batches left", _first_line(exc)
    )


def _user_error(exc: BaseException) -> MagicoderDataError:
    """The tool's own error inside a Ray failure (a worker that cannot start its sandbox, say),
    else a RunError saying in one line what Ray reported; stored work is kept either way."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # Ray's task error subclasses the error it carries, but says it with a traceback.
        inner = getattr(current, "cause", None)
        if inner is None and isinstance(current, MagicoderDataError):
            return current
        current = inner or current.__cause__
    return RunError(
        f"the ray executor failed: {_first_line(exc)}; what finished is stored, re-run to resume"
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
