"""The `magicoder-data` command: each command parses options into config and calls one stage.

Errors a user can cause (MagicoderDataError) print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TextIO
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from typer.core import TyperOption

from . import clean as clean_stage
from . import generate as generate_stage
from . import seeds
from .clean import CleanConfig
from .config import (
    GenerateConfig,
    SampleConfig,
    build,
    invalid_option,
    parse_mix,
    parse_pairs,
    scale_mix,
)
from .decontam.methods import Settings as ScanSettings
from .errors import ConfigError, InvalidOption, MagicoderDataError, ProviderError
from .generate import SendOptions
from .languages import MAGICODER_MIX
from .llm import ClientSettings, display_url
from .local import LOCAL_MODEL, OSS_INSTRUCT_GRAMMAR, LocalServer
from .outputs import replacing_file
from .prompts import DEFAULT_TEMPLATE, load_template
from .store import CONFIG_NAME, DB_NAME, LOCK_NAME, RunStore

app = typer.Typer(
    help="Build OSS-Instruct code-instruction datasets the Magicoder way.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


class Backend(str, Enum):
    """Who answers `generate`'s requests."""

    auto = "auto"
    openai = "openai"
    local = "local"


NewRunArg = Annotated[Path, typer.Argument(help="Run directory (created when new).")]
RunArg = Annotated[Path, typer.Argument(help="Run directory, made by `magicoder-data sample`.")]

DUMPABLE = {
    "seeds": RunStore.iter_seeds,
    "samples": RunStore.iter_samples,
    "lintseq": RunStore.iter_lintseq,
    "drops": RunStore.iter_drops,
}


WaitOpt = Annotated[
    bool, typer.Option(help="When another process is writing RUN, wait for it instead of stopping.")
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(help="Replace an existing output even if magicoder-data did not write it."),
]


def _writer(run: Path, wait: bool) -> RunStore:
    """RUN opened for a stage that writes: holds the run's lock until closed."""
    return RunStore.open(run, create=False, wait=wait)


def _reader(run: Path) -> RunStore:
    """RUN opened read-only: works beside a writer, and on runs the user may not write."""
    return RunStore.open(run, readonly=True)


@app.command()
def sample(
    run: NewRunArg,
    source: Annotated[
        str | None,
        typer.Option(help="`bundled`, a Hub dataset (bigcode/starcoderdata), a folder or a tree."),
    ] = None,
    source_kind: Annotated[
        str | None, typer.Option(help="auto, bundled, hub, folder or tree.")
    ] = None,
    total: Annotated[int | None, typer.Option(help="Seeds in all; scales the mix.")] = None,
    mix: Annotated[
        str | None, typer.Option(help="Quota per language: python=40000,cpp=5000,...")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 976).")] = None,
    min_lines: Annotated[int | None, typer.Option(help="Shortest snippet (default 1).")] = None,
    max_lines: Annotated[int | None, typer.Option(help="Longest snippet (default 15).")] = None,
    max_doc_bytes: Annotated[int | None, typer.Option(help="Drop larger documents.")] = None,
    max_line_length: Annotated[
        int | None, typer.Option(help="A longer line marks a minified file.")
    ] = None,
    data_dirs: Annotated[
        str | None, typer.Option(help="Folder per language over starcoderdata's: csharp=c-sharp")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes drawing snippets; more helps when seeds are a large share of the "
            "documents. The seeds are the same either way.",
            min=1,
        ),
    ] = 1,
    plain: Annotated[bool, typer.Option(help="Plain log lines instead of a live display.")] = False,
    wait: WaitOpt = False,
) -> None:
    """Draw seed snippets (1-15 consecutive lines, one per document) into RUN.

    Re-running on a finished run does nothing; on an interrupted one it finishes it.

    Example: magicoder-data sample runs/demo --source bundled --total 900
    """
    stored: dict[str, Any] = {}
    if (run / DB_NAME).exists():
        with _reader(run) as store:
            stored = store.stage_config(seeds.STAGE) or {}
    given: dict[str, Any] = {
        "source": source,
        "source_kind": source_kind,
        "seed": seed,
        "min_lines": min_lines,
        "max_lines": max_lines,
        "max_doc_bytes": max_doc_bytes,
        "max_line_length": max_line_length,
        "data_dirs": parse_pairs(data_dirs, "--data-dirs") if data_dirs else None,
    }
    if mix is not None or total is not None:
        base = parse_mix(mix) if mix is not None else dict(MAGICODER_MIX)
        given["mix"] = scale_mix(base, total) if total is not None else base
    values = {**stored, **{k: v for k, v in given.items() if v is not None}}
    if "source" not in values:
        raise ConfigError("a new run needs --source (e.g. --source bundled)")
    config = build(SampleConfig, values)
    with RunStore.open(run, wait=wait) as store:
        reports = seeds.sample(store, config, progress=_progress(plain), workers=workers)
    _print_reports(reports)


def _progress(plain: bool) -> seeds.Progress:
    """A callback showing documents scanned per language, at most a few times a second."""
    shown: dict[str, float] = {}
    interval = 10.0 if plain or not err.is_terminal else 0.2

    def show(language: str, scanned: int) -> None:
        now = time.monotonic()
        if now - shown.setdefault(language, now) < interval:
            return
        shown[language] = now
        if plain or not err.is_terminal:
            err.print(f"sample: {language}: {scanned:,} documents scanned", highlight=False)
        else:
            err.print(f"[dim]{language}: {scanned:,} documents scanned[/dim]", end="\r")

    return show


def _print_reports(reports: dict[str, seeds.LanguageReport]) -> None:
    table = Table(title="seeds", title_justify="left")
    for column in ("language", "requested", "found", "documents scanned"):
        table.add_column(column, justify="left" if column == "language" else "right")
    for lang, r in reports.items():
        table.add_row(lang, f"{r.requested:,}", f"{r.found:,}", f"{r.documents:,}")
    found = sum(r.found for r in reports.values())
    table.add_row("total", f"{sum(r.requested for r in reports.values()):,}", f"{found:,}", "")
    out.print(table)
    for lang, r in reports.items():
        if r.short:
            err.print(
                f"warning: {lang}: only {r.found:,} of {r.requested:,} seeds found "
                f"({r.documents:,} documents scanned)",
                highlight=False,
            )


@app.command()
def generate(
    run: RunArg,
    model: Annotated[str | None, typer.Option(help="Model name, e.g. gpt-4o-mini.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible endpoint (vLLM, Ollama, LiteLLM...).", envvar="OPENAI_BASE_URL"
        ),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
    template: Annotated[
        str | None, typer.Option(help="Prompt template: a name in prompts/ or a folder.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 64,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute budget.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute budget.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Default 0 (Magicoder).")] = None,
    top_p: Annotated[
        float | None, typer.Option(help="Nucleus sampling (not sent if unset).")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Completion tokens (default 2500).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Base request seed; sample i sends seed + i (default 976).")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(help="Stop before spending more than this many US$.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Send at most this many requests.")] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="Re-send failed and truncated samples only.")
    ] = False,
    price: Annotated[
        list[str] | None,
        typer.Option(help="Price as MODEL=IN,OUT US$ per million tokens (repeatable)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes sharing the requests (one saturates near 700 req/s); "
            "0: one per 256 in flight, at most one per core."
        ),
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one answer.")] = 300.0,
    max_attempts: Annotated[int, typer.Option(help="Tries per request.")] = 8,
    backend: Annotated[
        Backend,
        typer.Option(help="auto (local when no key, URL or model is given), openai or local."),
    ] = Backend.auto,
    model_path: Annotated[
        Path | None, typer.Option(help="GGUF model for the local backend (default: SmolLM2-135M).")
    ] = None,
    plain: Annotated[bool, typer.Option(help="Plain log lines instead of a live display.")] = False,
    wait: WaitOpt = False,
) -> None:
    """Ask the model for a problem and solution inspired by each seed, storing every answer.

    Re-running sends no request whose response is stored. Ctrl-C stops sending and stores the
    answers already on their way (a second Ctrl-C stops waiting for them).

    Example: magicoder-data generate runs/demo --model gpt-4o-mini --concurrency 256 --max-cost 5
    """
    options = build(
        SendOptions,
        {"retry_failed": retry_failed, "limit": limit, "max_cost": max_cost, "workers": workers},
    )
    client = build(  # bad values fail before any work; the model and URL are set below
        ClientSettings,
        {
            "model": "-",
            "timeout": timeout,
            "max_attempts": max_attempts,
            "concurrency": concurrency,
            "rpm": rpm,
            "tpm": tpm,
        },
    )
    prices = _prices(price or [])
    api_key = os.environ.get(api_key_env, "")
    if not api_key.isascii():
        raise ConfigError(f"the key in {api_key_env} has non-ASCII characters; check it")
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--base-url {display_url(base_url)!r} is not an http(s) URL")
    with _writer(run, wait) as store:
        stored = store.stage_config(generate_stage.STAGE) or {}
        local = backend == Backend.local or (
            backend == Backend.auto
            and not api_key
            and base_url is None
            and model is None
            and stored.get("model") in (None, LOCAL_MODEL)
        )
        given = {
            "model": LOCAL_MODEL if local else model,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "seed": seed,
            "template": template,
            "grammar": OSS_INSTRUCT_GRAMMAR if local else None,
        }
        values = {
            **({"max_tokens": 512} if local else {}),
            **stored,
            **{k: v for k, v in given.items() if v is not None},
        }
        if "model" not in values:
            raise ConfigError("pass --model (e.g. --model gpt-4o-mini)")
        prompt = load_template(values.get("template", DEFAULT_TEMPLATE))
        values["template_sha256"] = prompt.sha256
        config = build(GenerateConfig, values)
        if not api_key and not local:
            if base_url is None:
                raise ConfigError(
                    f"set {api_key_env} or pass --api-key-env VAR "
                    "(or --base-url for a server that needs no key)"
                )
            api_key = "no-key"
        if local:
            prices[LOCAL_MODEL] = (0.0, 0.0)
        with ExitStack() as stack:
            if local:
                err.print(
                    f"note: no API key or base URL, so the embedded local model {LOCAL_MODEL} "
                    "answers. It is tiny and writes weak problems: for real data set "
                    "OPENAI_API_KEY and pass --model (or --base-url).",
                    highlight=False,
                    soft_wrap=True,
                )
                server = stack.enter_context(LocalServer(model_path, log=run / "local-server.log"))
                base_url, api_key = server.base_url, "local"
                client = replace(client, concurrency=min(concurrency, 2))
            _check_reachable(base_url or "https://api.openai.com/v1")
            settings = replace(client, model=config.model, base_url=base_url)
            display = stack.enter_context(_GenerateDisplay(plain))
            stats = generate_stage.generate(
                store,
                config,
                prompt,
                settings,
                api_key,
                options,
                prices=prices,
                progress=display.update,
            )
    display.final(stats)
    if stats.interrupted:
        cut = stats.abandoned
        lost = f"; {cut:,} requests in flight were not answered in time and will be sent again"
        raise Interrupted(
            f"interrupted: every answer that arrived is stored{lost if cut else ''}; "
            f"resume with `magicoder-data generate {run}`"
        )


def _check_reachable(url: str) -> None:
    """Fail at once, not after every seed's retries, when nothing listens at `url`."""
    import socket

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=10).close()
    except OSError as exc:
        raise ProviderError(
            f"cannot reach {parts.scheme}://{parts.hostname}:{port} ({exc.strerror or exc}); "
            "check --base-url and the network"
        ) from None


def _prices(entries: list[str]) -> dict[str, tuple[float, float]]:
    prices = {}
    for entry in entries:
        model, _, pair = entry.partition("=")
        try:
            inp, out = (float(x) for x in pair.split(","))
        except ValueError:
            raise ConfigError(
                f"bad --price {entry!r}: write MODEL=IN,OUT, e.g. gpt-4o=2.5,10"
            ) from None
        if inp < 0 or out < 0:
            raise ConfigError(f"bad --price {entry!r}: prices cannot be negative")
        prices[model.strip()] = (inp, out)
    return prices


class _GenerateDisplay:
    """Live progress of `generate`: a rich panel on a terminal, a line every 10 s otherwise."""

    def __init__(self, plain: bool) -> None:
        self.live = (
            None if plain or not err.is_terminal else Live(console=err, refresh_per_second=4)
        )
        self._last = 0.0

    def __enter__(self) -> _GenerateDisplay:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(None, None, None)

    def update(self, stats: generate_stage.GenerateStats) -> None:
        now = time.monotonic()
        if now - self._last < (0.25 if self.live else 10.0):
            return
        self._last = now
        if self.live:
            self.live.update(Text(self.line(stats)))
        else:
            err.print(
                f"generate: {self.line(stats)}", highlight=False, markup=False, soft_wrap=True
            )

    @staticmethod
    def line(stats: generate_stage.GenerateStats) -> str:
        elapsed = max(stats.elapsed, 1e-9)
        rate = stats.done / elapsed
        left = stats.total - stats.done
        eta = f"{left / rate:,.0f}s" if rate > 0 and left > 0 else "-"
        tokens = (stats.prompt_tokens + stats.completion_tokens) / elapsed
        failures = ", ".join(f"{k} {n}" for k, n in stats.failures.most_common()) or "none"
        return (
            f"{stats.done:,}/{stats.total:,} done  {rate:,.1f} req/s  {tokens:,.0f} tok/s  "
            f"${stats.spent:,.4f}  ETA {eta}  failures: {failures}"
        )

    def final(self, stats: generate_stage.GenerateStats) -> None:
        out.print(f"generate: {self.line(stats)}", highlight=False, markup=False)
        states = (
            ", ".join(f"{k} {n:,}" for k, n in sorted(stats.statuses.items())) or "nothing sent"
        )
        out.print(f"samples: {states}", highlight=False, markup=False)
        if stats.stopped_by_budget:
            err.print("stopped: the next requests could exceed --max-cost", highlight=False)


@app.command()
def clean(
    run: RunArg,
    near_duplicate: Annotated[
        float, typer.Option(help="MinHash Jaccard threshold for near-duplicates; 1 turns it off.")
    ] = CleanConfig.near_duplicate,
    min_problem: Annotated[
        int, typer.Option(help="Shortest problem, characters.")
    ] = CleanConfig.min_problem,
    min_solution: Annotated[
        int, typer.Option(help="Shortest solution, characters.")
    ] = CleanConfig.min_solution,
    wait: WaitOpt = False,
) -> None:
    """Drop duplicates, near-duplicates and broken samples, counting each reason.

    Example: magicoder-data clean runs/demo --near-duplicate 0.8
    """
    config = build(
        CleanConfig,
        {
            "min_problem": min_problem,
            "min_solution": min_solution,
            "near_duplicate": near_duplicate,
        },
    )
    with _writer(run, wait) as store:
        dropped = clean_stage.clean(store, config)
    detail = ", ".join(f"{reason} {n:,}" for reason, n in sorted(dropped.items())) or "none"
    out.print(
        f"clean: {sum(dropped.values()):,} samples dropped ({detail})",
        highlight=False,
        soft_wrap=True,
    )


DEFAULTS = ScanSettings()
BenchmarksOption = Annotated[
    str,
    typer.Option(
        help="Comma-separated: humaneval, mbpp, humanevalplus, mbppplus, apps, ds1000, gsm8k, "
        "livecodebench; NAME=FILE for a local copy; or a JSON spec file for your own."
    ),
]
MethodsOption = Annotated[str, typer.Option(help="Any of substring, ngram, tfidf.")]
NgramOption = Annotated[int, typer.Option(help="Words per n-gram.")]
MinSubstringOption = Annotated[int, typer.Option(help="Shortest benchmark text matched.")]
ThresholdOption = Annotated[float, typer.Option(help="TF-IDF similarity that flags.")]


def _scanner(benchmarks: str, methods: str, ngram: int, min_substring: int, threshold: float):  # type: ignore[no-untyped-def]
    from .decontam import benchmarks as registry
    from .decontam.methods import METHODS, Scanner

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = set(chosen) - set(METHODS)
    if unknown or not chosen:
        raise ConfigError(
            f"unknown method {sorted(unknown)[0] if unknown else ''!r}; use {', '.join(METHODS)}"
        )
    settings = build(
        ScanSettings,
        {
            "methods": chosen,
            "ngram": ngram,
            "min_substring": min_substring,
            "tfidf_threshold": threshold,
        },
        names={"tfidf_threshold": "threshold"},
    )
    specs = registry.resolve(benchmarks.split(","))
    items = [item for spec in specs for item in registry.load(spec)]
    return items, settings, Scanner(items, settings)


@app.command()
def decontaminate(
    run: RunArg,
    benchmarks: BenchmarksOption = "humaneval",
    methods: MethodsOption = "substring,ngram,tfidf",
    ngram: NgramOption = DEFAULTS.ngram,
    min_substring: MinSubstringOption = DEFAULTS.min_substring,
    threshold: ThresholdOption = DEFAULTS.tfidf_threshold,
    wait: WaitOpt = False,
) -> None:
    """Drop samples that overlap benchmarks, keeping the evidence of each match.

    Example: magicoder-data decontaminate runs/demo --benchmarks humaneval,mbpp=mbpp.jsonl
    """
    from .decontam.stage import decontaminate as run_stage

    items, settings, _ = _scanner(benchmarks, methods, ngram, min_substring, threshold)
    with _writer(run, wait) as store:
        config = {
            "benchmarks": benchmarks,
            "methods": list(settings.methods),
            "ngram": ngram,
            "min_substring": min_substring,
            "threshold": threshold,
        }
        dropped = run_stage(store, items, settings, config)
    total = sum(dropped.values())
    detail = ", ".join(f"{reason} {n:,}" for reason, n in sorted(dropped.items())) or "none"
    out.print(
        f"decontaminate: {total:,} samples dropped ({detail})", highlight=False, soft_wrap=True
    )


@app.command()
def audit(
    datasets: Annotated[list[str], typer.Argument(help="Runs, jsonl/parquet files or Hub names.")],
    report: Annotated[Path, typer.Option(help="Folder for the report.")] = Path("audit-report"),
    fields: Annotated[str, typer.Option(help="Fields compared, joined.")] = "problem,solution",
    benchmarks: BenchmarksOption = "humaneval",
    methods: MethodsOption = "substring,ngram,tfidf",
    ngram: NgramOption = DEFAULTS.ngram,
    min_substring: MinSubstringOption = DEFAULTS.min_substring,
    threshold: ThresholdOption = DEFAULTS.tfidf_threshold,
    overwrite: OverwriteOpt = False,
) -> None:
    """Audit any dataset for benchmark contamination; write Markdown, HTML and flagged.jsonl.

    Example: magicoder-data audit runs/demo data.jsonl --benchmarks humaneval --report audit/
    """
    from .decontam.audit import audit as run_audit

    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not names:
        raise ConfigError("--fields names no field")
    items, _, scanner = _scanner(benchmarks, methods, ngram, min_substring, threshold)
    results = run_audit(datasets, names, items, scanner, report, overwrite=overwrite)
    for result in results:
        out.print(
            f"{result.label}: {len(result.flagged):,} of {result.samples:,} samples flagged",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"report: {report / 'report.html'}", highlight=False, soft_wrap=True)


@app.command()
def lintseq(
    run: Annotated[Path | None, typer.Argument(help="A run (its kept solutions).")] = None,
    input: Annotated[
        str | None, typer.Option("--input", help="A jsonl/parquet file or Hub dataset instead.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="JSONL output for --input.")] = None,
    instruction_field: Annotated[
        str, typer.Option(help="Instruction field of --input.")
    ] = "instruction",
    code_field: Annotated[str, typer.Option(help="Program field of --input.")] = "response",
    language_field: Annotated[str | None, typer.Option(help="Per-row language field.")] = None,
    language: Annotated[str, typer.Option(help="Language when rows do not say.")] = "python",
    samples: Annotated[
        int, typer.Option("-s", "--samples", help="Edit sequences per program.")
    ] = 5,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    fidelity: Annotated[
        bool, typer.Option(help="pylint per state for Python (slow, as the reference).")
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Processes (default: all cores).", min=1)
    ] = os.cpu_count() or 1,
    overwrite: OverwriteOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Turn programs into sequences of error-free insertion diffs (LintSeq).

    Example: magicoder-data lintseq --input data.jsonl --output edits.jsonl -s 5
    """
    from .lintseq.stage import LintSeqConfig, run_file, run_stage

    config = build(LintSeqConfig, {"samples": samples, "seed": seed, "fidelity": fidelity})
    if (run is None) == (input is None):
        raise ConfigError("give a RUN or --input FILE --output FILE, not both")
    if input is not None:
        if output is None:
            raise ConfigError("--input needs --output FILE")
        outcome = run_file(
            input,
            output,
            instruction_field,
            code_field,
            language_field,
            language,
            config,
            workers,
            overwrite=overwrite,
        )
        where = f"{output} (rejected: {output.name}.rejected.jsonl)"
    else:
        assert run is not None
        with _writer(run, wait) as store:
            outcome = run_stage(store, config, workers)
        where = f"{run} (magicoder-data dump {run} lintseq)"
    detail = ", ".join(f"{k} {n:,}" for k, n in sorted(outcome.items())) or "nothing to do"
    out.print(f"lintseq: {detail} -> {where}", highlight=False, soft_wrap=True)


ConfigsOpt = Annotated[
    str, typer.Option("--config", help="oss-instruct, sft, lintseq or all (comma-separated).")
]
LicenseOpt = Annotated[str, typer.Option(help="Licence in the dataset card.")]


def _configs(config: str) -> list[str]:
    from .export import CONFIGS

    names = (
        list(CONFIGS) if config == "all" else [c.strip() for c in config.split(",") if c.strip()]
    )
    unknown = [c for c in names if c not in CONFIGS]
    if unknown or not names:
        raise ConfigError(
            f"unknown config {unknown[0] if unknown else ''!r}; use {', '.join(CONFIGS)} or all"
        )
    return names


def _rows(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {rows:,} rows" for name, rows in counts.items())


@app.command()
def export(
    run: RunArg,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to write: new, empty, or an earlier export (which is replaced)."
        ),
    ],
    config: ConfigsOpt = "oss-instruct,sft",
    license: LicenseOpt = "other",
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a Hub-ready dataset folder: parquet shards per config and a dataset card.

    Example: magicoder-data export runs/demo --out dataset/ --config all
    """
    from .export import export as run_export

    names = _configs(config)
    with _reader(run) as store:
        counts = run_export(store, out_dir, names, license, overwrite=overwrite)
    out.print(f"export: {_rows(counts)} -> {out_dir}", highlight=False, soft_wrap=True)


@app.command()
def push(
    run: RunArg,
    repo_id: Annotated[str, typer.Option(help="Hub dataset repo, ORG/NAME (created if new).")],
    private: Annotated[bool, typer.Option(help="Make the repo private.")] = False,
    revision: Annotated[
        str | None, typer.Option(help="Branch to push to (created from main if new).")
    ] = None,
    config: ConfigsOpt = "oss-instruct,sft",
    license: LicenseOpt = "other",
    wait: WaitOpt = False,
) -> None:
    """Export the run and upload it to a Hub dataset repo; pushing again updates it in place.

    The token comes from HF_TOKEN or `hf auth login`.

    Example: magicoder-data push runs/demo --repo-id my-org/oss-instruct-75k --private
    """
    from .export import push as run_push

    names = _configs(config)
    with _writer(run, wait) as store:
        result = run_push(
            store, repo_id, names, private=private, revision=revision, license=license
        )
    state = "pushed" if result["changed"] else "unchanged, nothing pushed"
    out.print(
        f"push: {_rows(result['rows'])} {state} -> {result['url']} "
        f"(commit {result['commit'][:12]})",
        highlight=False,
        soft_wrap=True,
    )


PIPELINE = ("sample", "generate", "clean", "decontaminate", "lintseq", "export", "push")
COMMANDS: dict[str, Callable[..., None]] = {
    "sample": sample,
    "generate": generate,
    "clean": clean,
    "decontaminate": decontaminate,
    "lintseq": lintseq,
    "export": export,
    "push": push,
}


@app.command("run")
def run_pipeline(
    config_file: Annotated[Path, typer.Argument(help="YAML: `run: DIR` and a section per stage.")],
    wait: WaitOpt = False,
) -> None:
    """Run the whole pipeline from one config; each stage resumes and is skipped when complete.

    Sections take the options of the stage's command (`sample`, `generate`, `clean`,
    `decontaminate`, `lintseq`, `export`, `push`), named as on the command line without the
    dashes (`--max-cost` is `max_cost`); a stage without a section does not run. Every
    section's keys and value types are checked before the first stage starts.

    Example: magicoder-data run examples/oss-instruct-75k.yaml
    """
    import yaml

    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_file} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot read config file {config_file}: {reason}") from None
    if not isinstance(data, dict) or not isinstance(data.get("run"), str):
        raise ConfigError(f"{config_file} needs `run: DIR` naming the run directory")
    for key in data:
        if key != "run" and key not in PIPELINE:
            raise ConfigError(
                f"unknown key {key!r} in {config_file}; use run, {', '.join(PIPELINE)}"
            )
    stages = [stage for stage in PIPELINE if stage in data]
    if not stages:
        raise ConfigError(
            f"{config_file} names no stage; add sections such as `sample:` and `generate:`"
        )
    calls = [(stage, _section(stage, data[stage], config_file, wait)) for stage in stages]
    run_dir = Path(data["run"])
    for stage, kwargs in calls:
        err.print(f"== {stage}", highlight=False)
        try:
            COMMANDS[stage](run=run_dir, **kwargs)
        except InvalidOption as exc:
            name = exc.field.split(".")[0]
            key = next((k for k, (param, _, _) in _settings(stage).items() if param == name), name)
            raise ConfigError(
                f"invalid setting {stage}.{key} in {config_file}: {exc.reason}"
                if exc.field
                else f"section {stage} in {config_file}: {exc.reason}"
            ) from None


def _settings(command: str) -> dict[str, tuple[str, Any, bool]]:
    """A command's options as config keys (the long option without dashes):
    key -> (parameter name, type, required)."""
    import typing

    hints = typing.get_type_hints(COMMANDS[command])
    settings = {}
    for param in _options(command):
        key = _long(param).lstrip("-").replace("-", "_")
        settings[key] = (str(param.name), hints[str(param.name)], param.required)
    return settings


def _options(command: str) -> list[TyperOption]:
    """The options of a command, as its parser knows them (none for an unknown command)."""
    click_command = typer.main.get_command(app).commands.get(command)  # type: ignore[attr-defined]
    return [p for p in click_command.params if isinstance(p, TyperOption)] if click_command else []


def _long(param: TyperOption) -> str:
    """An option's long name (`--max-cost`), which the user typed or a config key mirrors."""
    return max(param.opts, key=len)


def _section(stage: str, section: Any, config_file: Path, wait: bool) -> dict[str, Any]:
    """A config section as keyword arguments of its command, each value checked strictly
    (`true` is not a number, `"5"` is not an integer)."""
    from pydantic import TypeAdapter, ValidationError

    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"section {stage} in {config_file} must hold settings (`key: value` lines), "
            f"not {section!r}"
        )
    known = _settings(stage)
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        if key not in known:
            raise ConfigError(
                f"unknown setting {stage}.{key} in {config_file}; known: {', '.join(sorted(known))}"
            )
        name, kind, _ = known[key]
        if isinstance(value, dict):  # YAML mappings for the comma-list options (mix, ...)
            value = ",".join(f"{k}={v}" for k, v in value.items())
        try:
            kwargs[name] = TypeAdapter(kind).validate_json(
                json.dumps(value, default=str), strict=True
            )
        except ValidationError as exc:
            reason = invalid_option(exc).reason
            raise ConfigError(f"invalid setting {stage}.{key} in {config_file}: {reason}") from None
    for key, (name, _, required) in known.items():
        if required and name not in kwargs:
            raise ConfigError(f"section {stage} in {config_file} needs `{key}`")
    for param in _options(stage):  # as on the command line: OPENAI_BASE_URL and the like
        envvar = param.envvar if isinstance(param.envvar, str) else None
        if envvar and os.environ.get(envvar) and str(param.name) not in kwargs:
            kwargs[str(param.name)] = os.environ[envvar]
    if wait and "wait" in known:
        kwargs.setdefault("wait", True)
    return kwargs


@app.command()
def status(
    run: RunArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show each stage's state, rows per language and drops per reason.

    Example: magicoder-data status runs/demo --json
    """
    with _reader(run) as store:
        report = store.status()
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(f"run {report['run']}", highlight=False)
    if not report["stages"]:
        out.print("no stage has run yet")
    for pushed in report["pushes"][-1:]:
        out.print(
            f"pushed {len(report['pushes'])} time(s); last to {pushed['repo_id']}@"
            f"{pushed['revision']} (commit {pushed['commit_oid'][:12]}, {pushed['pushed_at']})",
            highlight=False,
            soft_wrap=True,
        )
    for stage, info in report["stages"].items():
        out.print(f"\n[bold]{stage}[/bold]: {info['status']}")
        rows, docs = info.get("rows", {}), info["documents"]
        summary = info["summary"] or {}
        table = Table(box=None, pad_edge=False)
        for column in ("language", "rows", "requested", "documents", "dropped"):
            table.add_column(column, justify="left" if column == "language" else "right")
        requests = {k: v["requested"] for k, v in summary.items() if isinstance(v, dict)}
        others = sorted((set(rows) | set(docs) | set(info["drops"])) - set(requests))
        for lang in [*requests, *others]:
            dropped = ", ".join(f"{r} {n:,}" for r, n in info["drops"].get(lang, {}).items())
            requested = requests.get(lang)
            table.add_row(
                lang,
                f"{rows.get(lang, 0):,}",
                f"{requested:,}" if requested is not None else "",
                f"{docs.get(lang, {}).get('documents', 0):,}",
                dropped or "-",
            )
        out.print(table)
        if "cost_usd" in info:
            failures = ", ".join(f"{k} {n:,}" for k, n in info["failures"].items()) or "none"
            out.print(
                f"tokens: {info['prompt_tokens']:,} prompt + {info['completion_tokens']:,} "
                f"completion  spend: ${info['cost_usd']:,.4f}  failures: {failures}",
                highlight=False,
                soft_wrap=True,
            )


@app.command()
def dump(
    run: RunArg,
    stage: Annotated[str, typer.Argument(help=f"What to dump: {', '.join(DUMPABLE)}.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Write a stage's rows as JSON lines.

    Example: magicoder-data dump runs/demo seeds --out seeds.jsonl
    """
    if stage not in DUMPABLE:
        raise ConfigError(f"unknown stage {stage!r}; dumpable: {', '.join(DUMPABLE)}")
    with _reader(run) as store:
        if stage == "seeds" and store.stage_status(seeds.STAGE) != "complete":
            raise ConfigError(
                f"{run}: sampling has not finished; run `magicoder-data sample {run}` first"
            )
        if out_file is None:
            _write_jsonl(DUMPABLE[stage](store), sys.stdout)
            return
        owned = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", CONFIG_NAME, LOCK_NAME)
        run_files = [run / name for name in owned]
        with replacing_file(out_file, inputs=run_files, overwrite=overwrite) as handle:
            count = _write_jsonl(DUMPABLE[stage](store), handle)
    err.print(f"wrote {count:,} {stage} rows to {out_file}", highlight=False)


def _write_jsonl(rows: Any, handle: TextIO) -> int:
    count = 0
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


class Interrupted(Exception):
    """A command that stopped on Ctrl-C after saving what it could; its message says what."""


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
        code = _fail(_one_line(exc.format_message()) + where, exc.exit_code)
    except typer.Abort:
        code = _fail("aborted", 1)
    except InvalidOption as exc:
        where = f"invalid {_option_name(args, exc.field)}: " if exc.field else ""
        code = _fail(where + exc.reason, 1)
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


def _option_name(args: list[str], field: str) -> str:
    """The option the user typed for a library setting (`timeout` -> `--timeout`)."""
    command = next((a for a in args if not a.startswith("-")), "")
    name, dot, rest = field.partition(".")
    for param in _options(command):
        if param.name == name:
            return _long(param) + dot + rest
    return "--" + field.replace("_", "-")
