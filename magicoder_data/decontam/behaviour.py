"""The execution method: a sample whose code passes a benchmark item's own tests solves that item.

Text matching misses a benchmark problem told in new words with its function renamed; running
the item's tests does not (Magicoder#40 found half of HumanEval in Evol-Instruct this way). For
each Python sample, its candidates are the benchmark items with tests whose entry point takes
as many positional arguments as one of the sample's top-level functions (of the same kinds,
where both annotate them: text, number, items, mapping), closest by TF-IDF
first, at most `candidates` of them (by default 200: every HumanEval item, since reworded
problems share few words with theirs). Each fitting function is bound to the entry point's
name and the item's tests run against it in the sandbox, which compiled every item's tests
once; one sandboxed job per sample runs all its (item, function) checks, each with its share of
the time limit. A pass is flagged, with the function, the item and how many assertions its
tests hold.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..execution.sandbox import Check, Job, Sandbox
from ..parse import code_blocks
from .benchmarks import BenchmarkItem

#: More positional parameters than any entry point has: a function taking *args fits all.
MANY = 1_000


@dataclass(frozen=True)
class Target:
    """A benchmark item's runnable side: its entry point, arity and tests."""

    item: int
    suite: str
    entry_point: str
    #: The entry point's signature in the reference solution (None when it cannot be parsed).
    signature: Signature | None
    tests: str
    call: str | None

    def check(self, function: str) -> Check:
        """The item's tests run against `function` of a sample, under the entry point's name
        (the tests are a suite the sandbox compiled once)."""
        return Check(call=self.call, bind={self.entry_point: function}, suite=self.suite)


def target_of(number: int, item: BenchmarkItem) -> Target | None:
    """The item's target, or None when it has no tests to run."""
    if not item.tests or not item.entry_point:
        return None
    reference = f"{item.description}\n{item.texts.get('solution', '')}"
    found = {f.name: f for f in functions(reference)}
    if item.entry_point not in found:  # HumanEval's prompt and solution are one function
        found = {f.name: f for f in functions(item.description + "\n    pass")}
    call = f"check({item.entry_point})" if item.harness == "check" else None
    signature = found.get(item.entry_point)
    return Target(number, suite_name(item), item.entry_point, signature, item.tests, call)


def suite_name(item: BenchmarkItem) -> str:
    return f"{item.benchmark}/{item.item_id}"


def suites(items: Sequence[BenchmarkItem]) -> dict[str, str]:
    """The tests of every item that has some, by suite name: what the sandbox compiles once."""
    return {suite_name(item): item.tests for item in items if item.tests and item.entry_point}


@dataclass(frozen=True)
class Signature:
    """What a top-level function accepts: how many positional arguments, and the kind of each
    annotated one (None where it is not annotated or the kind is not one of KINDS)."""

    name: str
    required: int
    most: int
    kinds: tuple[str | None, ...]

    def fits(self, target: Signature) -> bool:
        """Whether this function can stand in for `target`'s: it takes as many positional
        arguments, and where both annotate one, of the same kind (a running total over a list
        is no answer to a task on strings, however Python's duck typing lets it pass)."""
        count = len(target.kinds)
        if not self.required <= count <= self.most:
            return False
        return all(
            mine is None or theirs is None or mine == theirs
            for mine, theirs in zip(self.kinds, target.kinds, strict=False)
        )


#: Coarse kinds of annotations, by the name an annotation starts with.
KINDS = {
    **dict.fromkeys(("str",), "text"),
    **dict.fromkeys(("int", "float", "complex", "bool", "Decimal", "Fraction"), "number"),
    **dict.fromkeys(("list", "List", "tuple", "Tuple", "Sequence", "Iterable", "set"), "items"),
    **dict.fromkeys(("dict", "Dict", "Mapping"), "mapping"),
}


def _kind(annotation: ast.expr | None) -> str | None:
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Attribute):
        return KINDS.get(annotation.attr)
    return KINDS.get(annotation.id) if isinstance(annotation, ast.Name) else None


def functions(code: str) -> list[Signature]:
    """The signatures of the top-level functions of `code`."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return []
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            positional = [*node.args.posonlyargs, *node.args.args]
            required = len(positional) - len(node.args.defaults)
            most = MANY if node.args.vararg else len(positional)
            kinds = tuple(_kind(arg.annotation) for arg in positional)
            found.append(Signature(node.name, required, most, kinds))
    return found


def code_of(text: str) -> str | None:
    """The Python code in a sample's text: its Python (or untagged) fenced blocks, else the
    whole text when it parses as Python; None when there is none."""
    blocks = [b.code for b in code_blocks(text) if b.language in (None, "python")]
    if blocks:
        return "\n\n".join(blocks)
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    return text if re.search(r"^\s*(?:async\s+)?def\s", text, re.MULTILINE) else None


class Behaviour:
    """Runs benchmark items' tests against samples' functions; built once per benchmark set."""

    def __init__(self, items: Sequence[BenchmarkItem], sandbox: Sandbox, candidates: int) -> None:
        self.items = list(items)
        self.sandbox = sandbox
        self.candidates = candidates
        self.targets = [target_of(n, item) for n, item in enumerate(self.items)]
        #: Whether any item has tests to run (else no sample is planned anything).
        self.runnable = any(t is not None for t in self.targets)

    def scan(
        self, codes: Sequence[str | None], similarity: np.ndarray
    ) -> list[tuple[int, int, str, str]]:
        """(sample, item, function, evidence) for each sample function that passes an item's
        tests; `similarity` is each sample's TF-IDF similarity to every item."""
        plans = [self._plan(code, row) for code, row in zip(codes, similarity, strict=True)]
        jobs = (Job(code or "", [check for _, _, check in plan]) for code, plan in plans if plan)
        results = self.sandbox.map(jobs)
        found = []
        for index, (_, plan) in enumerate(plans):
            if not plan:
                continue
            outcomes = next(results).outcomes
            for (item, function, _), outcome in zip(plan, outcomes, strict=True):
                if outcome.status == "passed":
                    found.append((index, item, function, self._evidence(item, function)))
        return found

    def _plan(
        self, code: str | None, similarity: np.ndarray
    ) -> tuple[str | None, list[tuple[int, str, Check]]]:
        """The checks one sample's job runs: (item, function, check) for its candidate items
        and the functions whose signature fits each."""
        if not code or not self.runnable:
            return code, []
        defined = functions(code)
        if not defined:
            return code, []
        plan: list[tuple[int, str, Check]] = []
        chosen = 0
        for item in np.argsort(-similarity, kind="stable"):
            target = self.targets[int(item)]
            if target is None:
                continue
            fitting = [
                f.name for f in defined if target.signature is None or f.fits(target.signature)
            ]
            plan += [(int(item), name, target.check(name)) for name in fitting]
            chosen += bool(fitting)
            if chosen == self.candidates:
                break
        return code, plan

    def _evidence(self, item: int, function: str) -> str:
        target = self.targets[item]
        assert target is not None
        asserts = len(re.findall(r"\bassert", target.tests))
        bench = self.items[item]
        return (
            f"{function} passes {bench.benchmark} {bench.item_id}'s tests "
            f"({asserts} assertions) as {target.entry_point}"
        )
