"""Ways to find benchmark items inside samples, each giving evidence for what it flags.

- exact substring (the StarCoder/bigcode method): a benchmark docstring, prompt or solution
  appears in the sample, compared lower-cased with whitespace runs folded; one Aho-Corasick
  automaton scans each sample once.
- word n-grams: the sample shares n-word sequences (default 10) with a benchmark item, at least
  a share (default 5%) of the item's; the index is built once per benchmark set and lookups
  are vectorised.
- execution (`behaviour`): the sample's code passes a benchmark item's own tests, run in the
  sandbox against its TF-IDF closest items; catches reworded problems with renamed functions.
- fuzzy (`fuzzy`): the sample's code, as tree-sitter tokens with identifiers abstracted and
  comments dropped, is close to an item's by rapidfuzz's ratio; catches renamed and lightly
  edited solutions in any language, with the aligned spans as evidence.
- TF-IDF cosine: each sample's highest similarity to any item (sample = problem + solution,
  item = prompt + canonical solution, as in Magicoder's analysis). IDF comes from the benchmark
  items, so a sample's score does not depend on which other samples are scanned with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from ..config import OPTIONS
from ..execution.sandbox import Sandbox
from .behaviour import Behaviour, code_of
from .benchmarks import BenchmarkItem
from .fuzzy import FuzzyIndex, sample_code

_WORD = re.compile(r"\w+")
Method = Literal["substring", "ngram", "execution", "fuzzy", "tfidf"]
#: Strongest evidence first: a dropped sample's reason names the first method that flagged it.
METHODS: tuple[Method, ...] = ("substring", "ngram", "execution", "fuzzy", "tfidf")


@pydantic_dataclass(frozen=True, config=OPTIONS)
class Settings:
    """Which methods run and how strict each is."""

    methods: tuple[Method, ...] = Field(default=METHODS, min_length=1)
    ngram: int = Field(default=10, ge=1)
    #: Least share of an item's n-grams a sample must share: one common idiom (`for i in
    #: range(n): for j in range(i + 1, n)`) is not contamination.
    ngram_share: float = Field(default=0.05, ge=0, le=1)
    min_substring: int = Field(default=50, ge=1)
    tfidf_threshold: float = Field(default=0.45, gt=0, le=1)
    #: Normalised token similarity (rapidfuzz ratio, 0..1) that flags (fuzzy).
    fuzzy_threshold: float = Field(default=0.75, gt=0, le=1)
    #: Most benchmark items whose tests each Python sample runs (execution), closest first.
    candidates: int = Field(default=200, ge=1)


@dataclass(frozen=True)
class Match:
    """Evidence that sample `index` overlaps a benchmark item."""

    index: int
    benchmark: str
    item_id: str
    method: str
    score: float
    span: str


def fold(text: str) -> str:
    """Lower-cased with every whitespace run made one space: what substring matching compares."""
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _tokens(tokens: list[str]) -> list[str]:
    """The vectorizer's analyzer: texts arrive already split into words."""
    return tokens


class SubstringIndex:
    """Every long enough docstring, prompt and solution of the items, in one automaton."""

    def __init__(self, items: Sequence[BenchmarkItem], min_chars: int) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for item in items:
            for role in ("docstring", "prompt", "question", "solution"):
                needle = fold(item.texts.get(role, ""))
                if len(needle) >= min_chars:
                    found = self._automaton.get(needle, None)
                    self._automaton.add_word(needle, (found or []) + [(item, role)])
        self.empty = len(self._automaton) == 0
        if not self.empty:
            self._automaton.make_automaton()

    def find(self, text: str) -> Iterator[tuple[BenchmarkItem, str, str]]:
        """(item, role, matched text) for each needle inside `text`."""
        if self.empty:
            return
        seen = set()
        for _, entries in self._automaton.iter(fold(text)):
            for item, role in entries:
                if (item.item_id, role) not in seen:
                    seen.add((item.item_id, role))
                    yield item, role, item.texts[role]


class NgramIndex:
    """Hashes of every n-word sequence of the items' documents, for vectorised lookups."""

    def __init__(self, items: Sequence[BenchmarkItem], n: int) -> None:
        self.n = n
        self._vocab: dict[str, int] = {}
        hashes, owners = [], []
        self._sizes = []
        for number, item in enumerate(items):
            ids = np.array(
                [self._vocab.setdefault(w, len(self._vocab)) for w in words(item.document)],
                dtype=np.int64,
            )
            grams = np.unique(self._hash(ids))
            hashes.append(grams)
            owners.append(np.full(len(grams), number, dtype=np.int64))
            self._sizes.append(max(1, len(grams)))
        all_hashes = np.concatenate(hashes) if hashes else np.empty(0, np.int64)
        order = np.argsort(all_hashes, kind="stable")
        self._hashes = all_hashes[order]
        self._owners = np.concatenate(owners)[order] if owners else np.empty(0, np.int64)
        self._items = list(items)

    def _hash(self, ids: np.ndarray) -> np.ndarray:
        """A 64-bit polynomial hash of each window of n ids (wrapping arithmetic)."""
        if len(ids) < self.n:
            return np.empty(0, np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(ids, self.n)
        powers = np.power(np.int64(1_000_003), np.arange(self.n, dtype=np.int64))
        with np.errstate(over="ignore"):
            return (windows * powers).sum(axis=1)

    def find(self, tokens: list[str]) -> Iterator[tuple[BenchmarkItem, float, str]]:
        """(item, share of the item's n-grams found, first shared n-gram) for overlapping items."""
        get = self._vocab.get
        ids = np.fromiter((get(w, -1) for w in tokens), dtype=np.int64, count=len(tokens))
        if len(ids) < self.n or not len(self._hashes):
            return
        valid = np.convolve((ids >= 0).astype(np.int64), np.ones(self.n, np.int64), "valid")
        grams = self._hash(ids)
        positions = np.flatnonzero(valid == self.n)
        if not len(positions):
            return
        found = grams[positions]
        slots = np.searchsorted(self._hashes, found)
        slots[slots >= len(self._hashes)] = 0
        hit = self._hashes[slots] == found
        if not hit.any():
            return
        hit_positions = positions[hit]
        shared: dict[int, set[int]] = {}
        first: dict[int, int] = {}
        for position, gram in zip(hit_positions, found[hit], strict=True):
            lo = np.searchsorted(self._hashes, gram)
            hi = np.searchsorted(self._hashes, gram, side="right")
            for owner in self._owners[lo:hi]:
                shared.setdefault(int(owner), set()).add(int(gram))
                first.setdefault(int(owner), int(position))
        for owner, grams_shared in shared.items():
            start = first[owner]
            yield (
                self._items[owner],
                len(grams_shared) / self._sizes[owner],
                " ".join(tokens[start : start + self.n]),
            )


class TfidfIndex:
    """TF-IDF vectors of the items, to find each sample's most similar item by cosine."""

    FEATURES = 2**20

    def __init__(self, items: Sequence[BenchmarkItem]) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vectorizer = HashingVectorizer(
            n_features=self.FEATURES, analyzer=_tokens, alternate_sign=False, norm=None
        )
        counts = self._vectorizer.transform([words(item.document) for item in items])
        df = np.bincount(counts.indices, minlength=self.FEATURES)
        self._idf = np.log((1 + len(items)) / (1 + df)) + 1.0
        self._items = self._weigh(counts).T.tocsr()
        self.items = list(items)

    def _weigh(self, counts):  # type: ignore[no-untyped-def]
        from sklearn.preprocessing import normalize

        weighted = counts.astype(np.float64)
        weighted.data = 1.0 + np.log(weighted.data)  # sublinear term frequency
        weighted = weighted.multiply(self._idf).tocsr()
        return normalize(weighted, norm="l2", copy=False)

    def similarities(self, tokens: Sequence[list[str]]) -> np.ndarray:
        """Each token list's cosine similarity to every item (a row per list)."""
        return np.asarray((self._weigh(self._vectorizer.transform(tokens)) @ self._items).toarray())


class Scanner:
    """All the chosen methods' indexes over one benchmark set, built once, then fed chunks.

    The execution method runs code, so it needs a started `sandbox`.
    """

    def __init__(
        self, items: Sequence[BenchmarkItem], settings: Settings, sandbox: Sandbox | None = None
    ) -> None:
        self.items = list(items)
        self.settings = settings
        methods = settings.methods
        self._behaviour = None
        if "execution" in methods:
            if sandbox is None:
                raise ValueError("the execution method needs a sandbox")
            self._behaviour = Behaviour(items, sandbox, settings.candidates)
        self._substrings = (
            SubstringIndex(items, settings.min_substring) if "substring" in methods else None
        )
        self._ngrams = NgramIndex(items, settings.ngram) if "ngram" in methods else None
        self._fuzzy = FuzzyIndex(items) if "fuzzy" in methods else None
        self._tfidf = TfidfIndex(items)

    def scan(
        self,
        texts: list[str],
        codes: Sequence[str | None] | None = None,
        languages: Sequence[str] | None = None,
    ) -> tuple[list[Match], np.ndarray, np.ndarray]:
        """Matches (sorted by text position), max TF-IDF similarity and that item's position.

        `codes` are the samples' Python code for the execution method (None: not Python);
        by default, the Python code inside each text. `languages` are the samples' languages
        (Python by default), for the fuzzy method's tokens.
        """
        matches = []
        tokens = [words(text) for text in texts]
        for i, text in enumerate(texts):
            if self._substrings:
                for item, role, span in self._substrings.find(text):
                    matches.append(
                        Match(
                            i,
                            item.benchmark,
                            item.item_id,
                            "substring",
                            1.0,
                            f"{role}: {span[:500]}",
                        )
                    )
            if self._ngrams:
                for item, share, span in self._ngrams.find(tokens[i]):
                    if share < self.settings.ngram_share:
                        continue
                    matches.append(
                        Match(i, item.benchmark, item.item_id, "ngram", round(share, 4), span)
                    )
        sims = self._tfidf.similarities(tokens)
        if sims.shape[1] == 0:
            best, where = np.zeros(len(texts)), np.zeros(len(texts), dtype=np.int64)
        else:
            best, where = sims.max(axis=1), sims.argmax(axis=1)
        if self._behaviour is not None:
            runnable = codes if codes is not None else [code_of(text) for text in texts]
            for index, position, _, evidence in self._behaviour.scan(runnable, sims):
                bench = self.items[position]
                matches.append(
                    Match(index, bench.benchmark, bench.item_id, "execution", 1.0, evidence)
                )
        if self._fuzzy is not None:
            matches += self._fuzzy_matches(self._fuzzy, texts, codes, languages)
        if "tfidf" in self.settings.methods:
            for row in np.flatnonzero(best >= self.settings.tfidf_threshold):
                item = self.items[where[row]]
                matches.append(
                    Match(
                        int(row),
                        item.benchmark,
                        item.item_id,
                        "tfidf",
                        round(float(best[row]), 4),
                        item.description[:500],
                    )
                )
        matches.sort(key=lambda m: m.index)
        return matches, best, where

    def _fuzzy_matches(
        self,
        index: FuzzyIndex,
        texts: list[str],
        codes: Sequence[str | None] | None,
        languages: Sequence[str] | None,
    ) -> list[Match]:
        """The fuzzy method's flags: each sample's solution code against the items'."""
        pairs = [
            sample_code(text, language, code)
            for text, language, code in zip(
                texts,
                languages or ["python"] * len(texts),
                codes or [None] * len(texts),
                strict=True,
            )
        ]
        return [
            Match(
                found.index,
                self.items[found.position].benchmark,
                self.items[found.position].item_id,
                "fuzzy",
                round(found.score, 4),
                found.evidence,
            )
            for found in index.scan(pairs, self.settings.fuzzy_threshold)
        ]
