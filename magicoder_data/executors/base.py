"""The executor seam: a stage's CPU-heavy work as a pure function over batches, and what runs it.

A stage hands an executor a `BatchJob` (plain, picklable data: its settings, a benchmark's
items) and its input: `StoreRows`, the run's rows it has still to do, or plain batches. The
executor builds the job's worker once per process (indexes, a sandbox), feeds it batches and
gives the driver back each batch with its results. Only the driver writes the run store, a
batch at a time, so a killed job resumes exactly as it does on one machine; the executor, not
the stage, decides how many processes (or machines) do the work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, TypeVar

from pydantic import Field, model_validator

from ..config import StrictModel
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..store import RunStore

In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")

#: A built worker: one batch in, one result per item out, in order.
BatchFunction = Callable[[list[In]], list[Out]]
ExecutorName = Literal["local", "ray"]


class BatchJob(ABC, Generic[In, Out]):
    """A pure function over batches, shipped to workers as data.

    `open(cores)` builds what every batch needs once per worker and yields the function;
    leaving the context frees it (stops a sandbox). A job whose worker runs `cores` items at
    once itself (a sandbox's processes) sets `parallel`: a local executor then gives one
    worker every core instead of starting a process per core.
    """

    parallel: ClassVar[bool] = False

    @abstractmethod
    def open(self, cores: int) -> AbstractContextManager[BatchFunction[In, Out]]:
        """The worker's batch function, valid inside the context."""


@dataclass(frozen=True)
class StoreRows(Generic[T]):
    """Rows of a run a stage has still to do: `SELECT columns` + `source` (its FROM and WHERE
    clauses, with no parameters), ordered by the integer column `key`, `size` at a time, each
    built by `as_` (a module-level dataclass, so that workers elsewhere can rebuild it)."""

    run: Path
    columns: str
    source: str
    key: str
    size: int
    as_: Callable[..., T]

    def pages(self, store: RunStore) -> Iterator[list[T]]:
        """Pages in key order, each read whole, so the caller may write between them."""
        return store.pages(
            f"SELECT {self.columns} {self.source} AND {self.key} > ? ORDER BY {self.key} LIMIT ?",
            (),
            self.key.split(".")[-1],
            self.size,
            self.as_,
        )

    def ranges(self, store: RunStore) -> list[tuple[int, int]]:
        """(after, upto] key ranges of `size` rows each, for readers running elsewhere."""
        bounds: list[tuple[int, int]] = []
        last, count, after = None, 0, -1
        for key in store.rows(
            f"SELECT {self.key} AS key {self.source} ORDER BY {self.key}", as_=lambda key: key
        ):
            last, count = key, count + 1
            if count == self.size:
                bounds.append((after, key))
                after, count = key, 0
        if count:
            assert last is not None
            bounds.append((after, last))
        return bounds

    def between(self, store: RunStore, after: int, upto: int) -> list[T]:
        """The rows whose key lies in (after, upto]."""
        return list(
            store.rows(
                f"SELECT {self.columns} {self.source} AND {self.key} > ? AND {self.key} <= ? "
                f"ORDER BY {self.key}",
                (after, upto),
                as_=self.as_,
            )
        )


class Executor(ABC):
    """Runs jobs over batches; use as a context manager (a cluster connection lives in it)."""

    name: ClassVar[ExecutorName]

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027  (most executors start nothing to free)
        """Free what the executor started."""

    @abstractmethod
    def map(
        self,
        job: BatchJob[In, Out],
        batches: StoreRows[In] | Iterable[list[In]],
        store: RunStore | None = None,
    ) -> Iterator[tuple[list[In], list[Out]]]:
        """Each batch with its results. `store` is where StoreRows are read from on the driver.
        Batches come back in the input's order, whichever finishes first, so that the driver
        writes the same rows in the same order on any executor. Plain batches are taken from
        their iterable as workers free up, never all at once, so a batch made late sees what
        the driver did with earlier results."""


class ExecutorOptions(StrictModel):
    """The options of a stage whose work an executor runs; they change how, never what."""

    executor: ExecutorName = "local"
    """Where the work runs: local (this machine's processes) or ray (a Ray cluster; needs
    magicoder-data[ray])."""
    ray_address: str | None = Field(default=None)
    """Ray cluster to join (ADDR:PORT, or auto); without it Ray starts on this machine."""

    #: Keys that never enter a run's stored config.
    EXECUTION: ClassVar[frozenset[str]] = frozenset({"executor", "ray_address"})

    @model_validator(mode="after")
    def _ray_is_there(self) -> ExecutorOptions:
        """A missing extra is said before any run is opened."""
        if self.executor == "ray":
            from .ray import require_ray

            require_ray()
        elif self.ray_address is not None:
            raise ConfigError("--ray-address goes with --executor ray")
        return self

    def executor_for(self, workers: int | None = None) -> Executor:
        """The executor these options name; `workers` processes for the local one."""
        if self.executor == "ray":
            from .ray import RayExecutor

            return RayExecutor(self.ray_address)
        from .local import LocalExecutor

        return LocalExecutor(workers or 1)
