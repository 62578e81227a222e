"""The clean stage: keep a sample only when it passes every check; record why each one is not.

Checks are small classes with one `check(sample) -> reason | None` (in the style of datatrove's
filters); deduplication runs after them in seed order so the first copy is the one kept:

- exact duplicates of the whitespace-normalised seed, problem or solution (Magicoder's rule);
- near-duplicates by MinHash LSH (datasketch) over word 5-grams of problem + solution, above a
  Jaccard threshold, one kept per cluster;
- solutions whose code is the same but for names and layout (code tokens with identifiers
  abstracted, LSH candidates verified by rapidfuzz's ratio).

The stage is one pass over the run's parsed samples, written in one transaction: it is short,
and an interrupted pass leaves nothing half-done.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .config import OPTIONS, build
from .executors import BatchJob, Executor, ExecutorOptions, LocalExecutor, StoreRows
from .generate import PARSED_COLUMNS, ParsedSample, count_parsed
from .languages import LANGUAGES
from .records import Drop
from .stage import DropReport, Progress, Stage
from .store import RunStore
from .syntax import code_tokens, has_errors

STAGE = "clean"
#: Samples checked per batch.
BATCH = 512


@pydantic_dataclass(frozen=True, config=OPTIONS)
class CleanConfig:
    min_problem: int = Field(default=40, ge=0)
    max_problem: int = Field(default=8_000, gt=0)
    min_solution: int = Field(default=20, ge=0)
    max_solution: int = Field(default=20_000, gt=0)
    #: Jaccard threshold for MinHash LSH near-duplicates; 1.0 turns it off.
    near_duplicate: float = Field(default=0.75, gt=0, le=1)
    #: rapidfuzz ratio of two solutions' code tokens (identifiers abstracted) that makes them
    #: near-duplicates; 1.0 turns it off.
    near_duplicate_code: float = Field(default=0.95, gt=0, le=1)
    num_perm: int = Field(default=128, ge=16)


class Check:
    """A rule a sample must pass; `check` returns the reason it fails, or None."""

    name: ClassVar[str]

    def __init__(self, config: CleanConfig) -> None:
        self.config = config

    def check(self, sample: ParsedSample) -> str | None:
        raise NotImplementedError


class Sections(Check):
    name = "sections"

    def check(self, sample: ParsedSample) -> str | None:
        problem, solution = (sample.problem or "").strip(), (sample.solution or "").strip()
        c = self.config
        if len(problem) < c.min_problem:
            return "short_problem"
        if len(problem) > c.max_problem:
            return "long_problem"
        if len(solution) < c.min_solution:
            return "short_solution"
        if len(solution) > c.max_solution:
            return "long_solution"
        return None


class HasCode(Check):
    name = "has_code"

    def check(self, sample: ParsedSample) -> str | None:
        return None if (sample.solution_code or "").strip() else "no_code"


class SameLanguage(Check):
    """The solution's fenced language, when it names one, is the seed's."""

    name = "language"

    def check(self, sample: ParsedSample) -> str | None:
        tagged = sample.solution_lang
        if tagged in LANGUAGES and tagged != sample.language:
            return "language_mismatch"
        return None


_PLACEHOLDER = re.compile(
    r"\bTODO\b|\bFIXME\b|unimplemented!\(|todo!\(|NotImplementedException|"
    r"UnsupportedOperationException\(\s*\"?not implemented|fatalError\(\s*\"?not implemented|"
    r"your code here|implement (?:this|me)\b",
    re.IGNORECASE,
)


class NotPlaceholder(Check):
    """No stub bodies: `pass`, `...`, `raise NotImplementedError`, TODO markers."""

    name = "placeholder"

    def check(self, sample: ParsedSample) -> str | None:
        code = sample.solution_code or ""
        if sample.language == "python":
            try:
                tree = ast.parse(code)
            except (SyntaxError, ValueError):
                return None  # the syntax check reports it
            if any(
                _stub(node)
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            ):
                return "placeholder_solution"
        return "placeholder_solution" if _PLACEHOLDER.search(code) else None


def _stub(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = function.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the docstring
    if any(
        isinstance(d, ast.Name | ast.Attribute) and "abstract" in ast.unparse(d)
        for d in function.decorator_list
    ):
        return False

    def empty(statement: ast.stmt) -> bool:
        if isinstance(statement, ast.Pass):
            return True
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            return statement.value.value is Ellipsis
        if isinstance(statement, ast.Raise) and statement.exc is not None:
            return "NotImplementedError" in ast.unparse(statement.exc)
        return False

    return all(empty(s) for s in body)


class Parses(Check):
    """The code parses: Python with `ast`, other languages with their tree-sitter grammar."""

    name = "syntax"

    def check(self, sample: ParsedSample) -> str | None:
        code, language = sample.solution_code or "", sample.language
        if language == "python":
            try:
                ast.parse(code)
            except (SyntaxError, ValueError):
                return "syntax_error"
            return None
        if language in LANGUAGES and has_errors(language, code):
            return "syntax_error"
        return None


CHECKS: tuple[type[Check], ...] = (Sections, HasCode, SameLanguage, NotPlaceholder, Parses)


def _normalised(text: str | None) -> bytes:
    return hashlib.blake2b(" ".join((text or "").split()).encode(), digest_size=16).digest()


def _signature(shingles: set[bytes], num_perm: int) -> Any:
    """A MinHash of `shingles`, lean (no permutations): cheap to ship back from a worker."""
    from datasketch import LeanMinHash, MinHash

    signature = MinHash(num_perm=num_perm, seed=1)
    signature.update_batch(list(shingles))
    return LeanMinHash(signature)


class NearDuplicates:
    """MinHash LSH over word 5-gram shingles; remembers what it has kept."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHashLSH

        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._kept: dict[str, Any] = {}
        self.threshold = threshold

    @staticmethod
    def signature(text: str, num_perm: int) -> Any:
        """What `seen` compares: a MinHash of the text's word 5-grams."""
        tokens = re.findall(r"\w+", text.lower())
        shingles = {" ".join(tokens[i : i + 5]).encode() for i in range(max(1, len(tokens) - 4))}
        return _signature(shingles, num_perm)

    def seen(self, key: str, signature: Any) -> str | None:
        """The kept sample this signature nearly duplicates, or None (and then it is kept)."""
        for candidate in self._lsh.query(signature):
            if signature.jaccard(self._kept[candidate]) >= self.threshold:
                return candidate
        self._lsh.insert(key, signature)
        self._kept[key] = signature
        return None


#: A solution's code tokens (identifiers abstracted) with their MinHash.
CodePrint = tuple[list[str], Any]


class CodeNearDuplicates:
    """Solutions whose code is the same but for names and layout: two seeds that gave one
    task in other words. MinHash LSH over 5-grams of the code's tokens (identifiers
    abstracted, comments dropped) finds candidates; rapidfuzz's ratio of the token sequences
    decides. Word shingles miss these (`bench/dedup_calibration.py`: 0 of 482 renamed
    copies, against 418 here)."""

    #: LSH's Jaccard threshold: loose, since the ratio decides.
    CANDIDATES = 0.5

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHashLSH

        self._lsh = MinHashLSH(threshold=self.CANDIDATES, num_perm=num_perm)
        self._kept: dict[str, list[str]] = {}
        self.threshold = threshold

    @staticmethod
    def fingerprint(code: str | None, language: str, num_perm: int) -> CodePrint | None:
        """What `seen` compares, or None for code too short (or in no known language) to
        call anything a copy of it."""
        if not code or language not in LANGUAGES:
            return None
        tokens = code_tokens(code, language).tokens
        if len(tokens) < 5:
            return None
        shingles = {"\0".join(tokens[i : i + 5]).encode() for i in range(len(tokens) - 4)}
        return tokens, _signature(shingles, num_perm)

    def seen(self, key: str, fingerprint: CodePrint | None) -> str | None:
        """The kept sample whose code this nearly duplicates, or None (and then it is kept)."""
        from rapidfuzz import fuzz

        if fingerprint is None:
            return None
        tokens, signature = fingerprint
        for candidate in self._lsh.query(signature):
            if fuzz.ratio(tokens, self._kept[candidate], score_cutoff=self.threshold * 100):
                return candidate
        self._lsh.insert(key, signature)
        self._kept[key] = tokens
        return None


#: Duplicate reasons name the seed as users know it; the attribute holds its snippet.
FIELDS = {"seed": "snippet", "problem": "problem", "solution": "solution"}


@dataclass(frozen=True)
class Checked:
    """What one sample's checks found, and the keys deduplication compares, computed apart
    from the others (by any worker); `Deduplicator` then decides in seed order."""

    seed_id: int
    language: str
    reason: str | None
    keys: dict[str, bytes]
    text: Any = None
    code: CodePrint | None = None
    code_language: str = ""


@dataclass(frozen=True)
class CleanJob(BatchJob[ParsedSample, Checked]):
    """The clean stage's per-sample work as a pure function over batches: checks, exact keys,
    MinHash signatures and code tokens."""

    config: CleanConfig

    @contextmanager
    def open(self, cores: int) -> Iterator[Callable[[list[ParsedSample]], list[Checked]]]:
        checks = [cls(self.config) for cls in CHECKS]
        yield lambda samples: [self.check(sample, checks) for sample in samples]

    def check(self, sample: ParsedSample, checks: list[Check]) -> Checked:
        config = self.config
        reason = next((r for c in checks if (r := c.check(sample))), None)
        keys = {name: _normalised(getattr(sample, field)) for name, field in FIELDS.items()}
        if reason is not None:
            return Checked(sample.seed_id, sample.language, reason, keys)
        code_language = sample.solution_lang or sample.language
        return Checked(
            sample.seed_id,
            sample.language,
            None,
            keys,
            NearDuplicates.signature(f"{sample.problem}\n{sample.solution}", config.num_perm)
            if config.near_duplicate < 1
            else None,
            CodeNearDuplicates.fingerprint(sample.solution_code, code_language, config.num_perm)
            if config.near_duplicate_code < 1
            else None,
            code_language,
        )


class Deduplicator:
    """Decides, in seed order, which checked samples copy one kept before them."""

    def __init__(self, config: CleanConfig) -> None:
        self._seen: dict[str, dict[bytes, int]] = {name: {} for name in FIELDS}
        self._near = (
            NearDuplicates(config.near_duplicate, config.num_perm)
            if config.near_duplicate < 1
            else None
        )
        self._near_code = (
            CodeNearDuplicates(config.near_duplicate_code, config.num_perm)
            if config.near_duplicate_code < 1
            else None
        )

    def drop(self, sample: Checked) -> Drop | None:
        """Why `sample` goes (a failed check first, then a copy), or None when it is kept."""
        seed_id, language, reason, detail = sample.seed_id, sample.language, sample.reason, None
        if reason is None:
            for field, key in sample.keys.items():
                if key in self._seen[field]:
                    reason, detail = (
                        f"duplicate_{field}",
                        f"same {field} as {self._seen[field][key]}",
                    )
                    break
        if reason is None and self._near is not None:
            twin_key = self._near.seen(str(seed_id), sample.text)
            if twin_key is not None:
                reason, detail = "near_duplicate", f"near {twin_key}"
        if reason is None and self._near_code is not None:
            twin_key = self._near_code.seen(str(seed_id), sample.code)
            if twin_key is not None:
                language = sample.code_language
                reason, detail = "near_duplicate_code", f"same code as {twin_key} but for names"
        if reason is not None:
            return Drop(language, reason, str(seed_id), None, detail)
        for field, key in sample.keys.items():  # only kept samples count as the first copy
            self._seen[field][key] = seed_id
        return None


def clean_samples(
    samples: StoreRows[ParsedSample] | Iterable[list[ParsedSample]],
    config: CleanConfig,
    executor: Executor | None = None,
    store: RunStore | None = None,
) -> list[Drop]:
    """The drops among `samples` (batches in seed order): failed checks, then duplicates.
    The checks run on `executor` (here by default); deduplication runs here, in order."""
    dedup = Deduplicator(config)
    drops = []
    with executor or LocalExecutor() as runner:
        for _, checked in runner.map(CleanJob(config), samples, store):
            drops += [drop for sample in checked if (drop := dedup.drop(sample))]
    return drops


class CleanOptions(ExecutorOptions):
    """The `clean` command's options; unset ones keep what RUN's clean was started with."""

    near_duplicate: float | None = None
    """MinHash Jaccard threshold for near-duplicates (0.75); 1 turns it off."""
    near_duplicate_code: float | None = None
    """Similarity of two solutions' code tokens, names abstracted, that makes them
    near-duplicates (0.95); 1 turns it off."""
    min_problem: int | None = None
    """Shortest problem, characters (40)."""
    max_problem: int | None = None
    """Longest problem, characters (8000)."""
    min_solution: int | None = None
    """Shortest solution, characters (20)."""
    max_solution: int | None = None
    """Longest solution, characters (20000)."""
    num_perm: int | None = None
    """MinHash permutations (128)."""

    @model_validator(mode="after")
    def _in_range(self) -> CleanOptions:
        """Bad values fail here, before any run is opened (InvalidOption names the key)."""
        self.settings()
        return self

    def settings(self, stored: dict[str, Any] | None = None) -> CleanConfig:
        """Given values over `stored` ones over the defaults (InvalidOption names a bad one)."""
        given = self.model_dump(exclude_none=True, exclude=set(self.EXECUTION))
        return build(CleanConfig, {**(stored or {}), **given})


class Clean(Stage[CleanOptions, DropReport]):
    """Drop duplicates, near-duplicates and broken samples, counting each reason.

    Options left out keep the values RUN's clean was started with.
    """

    name = STAGE
    Config = CleanOptions
    example = "magicoder-data clean runs/demo --near-duplicate 0.8"
    requires = ("generate",)
    filters = True
    funnel = "cleaned"

    def run(
        self, store: RunStore, config: CleanOptions, progress: Progress | None = None
    ) -> DropReport:
        self.check_ready(store)
        stored = store.stage_config(STAGE) or {}
        settings = config.settings(stored)
        store.begin_stage(STAGE, asdict(settings), self.progress_sql)
        # Generating more (a resumed or --retry-failed run) adds samples: clean them all again.
        if store.stage_status(STAGE) != "complete" or self.unseen(store):
            parsed = StoreRows(
                store.root.resolve(),
                PARSED_COLUMNS,
                "FROM samples x JOIN seeds s ON s.id = x.seed_id WHERE x.status = 'ok'",
                "x.seed_id",
                BATCH,
                ParsedSample,
            )
            drops = clean_samples(parsed, settings, config.executor_for(), store)
            store.replace_drops(STAGE, drops, summary={"checked": count_parsed(store)})
        return DropReport(STAGE, store.drop_totals(STAGE))

    def unseen(self, store: RunStore) -> int:
        """Clean checks every parsed sample at once and records how many it checked."""
        if store.stage_status(STAGE) != "complete":
            return 0
        return count_parsed(store) - (store.stage_summary(STAGE) or {}).get("checked", 0)
