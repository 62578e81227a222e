"""Verified generation and behavioural decontamination, end to end through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from magicoder_data.parse import parse_response
from tests.conftest import generated_run, run_cli

FIRST = 976  # the request seed of seed 0 (generate's default base seed)
CLOSE = (
    "def any_pair_within(values, tol):\n"
    "    for i, a in enumerate(values):\n"
    "        for j, b in enumerate(values):\n"
    "            if i != j and abs(a - b) < tol:\n"
    "                return True\n"
    "    return False\n"
)


def answer(seed: int) -> str:
    """Ten Python answers in five kinds (pass, fail, raise, hang, no tests), then Rust ones."""
    n = seed - FIRST
    if n >= 10:
        return (
            f"[Problem Description]\nWrite a Rust function returning {seed} for this seed.\n\n"
            f"[Solution]\n```rust\nfn solve_{seed}() -> i32 {{\n    {seed}\n}}\n```\n\n"
            f"[Tests]\n```rust\nassert_eq!(solve_{seed}(), {seed});\n```\n"
        )
    tests = [
        f"assert solve_{seed}() == {seed}",
        f"assert solve_{seed}() == {seed + 1}",
        f"assert solve_{seed}() == undefined_name",
        "while True:\n    pass",
        None,
    ][n % 5]
    text = (
        f"[Problem Description]\nWrite a function that returns the number {seed} for this seed.\n"
        f"\n[Solution]\n```python\ndef solve_{seed}():\n    return {seed}\n```\n"
    )
    return text + (f"\n[Tests]\n```python\n{tests}\n```\n" if tests else "")


def test_tests_are_parsed_from_their_own_section_not_from_comments_in_code():
    parsed = parse_response(answer(FIRST))
    assert parsed is not None and parsed.tests == f"assert solve_{FIRST}() == {FIRST}"
    commented = (
        "[Problem Description]\nAdd two numbers.\n\n[Solution]\n```python\n"
        "def add(a, b):\n    return a + b\n\n# Tests\nassert add(1, 2) == 3\n```\n"
    )
    parsed = parse_response(commented)
    assert parsed is not None and parsed.tests is None and "# Tests" in parsed.solution


def test_verify_stage_statuses_drops_resume_and_export(tmp_path: Path):
    run = generated_run(
        tmp_path / "run", "python=10,rust=2", None, answer, "--template", "oss-instruct-tests"
    )
    early = run_cli("verify", run)
    assert early.returncode == 1 and "run `magicoder-data clean" in early.stderr
    run_cli("clean", run, "--near-duplicate", "1", check=True)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    result = run_cli("verify", run, "--timeout", "1", "--plain", check=True)
    assert (
        "error 2, failed 2, no_tests 2, passed 2, timeout 2, unsupported_language 2; "
        "25.0% of those run passed (sandbox: bubblewrap)" in result.stdout
    )
    stages = json.loads(run_cli("status", run, "--json", check=True).stdout)["stages"]
    assert stages["verify"]["drops"] == {
        "python": {"execution_error": 2, "failed_tests": 2, "timeout": 2}
    }
    rows = [json.loads(line) for line in run_cli("dump", run, "verification").stdout.splitlines()]
    by_status: dict[str, dict] = {}
    for row in rows:
        by_status.setdefault(row["status"], row)
    assert len(rows) == 12
    assert (
        by_status["failed"]["detail"]
        == f"AssertionError at tests.py:1: assert solve_{FIRST + 1}() == {FIRST + 2}"
    )
    assert "NameError" in by_status["error"]["detail"]
    again = run_cli("verify", run, "--plain", check=True)  # nothing left to run: same verdicts
    assert "passed 2, timeout 2" in again.stdout
    mismatch = run_cli("verify", run, "--timeout", "3")
    assert mismatch.returncode == 1 and "different verify config" in mismatch.stderr

    run_cli("decontaminate", run, check=True)
    out = tmp_path / "dataset"
    run_cli("export", run, "--out", out, check=True)
    table = pq.read_table(next(out.glob("data/oss-instruct/*.parquet"))).to_pylist()
    assert sorted(r["verify_status"] for r in table) == [
        "no_tests",
        "no_tests",
        "passed",
        "passed",
        "unsupported_language",
        "unsupported_language",
    ]
    assert all(r["tests"] for r in table if r["verify_status"] == "passed")
    card = (out / "README.md").read_text()
    assert "## Verification" in card and "Pass rate: 25.0% of 8 solutions run" in card

    strict = run_cli("verify", copy, "--timeout", "1", "--require-tests", check=True)
    assert "no_tests 2" in strict.stdout
    drops = json.loads(run_cli("status", copy, "--json", check=True).stdout)["stages"]
    assert drops["verify"]["drops"]["python"]["no_tests"] == 2


def test_file_mode_keeps_every_row_with_a_status(tmp_path: Path):
    rows = [
        {"id": 1, "solution": "def f(x):\n    return x * 2", "tests": "assert f(2) == 4"},
        {"id": 2, "solution": "def f(x):\n    return x * 2", "tests": "assert f(2) == 5"},
        {"id": 3, "solution": "def f(x):\n    return x * 2", "tests": None},
        {"id": 4, "solution": "def f(x):\n    return x * 2", "tests": ["assert f(1) == 2"]},
        {"id": 5, "solution": "def f(x) return", "tests": "assert f(1) == 2"},
        {"id": 6, "solution": "fn f() {}", "tests": "assert!(true);", "lang": "rust"},
        {"id": 7, "tests": "assert True"},
        {"id": 8, "solution": "import time\ntime.sleep(60)", "tests": "assert True"},
        {"id": 9, "solution": "x = 1\n" * 300_000, "tests": "assert x == 1"},
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "verify", "--input", data, "--output", out, "--language-field", "lang", "--timeout", "1"
    )
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    assert [g["verify_status"] for g in got] == [
        "passed",
        "failed",
        "no_tests",
        "passed",
        "error",
        "unsupported_language",
        "error",
        "timeout",
        "error",
    ]
    assert got[1]["verify_detail"] == "AssertionError at tests.py:1: assert f(2) == 5"
    assert "longer than" in got[8]["verify_detail"]
    assert got[0]["solution"] == rows[0]["solution"]  # the input row, whole
    again = run_cli("verify", "--input", data, "--output", out)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    onto_input = run_cli("verify", "--input", data, "--output", data, "--overwrite")
    assert onto_input.returncode == 1 and len(data.read_text().splitlines()) == len(rows)
    wrong = run_cli(
        "verify", "--input", data, "--output", tmp_path / "o.jsonl", "--code-field", "x"
    )
    assert wrong.returncode == 1 and "has no field 'x'" in wrong.stderr
    missing = run_cli("verify", "--input", tmp_path / "nope.jsonl", "--output", tmp_path / "o2")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    both = run_cli("verify", tmp_path, "--input", data, "--output", out)
    assert both.returncode == 1 and "not both" in both.stderr


def reworded(seed: int) -> str:
    """Seed 0 answers HumanEval/0 in new words with a renamed function; the rest are clean."""
    if seed == FIRST:
        return (
            "[Problem Description]\nA sensor logs readings. Given the readings and a tolerance, "
            "report whether two distinct readings differ by less than the tolerance.\n\n"
            f"[Solution]\n```python\n{CLOSE}```\n"
        )
    return (
        "[Problem Description]\nGiven a list of readings, return how many exceed a limit "
        f"(variant {seed}).\n\n[Solution]\n```python\ndef count_over_{seed}(values, limit):\n"
        "    return sum(1 for v in values if v > limit)\n```\n"
    )


def test_execution_catches_a_reworded_benchmark_problem_that_text_misses(tmp_path: Path):
    run = generated_run(tmp_path / "run", "python=4", None, reworded)
    run_cli("clean", run, "--near-duplicate", "1", "--min-problem", "10", check=True)
    text_only = tmp_path / "text"
    shutil.copytree(run, text_only)
    result = run_cli("decontaminate", text_only, "--methods", "substring,ngram,tfidf", check=True)
    assert "0 samples dropped" in result.stdout
    result = run_cli("decontaminate", run, check=True)
    assert "1 samples dropped (humaneval/execution 1)" in result.stdout
    drops = [json.loads(line) for line in run_cli("dump", run, "drops").stdout.splitlines()]
    (drop,) = [d for d in drops if d["stage"] == "decontaminate"]
    # the reworded code keeps the item's structure, so the fuzzy method flags it too
    assert drop["item"] == "0" and drop["detail"] == (
        "humaneval/execution HumanEval/0; humaneval/fuzzy HumanEval/0"
    )
    config = json.loads((run / "config.json").read_text())["decontaminate"]
    assert config["candidates"] == 200 and config["sandbox"] == "bubblewrap"


def test_execution_runs_mbpp_style_asserts_of_a_local_benchmark(tmp_path: Path):
    items = tmp_path / "mbpp.jsonl"
    items.write_text(
        json.dumps(
            {
                "task_id": 11,
                "text": "Write a python function to remove first and last occurrence of a "
                "given character from the string.",
                "code": "def remove_Occ(s,ch):\n    s = s.replace(ch, '', 1)\n"
                "    return s[::-1].replace(ch, '', 1)[::-1]",
                "test_list": [
                    'assert remove_Occ("hello","l") == "heo"',
                    'assert remove_Occ("abcda","a") == "bcd"',
                    'assert remove_Occ("PHP","P") == "H"',
                ],
            }
        )
        + "\n"
    )
    samples = tmp_path / "samples.jsonl"
    strip = (
        "```python\ndef strip_ends(text, c):\n    first = text.find(c)\n"
        "    if first >= 0:\n        text = text[:first] + text[first + 1:]\n"
        "    last = text.rfind(c)\n"
        "    if last >= 0:\n        text = text[:last] + text[last + 1:]\n"
        "    return text\n```"
    )
    samples.write_text(
        json.dumps(
            {"id": "a", "problem": "Trim a marker from both ends of a label.", "solution": strip}
        )
        + "\n"
        + json.dumps(
            {
                "id": "b",
                "problem": "Count vowels.",
                "solution": "```python\ndef v(s, c):\n    return s.count(c)\n```",
            }
        )
        + "\n"
    )
    report = tmp_path / "report"
    result = run_cli(
        "audit",
        samples,
        "--benchmarks",
        f"mbpp={items}",
        "--methods",
        "execution",
        "--report",
        report,
        check=True,
    )
    assert f"{samples}: 1 of 2 samples flagged" in result.stdout
    (line,) = [json.loads(x) for x in (report / "flagged.jsonl").read_text().splitlines()]
    assert line["id"] == "a" and line["item_id"] == "11"
    assert line["evidence"] == "strip_ends passes mbpp 11's tests (3 assertions) as remove_Occ"
