"""Benchmark: the `verify` stage over a run of generated-like samples, on every core.

Builds the run directly in its SQLite store (seeds, parsed samples with tests, an empty clean
pass), as bench_decontam does, in the Magicoder mix's proportions: 40 of every 75 samples are
Python, the rest split evenly over the mix's other languages. Python samples look like what the
`oss-instruct-tests` template gets back: a problem, one fenced solution, and a [Tests] block of
`assert`s, `test_*` functions or a TestCase. Of the Python samples, 10% came without tests; of
those with tests most pass, 10% fail an assertion, 5% raise, and 0.2% hang (`while True: pass`)
until the 2 s timeout. Then `run_stage("verify", RUN, {"timeout": 2})` runs in a fresh process:
wall time, samples/s, verdict counts and its peak RSS (the sandbox's workers are separate
processes, not counted). Target: 75K samples in at most 15 minutes on 2 cores.

Usage: python bench/bench_verify.py [--samples 75000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

from bench_decontam import WORDS, code_lines
from peak import measure

from magicoder_data import MAGICODER_MIX, RunStore
from magicoder_data.clean import CleanConfig
from magicoder_data.languages import LANGUAGES
from magicoder_data.records import Seed
from magicoder_data.seeds import checkpoint_shard, finish_sample
from magicoder_data.verify import verdict_counts

#: Python's share of the Magicoder mix: 40K of 75K samples.
PYTHON_SHARE = 40 / 75
NO_TESTS, FAIL, RAISE, HANG = 0.10, 0.10, 0.05, 0.002
TIMEOUT = 2.0


@dataclass(frozen=True)
class Sample:
    """A parsed sample as generate stores it."""

    problem: str
    solution: str
    solution_lang: str | None
    solution_code: str | None
    tests: str | None


@dataclass(frozen=True)
class Template:
    """A generated-like Python task: `{fn}` in code and tests is the function's name;
    `wrong` turns a test's expectation false, `bug` makes the solution raise."""

    topic: str
    code: str
    tests: str
    wrong: tuple[str, str]
    bug: tuple[str, str]


TEMPLATES = [
    Template(
        "running totals of a list of numbers",
        '''from itertools import accumulate


def {fn}(values: list[float]) -> list[float]:
    """Return the running totals of values."""
    if not values:
        return []
    return list(accumulate(values))
''',
        """assert {fn}([]) == []
assert {fn}([5]) == [5]
assert {fn}([1, 2, 3, 4]) == [1, 3, 6, 10]
assert {fn}([-1, 1, -1, 1]) == [-1, 0, -1, 0]
assert {fn}([0.5, 0.25]) == [0.5, 0.75]
""",
        ("[1, 3, 6, 10]", "[1, 3, 6, 11]"),
        ("return list(accumulate(values))", "return list(accumulate(values, initial=values[9]))"),
    ),
    Template(
        "word frequencies of a text, ignoring case and punctuation",
        '''import re
from collections import Counter


def {fn}(text: str) -> dict[str, int]:
    """Count how often each word occurs, case-insensitively."""
    words = re.findall(r"[a-z']+", text.lower())
    return dict(Counter(words))
''',
        """def test_empty():
    assert {fn}("") == {}


def test_case_is_ignored():
    assert {fn}("The the THE") == {"the": 3}


def test_punctuation():
    assert {fn}("Hello, world! Hello.") == {"hello": 2, "world": 1}


def test_apostrophes():
    assert {fn}("don't stop") == {"don't": 1, "stop": 1}
""",
        ('{"hello": 2, "world": 1}', '{"hello": 2, "world": 2}'),
        ("words = re.findall", "words = re.findal"),
    ),
    Template(
        "parsing 'key=value' pairs separated by semicolons into a dictionary",
        '''def {fn}(line: str) -> dict[str, str]:
    """Parse 'a=1; b=2' into {'a': '1', 'b': '2'}; blank parts are skipped."""
    result = {}
    for part in line.split(";"):
        part = part.strip()
        if not part:
            continue
        key, _, value = part.partition("=")
        result[key.strip()] = value.strip()
    return result
''',
        """assert {fn}("") == {}
assert {fn}("a=1") == {"a": "1"}
assert {fn}("a=1; b = 2 ;") == {"a": "1", "b": "2"}
assert {fn}("flag=") == {"flag": ""}
assert {fn}("x=1;x=2") == {"x": "2"}
""",
        ('{"x": "2"}', '{"x": "1"}'),
        ('key, _, value = part.partition("=")', 'key, value = part.split("=")[1:]'),
    ),
    Template(
        "a bounded stack with push, pop and peek",
        '''class {fn}:
    """A stack that refuses to grow past its capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: list[int] = []

    def push(self, item: int) -> None:
        if len(self.items) >= self.capacity:
            raise OverflowError("stack is full")
        self.items.append(item)

    def pop(self) -> int:
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()

    def peek(self) -> int | None:
        return self.items[-1] if self.items else None
''',
        """import unittest


class TestStack(unittest.TestCase):
    def test_push_pop(self):
        stack = {fn}(2)
        stack.push(1)
        stack.push(2)
        self.assertEqual(stack.pop(), 2)
        self.assertEqual(stack.peek(), 1)

    def test_full(self):
        stack = {fn}(1)
        stack.push(1)
        with self.assertRaises(OverflowError):
            stack.push(2)

    def test_empty(self):
        self.assertIsNone({fn}(3).peek())


if __name__ == "__main__":
    unittest.main()
""",
        ("self.assertEqual(stack.peek(), 1)", "self.assertEqual(stack.peek(), 2)"),
        ("self.items: list[int] = []", "self.items: list[int] = None"),
    ),
    Template(
        "merging overlapping intervals",
        '''def {fn}(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping (start, end) intervals and return them sorted."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
''',
        """assert {fn}([]) == []
assert {fn}([(1, 3), (2, 6), (8, 10), (15, 18)]) == [(1, 6), (8, 10), (15, 18)]
assert {fn}([(1, 4), (4, 5)]) == [(1, 5)]
assert {fn}([(5, 7), (1, 2)]) == [(1, 2), (5, 7)]
assert {fn}([(1, 10), (2, 3)]) == [(1, 10)]
""",
        ("[(1, 5)]", "[(1, 4), (4, 5)]"),
        ("for start, end in sorted(intervals):", "for start, end, _ in sorted(intervals):"),
    ),
    Template(
        "checking that brackets in a string are balanced",
        '''def {fn}(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            if not stack or stack.pop() != pairs[char]:
                return False
    return not stack
''',
        """def test_balanced():
    assert {fn}("")
    assert {fn}("([]{})")
    assert {fn}("a(b)c")


def test_unbalanced():
    assert not {fn}("(]")
    assert not {fn}("((")
    assert not {fn}(")(")
""",
        ('assert not {fn}("((")', 'assert {fn}("((")'),
        ("stack.pop() != pairs[char]", "stack.pop() != pairs[char + 1]"),
    ),
    Template(
        "rotating a square matrix by 90 degrees clockwise",
        '''def {fn}(matrix: list[list[int]]) -> list[list[int]]:
    """Return a new matrix, the given one rotated a quarter turn clockwise."""
    size = len(matrix)
    return [[matrix[size - 1 - r][c] for r in range(size)] for c in range(size)]
''',
        """assert {fn}([]) == []
assert {fn}([[1]]) == [[1]]
assert {fn}([[1, 2], [3, 4]]) == [[3, 1], [4, 2]]
assert {fn}([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [[7, 4, 1], [8, 5, 2], [9, 6, 3]]
""",
        ("[[3, 1], [4, 2]]", "[[1, 3], [2, 4]]"),
        ("matrix[size - 1 - r][c]", "matrix[size - r][c]"),
    ),
]

NAMES = ["solve", "process", "compute", "transform", "handle", "build", "make", "get"]


def problem_text(rng: random.Random, topic: str) -> str:
    """An OSS-Instruct-sized problem: a task sentence and filler prose."""
    filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 160)))
    return f"You are tasked with implementing {topic}. {filler}."


def python_with_tests(rng: random.Random) -> Sample:
    """A Python sample from the templates; whether its tests pass is drawn by the bench's
    shares (hanging ones loop forever at the end of the program)."""
    template = rng.choice(TEMPLATES)
    name = f"{rng.choice(NAMES)}_{rng.choice(WORDS)}"
    if template.code.startswith("class"):
        name = "".join(part.title() for part in name.split("_"))
    code, tests = template.code, template.tests
    draw = rng.random()
    if draw < HANG:
        code += "\n\nwhile True:\n    pass\n"
    elif draw < HANG + RAISE:
        code = code.replace(*template.bug)
    elif draw < HANG + RAISE + FAIL:
        tests = tests.replace(*template.wrong)
    code, tests = code.replace("{fn}", name), tests.replace("{fn}", name)
    problem = problem_text(rng, template.topic)
    solution = f"Here is a solution:\n```python\n{code}```\nIt runs in linear time."
    return Sample(problem, solution, "python", code, tests)


def python_sample(rng: random.Random) -> Sample:
    """Generated Python: most with tests, some without (the model wrote no [Tests])."""
    sample = python_with_tests(rng)
    if rng.random() < NO_TESTS:
        return Sample(sample.problem, sample.solution, "python", sample.solution_code, None)
    return sample


def other_sample(rng: random.Random, language: str, lines: list[str]) -> Sample:
    """A sample in another language: its code is real code of that language (never run)."""
    start = rng.randrange(len(lines) - 60)
    code = "\n".join(lines[start : start + rng.randint(15, 60)])
    problem = problem_text(rng, f"a {language} utility")
    solution = f"Here is a solution:\n```{language}\n{code}\n```\nIt handles every case."
    return Sample(problem, solution, language, code, None)


def mix(size: int) -> dict[str, int]:
    """Samples per language: Python's share of the Magicoder mix, the rest split evenly."""
    others = [language for language in MAGICODER_MIX if language != "python"]
    python = round(size * PYTHON_SHARE)
    counts = {"python": python} | {language: (size - python) // len(others) for language in others}
    counts["python"] += size - sum(counts.values())
    return counts


def make_mixed_run(
    root: Path, size: int, python: Callable[[random.Random], Sample], name: str = "run"
) -> Path:
    """A run of `size` parsed samples in the Magicoder mix, sample, generate and clean done."""
    rng = random.Random(size)
    counts = mix(size)
    run = root / f"{name}-{size}"
    with RunStore.open(run) as store:
        store.begin_stage("sample", {"bench": size}, None)
        for language, count in counts.items():
            seeds = [
                Seed(language, i, str(i), "bench", None, None, None, 1, 1, f"x = {i}")
                for i in range(count)
            ]
            checkpoint_shard(store, language, "bench", count, (seeds, [], []))
        found = {k: {"requested": n, "found": n, "documents": n} for k, n in counts.items()}
        finish_sample(store, list(counts), {}, found)
        lines = {k: code_lines(LANGUAGES[k].data_dir) for k in counts if k != "python"}
        store.begin_stage("generate", {"bench": size}, None)
        numbered = list(store.rows("SELECT id, language FROM seeds ORDER BY id", as_=dict))
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO samples (seed_id, status, template_sha256, problem, solution, "
                "solution_lang, solution_code, tests, created_at) "
                "VALUES (?, 'ok', 'bench', ?, ?, ?, ?, ?, '')",
                (
                    (seed["id"], *astuple(_sample(rng, seed["language"], python, lines)))
                    for seed in numbered
                ),
            )
        store.finish_stage("generate", {})
        store.begin_stage("clean", asdict(CleanConfig()), None)
        store.replace_drops("clean", [], {"checked": size})
    return run


def _sample(
    rng: random.Random,
    language: str,
    python: Callable[[random.Random], Sample],
    lines: dict[str, list[str]],
) -> Sample:
    return python(rng) if language == "python" else other_sample(rng, language, lines[language])


VERIFY = """
import sys
from magicoder_data import run_stage
print(run_stage("verify", sys.argv[1], {"timeout": float(sys.argv[2])}).line())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=75_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        run = make_mixed_run(Path(tmp), args.samples, python_sample)
        built = time.perf_counter() - begin
        wall, rss, stdout = measure(["-c", str(run), str(TIMEOUT)], VERIFY)
        with RunStore.open(run, readonly=True) as store:
            counts = verdict_counts(store)
            dropped = store.drop_totals("verify")
        size = args.samples
        per_75k = 75_000 / size * wall / 60
        print(f"built {size:,} samples ({json.dumps(mix(size))}) in {built:.1f}s")
        print(
            f"verify {size:>8,} samples (timeout {TIMEOUT:g}s): {wall:7.1f}s  "
            f"{size / wall:7,.0f} samples/s  peak RSS {rss:6,.0f} MiB  "
            f"(75K extrapolated: {per_75k:.1f} min)"
        )
        print(f"  verdicts: {json.dumps(dict(sorted(counts.items())))}")
        print(f"  dropped:  {json.dumps(dict(sorted(dropped.items())))}")
        print(f"  {stdout.strip()}")


if __name__ == "__main__":
    main()
