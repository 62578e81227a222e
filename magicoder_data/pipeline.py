"""The pipeline: the ordered stages, and running any of them (or all) from Python.

`STAGES` is the one place the order is written. `run_stage("clean", "runs/demo", {...})` runs
one stage on a run directory, holding the run's writer lock while it writes;
`run_pipeline("config.yaml")` (or a dict of the YAML's shape, or a `PipelineConfig`) runs every
stage that has a section, in order, each resuming where it stopped and doing nothing when done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .clean import Clean
from .config import invalid_option
from .decontam.stage import Decontaminate
from .errors import ConfigError, InvalidOption
from .export.stage import Export, Push
from .generate import Generate
from .lintseq.stage import LintSeq
from .seeds import Sample
from .stage import Progress, Report, Stage, StageStatus, stage_named
from .store import DB_NAME, RunStore
from .verify import Verify

if TYPE_CHECKING:
    from .export.stage import PushRecord

#: Every stage, in the order a run goes through them.
STAGES: tuple[Stage[Any, Any], ...] = (
    Sample(),
    Generate(),
    Clean(),
    Verify(),
    Decontaminate(),
    LintSeq(),
    Export(),
    Push(),
)


class _PipelineBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A run config: `run` (the run directory) and one optional section per stage, each that
#: stage's Config (see `load_pipeline`).
PipelineConfig: type[BaseModel] = create_model(
    "PipelineConfig",
    __base__=_PipelineBase,
    run=(Path, ...),
    **{stage.name: (stage.Config | None, None) for stage in STAGES},  # type: ignore[call-overload]
)


@contextmanager
def open_run(stage: Stage[Any, Any], run: str | Path, queue: bool = False) -> Iterator[RunStore]:
    """RUN opened as `stage` needs it: read-only for readers, else holding the writer lock
    (created only by the first stage)."""
    if not stage.writes:
        store = RunStore.open(run, readonly=True)
    else:
        store = RunStore.open(run, create=stage is STAGES[0], wait=queue)
    with store:
        yield store


def run_stage(
    name: str,
    run: str | Path,
    config: BaseModel | dict[str, Any] | None = None,
    progress: Progress | None = None,
    *,
    queue: bool = False,
) -> Report:
    """Run one stage on RUN with its Config (a model or a dict of its keys); returns its report.

    The config is validated before RUN is opened, so a bad setting changes nothing.
    """
    stage = stage_named(name)
    if not isinstance(config, stage.Config):
        config = stage.config(dict(config or {}))
    if stage is STAGES[0] and not (Path(run) / DB_NAME).exists():
        stage.check_new(config)
    with open_run(stage, run, queue) as store:
        return stage.run(store, config, progress)  # type: ignore[no-any-return]


@dataclass
class PipelineReport:
    """Each stage's report, in order; `interrupted` when a stage stopped early (Ctrl-C)."""

    run: Path
    reports: dict[str, Report] = field(default_factory=dict)
    interrupted: bool = False


def load_pipeline(
    config: BaseModel | dict[str, Any] | str | Path, source: str | None = None
) -> BaseModel:
    """A PipelineConfig from itself, a dict of the YAML's shape, or a YAML file's path.

    Each section is validated strictly by its stage's Config; errors name the setting as the
    file spells it (`generate.timeout`), and the file (`source`, or the path given).
    """
    if isinstance(config, str | Path) and source is None:  # a path (a file's text is a dict)
        source, config = str(config), read_yaml(Path(config))
    if isinstance(config, PipelineConfig):
        return config
    where = f" in {source}" if source else ""
    if not isinstance(config, dict) or not isinstance(config.get("run"), str | Path):
        raise ConfigError(f"{source or 'the run config'} needs `run: DIR` naming the run directory")
    names = [stage.name for stage in STAGES]
    for key in config:
        if key != "run" and key not in names:
            raise ConfigError(f"unknown key {key!r}{where}; use run, {', '.join(names)}")
    sections = {
        stage.name: _section(stage, config[stage.name], where)
        for stage in STAGES
        if stage.name in config
    }
    if not sections:
        raise ConfigError(
            f"{source or 'the run config'} names no stage; add sections such as `sample:` "
            "and `generate:`"
        )
    return PipelineConfig(run=Path(config["run"]), **sections)  # type: ignore[call-arg]


#: Keys any section may hold beside its stage's settings: how the command line shows progress
#: (`plain`) and whether it queues behind another writer (`queue`). The library checks and
#: otherwise ignores them; `display_settings` reads them.
DISPLAY_KEYS = ("plain", "queue")


def display_settings(config: dict[str, Any]) -> dict[str, bool]:
    """Which DISPLAY_KEYS any section of a run config's data sets to true."""
    sections = [s for s in config.values() if isinstance(s, dict)]
    return {key: any(s.get(key) is True for s in sections) for key in DISPLAY_KEYS}


def _section(stage: Stage[Any, Any], section: Any, where: str) -> BaseModel:
    """One section as its stage's Config, checked strictly (as JSON is: `"5"` is no integer)."""
    import json

    section = {} if section is None else section
    if not isinstance(section, dict):
        raise ConfigError(
            f"section {stage.name}{where} must hold settings (`key: value` lines), not {section!r}"
        )
    for key in DISPLAY_KEYS:
        if key in section and not isinstance(section[key], bool):
            raise ConfigError(
                f"invalid setting {stage.name}.{key}{where}: input should be a valid boolean "
                f"(got {section[key]!r})"
            )
    section = {k: v for k, v in section.items() if k not in DISPLAY_KEYS}
    try:
        return stage.Config.model_validate_json(json.dumps(section, default=str), strict=True)
    except InvalidOption as exc:
        raise _in_section(stage, exc, where) from None
    except ValidationError as exc:
        unknown = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
        if unknown:  # a misspelt key, before the key it was meant to be is missing
            key = f"{stage.name}.{'.'.join(map(str, unknown[0]['loc']))}"
            known = ", ".join(sorted(stage.Config.model_fields))
            raise ConfigError(f"unknown setting {key}{where}; known: {known}") from None
        first, problem = exc.errors()[0], invalid_option(exc)
        key = f"{stage.name}.{problem.field}"
        if first["type"] == "missing":
            raise ConfigError(f"section {stage.name}{where} needs `{problem.field}`") from None
        raise ConfigError(f"invalid setting {key}{where}: {problem.reason}") from None


def _in_section(stage: Stage[Any, Any], exc: InvalidOption, where: str) -> ConfigError:
    """A bad setting named as a run config spells it (`generate.timeout`), with its file."""
    if not exc.field:  # the settings disagree with each other
        return ConfigError(f"section {stage.name}{where}: {exc.reason}")
    return ConfigError(f"invalid setting {stage.name}.{exc.field}{where}: {exc.reason}")


#: The largest run config read, bytes: a config is a page of settings, never data.
MAX_CONFIG = 1 << 20


def read_yaml(path: Path) -> Any:
    """A YAML file's data; ConfigError for a file that is missing, is not a regular file, is
    larger than MAX_CONFIG, is not YAML, or uses aliases (a kilobyte of nested aliases expands
    to gigabytes: no setting needs one)."""
    import yaml

    try:
        if path.exists() and not path.is_file():
            raise ConfigError(f"config file {path} is not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG + 1)
        if len(data) > MAX_CONFIG:
            raise ConfigError(f"config file {path} is larger than {MAX_CONFIG >> 20} MiB")
        text = data.decode("utf-8")
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, yaml.SafeLoader)):
            raise ConfigError(f"{path} uses YAML aliases (*name), which run configs do not take")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a run config") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot read config file {path}: {reason}") from None


def run_pipeline(
    config: BaseModel | dict[str, Any] | str | Path,
    progress: Progress | None = None,
    *,
    queue: bool = False,
    on_stage: Callable[[str], None] | None = None,
    on_report: Callable[[str, Report], None] | None = None,
    source: str | None = None,
    execution: dict[str, Any] | None = None,
) -> PipelineReport:
    """Run every stage that has a section, in order; each resumes, and is a no-op when done.

    Every section is validated before the first stage starts. `on_stage(name)` is called as
    each stage begins, `on_report(name, report)` as it ends. Stops after a stage that was
    interrupted, or that left work running elsewhere (batches that `generate` did not wait
    for). `source` names the config in errors when it is given as a dict. `execution`
    (`executor`, `ray_address`) goes to every stage an executor runs, over its section.
    """
    pipeline = load_pipeline(config, source)
    if execution:
        pipeline = _with_execution(pipeline, execution)
    where = f" in {source or config}" if source or isinstance(config, str | Path) else ""
    report = PipelineReport(Path(pipeline.run))  # type: ignore[attr-defined]
    for stage in STAGES:
        section = getattr(pipeline, stage.name)
        if section is None:
            continue
        if on_stage:
            on_stage(stage.name)
        try:
            done = run_stage(stage.name, report.run, section, progress, queue=queue)
        except InvalidOption as exc:
            raise _in_section(stage, exc, where) from None
        report.reports[stage.name] = done
        if on_report:
            on_report(stage.name, done)
        if getattr(done, "interrupted", False):
            report.interrupted = True
            break
        if getattr(done, "outstanding", 0):  # generate --no-wait: batches still running
            break
    return report


def _with_execution(pipeline: BaseModel, execution: dict[str, Any]) -> BaseModel:
    """`pipeline` with the executor's options set in every section that takes them."""
    from .executors import ExecutorOptions

    sections: dict[str, Any] = {}
    for stage in STAGES:
        section = getattr(pipeline, stage.name)
        if isinstance(section, ExecutorOptions):
            given = section.model_dump(exclude_unset=True)
            section = stage.config({**given, **execution})
        sections[stage.name] = section
    return PipelineConfig(run=pipeline.run, **sections)  # type: ignore[attr-defined,call-arg]


def funnel(store: RunStore, status: RunStatus | None = None) -> dict[str, dict[str, int]]:
    """Per language, what is left after each stage that ran: seeds, parsed, cleaned, ...
    (taken from `status` when given: its stages' rows are these counts)."""
    columns = {
        stage.funnel: (
            status.stages[stage.name].rows or {} if status else stage.funnel_counts(store)
        )
        for stage in STAGES
        if stage.funnel
        and (stage.name in status.stages if status else store.stage_status(stage.name))
    }
    languages: dict[str, dict[str, int]] = {}
    for column, counts in columns.items():
        for language, count in counts.items():
            languages.setdefault(language, dict.fromkeys(columns, 0))[column] = count
    return dict(sorted(languages.items()))


@dataclass
class RunStatus:
    """Every stage that ran, and where the run was published."""

    run: str
    stages: dict[str, StageStatus]
    pushes: list[PushRecord]

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "run": self.run,
            "stages": {name: info.as_json() for name, info in self.stages.items()},
            "pushes": [asdict(push) for push in self.pushes],
        }


def run_status(store: RunStore) -> RunStatus:
    """Counts per stage: status, rows per language, drops per language and reason."""
    from .export.stage import pushes

    order = {stage.name: stage for stage in STAGES}
    stages = {
        record.stage: order[record.stage].status(store, record)
        if record.stage in order
        else StageStatus.of(store, record)
        for record in store.stage_records()
    }
    return RunStatus(str(store.root), stages, pushes(store))


def dump_rows(store: RunStore, what: str) -> Iterator[Any]:
    """The typed rows `magicoder-data dump RUN WHAT` writes: what the stages offer (seeds,
    samples, lintseq), or the drops ledger."""
    dumps = {name: rows for stage in STAGES for name, rows in stage.dumps}
    dumps["drops"] = RunStore.iter_drops
    if what not in dumps:
        raise ConfigError(f"unknown stage {what!r}; dumpable: {', '.join(dumps)}")
    return dumps[what](store)
