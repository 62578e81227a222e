"""Cleaning: each check on samples that should and should not trip it, then deduplication."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from magicoder_data.clean import CleanConfig, clean_samples
from magicoder_data.generate import ParsedSample
from tests.conftest import generated_run, run_cli

PROBLEM = (
    "Write a function `moving_average(values, k)` that returns the list of averages of every "
    "window of k consecutive numbers in `values`. Raise ValueError when k is not positive."
)
CODE = (
    "def moving_average(values, k):\n"
    "    if k <= 0:\n"
    "        raise ValueError('k must be positive')\n"
    "    return [sum(values[i:i + k]) / k for i in range(len(values) - k + 1)]"
)


def sample(seed_id: int = 0, **overrides: object) -> ParsedSample:
    base = {
        "seed_id": seed_id,
        "language": "python",
        "snippet": f"x = {seed_id}",
        "problem": PROBLEM,
        "solution_lang": "python",
        "solution_code": CODE,
    } | overrides
    base.setdefault("solution", f"Here it is:\n```\n{base['solution_code']}\n```")
    return ParsedSample(**base)  # type: ignore[arg-type]


def reasons(samples: list[ParsedSample], **config: object) -> dict[int, str]:
    drops = clean_samples([list(samples)], CleanConfig(**config))  # type: ignore[arg-type]
    return {int(d.item): d.reason for d in drops}


def test_a_good_sample_is_kept():
    assert reasons([sample()]) == {}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"problem": "Sort it."}, "short_problem"),
        ({"problem": "x" * 9_000}, "long_problem"),
        ({"solution": "Use sorted."}, "short_solution"),
        (
            {"solution_code": None, "solution": "Just loop over the list and add things up."},
            "no_code",
        ),
        ({"language": "rust", "solution_lang": "python"}, "language_mismatch"),
        ({"solution_code": "def moving_average(values, k):\n    pass"}, "placeholder_solution"),
        (
            {"solution_code": "def f(x):\n    '''Doc.'''\n    raise NotImplementedError"},
            "placeholder_solution",
        ),
        ({"solution_code": "def f(x):\n    ..."}, "placeholder_solution"),
        ({"solution_code": "def moving_average(values, k)\n    return values"}, "syntax_error"),
        (
            {"language": "rust", "solution_lang": "rust", "solution_code": "fn main( {"},
            "syntax_error",
        ),
        (
            {
                "language": "java",
                "solution_lang": "java",
                "solution_code": "class A {\n  int f() {\n    // TODO: implement\n"
                "    return 0;\n  }\n}",
            },
            "placeholder_solution",
        ),
    ],
)
def test_each_check(overrides, reason):
    assert reasons([sample(**overrides)]) == {0: reason}


def test_valid_code_in_other_languages_and_abstract_methods_pass():
    rust = "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}"
    abstract = (
        "from abc import ABC, abstractmethod\n\nclass Shape(ABC):\n    @abstractmethod\n"
        "    def area(self):\n        pass\n\nclass Square(Shape):\n    def __init__(self, s):\n"
        "        self.s = s\n\n    def area(self):\n        return self.s ** 2"
    )
    samples = [
        sample(0, language="rust", solution_lang="rust", solution_code=rust),
        sample(1, solution_code=abstract, problem=PROBLEM + " Use a Shape base class."),
        sample(
            2,
            language="shell",
            solution_lang=None,
            solution_code="echo hi",
            problem=PROBLEM + " In shell.",
        ),
    ]
    assert reasons(samples) == {}


def test_exact_duplicates_keep_the_first_copy():
    samples = [
        sample(0),
        sample(1, problem=PROBLEM.replace(" ", "   "), snippet="y = 1"),  # same problem, respaced
        sample(2, snippet="x = 0", problem=PROBLEM + " Also handle empty lists."),  # same seed
    ]
    assert reasons(samples, near_duplicate=1.0) == {1: "duplicate_problem", 2: "duplicate_seed"}


def test_near_duplicates_by_minhash():
    documented = CODE.replace(
        "    if k <= 0:",
        '    """Average each window of k values.\n\n    The result has len(values) - k + 1 '
        'entries; an empty list when k exceeds the length.\n    """\n    if k <= 0:',
    )
    other = (
        "Implement `word_frequencies(text)` returning a dict that maps each lower-cased word "
        "of the text to how often it occurs, ignoring punctuation."
    )
    code = (
        "def word_frequencies(text):\n    import collections\n"
        "    return collections.Counter(text.lower().split())"
    )
    samples = [
        sample(0, solution_code=documented),
        sample(
            1,
            snippet="a",
            problem=PROBLEM.replace("returns", "gives back"),
            solution_code=documented + "  # O(n k)",
        ),
        sample(2, snippet="b", problem=other, solution_code=code),
    ]
    assert reasons(samples) == {1: "near_duplicate"}
    assert reasons(samples, near_duplicate=1.0) == {1: "near_duplicate_code"}
    assert reasons(samples, near_duplicate=1.0, near_duplicate_code=1.0) == {}


def test_the_same_code_under_other_names_is_a_near_duplicate():
    """Two seeds, one task: other words, other names, other layout; the words share little."""
    renamed = (
        "def windowed_means(numbers, size):\n"
        "    if size <= 0:\n"
        "        raise ValueError('size must be positive')\n"
        "    return [sum(numbers[j:j + size]) / size\n"
        "            for j in range(len(numbers) - size + 1)]"
    )
    told_otherwise = (
        "Given a sequence of readings and a window length, produce the mean of each run of "
        "consecutive readings of that length; reject window lengths below one."
    )
    java = "class A {\n  int f(int x) {\n    return x + 1;\n  }\n}"
    samples = [
        sample(0),
        sample(1, snippet="a", problem=told_otherwise, solution_code=renamed),
        sample(
            2,
            snippet="b",
            problem=told_otherwise + " In Java.",
            solution_code=java,
            solution_lang="java",
            language="java",
        ),
    ]
    assert reasons(samples) == {1: "near_duplicate_code"}
    assert reasons(samples, near_duplicate_code=1.0) == {}


def test_clean_cli_counts_reasons_and_decontaminate_skips_dropped(tmp_path: Path):
    run = tmp_path / "run"
    generated_run(run, "python=6", faults={976: ["garbage"]})
    result = run_cli("clean", run, check=True)  # the fake's problems are one short sentence
    assert "5 samples dropped (short_problem 5)" in result.stdout
    status = json.loads(run_cli("status", run, "--json", check=True).stdout)["stages"]
    assert status["clean"]["drops"] == {"python": {"short_problem": 5}}
    assert "0 samples dropped" in run_cli("decontaminate", run, check=True).stdout
    scanned = json.loads(run_cli("status", run, "--json", check=True).stdout)["stages"]
    assert scanned["decontaminate"]["status"] == "complete"


def test_a_dropped_sample_is_nobodys_first_copy():
    samples = [
        sample(0),
        sample(1, snippet="shared", problem=PROBLEM),  # duplicate problem of 0: dropped
        sample(
            2,
            snippet="shared",
            problem=PROBLEM + " Also accept tuples.",
            solution_code=CODE.replace("values[i:i + k]", "list(values)[i:i + k]"),
        ),
    ]
    assert reasons(samples, near_duplicate=1.0, near_duplicate_code=1.0) == {
        1: "duplicate_problem"
    }  # 2 is kept
