"""Calibration of the text and code decontamination methods on a labelled set built by program.

Positives come from every HumanEval item (164), made three ways from its prompt and canonical
solution with Python's own `ast`:
- copy: the prompt and solution as they are;
- light edit: arguments and locals renamed, numeric literals changed (`2` -> `(1 + 1)`), a
  comment added, the code re-printed (`ast.unparse`); docstring kept;
- reworded: the function renamed too, the docstring dropped, a new one-line problem statement;
and the 12 hand-written reworded problems of `data/labelled_humaneval.jsonl` (new wording, code
rewritten, each passing its item's tests). Negatives: the 12 hand-written clean problems on
HumanEval's topics, a clean matrix rotation, and every standard-library function of 15-40
lines (real code, many topics). A second table does the same for MBPP-shaped items (a one-line
question and a solution function; MBPP itself loads from the Hub, out of reach offline): 120
standard-library functions as items, their copies, light edits and rewordings as positives, the
other 362 functions as negatives. Each method runs alone through `Scanner`, then in
combinations; the table gives recall per positive class, false positives among the negatives,
and precision. Fuzzy and n-gram thresholds are swept.

Usage: python bench/decontam_calibration.py
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from magicoder_data.decontam.benchmarks import BenchmarkItem, load, resolve
from magicoder_data.decontam.methods import Scanner, Settings
from magicoder_data.decontam.stage import sample_text
from tests.parity import stdlib_functions

DATA = Path(__file__).with_name("data") / "labelled_humaneval.jsonl"
ROTATE = """Rotate a square matrix 90 degrees clockwise in place.
```python
def rotate(matrix):
    n = len(matrix)
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i][j], matrix[j][i] = matrix[j][i], matrix[i][j]
    for row in matrix:
        row.reverse()
    return matrix
```"""
POSITIVE = ("copy", "light_edit", "reworded", "reworded_by_hand")


class _Rename(ast.NodeTransformer):
    """Arguments and locals (and the function, when asked) renamed; numbers spelt otherwise."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.names.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is int and node.value > 1:
            return ast.BinOp(ast.Constant(1), ast.Add(), ast.Constant(node.value - 1))
        return node


def variants(item: BenchmarkItem) -> dict[str, tuple[str, str]]:
    """(problem, solution) of the item's copy, light edit and programmatic rewording."""
    code = item.texts.get("prompt", "") + item.texts["solution"]
    tree = ast.parse(code)
    function = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == item.entry_point
    )
    docstring = item.texts.get("question") or ast.get_docstring(function) or ""
    local = sorted(
        {
            n.id
            for n in ast.walk(function)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        | {a.arg for a in ast.walk(function) if isinstance(a, ast.arg)}
    )
    renamed = {name: f"{name}_{i}x" for i, name in enumerate(local)}
    light = ast.unparse(_Rename(renamed).visit(ast.parse(code)))
    light = "# solution\n" + light
    reworded_tree = _Rename({**renamed, item.entry_point: f"solve_{item.entry_point}_task"}).visit(
        ast.parse(code)
    )
    for node in ast.walk(reworded_tree):
        if isinstance(node, ast.FunctionDef) and ast.get_docstring(node) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    statement = f"Write a Python function solve_{item.entry_point}_task for the task below."
    return {
        "copy": (docstring, code),
        "light_edit": (docstring, light),
        "reworded": (statement, ast.unparse(reworded_tree)),
    }


def labelled(items: list[BenchmarkItem]) -> list[tuple[str, str]]:
    """(label, text) of every sample of the set."""
    rows: list[tuple[str, str]] = []
    for item in items:
        for label, (problem, solution) in variants(item).items():
            rows.append((label, sample_text(problem, f"```python\n{solution}\n```")))
    for line in DATA.read_text().splitlines():
        row = json.loads(line)
        if row["label"] in ("reworded", "clean"):
            label = "reworded_by_hand" if row["label"] == "reworded" else "clean_by_hand"
            rows.append((label, sample_text(row["problem"], row["solution"])))
    rows.append(("clean_by_hand", ROTATE))  # one common idiom shared with HumanEval/147
    for code in stdlib_functions(15, 40):
        rows.append(
            ("clean_stdlib", sample_text("Implement the function.", f"```python\n{code}\n```"))
        )
    return rows


def flagged_by(scanner: Scanner, texts: list[str]) -> dict[str, dict[int, float]]:
    """Per method, each flagged sample's best score."""
    matches, _, _ = scanner.scan(texts)
    found: dict[str, dict[int, float]] = {}
    for match in matches:
        best = found.setdefault(match.method, {})
        best[match.index] = max(best.get(match.index, 0.0), match.score)
    return found


def report(name: str, flagged: set[int], labels: list[str]) -> None:
    counts = {label: labels.count(label) for label in dict.fromkeys(labels)}
    hits = {label: sum(1 for i in flagged if labels[i] == label) for label in counts}
    positives = sum(hits.get(label, 0) for label in POSITIVE)
    false = sum(hits[label] for label in counts if label not in POSITIVE)
    precision = positives / max(1, positives + false)
    cells = "  ".join(f"{hits[label]:>4}/{counts[label]:<4}" for label in counts)
    print(f"{name:<28} {cells}  precision {precision:.3f}")


def mbpp_shaped(count: int) -> tuple[list[BenchmarkItem], list[tuple[str, str]]]:
    """MBPP's shape (a one-line question, a solution function): the first `count` of the
    standard-library functions as items, their copies, light edits and rewordings as
    positives, the other functions as negatives."""
    functions = stdlib_functions(15, 40)
    items = []
    for number, code in enumerate(functions[:count]):
        name = ast.parse(code).body[0].name  # type: ignore[attr-defined]
        question = f"Write a function {name} like the standard library's."
        items.append(
            BenchmarkItem(
                "mbpp-shaped",
                str(number),
                {"question": question, "solution": code},
                entry_point=name,
            )
        )
    rows = [
        (label, sample_text(problem, f"```python\n{solution}\n```"))
        for item in items
        for label, (problem, solution) in variants(item).items()
    ]
    rows += [
        ("clean_stdlib", sample_text("Implement the function.", f"```python\n{code}\n```"))
        for code in functions[count:]
    ]
    return items, rows


def evaluate(items: list[BenchmarkItem], rows: list[tuple[str, str]]) -> None:
    """The table for one benchmark set and its labelled samples."""
    labels = [label for label, _ in rows]
    texts = [text for _, text in rows]
    header = "  ".join(f"{label[:9]:>9}" for label in dict.fromkeys(labels))
    print(f"{len(rows)} samples; columns: flagged/total per class")
    print(f"{'method':<28} {header}")
    low = Scanner(
        items,
        Settings(
            methods=("substring", "ngram", "fuzzy", "tfidf"), fuzzy_threshold=0.5, ngram_share=0
        ),
    )
    found = flagged_by(low, texts)
    for method in ("substring", "ngram"):
        report(method, set(found.get(method, {})), labels)
    for share in (0.02, 0.05, 0.1):
        kept = {i for i, s in found.get("ngram", {}).items() if s >= share}
        report(f"ngram, share >= {share}", kept, labels)
    for threshold in (0.45, 0.5, 0.6):
        kept = {i for i, s in found.get("tfidf", {}).items() if s >= threshold}
        report(f"tfidf >= {threshold}", kept, labels)
    for threshold in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        kept = {i for i, s in found.get("fuzzy", {}).items() if s >= threshold}
        report(f"fuzzy >= {threshold}", kept, labels)
    defaults = Settings()
    union_text = (
        set(found.get("substring", {}))
        | {i for i, s in found.get("ngram", {}).items() if s >= defaults.ngram_share}
        | {i for i, s in found.get("tfidf", {}).items() if s >= defaults.tfidf_threshold}
    )
    report("text (substring+ngram+tfidf)", union_text, labels)
    fuzzy = {i for i, s in found.get("fuzzy", {}).items() if s >= defaults.fuzzy_threshold}
    report(f"text + fuzzy {defaults.fuzzy_threshold}", union_text | fuzzy, labels)


def main() -> None:
    items = [item for spec in resolve(["humaneval"]) for item in load(spec)]
    print("HumanEval items")
    evaluate(items, labelled(items))
    print("\nMBPP-shaped items (a question and a solution function)")
    evaluate(*mbpp_shaped(120))


if __name__ == "__main__":
    main()
