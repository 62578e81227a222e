"""Code similarity that survives renaming: token-normalised code compared with rapidfuzz.

Substring and word n-grams miss a benchmark solution whose identifiers were renamed or whose
lines were lightly edited, and TF-IDF on words is blind to code structure. Here each program
becomes its tree-sitter tokens (any supported language) with every identifier replaced by one
placeholder and comments and docstrings dropped; keywords, operators and literals stay. Each
token is one character of a string, so rapidfuzz compares token sequences with its vectorised
`process.cdist` on all cores, and `Indel.opcodes` gives the aligned tokens on both sides, kept
as character spans of the two codes (the evidence a report or viewer marks).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..parse import code_blocks, main_code
from ..syntax import Tokens, code_tokens
from .benchmarks import BenchmarkItem

#: Pairs with fewer aligned tokens than this are short: many one-line functions look alike
#: once names are abstracted, so a short pair flags only from SHORT_THRESHOLD up.
SHORT = 25
SHORT_THRESHOLD = 0.9
#: The character of a sample token that no benchmark item has: it can match nothing.
_UNSEEN = "\ufffd"
#: Token characters start here (clear of ASCII, so a token string reads as codes).
_FIRST = 0x100


def sample_code(text: str, language: str, code: str | None = None) -> tuple[str, str] | None:
    """(language, code) of a sample's solution: `code` when given (Python's stored solution
    code), else its main fenced block, else the whole text when it is Python."""
    if code:
        return language, code
    block = main_code(code_blocks(text), expected=language)
    if block is not None:
        return block.language or language, block.code
    if language == "python":
        try:
            ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            return None
        return language, text
    return None


def item_code(item: BenchmarkItem) -> str:
    """The code of a benchmark item: its prompt when that is code (HumanEval's signature and
    docstring), then its solution."""
    prompt = item.texts.get("prompt", "")
    solution = item.texts.get("solution", "")
    try:
        ast.parse(prompt + solution)
        return prompt + solution
    except (SyntaxError, ValueError, RecursionError):
        return solution


@dataclass(frozen=True)
class FuzzyMatch:
    """A sample whose normalised code is close to a benchmark item's."""

    index: int
    position: int  # the item's position in the index
    score: float  # 0..1, rapidfuzz's normalised Indel similarity of the token strings
    evidence: str  # JSON: the aligned character spans of the sample's code and the item's


class FuzzyIndex:
    """The benchmark items' normalised code as token strings, built once per benchmark set."""

    def __init__(self, items: Sequence[BenchmarkItem], workers: int = -1) -> None:
        self.items = list(items)
        self.workers = workers
        self._codes = [item_code(item) for item in self.items]
        self._tokens = [code_tokens(code, "python") for code in self._codes]
        self._vocabulary: dict[str, str] = {}
        for tokens in self._tokens:
            for token in tokens.tokens:
                if token not in self._vocabulary:
                    self._vocabulary[token] = _character(len(self._vocabulary))
        self._choices = [self._encode(t.tokens) for t in self._tokens]

    def _encode(self, tokens: list[str]) -> str:
        get = self._vocabulary.get
        return "".join(get(token, _UNSEEN) for token in tokens)

    def scan(self, codes: Sequence[tuple[str, str] | None], threshold: float) -> list[FuzzyMatch]:
        """Every (sample, item) pair at or above `threshold` (0..1), with aligned spans."""
        from rapidfuzz import fuzz, process

        samples = [(i, c) for i, c in enumerate(codes) if c is not None]
        if not samples or not self._choices:
            return []
        tokens = [code_tokens(code, language) for _, (language, code) in samples]
        queries = [self._encode(t.tokens) for t in tokens]
        scores = process.cdist(
            queries,
            self._choices,
            scorer=fuzz.ratio,
            score_cutoff=threshold * 100,
            workers=self.workers,
            dtype=np.float32,
        )
        found = []
        for row, column in zip(*np.nonzero(scores), strict=True):
            score = float(scores[row, column]) / 100
            aligned = score * (len(queries[row]) + len(self._choices[column])) / 2
            if aligned < SHORT and score < SHORT_THRESHOLD:
                continue  # two short programs look alike by chance: ask for near-identity
            index, (_, code) = samples[row]
            evidence = self._evidence(queries[row], tokens[row], code, int(column))
            found.append(FuzzyMatch(index, int(column), score, evidence))
        return found

    def _evidence(self, query: str, tokens: Tokens, code: str, column: int) -> str:
        """The aligned tokens of the pair as merged character spans on both sides."""
        from rapidfuzz.distance import Indel

        ours: list[tuple[int, int]] = []
        theirs: list[tuple[int, int]] = []
        item = self._tokens[column]
        for block in Indel.opcodes(query, self._choices[column]).as_matching_blocks():
            ours += tokens.spans[block.a : block.a + block.size]
            theirs += item.spans[block.b : block.b + block.size]
        return json.dumps(
            {"sample": _merged(code, ours), "item": _merged(self._codes[column], theirs)}
        )


def aligned_spans(evidence: str | None, side: str) -> list[tuple[int, int]] | None:
    """The character spans a fuzzy flag's evidence aligns on `side` ("sample": the sample's
    code, "item": `item_code`), or None when `evidence` is not a fuzzy flag's."""
    if not evidence or not evidence.startswith("{"):
        return None
    try:
        spans = json.loads(evidence)[side]
        return [(int(start), int(end)) for start, end in spans]
    except (ValueError, KeyError, TypeError):
        return None


def _character(number: int) -> str:
    """The character of the `number`th token, skipping the surrogate range."""
    code = _FIRST + number
    return chr(code if code < 0xD800 else code + 0x800)


def _merged(code: str, spans: list[tuple[int, int]]) -> list[list[int]]:
    """Character spans of `code` for token byte spans, joined where only whitespace lies
    between."""
    data = code.encode("utf-8", "surrogatepass")
    chars = (
        [
            (len(data[:a].decode("utf-8", "replace")), len(data[:b].decode("utf-8", "replace")))
            for a, b in spans
        ]
        if not code.isascii()
        else spans
    )
    merged: list[list[int]] = []
    for start, end in sorted(chars):
        if merged and (start <= merged[-1][1] or not code[merged[-1][1] : start].strip()):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
