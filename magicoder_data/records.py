"""Plain records that flow between the readers, the stages and the run store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def json_kind(value: Any) -> str:
    """What a decoded JSON (or parquet) value is, for messages: `null`, `an array`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


@dataclass(frozen=True, slots=True)
class Document:
    """One source file as a reader yields it; `content` is bytes when not yet decoded.

    A document the reader could not use (a FIFO in a source tree, a row whose `content` is not
    text) comes with the drop `reason` and its `detail`, and empty `content`.
    """

    language: str
    doc_id: str
    content: str | bytes
    source: str
    repo: str | None = None
    path: str | None = None
    stars: int | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Seed:
    """A snippet of `end_line - start_line + 1` consecutive lines (1-based) of a document."""

    language: str
    rank: int
    doc_id: str
    source: str
    repo: str | None
    path: str | None
    stars: int | None
    start_line: int
    end_line: int
    snippet: str


@dataclass(frozen=True, slots=True)
class Drop:
    """An item a stage discarded, and why: every discard is counted by `status`."""

    language: str
    reason: str
    item: str
    rank: int | None = None
    detail: str | None = None
