"""Near-duplicate detection on generated-like samples: words, or code tokens with names abstracted?

The clean stage finds near-duplicates by MinHash LSH over word 5-grams of problem + solution.
Two seeds often give the same task told differently, with other names. This builds, by program,
samples from every standard-library function of 15-40 lines: an original (a one-line problem and
the function), and a near-duplicate of it (another problem sentence; arguments and locals
renamed and the code re-printed with `ast.unparse`). Each detector sees all originals, then all
near-duplicates; a near-duplicate counts as found when it is matched to its own original, and a
false positive when an original is matched to another original (distinct functions).

Detectors: word MinHash (the clean stage's, at its 0.75 default); MinHash over 5-grams of the
solution's code tokens with identifiers abstracted (`syntax.code_tokens`); and the clean stage's
`CodeNearDuplicates` (that LSH at Jaccard 0.5, its candidates verified by rapidfuzz's ratio on
the token sequences) at several ratios.

Usage: python bench/dedup_calibration.py
"""

from __future__ import annotations

import ast
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasketch import MinHash, MinHashLSH

from magicoder_data.clean import CodeNearDuplicates, NearDuplicates
from magicoder_data.syntax import code_tokens
from tests.parity import stdlib_functions


class _Rename(ast.NodeTransformer):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.names:
            node.id = f"{node.id}_v"
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        if node.arg in self.names:
            node.arg = f"{node.arg}_v"
        return node


def near_copy(code: str) -> str | None:
    """The function with its arguments and locals renamed, re-printed (docstring dropped)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    function = tree.body[0]
    if not isinstance(function, ast.FunctionDef):
        return None
    if ast.get_docstring(function) is not None and len(function.body) > 1:
        function.body = function.body[1:]
    names = {
        n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    names |= {a.arg for a in ast.walk(function) if isinstance(a, ast.arg)}
    return ast.unparse(_Rename(names).visit(tree))


def tokens(code: str) -> list[str]:
    return code_tokens(code, "python").tokens


def _signature(grams: list[str]) -> MinHash:
    """MinHash of the token 5-grams."""
    signature = MinHash(num_perm=128, seed=1)
    signature.update_batch(
        list({"\0".join(grams[i : i + 5]).encode() for i in range(max(1, len(grams) - 4))})
    )
    return signature


def code_minhash(threshold: float) -> Callable[[str, str, str], str | None]:
    """A near-duplicate finder over code-token 5-grams, like the clean stage's over words."""
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    kept: dict[str, MinHash] = {}

    def seen(key: str, problem: str, code: str) -> str | None:
        signature = _signature(tokens(code))
        for candidate in lsh.query(signature):
            if signature.jaccard(kept[candidate]) >= threshold:
                return candidate
        lsh.insert(key, signature)
        kept[key] = signature
        return None

    return seen


def code_check(threshold: float) -> Callable[[str, str, str], str | None]:
    """The clean stage's check: code-token LSH candidates kept when rapidfuzz's ratio agrees."""
    finder = CodeNearDuplicates(threshold, 128)
    return lambda key, problem, code: finder.seen(
        key, CodeNearDuplicates.fingerprint(code, "python", 128)
    )


def words(threshold: float) -> Callable[[str, str, str], str | None]:
    finder = NearDuplicates(threshold, 128)
    return lambda key, problem, code: finder.seen(
        key, NearDuplicates.signature(f"{problem}\n{code}", 128)
    )


def main() -> None:
    originals = []
    copies = []
    for number, code in enumerate(stdlib_functions(15, 40)):
        copy = near_copy(code)
        if copy is not None:
            originals.append((f"o{number}", "Implement the function below.", code))
            copies.append((f"c{number}", "Write this helper for our module, please.", copy))
    print(f"{len(originals)} originals, each with a renamed, re-printed near-duplicate")
    detectors = {
        "words, Jaccard 0.75 (clean's)": words(0.75),
        "words, Jaccard 0.5": words(0.5),
        "code tokens, Jaccard 0.75": code_minhash(0.75),
        "code tokens, Jaccard 0.5": code_minhash(0.5),
        "code LSH 0.5 + ratio 0.85": code_check(0.85),
        "code LSH 0.5 + ratio 0.9": code_check(0.9),
        "code LSH 0.5 + ratio 0.95 (clean's)": code_check(0.95),
        "code LSH 0.5 + ratio 0.98": code_check(0.98),
    }
    for name, seen in detectors.items():
        started = time.perf_counter()
        false = sum(seen(*sample) is not None for sample in originals)
        found = sum(seen(*copy) == "o" + copy[0][1:] for copy in copies)
        seconds = time.perf_counter() - started
        print(
            f"{name:<30} found {found:>3}/{len(copies)}  false positives {false:>3}/"
            f"{len(originals)}  ({seconds:.1f}s)"
        )


if __name__ == "__main__":
    main()
