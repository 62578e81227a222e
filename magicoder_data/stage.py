"""The one contract every stage follows, so the CLI, `run_pipeline`, export and the funnel can
treat stages alike.

A stage has a `name`, a pydantic `Config` (the options of its command and the keys of its
section in a run config), the stages it `requires`, and one `run(store, config, progress)`
that returns a report. The ordered list of stages is `magicoder_data.pipeline.STAGES`; what
depends on the order (which drops remove a sample, the funnel's columns, what export checks)
is derived from that list, never written out again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from .config import StrictModel, build
from .errors import RunError

if TYPE_CHECKING:
    from .backends.batch import BatchRow
    from .executors import StoreRows
    from .generate import Usage
    from .store import RunStore, StageRecord

C = TypeVar("C", bound=BaseModel)
R = TypeVar("R", bound="Report")
T = TypeVar("T")


class Report(ABC):
    """What a stage did; `line()` says it in one line, for logs, progress and the CLI."""

    @abstractmethod
    def line(self) -> str: ...


@dataclass
class DropReport(Report):
    """What a filtering stage dropped, per reason, over the whole run."""

    stage: str
    dropped: Counter[str]

    def line(self) -> str:
        detail = ", ".join(f"{r} {n:,}" for r, n in sorted(self.dropped.items())) or "none"
        return f"{self.stage}: {sum(self.dropped.values()):,} samples dropped ({detail})"


@dataclass
class StageStatus:
    """Where one stage stands: its state and summary, drops per language and reason, and what
    the stage adds: rows kept per language, documents read (sample), usage (generate)."""

    status: str
    started_at: str
    finished_at: str | None
    summary: dict[str, Any] | None
    drops: dict[str, dict[str, int]]
    rows: dict[str, int] | None = None
    documents: dict[str, dict[str, int]] = field(default_factory=dict)
    usage: Usage | None = None
    #: One line the stage adds below its table (verify: its verdicts and pass rate).
    note: str | None = None
    #: The run's batches (generate through the Batch API), oldest first.
    batches: list[BatchRow] = field(default_factory=list)

    @classmethod
    def of(cls, store: RunStore, record: StageRecord) -> StageStatus:
        """A stage's bookkeeping and its drops in the ledger."""
        return cls(
            record.status,
            record.started_at,
            record.finished_at,
            record.summary,
            store.drop_counts(record.stage),
        )

    def as_json(self) -> dict[str, Any]:
        """The shape `status --json` prints."""
        data: dict[str, Any] = {
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "summary": self.summary,
            "drops": self.drops,
            "documents": self.documents,
        }
        if self.rows is not None:
            data["rows"] = self.rows
        if self.usage is not None:
            data |= {
                "failures": self.usage.failures,
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "cost_usd": round(self.usage.cost_usd, 6),
                "responses": self.usage.responses,
            }
        if self.batches:
            data["batches"] = [asdict(batch) for batch in self.batches]
        return data


class FileMode(StrictModel):
    """The options every file mode has (`--input F --output F`: any dataset, not a run);
    a stage's `FileOptions` adds the fields it reads."""

    input: str
    """A jsonl/parquet file or Hub dataset instead of a RUN."""
    output: Path
    """JSONL output for --input."""
    language_field: str | None = None
    """Per-row language field."""
    language: str = "python"
    """Language when rows do not say."""
    overwrite: bool = False
    """Replace an existing output even if magicoder-data did not write it."""


#: Called with the stage's report so far, as often as the stage likes; displays rate-limit it.
Progress = Callable[[Report], None]


class Stage(ABC, Generic[C, R]):
    """One step of the pipeline. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    #: The stage's settings: its command's options and its section in a run config.
    Config: ClassVar[type[BaseModel]]
    #: Stages that must have stored work before this one can run.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Whether it writes the run (and so holds the run's writer lock while it runs).
    writes: ClassVar[bool] = True
    #: Whether its drops remove a sample from the dataset (clean, decontaminate).
    filters: ClassVar[bool] = False
    #: Rows `magicoder-data dump RUN NAME` writes: (NAME, function of the store) pairs.
    dumps: ClassVar[tuple[tuple[str, Callable[[RunStore], Iterator[Any]]], ...]] = ()
    #: A copy-pasteable command line, shown in the command's help.
    example: ClassVar[str] = ""
    #: The funnel column it adds: samples left after it, per language.
    funnel: ClassVar[str | None] = None
    #: A query that finds a row only once the stage has stored work: from then on its stored
    #: config may not change.
    progress_sql: ClassVar[str | None] = None
    #: A condition on kept samples (alias x) that this stage has not handled yet: what it reads,
    #: and what `unseen` counts once it has finished and more samples were generated.
    pending_sql: ClassVar[str | None] = None
    #: Options of the stage's file mode (`--input F --output F`: any dataset instead of a run),
    #: for stages that have one; `run_file` does it.
    FileOptions: ClassVar[type[BaseModel] | None] = None

    @abstractmethod
    def run(self, store: RunStore, config: C, progress: Progress | None = None) -> R:
        """Do (or resume) the stage's work on `store`; idempotent."""

    def run_file(self, config: C, files: BaseModel) -> str:
        """The stage over any dataset (see `FileOptions`); returns what it did, in one line."""
        raise NotImplementedError(f"{self.name} has no file mode")

    def config(self, values: dict[str, Any]) -> C:
        """`values` validated into this stage's Config (InvalidOption names a bad key)."""
        return build(self.Config, values)  # type: ignore[return-value]

    def check_ready(self, store: RunStore) -> None:
        """Refuse to run before the stages this one reads from."""
        for needed in self.requires:
            if store.stage_status(needed) is None:
                raise RunError(
                    f"{store.root}: run `magicoder-data {needed} {store.root}` first; "
                    f"{self.name} reads what it stores"
                )

    def expected(self, store: RunStore) -> bool:
        """Whether the run's samples call for this stage, so that exporting without it
        deserves a warning (verify, say, only once samples came with tests)."""
        return True

    def check_new(self, config: C) -> None:
        """Refuse, before RUN is created, a config that cannot start a new run."""

    def unseen(self, store: RunStore) -> int:
        """Samples stored upstream after this stage finished (so it must run again)."""
        if self.pending_sql is None or store.stage_status(self.name) != "complete":
            return 0
        return int(
            store.value(
                f"SELECT COUNT(*) FROM samples x WHERE {kept_sql(self.name)} AND {self.pending_sql}"
            )
        )

    def todo(self, store: RunStore, columns: str, size: int, as_: Callable[..., T]) -> StoreRows[T]:
        """The kept samples this stage has not handled yet, by seed id, `size` at a time, as
        `as_` of `columns` (of `samples x` joined with `seeds s`): what its executor reads."""
        from .executors import StoreRows

        return StoreRows(
            store.root.resolve(),
            columns,
            "FROM samples x JOIN seeds s ON s.id = x.seed_id "
            f"WHERE {kept_sql(self.name)} AND {self.pending_sql}",
            "x.seed_id",
            size,
            as_,
        )

    def funnel_counts(self, store: RunStore) -> dict[str, int]:
        """Per language, how many samples are left after this stage (for `funnel`); a
        filtering stage's default: parsed samples that neither it nor an earlier one dropped."""
        from .store import dropped_by

        if not self.filters:
            return {}
        return store.pairs(
            "SELECT s.language, COUNT(*) FROM samples x JOIN seeds s ON s.id = x.seed_id "
            f"WHERE {kept_sql(self.name)} AND x.seed_id NOT IN {dropped_by(self.name)} "
            "GROUP BY 1"
        )

    def dropped(self, store: RunStore) -> Counter[str]:
        """What the stage discarded, per reason (its drops in the ledger)."""
        return store.drop_totals(self.name)

    def status(self, store: RunStore, record: StageRecord) -> StageStatus:
        """Where the stage stands, for `status`; stages add what they keep (rows, spend...).
        A filtering stage's rows are the samples it left, per language."""
        base = StageStatus.of(store, record)
        if self.filters:
            base.rows = self.funnel_counts(store)
        return base


def stage_named(name: str) -> Stage[Any, Any]:
    """The stage called `name`; ConfigError listing the stages for any other name."""
    from .errors import ConfigError
    from .pipeline import STAGES

    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown stage {name!r}; use {', '.join(s.name for s in STAGES)}")


def filters_before(name: str | None) -> tuple[str, ...]:
    """Names of the filtering stages that come before `name` (all of them for None)."""
    from .pipeline import STAGES

    names: list[str] = []
    for stage in STAGES:
        if stage.name == name:
            break
        if stage.filters:
            names.append(stage.name)
    return tuple(names)


def kept_sql(before: str | None = None) -> str:
    """SQL condition on samples (alias x): parsed, and dropped by no filtering stage that comes
    before `before` (by none at all for None)."""
    from .store import dropped_by

    return f"x.status = 'ok' AND x.seed_id NOT IN {dropped_by(*filters_before(before))}"
