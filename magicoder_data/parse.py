"""Parsing a model's answer into its [Problem Description] and [Solution] sections, and the
[Tests] that templates asking for tests (`oss-instruct-tests`) get after them.

Tolerant of what models actually write: markdown headers (`## [Problem Description]`), bold
(`**[Solution]**`), any case, missing brackets, and text after the header on the same line,
which Magicoder's reference parser silently lost. A header inside a fenced code block (a
`# Tests` comment) is code, not a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .languages import canonical

_HEADER = re.compile(
    r"^[ \t>#*_]*\[?\s*"
    r"(?P<name>problem(?:\s+description)?|solution|(?:unit\s+)?tests?(?:\s+cases)?)"
    r"\s*\]?[ \t*_:]*(?P<rest>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class CodeBlock:
    language: str | None  # canonical name when the fence's tag is a known language
    tag: str
    code: str


@dataclass(frozen=True)
class Parsed:
    problem: str
    solution: str
    code_blocks: list[CodeBlock]
    #: The code of the [Tests] section, when the answer has one.
    tests: str | None = None


def _is_header(match: re.Match[str]) -> bool:
    """A header line is short: a name in brackets or alone, not a sentence starting 'Solution'."""
    line = match.group(0)
    bracketed = "[" in line and "]" in line
    decorated = bool(re.match(r"^[ \t>#*_]+", line)) or line.rstrip().endswith((":", "*"))
    return bracketed or decorated or not match.group("rest").strip()


def parse_response(text: str) -> Parsed | None:
    """The sections of `text`, or None when the problem or solution is missing, out of order
    or empty; tests are the code of a [Tests] section after the solution, if any."""
    fenced = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    starts: dict[str, re.Match[str]] = {}
    for match in _HEADER.finditer(text):
        name = match.group("name").lower()
        kind = "solution" if name == "solution" else "problem" if name[0] == "p" else "tests"
        inside = any(start < match.start() < end for start, end in fenced)
        if kind not in starts and not inside and _is_header(match):
            starts[kind] = match
    problem_at, solution_at = starts.get("problem"), starts.get("solution")
    if problem_at is None or solution_at is None or problem_at.start() >= solution_at.start():
        return None
    tests_at = starts.get("tests")
    if tests_at is not None and tests_at.start() < solution_at.start():
        tests_at = None
    end = tests_at.start() if tests_at else len(text)
    problem = (problem_at.group("rest") + text[problem_at.end() : solution_at.start()]).strip()
    solution = (solution_at.group("rest") + text[solution_at.end() : end]).strip()
    problem = _strip_markup(problem)
    if not problem or not solution:
        return None
    tests = None
    if tests_at is not None:
        section = (tests_at.group("rest") + text[tests_at.end() :]).strip()
        blocks = code_blocks(section)
        tests = "\n\n".join(b.code for b in blocks) if blocks else section
        solution = _strip_markup(solution)
    return Parsed(problem, solution, code_blocks(solution), tests or None)


def _strip_markup(section: str) -> str:
    """Drop a trailing horizontal rule or stray emphasis a model leaves before the next header."""
    return re.sub(r"(?:\n[ \t]*(?:-{3,}|\*{3,}|_{3,}))+\s*$", "", section).strip()


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block in `text`, with the language its fence names (if known)."""
    blocks = []
    for match in _FENCE.finditer(text):
        tag = match.group("info").strip().split()[0] if match.group("info").strip() else ""
        try:
            language = canonical(tag) if tag else None
        except ConfigError:
            language = None
        blocks.append(CodeBlock(language, tag, match.group("body").rstrip("\n")))
    return blocks


def main_code(blocks: list[CodeBlock], expected: str | None = None) -> CodeBlock | None:
    """The solution's code: the longest block in the expected language, else the longest block."""
    if not blocks:
        return None
    same = [b for b in blocks if expected is not None and b.language == expected]
    return max(same or blocks, key=lambda b: len(b.code))
