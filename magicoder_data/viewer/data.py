"""What the viewer shows, read from a run: typed rows, never written back.

The pages and the JSON API both take their data from here, so a script sees what a person
sees. Filters are checked before any query runs (`SampleFilter`); a page of samples is one
indexed query plus one count, whatever the run's size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..decontam.benchmarks import BenchmarkItem
from ..errors import ConfigError, MagicoderDataError
from ..pipeline import STAGES, funnel, run_status
from ..seeds import SeedRow
from ..store import RunStore, writer

log = logging.getLogger("magicoder_data")

#: What `?status=` may ask for: where a sample ended up, or its answer's state.
STATUSES = ("kept", "dropped", "ok", "failed", "truncated", "unparsable")
#: Samples on a page.
PAGE_SIZE = 50


class BadRequest(ConfigError):
    """A filter, page or id the viewer cannot use (a 400, or a 404 for what does not exist)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SampleFilter:
    """`/samples`'s query: each part optional; `page` counts from 1."""

    status: str | None = None
    language: str | None = None
    reason: str | None = None
    q: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, query: dict[str, str]) -> SampleFilter:
        """From a URL's query; BadRequest for an unknown key or value."""
        unknown = set(query) - {"status", "language", "reason", "q", "page", "run"}
        if unknown:
            raise BadRequest(f"unknown parameter {sorted(unknown)[0]!r}")
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        page_text = query.get("page") or "1"
        if not page_text.isdigit() or not 1 <= int(page_text) <= 1_000_000:
            raise BadRequest("page must be a whole number from 1")
        q = (query.get("q") or "").strip() or None
        if q is not None and len(q) > 200:
            raise BadRequest("q is longer than 200 characters")
        return cls(
            status=status,
            language=query.get("language") or None,
            reason=query.get("reason") or None,
            q=q,
            page=int(page_text),
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """This filter as URL parameters, with `changes` (for links to other pages)."""
        values = {k: getattr(self, k) for k in ("status", "language", "reason", "q", "page")}
        values |= changes
        return {
            k: str(v)
            for k, v in values.items()
            if v not in (None, "") and not (k == "page" and v == 1)
        }


@dataclass(frozen=True)
class SampleRow:
    """One line of the samples table."""

    seed_id: int
    language: str
    status: str
    problem: str | None
    dropped: str | None  # "stage: reason" of its first drop


@dataclass
class SamplePage:
    rows: list[SampleRow]
    total: int
    filter: SampleFilter
    pages: int
    languages: list[str]
    reasons: list[str]


def _dropped_sql() -> str:
    """`stage: reason` of a sample's first drop by a filtering stage, as SQL on alias x."""
    filtering = ", ".join(f"'{stage.name}'" for stage in STAGES if stage.filters)
    return (
        "(SELECT d.stage || ': ' || d.reason FROM drops d WHERE d.stage IN "
        f"({filtering}) AND d.item = CAST(x.seed_id AS TEXT) LIMIT 1)"
    )


def samples_page(
    store: RunStore,
    wanted: SampleFilter,
    search: Callable[[str], tuple[str, tuple[str, ...]]] | None = None,
) -> SamplePage:
    """A page of samples matching `wanted`, in seed order; `search(q)` gives the SQL condition
    (and its parameters) for the samples matching a full-text query."""
    where: list[str] = ["1"]
    params: list[str] = []
    if wanted.language:
        where.append("s.language = ?")
        params.append(wanted.language)
    dropped = _dropped_sql()
    if wanted.status == "kept":
        where.append(f"x.status = 'ok' AND {dropped} IS NULL")
    elif wanted.status == "dropped":
        where.append(f"(x.status != 'ok' OR {dropped} IS NOT NULL)")
    elif wanted.status:
        where.append("x.status = ?")
        params.append(wanted.status)
    if wanted.reason:
        where.append(
            "(x.status = ? OR CAST(x.seed_id AS TEXT) IN "
            "(SELECT item FROM drops WHERE reason = ? AND stage != 'sample'))"
        )
        params += [wanted.reason, wanted.reason]
    if wanted.q:
        matching, more = search(wanted.q) if search else ("0", ())
        where.append(matching)
        params += more
    condition = " AND ".join(where)
    base = f"FROM samples x JOIN seeds s ON s.id = x.seed_id WHERE {condition}"
    total = int(store.value(f"SELECT COUNT(*) {base}", tuple(params)))
    rows = list(
        store.rows(
            f"SELECT x.seed_id, s.language, x.status, substr(x.problem, 1, 240) AS problem, "
            f"{dropped} AS dropped {base} ORDER BY x.seed_id LIMIT ? OFFSET ?",
            (*params, PAGE_SIZE, (wanted.page - 1) * PAGE_SIZE),
            as_=SampleRow,
        )
    )
    pages = max(1, -(-total // PAGE_SIZE))
    if wanted.page > pages:
        raise BadRequest(f"page {wanted.page} is past the last page ({pages})", 404)
    return SamplePage(
        rows=rows,
        total=total,
        filter=wanted,
        pages=pages,
        languages=sorted(store.pairs("SELECT language, 1 FROM seeds GROUP BY 1")),
        reasons=sorted(
            set(store.pairs("SELECT reason, 1 FROM drops WHERE stage != 'sample' GROUP BY 1"))
            | set(store.pairs("SELECT status, 1 FROM samples WHERE status != 'ok' GROUP BY 1"))
        ),
    )


@dataclass(frozen=True)
class Answer:
    status: str
    model: str | None
    problem: str | None
    solution: str | None
    solution_lang: str | None
    solution_code: str | None
    tests: str | None
    error_kind: str | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    attempts: int
    request_seed: int | None
    response: str | None


@dataclass(frozen=True)
class DropOf:
    stage: str
    reason: str
    detail: str | None


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str
    output: str
    seconds: float


@dataclass(frozen=True)
class Evidence:
    benchmark: str
    item_id: str
    method: str
    score: float
    span: str | None


@dataclass(frozen=True)
class EditSequence:
    sample: int
    edits: list[str]


@dataclass
class SampleDetail:
    """Everything about one seed id: where the snippet came from, what was asked and answered,
    and what every later stage made of it."""

    seed: SeedRow
    answer: Answer | None
    prompt: list[dict[str, str]] = field(default_factory=list)
    drops: list[DropOf] = field(default_factory=list)
    verdict: Verdict | None = None
    evidence: list[Evidence] = field(default_factory=list)
    edits: list[EditSequence] = field(default_factory=list)


def sample_detail(store: RunStore, seed_id: int) -> SampleDetail:
    """The seed `seed_id` and all that was stored about it; BadRequest(404) when none is."""
    seed = next(
        store.rows(
            f"SELECT {', '.join(f.name for f in fields(SeedRow))} FROM seeds WHERE id = ?",
            (seed_id,),
            as_=SeedRow,
        ),
        None,
    )
    if seed is None:
        raise BadRequest(f"no seed {seed_id} in this run", 404)
    answer = next(
        store.rows(
            "SELECT status, model, problem, solution, solution_lang, solution_code, tests, "
            "error_kind, error, prompt_tokens, completion_tokens, cost_usd, attempts, "
            "request_seed, response FROM samples WHERE seed_id = ?",
            (seed_id,),
            as_=Answer,
        ),
        None,
    )
    detail = SampleDetail(seed=seed, answer=answer)
    detail.prompt = _prompt(store, seed)
    detail.drops = list(
        store.rows(
            "SELECT stage, reason, detail FROM drops WHERE item = ? AND stage != 'sample' "
            "ORDER BY rowid",
            (str(seed_id),),
            as_=DropOf,
        )
    )
    detail.verdict = next(
        store.rows(
            "SELECT status, detail, output, seconds FROM verification WHERE seed_id = ?",
            (seed_id,),
            as_=Verdict,
        ),
        None,
    )
    detail.evidence = list(
        store.rows(
            "SELECT benchmark, item_id, method, score, span FROM contamination "
            "WHERE seed_id = ? ORDER BY score DESC",
            (seed_id,),
            as_=Evidence,
        )
    )
    detail.edits = [
        EditSequence(sample, json.loads(edits))
        for sample, edits in store.pairs(
            "SELECT sample, edits FROM lintseq WHERE seed_id = ? ORDER BY sample", (seed_id,)
        ).items()
    ]
    return detail


def _prompt(store: RunStore, seed: SeedRow) -> list[dict[str, str]]:
    """The messages generation sent for `seed` (its run's template), or none before generate."""
    from ..prompts import load_template

    config = store.stage_config("generate")
    if not config:
        return []
    try:
        template = load_template(config.get("template", "oss-instruct"))
    except ConfigError:  # a template folder that is gone: the answer still shows
        return []
    return template.messages(seed.snippet, seed.language)


@dataclass(frozen=True)
class DropGroup:
    """One drop reason of one stage: how many, and a few examples."""

    stage: str
    reason: str
    count: int
    examples: list[str]  # items: seed ids (or document ids for `sample`)


def drop_groups(store: RunStore, examples: int = 5) -> list[DropGroup]:
    """Every drop reason, stage by stage in pipeline order, then answers that are not samples."""
    order = {stage.name: n for n, stage in enumerate(STAGES)}
    counts = store.rows(
        "SELECT stage, reason, COUNT(*) AS count FROM drops GROUP BY 1, 2",
        as_=lambda stage, reason, count: (stage, reason, count),
    )
    groups = []
    for stage, reason, count in sorted(counts, key=lambda r: (order.get(r[0], 99), -r[2])):
        items = store.pairs(
            "SELECT item, 1 FROM drops WHERE stage = ? AND reason = ? ORDER BY rowid LIMIT ?",
            (stage, reason, examples),
        )
        groups.append(DropGroup(stage, reason, count, list(items)))
    for status, count in store.pairs(
        "SELECT status, COUNT(*) FROM samples WHERE status != 'ok' GROUP BY 1 ORDER BY 2 DESC"
    ).items():
        items = store.pairs(
            "SELECT CAST(seed_id AS TEXT), 1 FROM samples WHERE status = ? ORDER BY seed_id "
            "LIMIT ?",
            (status, examples),
        )
        groups.append(DropGroup("generate", status, count, list(items)))
    return groups


@dataclass(frozen=True)
class Flag:
    seed_id: int
    language: str
    benchmark: str
    item_id: str
    method: str
    score: float


def flags(store: RunStore, limit: int = 500) -> list[Flag]:
    """Flagged samples, by benchmark and method, highest score first (at most `limit`)."""
    return list(
        store.rows(
            "SELECT c.seed_id, s.language, c.benchmark, c.item_id, c.method, c.score "
            "FROM contamination c JOIN seeds s ON s.id = c.seed_id "
            "ORDER BY c.benchmark, c.method, c.score DESC, c.seed_id LIMIT ?",
            (limit,),
            as_=Flag,
        )
    )


def overview(store: RunStore) -> dict[str, Any]:
    """The run at a glance: stages and their state, the funnel, spend, configs."""
    status = run_status(store)
    generate = status.stages.get("generate")
    seeds = int(store.value("SELECT COUNT(*) FROM seeds"))
    answered = int(store.value("SELECT COUNT(*) FROM samples"))
    reasons = [
        (stage, reason, count)
        for stage, info in status.stages.items()
        for reason, count in sorted(
            _totals(info.drops).items(), key=lambda pair: (-pair[1], pair[0])
        )
    ]
    return {
        "run": status.run,
        "drop_reasons": reasons,
        "stages": {name: s.as_json() for name, s in status.stages.items()},
        "funnel": funnel(store, status),
        "progress": {"seeds": seeds, "answered": answered},
        "usage": generate.as_json() if generate and generate.usage else None,
        "writer": writer(store.root),  # who is writing the run now, if anyone
        "configs": {r.stage: r.config for r in store.stage_records()},
    }


def benchmark_items(store: RunStore) -> dict[tuple[str, str], BenchmarkItem]:
    """The items of the benchmarks the run was decontaminated against, by (benchmark, id), for
    showing beside the samples they flagged; none that cannot be loaded (offline, say)."""
    from ..decontam.benchmarks import load, resolve

    config = store.stage_config("decontaminate") or {}
    entries = str(config.get("benchmarks") or "")
    items: dict[tuple[str, str], BenchmarkItem] = {}
    for entry in filter(None, entries.split(",")):
        try:
            for item in load(resolve([entry])[0]):
                items[(item.benchmark, item.item_id)] = item
        except MagicoderDataError as exc:
            log.warning("viewer: benchmark %s not shown (%s)", entry, exc)
    return items


def _totals(drops: dict[str, dict[str, int]]) -> dict[str, int]:
    """Drops per reason over every language."""
    totals: dict[str, int] = {}
    for reasons in drops.values():
        for reason, count in reasons.items():
            totals[reason] = totals.get(reason, 0) + count
    return totals
