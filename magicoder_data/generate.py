"""The generation stage: one chat completion per seed, stored as it arrives, and the `samples`
table's queries.

A backend (see `magicoder_data.backends`) sends the requests; this stage decides the run's
config (stored options are reused, given ones override them, the backend fills in or imposes
its own), records it, and hands the backend the pending seeds. Every answer is committed the
moment it arrives, so a killed run loses only the requests in flight, and a re-run sends no
request whose answer is stored. `retry_failed` re-sends only failed and truncated ones. A cost
budget (`max_cost`) stops dispatching before it would be exceeded.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .config import MAX_WORKERS, OPTIONS, GenerateConfig, StrictModel, build
from .errors import ConfigError, InvalidOption, RunError
from .llm import PRICES, ClientSettings, Completion, cost, price_of
from .parse import main_code, parse_response
from .prompts import DEFAULT_TEMPLATE, PromptTemplate, load_template
from .stage import Progress, Report, Stage, StageStatus
from .store import RunStore, StageRecord, now

if TYPE_CHECKING:
    from .backends import Backend

#: Seconds that answers already requested may still arrive, and be stored, after a Ctrl-C.
GRACE = 10.0


# -- the samples table ------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingSeed:
    """A seed snippet still to send: its id (which also makes the request seed) and text."""

    id: int
    language: str
    snippet: str


@dataclass(frozen=True)
class AnswerRow:
    """The `samples` row one answer writes: parsed into sections when it is complete."""

    seed_id: int
    status: str
    model: str | None
    system_fingerprint: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    attempts: int
    template_sha256: str
    request_seed: int
    response: str | None
    error_kind: str | None
    error: str | None
    problem: str | None
    solution: str | None
    solution_lang: str | None
    solution_code: str | None
    tests: str | None

    @classmethod
    def of(
        cls,
        seed: PendingSeed,
        completion: Completion,
        config: GenerateConfig,
        price: tuple[float, float] | None,
    ) -> AnswerRow:
        """The row for `seed`'s completion; an `ok` answer that does not parse is `unparsable`."""
        status = completion.status
        parsed = parse_response(completion.content or "") if status == "ok" else None
        if status == "ok" and parsed is None:
            status = "unparsable"
        code = main_code(parsed.code_blocks, seed.language) if parsed else None
        return cls(
            seed_id=seed.id,
            status=status,
            model=completion.model,
            system_fingerprint=completion.system_fingerprint,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=cost(price, completion.prompt_tokens, completion.completion_tokens),
            latency_s=round(completion.latency_s, 4),
            attempts=completion.attempts,
            template_sha256=config.template_sha256,
            request_seed=config.seed + seed.id,
            response=completion.raw,
            error_kind=completion.error_kind,
            error=completion.error,
            problem=parsed.problem if parsed else None,
            solution=parsed.solution if parsed else None,
            solution_lang=(code.language or code.tag) if code else None,
            solution_code=code.code if code else None,
            tests=parsed.tests if parsed else None,
        )


#: Columns of `samples` the stage writes (all but the timestamp), in AnswerRow's order.
SAMPLE_COLUMNS = tuple(f.name for f in fields(AnswerRow))
_SAMPLE_VALUES = attrgetter(*SAMPLE_COLUMNS)


@dataclass(frozen=True)
class StoredAnswer:
    """A stored answer with its seed, as `dump RUN samples` writes it."""

    seed_id: int
    language: str
    seed: str
    status: str
    problem: str | None
    solution: str | None
    solution_lang: str | None
    solution_code: str | None
    tests: str | None
    model: str | None
    system_fingerprint: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float | None
    attempts: int
    request_seed: int | None
    template_sha256: str
    error_kind: str | None
    error: str | None
    response: str | None


#: ParsedSample's columns, of `samples x` joined with `seeds s`.
PARSED_COLUMNS = (
    "x.seed_id, s.language, s.snippet, x.problem, x.solution, x.solution_lang, x.solution_code"
)


@dataclass(frozen=True)
class ParsedSample:
    """A sample that parsed into problem and solution, with its seed (what later stages read)."""

    seed_id: int
    language: str
    snippet: str  # the seed snippet the sample was written from
    problem: str
    solution: str
    solution_lang: str | None
    solution_code: str | None


@dataclass(frozen=True)
class Usage:
    """What the run's answers are and cost, for `status` and the stage's summary."""

    parsed: dict[str, int]  # `ok` samples per language
    not_parsed: dict[str, dict[str, int]]  # per language, the other statuses' counts
    failures: dict[str, int]  # failed samples per error kind
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    responses: int


#: Seeds still to send (parameters: retry_failed, part count, part index): no stored answer
#: (or a failed or truncated one, when retrying) and no request in a batch still open.
_PENDING = (
    "FROM seeds s LEFT JOIN samples x ON x.seed_id = s.id "
    "WHERE (x.seed_id IS NULL OR (? AND x.status IN ('failed', 'truncated'))) "
    "AND s.id NOT IN (SELECT seed_id FROM batch_requests WHERE state = 'open') "
    "AND s.id % ? = ?"
)


def pending_seeds(
    store: RunStore, retry_failed: bool, part: tuple[int, int] = (0, 1), chunk: int = 1_000
) -> Iterator[PendingSeed]:
    """Seeds with no stored answer (and, when `retry_failed`, failed or truncated ones) that
    no open batch holds.

    Only those whose id % part[1] == part[0], so that processes can share a run. Streamed a
    chunk at a time by id, so memory stays flat and writes may interleave.
    """
    for page in store.pages(
        f"SELECT s.id, s.language, s.snippet {_PENDING} AND s.id > ? ORDER BY s.id LIMIT ?",
        (retry_failed, *part[::-1]),
        "id",
        chunk,
        PendingSeed,
    ):
        yield from page


def count_pending(store: RunStore, retry_failed: bool, part: tuple[int, int] = (0, 1)) -> int:
    """How many seeds `pending_seeds` would yield."""
    return int(store.value(f"SELECT COUNT(*) {_PENDING}", (retry_failed, *part[::-1])))


def count_unanswered(store: RunStore) -> int:
    """Seeds with no stored answer at all, in a batch or not: the stage is done at 0."""
    return int(
        store.value(
            "SELECT COUNT(*) FROM seeds s LEFT JOIN samples x ON x.seed_id = s.id "
            "WHERE x.seed_id IS NULL"
        )
    )


_SUMMED = ("prompt_tokens", "completion_tokens", "cost_usd", "attempts")
_UPSERT = (
    f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}, created_at) "
    f"VALUES ({', '.join('?' * len(SAMPLE_COLUMNS))}, ?) ON CONFLICT (seed_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = samples.{c} + excluded.{c}" if c in _SUMMED else f"{c} = excluded.{c}"
        for c in (*SAMPLE_COLUMNS[1:], "created_at")
    )
)


def write_samples(conn: sqlite3.Connection, rows: Iterable[AnswerRow]) -> None:
    """Store answers inside the caller's transaction; a re-sent sample replaces its earlier try
    but keeps paying for it (tokens, cost and attempts add up)."""
    stamp = now()
    conn.executemany(_UPSERT, [(*_SAMPLE_VALUES(row), stamp) for row in rows])


def record_samples(store: RunStore, rows: Iterable[AnswerRow]) -> None:
    """Store answers, committed together (see `write_samples`)."""
    with store.transaction() as conn:
        write_samples(conn, rows)


def spend(store: RunStore) -> float:
    """US$ spent on every stored answer."""
    return float(store.value("SELECT TOTAL(cost_usd) FROM samples"))


def iter_samples(store: RunStore) -> Iterator[StoredAnswer]:
    """Every stored answer with its seed, in seed order."""
    return store.rows(
        "SELECT s.id AS seed_id, s.language, s.snippet AS seed, x.status, x.problem, "
        "x.solution, x.solution_lang, x.solution_code, x.tests, x.model, x.system_fingerprint, "
        "x.finish_reason, x.prompt_tokens, x.completion_tokens, x.cost_usd, x.latency_s, "
        "x.attempts, x.request_seed, x.template_sha256, x.error_kind, x.error, x.response "
        "FROM samples x JOIN seeds s ON s.id = x.seed_id ORDER BY s.id",
        as_=StoredAnswer,
    )


def _iter_batches(store: RunStore) -> Iterator[Any]:
    """The run's batches (`generate --batch`), oldest first, as `dump RUN batches` writes them."""
    from .backends.batch import batches

    return iter(batches(store))


def parsed_samples(store: RunStore) -> Iterator[ParsedSample]:
    """Every sample that parsed into problem and solution, with its seed, in seed order."""
    return store.rows(
        f"SELECT {PARSED_COLUMNS} FROM samples x JOIN seeds s ON s.id = x.seed_id "
        "WHERE x.status = 'ok' ORDER BY x.seed_id",
        as_=ParsedSample,
    )


def count_parsed(store: RunStore) -> int:
    """How many samples parsed (`status` ok): what clean checks."""
    return int(store.value("SELECT COUNT(*) FROM samples WHERE status = 'ok'"))


def fingerprints(store: RunStore) -> list[str]:
    """The distinct system fingerprints the provider reported (which backend build answered)."""
    return list(
        store.pairs(
            "SELECT system_fingerprint, COUNT(*) FROM samples "
            "WHERE system_fingerprint IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
    )


@dataclass(frozen=True)
class _StatusCount:
    language: str
    status: str
    count: int


@dataclass(frozen=True)
class _Totals:
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float
    responses: int


def usage(store: RunStore) -> Usage:
    """What the stored answers are and cost (for `status`, the dataset card and the notebook)."""
    parsed: dict[str, int] = {}
    not_parsed: dict[str, dict[str, int]] = {}
    for row in store.rows(
        "SELECT s.language, x.status, COUNT(*) AS count FROM samples x "
        "JOIN seeds s ON s.id = x.seed_id GROUP BY 1, 2",
        as_=_StatusCount,
    ):
        if row.status == "ok":
            parsed[row.language] = row.count
        else:
            not_parsed.setdefault(row.language, {})[row.status] = row.count
    totals = next(
        store.rows(
            "SELECT TOTAL(prompt_tokens) AS prompt_tokens, "
            "TOTAL(completion_tokens) AS completion_tokens, TOTAL(cost_usd) AS cost_usd, "
            "COUNT(*) AS responses FROM samples",
            as_=_Totals,
        )
    )
    return Usage(
        parsed=parsed,
        not_parsed=not_parsed,
        failures=store.pairs(
            "SELECT error_kind, COUNT(*) FROM samples WHERE status = 'failed' GROUP BY 1"
        ),
        prompt_tokens=int(totals.prompt_tokens),
        completion_tokens=int(totals.completion_tokens),
        cost_usd=totals.cost_usd,
        responses=totals.responses,
    )


# -- options, stats and the stage -------------------------------------------------------------


@pydantic_dataclass(frozen=True, config=OPTIONS)
class SendOptions:
    """How much of the run to send now, and how; none of it changes what a sample says."""

    retry_failed: bool = False  # re-send failed and truncated samples too
    limit: int | None = Field(default=None, ge=0)  # send at most this many requests
    max_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)  # US$ for the whole run
    workers: int = Field(
        default=1, ge=0, le=MAX_WORKERS
    )  # processes; 0: one per 256 in flight, at most one per core
    grace: float = Field(default=GRACE, ge=0)  # seconds answers in flight may arrive after a Ctrl-C
    wait: bool = True  # batches: wait until they end (else submit, collect what ended, return)
    batch_size: int = Field(default=50_000, ge=1, le=50_000)  # requests per batch at most
    batch_mb: float = Field(default=200.0, gt=0, le=200, allow_inf_nan=False)  # MB per file
    poll_interval: float = Field(default=60.0, gt=0, allow_inf_nan=False)  # longest poll pause


#: The options that decide a sample's text: None reuses the stored value, else the default.
CONFIG_OPTIONS = ("model", "template", "temperature", "top_p", "max_tokens", "seed")


class GenerateOptions(StrictModel):
    """The `generate` command's options, named as config keys (`--max-cost` is `max_cost`).

    Range checks run when the options are built, through the settings they make
    (`client_settings`, `send_options`), so a bad value fails before the run is touched.
    """

    model: str | None = None
    """Model name, e.g. gpt-4o-mini."""
    base_url: str | None = None
    """OpenAI-compatible endpoint (vLLM, Ollama...); default $OPENAI_BASE_URL, else OpenAI's."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key."""
    template: str | None = None
    """Prompt template: a name in prompts/ or a folder."""
    concurrency: int = 64
    """Requests in flight."""
    rpm: float | None = None
    """Requests per minute budget."""
    tpm: float | None = None
    """Tokens per minute budget."""
    temperature: float | None = None
    """Default 0 (Magicoder)."""
    top_p: float | None = None
    """Nucleus sampling (not sent if unset)."""
    max_tokens: int | None = None
    """Completion tokens (default 2500)."""
    seed: int | None = None
    """Base request seed; sample i sends seed + i (default 976)."""
    max_cost: float | None = None
    """Stop before spending more than this many US$."""
    limit: int | None = None
    """Send at most this many requests."""
    retry_failed: bool = False
    """Re-send failed and truncated samples only."""
    price: list[str] = Field(default_factory=list)
    """Price as MODEL=IN,OUT US$ per million tokens (repeatable)."""
    workers: int = 0
    """Processes sharing the requests (one saturates near 700 req/s); 0: one per 256 in
    flight, at most one per core."""
    timeout: float = 300.0
    """Seconds to wait for one answer."""
    max_attempts: int = 8
    """Tries per request."""
    backend: Literal["auto", "openai", "local"] = "auto"
    """auto (local when no key, URL or model is given), openai or local."""
    batch: bool | None = None
    """Send through the Batch API: half the price, answers within 24 h (default: only while
    the run has batches open)."""
    wait: bool = True
    """With --batch, wait for the batches to end; --no-wait submits, collects what has
    ended and returns."""
    batch_size: int = 50_000
    """With --batch, requests per batch (OpenAI takes 50,000 at most)."""
    batch_mb: float = 200.0
    """With --batch, megabytes per batch input file (OpenAI takes 200; some providers less)."""
    poll_interval: float = 60.0
    """With --batch, the longest pause in seconds between checks of a batch (polls start at
    1 s and back off)."""
    model_path: Path | None = None
    """GGUF model for the local backend (default: SmolLM2-135M)."""

    @field_validator("price")
    @classmethod
    def _check_prices(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            _parse_price(entry)
        return entries

    @model_validator(mode="after")
    def _check_ranges(self) -> GenerateOptions:
        self.client_settings()
        self.send_options()
        return self

    @property
    def prices(self) -> dict[str, tuple[float, float]]:
        """The `price` entries by model."""
        return dict(map(_parse_price, self.price))

    def client_settings(self, base_url: str | None = None) -> ClientSettings:
        """How to reach the provider; its model is set once the run's config is known."""
        values = {
            "model": "-",
            "base_url": base_url,
            "timeout": self.timeout,
            "max_attempts": self.max_attempts,
            "concurrency": self.concurrency,
            "rpm": self.rpm,
            "tpm": self.tpm,
        }
        return build(ClientSettings, values)

    def send_options(self) -> SendOptions:
        values = {
            "retry_failed": self.retry_failed,
            "limit": self.limit,
            "max_cost": self.max_cost,
            "workers": self.workers,
            "wait": self.wait,
            "batch_size": self.batch_size,
            "batch_mb": self.batch_mb,
            "poll_interval": self.poll_interval,
        }
        return build(SendOptions, values)


def _parse_price(entry: str) -> tuple[str, tuple[float, float]]:
    """`gpt-4o=2.5,10` as (model, (input, output))."""
    model, _, pair = entry.partition("=")
    try:
        inp, out = (float(x) for x in pair.split(","))
    except ValueError:
        raise InvalidOption(
            "price", f"bad entry {entry!r}: write MODEL=IN,OUT, e.g. gpt-4o=2.5,10"
        ) from None
    if inp < 0 or out < 0:
        raise InvalidOption("price", f"bad entry {entry!r}: prices cannot be negative")
    return model.strip(), (inp, out)


@dataclass
class GenerateStats(Report):
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

    def count(self, row: AnswerRow) -> None:
        """Add one stored answer."""
        self.done += 1
        self.statuses[row.status] += 1
        if row.error_kind:
            self.failures[row.error_kind] += 1
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.spent += row.cost_usd

    def line(self) -> str:
        elapsed = max(self.elapsed, 1e-9)
        rate = self.done / elapsed
        left = self.total - self.done
        eta = f"{left / rate:,.0f}s" if rate > 0 and left > 0 else "-"
        tokens = (self.prompt_tokens + self.completion_tokens) / elapsed
        failures = ", ".join(f"{k} {n}" for k, n in self.failures.most_common()) or "none"
        return (
            f"{self.done:,}/{self.total:,} done  {rate:,.1f} req/s  {tokens:,.0f} tok/s  "
            f"${self.spent:,.4f}  ETA {eta}  failures: {failures}"
        )


class Generate(Stage[GenerateOptions, GenerateStats]):
    """Ask the model for a problem and solution inspired by each seed, storing every answer.

    Re-running sends no request whose response is stored. Ctrl-C stops sending and stores the
    answers already on their way (a second Ctrl-C stops waiting for them).
    """

    name = "generate"
    Config = GenerateOptions
    example = "magicoder-data generate runs/demo --model gpt-4o-mini --concurrency 256 --max-cost 5"
    requires = ("sample",)
    funnel = "parsed"
    dumps = (("samples", iter_samples), ("batches", _iter_batches))
    progress_sql = "SELECT 1 FROM samples LIMIT 1"

    def check_ready(self, store: RunStore) -> None:
        """Seeds are final only once `sample` is complete."""
        if store.stage_status("sample") != "complete":
            raise RunError(
                f"{store.root}: sample seeds first (`magicoder-data sample {store.root}`)"
            )

    def funnel_counts(self, store: RunStore) -> dict[str, int]:
        return store.pairs(
            "SELECT s.language, COUNT(*) FROM samples x JOIN seeds s ON s.id = x.seed_id "
            "WHERE x.status = 'ok' GROUP BY 1"
        )

    def dropped(self, store: RunStore) -> Counter[str]:
        """Answers that are not samples, per status (failed, truncated, unparsable)."""
        return Counter(
            store.pairs(
                "SELECT status, COUNT(*) FROM samples WHERE status != 'ok' GROUP BY 1 ORDER BY 1"
            )
        )

    def status(self, store: RunStore, record: StageRecord) -> StageStatus:
        """Parsed samples per language; other answers per status and language; spend; the
        run's batches."""
        from .backends import batches

        spent = usage(store)
        base = super().status(store, record)
        return replace(
            base, rows=spent.parsed, drops=spent.not_parsed, usage=spent, batches=batches(store)
        )

    def run(
        self, store: RunStore, options: GenerateOptions, progress: Progress | None = None
    ) -> GenerateStats:
        """Send the pending seeds and store every answer; finish when none is left.

        A first Ctrl-C stops sending and stores the answers in flight that arrive in time; the
        returned stats then say `interrupted`.
        """
        from . import backends  # they build on this module

        self.check_ready(store)
        stored = store.stage_config(self.name)
        backend = backends.choose_backend(options, stored, bool(backends.open_batches(store)))
        config, template = _settle(options, stored or {}, backend)
        prices = backend.prices({**PRICES, **options.prices})
        model = config.model
        if options.max_cost is not None and price_of(model, prices) is None:
            raise ConfigError(
                f"no price known for model {model!r}, so --max-cost cannot be kept; "
                f"add one with --price {model}=INPUT,OUTPUT (US$ per million tokens)"
            )
        backend.check()
        store.begin_stage(self.name, config.model_dump(mode="json"), self.progress_sql)
        request = backends.SendRequest(config, template, options.send_options(), prices)
        stats = backend.send(store, request, progress)
        if count_unanswered(store) == 0:
            store.finish_stage(self.name, {"responses": usage(store).responses})
        return stats


def _settle(
    options: GenerateOptions, stored: dict[str, Any], backend: Backend
) -> tuple[GenerateConfig, PromptTemplate]:
    """The run's config and prompt: the backend's defaults, under the stored values, under the
    given options, under what the backend imposes."""
    given = {name: getattr(options, name) for name in CONFIG_OPTIONS}
    values = {
        **backend.defaults(),
        **stored,
        **{k: v for k, v in given.items() if v is not None},
        **backend.overrides(),
    }
    if "model" not in values:
        raise ConfigError("pass --model (e.g. --model gpt-4o-mini)")
    template = load_template(values.get("template", DEFAULT_TEMPLATE))
    values["template_sha256"] = template.sha256
    if backend.grammars and template.grammar:
        values["grammar"] = template.grammar
    return build(GenerateConfig, values), template
