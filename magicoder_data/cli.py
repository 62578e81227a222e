"""The `magicoder-data` command, derived from the library: one command per stage of
`pipeline.STAGES`, whose options are that stage's Config fields (`max_cost` is `--max-cost`,
its docstring the help), plus `run`, `audit`, `status`, `serve`, `cancel` and `dump`.

A command only turns options into a config, calls `run_stage` and prints the report. Errors a
user can cause (MagicoderDataError) print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from pydantic import BaseModel

from .display import (
    Display,
    err,
    out,
    say,
    show_generated,
    show_line,
    show_seeds,
    show_status,
)
from .errors import ConfigError, InvalidOption, MagicoderDataError
from .outputs import json_line
from .pipeline import STAGES, display_settings, read_yaml, run_pipeline, run_stage
from .stage import Report, Stage

app = typer.Typer(
    help="Build OSS-Instruct code-instruction datasets the Magicoder way.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

#: Short forms of options, beside their long names.
SHORT = {"samples": "-s"}

RunArg = Annotated[Path, typer.Argument(help="Run directory, made by `magicoder-data sample`.")]
PlainOpt = Annotated[bool, typer.Option(help="Plain log lines instead of a live display.")]
QueueOpt = Annotated[
    bool,
    typer.Option(help="When another process is writing RUN, queue behind it instead of stopping."),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(help="Replace an existing output even if magicoder-data did not write it."),
]


# -- stage commands, derived from each stage's Config ---------------------------------------------


def _cli_type(annotation: Any) -> Any:
    """The type an option takes on the command line for a Config field's annotation: the
    field's own type, or text for mappings and for unions of text with a list or mapping
    (`--mix python=4,rust=2`)."""
    kinds = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [k for k in typing.get_args(annotation) if k is not type(None)]
    if len(kinds) > 1:
        return str
    kind = kinds[0]
    return str if typing.get_origin(kind) is dict else kind


def _option(name: str, model: type[BaseModel], optional: bool = False) -> inspect.Parameter:
    """The command-line option of one Config field; unset (None) means "the stored value, else
    the default", so only what the user typed reaches the config. `optional`: even a required
    field may be left out (file-mode fields, required only with --input)."""
    field = model.model_fields[name]
    kind = _cli_type(field.annotation)
    help = " ".join((field.description or "").split())
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if default not in (None, False, [], "") and "default" not in help and "(" not in help[-6:]:
        help += f" (default {default})"
    decls = [SHORT[name], "--" + name.replace("_", "-")] if name in SHORT else []
    option = typer.Option(*decls, help=help)
    if field.is_required() and not optional:
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, option]
        )
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],
    )


def _parameter(
    name: str, annotation: Any, default: Any = inspect.Parameter.empty
) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _command(
    stage: Stage[Any, Any],
    body: Callable[..., None],
    run: inspect.Parameter,
    extra: tuple[inspect.Parameter, ...] = (),
) -> None:
    """Register `body(run=..., plain=..., queue=..., **config)` as the stage's command."""
    params = [
        run,
        *(_option(name, stage.Config) for name in stage.Config.model_fields),
        *extra,
        _parameter("plain", PlainOpt, False),
        *([_parameter("queue", QueueOpt, False)] if stage.writes else []),
    ]

    def command(**values: Any) -> None:
        body(**values)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    example = f"\n\nExample: {stage.example}" if stage.example else ""
    command.__doc__ = f"{inspect.getdoc(stage)}{example}"
    command.__name__ = stage.name
    app.command(stage.name)(command)


def _stage_body(name: str, show: Callable[[Any, Path], None]) -> Callable[..., None]:
    """Run stage `name` with the options given, showing progress, then `show` its report."""

    def body(run: Path, plain: bool, queue: bool = False, **options: Any) -> None:
        given = {key: value for key, value in options.items() if value is not None}
        with Display(name, plain) as display:
            report = run_stage(name, run, given, display.update, queue=queue)
        show(report, run)
        _check_interrupted(report, run)

    return body


SHOW: dict[str, Callable[[Any, Path], None]] = {
    "sample": show_seeds,
    "generate": show_generated,
}


def _file_body(stage: Stage[Any, Any]) -> Callable[..., None]:
    """The command of a stage with a file mode: a RUN as usual, or --input/--output."""
    assert stage.FileOptions is not None
    file_fields = set(stage.FileOptions.model_fields)
    on_run = _stage_body(stage.name, SHOW.get(stage.name, show_line))

    def body(run: Path | None, plain: bool, queue: bool = False, **options: Any) -> None:
        from .config import build

        given = {key: value for key, value in options.items() if value is not None}
        files = {key: given.pop(key) for key in list(given) if key in file_fields}
        if (run is None) == ("input" not in files):
            raise ConfigError("give a RUN or --input FILE --output FILE, not both")
        if run is not None:
            if files:
                raise ConfigError(f"--{next(iter(files)).replace('_', '-')} goes with --input")
            on_run(run=run, plain=plain, queue=queue, **given)
            return
        if "output" not in files:
            raise ConfigError("--input needs --output FILE")
        assert stage.FileOptions is not None
        try:
            say(stage.run_file(stage.config(given), build(stage.FileOptions, files)))
        except KeyboardInterrupt:  # file mode writes its output whole, at the end
            raise Interrupted(
                f"interrupted; nothing was written to {files['output']} (file mode writes it "
                "whole at the end): run the command again to start over"
            ) from None

    return body


NEW_RUN = _parameter(
    "run", Annotated[Path, typer.Argument(help="Run directory (created when new).")]
)
OPTIONAL_RUN = _parameter(
    "run", Annotated[Path | None, typer.Argument(help="A run (or --input FILE instead).")], None
)

for _stage in STAGES:
    if _stage.FileOptions is not None:
        fields = _stage.FileOptions.model_fields
        files = tuple(_option(name, _stage.FileOptions, optional=True) for name in fields)
        _command(_stage, _file_body(_stage), OPTIONAL_RUN, files)
    else:
        run_param = NEW_RUN if _stage is STAGES[0] else _parameter("run", RunArg)
        _command(_stage, _stage_body(_stage.name, SHOW.get(_stage.name, show_line)), run_param)


# -- commands beside the stages ------------------------------------------------------------------


def _audit(datasets: list[str], report: Path, fields: str, overwrite: bool, **options: Any) -> None:
    """Audit any dataset for benchmark contamination; write Markdown, HTML and flagged.jsonl.

    Example: magicoder-data audit runs/demo data.jsonl --benchmarks humaneval --report audit/
    """
    from .config import build
    from .decontam.audit import audit as run_audit
    from .decontam.stage import ScanOptions

    scan = build(ScanOptions, {k: v for k, v in options.items() if v is not None})
    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not names:
        raise ConfigError("--fields names no field")
    with scan.scanner() as (items, scanner):
        results = run_audit(datasets, names, items, scanner, report, overwrite=overwrite)
    for result in results:
        say(f"{result.label}: {len(result.flagged):,} of {result.samples:,} samples flagged")
    say(f"report: {report / 'report.html'}")


def _register_audit() -> None:
    """`audit`: datasets, the report's options, and decontaminate's own scan options."""
    from .decontam.stage import ScanOptions

    params = [
        inspect.Parameter(
            "datasets",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[
                list[str], typer.Argument(help="Runs, jsonl/parquet files or Hub names.")
            ],
        ),
        _parameter(
            "report",
            Annotated[Path, typer.Option(help="Folder for the report.")],
            Path("audit-report"),
        ),
        _parameter(
            "fields",
            Annotated[str, typer.Option(help="Fields compared, joined.")],
            "problem,solution",
        ),
        *(_option(name, ScanOptions) for name in ScanOptions.model_fields),
        _parameter("overwrite", OverwriteOpt, False),
    ]

    def audit(**values: Any) -> None:
        _audit(**values)

    audit.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    audit.__doc__ = _audit.__doc__
    app.command("audit")(audit)


_register_audit()


@app.command("run")
def run_config(
    config_file: Annotated[Path, typer.Argument(help="YAML: `run: DIR` and a section per stage.")],
    queue: QueueOpt = False,
    executor: Annotated[
        str | None,
        typer.Option(
            help="local or ray: where sample, clean, verify, decontaminate and "
            "lintseq run (over the config's sections)."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (ADDR:PORT); without it Ray starts here."),
    ] = None,
) -> None:
    """Run the whole pipeline from one config; each stage resumes and is skipped when complete.

    Sections take the options of the stage's command (`sample`, `generate`, `clean`,
    `decontaminate`, `lintseq`, `export`, `push`), named as on the command line without the
    dashes (`--max-cost` is `max_cost`); a stage without a section does not run. Every
    section's keys and value types are checked before the first stage starts.

    Example: magicoder-data run examples/oss-instruct-75k.yaml --executor ray
    """
    data = read_yaml(config_file)
    shown = display_settings(data) if isinstance(data, dict) else {}
    run = Path(data["run"]) if isinstance(data, dict) and isinstance(data.get("run"), str) else None

    def started(name: str) -> None:
        display.stage = name
        err.print(f"== {name}", highlight=False)

    def finished(name: str, report: Report) -> None:
        assert run is not None  # a config without `run` fails before any stage
        SHOW.get(name, show_line)(report, run)
        _check_interrupted(report, run)

    with Display("run", shown.get("plain", False)) as display:
        run_pipeline(
            data,
            display.update,
            queue=queue or shown.get("queue", False),
            on_stage=started,
            on_report=finished,
            source=str(config_file),
            execution={
                key: value
                for key, value in (("executor", executor), ("ray_address", ray_address))
                if value is not None
            },
        )


@app.command()
def status(
    run: RunArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show each stage's state, rows per language and drops per reason.

    Example: magicoder-data status runs/demo --json
    """
    from .pipeline import run_status
    from .store import RunStore

    with RunStore.open(run, readonly=True) as store:
        report = run_status(store)
    if as_json:
        out.print_json(json.dumps(report.as_json()))
    else:
        show_status(report)


@app.command()
def serve(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to show.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to listen on; another than 127.0.0.1 opens it to others.")
    ] = "127.0.0.1",
) -> None:
    """Browse runs in a web browser, read-only: samples, drops, contamination evidence, edits.

    Example: magicoder-data serve runs/demo --port 8000
    """
    from .viewer import serve as serve_runs

    serve_runs(runs, host=host, port=port)


@app.command()
def cancel(
    run: RunArg,
    base_url: Annotated[
        str | None, typer.Option(help="The batches' endpoint (default: where they were made).")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
) -> None:
    """Cancel RUN's open batches at the provider (`generate --batch`); what they answered
    before they stopped is still collected, by the `generate` waiting on them or the next one.

    Example: magicoder-data cancel runs/demo
    """
    from .backends import cancel as cancel_batches

    cancelled = cancel_batches(run, base_url, api_key_env)
    for batch_id, state in cancelled:
        say(f"{batch_id}: {state}")
    if not cancelled:
        say(f"{run} has no open batches")


#: What `dump` writes: the stages' rows, then the drops ledger.
DUMPABLE = [*(name for stage in STAGES for name, _ in stage.dumps), "drops"]


@app.command()
def dump(
    run: RunArg,
    what: Annotated[str, typer.Argument(help=f"What to dump: {', '.join(DUMPABLE)}.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Write a stage's rows as JSON lines.

    Example: magicoder-data dump runs/demo seeds --out seeds.jsonl
    """
    from .outputs import replacing_file
    from .pipeline import dump_rows
    from .store import RunStore, run_files

    with RunStore.open(run, readonly=True) as store:
        rows = dump_rows(store, what)
        if out_file is None:
            try:
                _write_jsonl(rows, sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:  # `dump RUN seeds | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the last flush
            return
        with replacing_file(out_file, inputs=run_files(run), overwrite=overwrite) as handle:
            count = _write_jsonl(rows, handle)
    err.print(f"wrote {count:,} {what} rows to {out_file}", highlight=False)


def _write_jsonl(rows: Any, handle: TextIO) -> int:
    count = 0
    for row in rows:
        handle.write(json_line(asdict(row)))
        count += 1
    return count


class Interrupted(Exception):
    """A command that stopped on Ctrl-C after saving what it could; its message says what."""


def _check_interrupted(report: Any, run: Path) -> None:
    """A stage stopped by Ctrl-C (generate) exits 130, saying how to resume."""
    if getattr(report, "interrupted", False):
        cut = report.abandoned
        lost = f"; {cut:,} requests in flight were not answered in time and will be sent again"
        raise Interrupted(
            f"interrupted: every answer that arrived is stored{lost if cut else ''}; "
            f"resume with `magicoder-data generate {run}`"
        )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one `error:` line for anything the user can fix, never a traceback.

    Exit codes: 0 done, 1 an error the user can fix, 2 a command line that does not parse,
    130 interrupted (stored work is kept).
    """
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args or ["--help"], prog_name="magicoder-data", standalone_mode=False)
    except typer.TyperException as exc:  # the command line did not parse (click's errors)
        ctx = getattr(exc, "ctx", None)
        where = f" (see `magicoder-data {ctx.info_name} --help`)" if ctx else ""
        message = _one_line(exc.format_message()).replace("Value error, ", "")
        code = _fail(message + where, exc.exit_code)
    except typer.Abort:
        code = _fail("aborted", 1)
    except InvalidOption as exc:
        option = "--" + exc.field.replace("_", "-")
        code = _fail(f"invalid {option}: {exc.reason}" if exc.field else exc.reason, 1)
    except MagicoderDataError as exc:
        code = _fail(str(exc), 1)
    except Interrupted as exc:
        err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        sys.exit(130)
    except OSError as exc:  # unwritable output paths and the like: the user's to fix
        where = f": {exc.filename}" if exc.filename else ""
        code = _fail(f"{exc.strerror or exc}{where}", 1)
    except KeyboardInterrupt:
        code = 130
    if code == 130:
        err.print("interrupted; stored work is kept, re-run the command to resume", markup=False)
    sys.exit(code or 0)


def _fail(message: str, code: int) -> int:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    return code


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())
