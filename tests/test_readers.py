"""Dataset readers shared by `audit` and `lintseq --input`: streamed rows, errors naming the line
or row, local paths never mistaken for Hub names, non-text values never turned into text."""

from __future__ import annotations

import gzip
import inspect
import json
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from magicoder_data import ConfigError, RunStore, SourceError, readers
from magicoder_data.decontam import benchmarks
from magicoder_data.decontam.audit import audit, rows_of
from magicoder_data.decontam.benchmarks import load
from magicoder_data.executors import LocalExecutor
from magicoder_data.generate import iter_samples
from magicoder_data.lintseq.stage import LintSeqConfig, run_file
from magicoder_data.readers import is_hub_name, open_dataset, read_rows
from tests.conftest import generated_run, write_jsonl, write_parquet
from tests.test_cli import assert_one_line_error
from tests.test_decontam import ITEMS, SCANNER, UNRELATED, full

PROGRAM = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# Streaming


def test_jsonl_is_read_line_by_line(tmp_path: Path):
    source = write_lines(tmp_path / "d.jsonl", '{"a": 1}', "", '{"a": 2}', "{broken")
    rows = read_rows(source)
    assert inspect.isgenerator(rows)
    assert next(rows) == {"a": 1} and next(rows) == {"a": 2}  # read before the bad line is
    with pytest.raises(SourceError, match="line 4 is not valid JSON"):
        next(rows)


def test_parquet_is_read_in_batches(tmp_path: Path, monkeypatch):
    source = write_parquet(tmp_path / "d.parquet", [{"a": i} for i in range(7)], 2)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("read whole"))
    sizes = []
    iter_batches = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in iter_batches(self, *args, **kwargs):
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(readers, "PARQUET_BATCH", 3)
    rows = read_rows(source)
    assert next(rows) == {"a": 0} and sizes == [3]
    assert [r["a"] for r in rows] == list(range(1, 7)) and sizes == [3, 3, 1]


def test_every_format_reads_the_same_rows(tmp_path: Path):
    rows = [{"id": "x", "n": 1}, {"id": "y", "n": 2}]
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in rows))
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(rows))
    as_dict = tmp_path / "dict.json"
    as_dict.write_text(json.dumps({"first": rows[0], "second": rows[1]}))
    sources = [
        write_jsonl(tmp_path / "d.jsonl", rows),
        write_parquet(tmp_path / "d.parquet", rows),
        gz,
        as_list,
        as_dict,
    ]
    for source in sources:
        assert list(open_dataset(str(source))) == rows, source


def test_a_local_benchmark_copy_streams_in_parquet(tmp_path: Path):
    rows = [{"task_id": i, "text": f"Task {i}.", "code": f"x = {i}"} for i in range(3)]
    [spec] = benchmarks.resolve([f"mbpp={write_parquet(tmp_path / 'mbpp.parquet', rows)}"])
    assert [(i.item_id, i.texts["question"]) for i in load(spec)] == [
        ("0", "Task 0."),
        ("1", "Task 1."),
        ("2", "Task 2."),
    ]


# Errors naming the line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "line 5 is an array, not a JSON object"),
        ("3", "line 5 is a number, not a JSON object"),
        ('"text"', "line 5 is a string, not a JSON object"),
        ("null", "line 5 is null, not a JSON object"),
        ('{"a": 1', "line 5 is not valid JSON (Expecting ',' delimiter at column 8)"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 5 is nested too deeply"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line, message):
    source = write_lines(tmp_path / "d.jsonl", *['{"a": 0}'] * 3, "", line, '{"a": 1}')
    with pytest.raises(SourceError, match=r"^cannot read .*d\.jsonl: ") as error:
        list(read_rows(source))
    assert message in str(error.value)


def test_bad_json_files_are_named(tmp_path: Path):
    with pytest.raises(SourceError, match="not valid JSON at line 2"):
        list(read_rows(write_lines(tmp_path / "a.json", "[", "}")))
    with pytest.raises(SourceError, match="item 1 is a number, not a JSON object"):
        list(read_rows(write_lines(tmp_path / "b.json", '[{"a": 1}, 2]')))
    with pytest.raises(SourceError, match="holds a number; give a list of row objects"):
        list(read_rows(write_lines(tmp_path / "c.json", "3")))
    with pytest.raises(SourceError, match="it is nested too deeply"):
        list(read_rows(write_lines(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)))
    with pytest.raises(SourceError, match=r"give a \.jsonl, \.jsonl\.gz, \.json or \.parquet"):
        list(read_rows(write_lines(tmp_path / "d.csv", "a,b")))
    (tmp_path / "e.parquet").write_bytes(b"garbage")
    with pytest.raises(SourceError, match=r"cannot read .*e\.parquet"):
        list(read_rows(tmp_path / "e.parquet"))


def test_audit_cli_names_the_bad_line(tmp_path: Path, cli):
    row = json.dumps({"problem": "p", "solution": "s"})
    source = write_lines(tmp_path / "d.jsonl", row, row, row, row, "{oops")
    result = cli("audit", source, "--report", tmp_path / "report")
    assert_one_line_error(result, f"cannot read {source}: line 5 is not valid JSON (")
    source = write_lines(tmp_path / "e.jsonl", row, "[1,2]")
    result = cli("audit", source, "--report", tmp_path / "report")
    assert_one_line_error(result, "line 2 is an array, not a JSON object")


# Local paths and Hub names


@pytest.mark.parametrize(
    ("source", "hub"),
    [
        ("ise-uiuc/Magicoder-OSS-Instruct-75K", True),
        ("bigcode/the-stack-v2.1", True),
        ("missing/data.jsonl", False),
        ("missing/data.JSONL", False),
        ("missing/data.parquet", False),
        ("missing/data.json.gz", False),
        ("./missing/data", False),
        ("./org", False),
        ("/org/name", False),
        ("~/name", False),
        ("a/b/c", False),
        ("data", False),
        ("org/", False),
    ],
)
def test_only_org_name_is_a_hub_name(source, hub):
    assert is_hub_name(source) is hub


def test_missing_local_files_are_not_hub_datasets(tmp_path: Path):
    for source in ("./missing/data.jsonl", "missing/data.jsonl", str(tmp_path / "x.parquet")):
        with pytest.raises(SourceError, match=f"^file {source} not found; give an existing"):
            open_dataset(source)  # at once, not at the first row
    with pytest.raises(SourceError, match="is a folder"):
        open_dataset(str(tmp_path))
    with pytest.raises(SourceError, match=r"^cannot load Hub dataset org/name \(.*\), and there"):
        open_dataset("org/name")  # tests run offline


@pytest.mark.parametrize("source", ["./missing/data.jsonl", "missing/data.jsonl"])
def test_cli_says_a_missing_file_is_missing(tmp_path: Path, cli, source):
    result = cli("audit", source, "--report", tmp_path / "report", cwd=tmp_path)
    assert_one_line_error(result, f"file {source} not found")
    out = tmp_path / "x.jsonl"
    result = cli("lintseq", "--input", source, "--output", out, cwd=tmp_path)
    assert_one_line_error(result, f"file {source} not found")
    assert list(tmp_path.iterdir()) == []  # nothing written for an input that is not there


def test_a_run_is_read_as_its_parsed_samples(tmp_path: Path):
    run = generated_run(tmp_path / "run", "python=3")
    with RunStore.open(run, readonly=True) as store:
        parsed = [asdict(sample) for sample in iter_samples(store) if sample.status == "ok"]
    assert parsed and list(open_dataset(str(run))) == parsed
    named = [row_id for row_id, _ in rows_of(str(run), ["problem", "solution"])]
    assert named == [str(sample["seed_id"]) for sample in parsed]


def test_audit_of_a_folder_that_is_not_a_run(tmp_path: Path, cli):
    result = cli("audit", tmp_path, "--report", tmp_path / "report")
    assert_one_line_error(result, "is a folder but not a run")


# Fields missing from some row


def test_audit_names_the_row_missing_a_field(tmp_path: Path, cli):
    rows = [{"problem": "p", "solution": "s"}, {"solution": "s", "id": 2}]
    source = write_jsonl(tmp_path / "d.jsonl", rows)
    result = cli("audit", source, "--report", tmp_path / "report")
    assert_one_line_error(result, f"row 2 of {source} has no field 'problem'; its fields: id, ")
    first = write_jsonl(tmp_path / "e.jsonl", rows[::-1])
    result = cli("audit", first, "--report", tmp_path / "report")
    assert_one_line_error(result, f"dataset {first} has no field 'problem'; its fields: id, ")


def lintseq(tmp_path: Path, rows: list[dict], language_field: str | None = None):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    for old in tmp_path.glob("out.jsonl*"):
        old.unlink()
    outcome = run_file(
        str(source),
        out,
        "instruction",
        "response",
        language_field,
        "python",
        LintSeqConfig(samples=1),
        LocalExecutor(1),
    )
    rejected = tmp_path / "out.jsonl.rejected.jsonl"
    reasons = {r["id"]: r["reason"] for r in map(json.loads, rejected.read_text().splitlines())}
    return outcome, [json.loads(line) for line in out.read_text().splitlines()], reasons


def test_lintseq_names_the_row_missing_a_field(tmp_path: Path):
    good = {"instruction": "Add", "response": PROGRAM}
    with pytest.raises(ConfigError, match=r"^row 3 of .*in\.jsonl has no field 'response'; its"):
        lintseq(tmp_path, [good, good, {"instruction": "x", "code": PROGRAM}])
    with pytest.raises(ConfigError, match=r"^dataset .*in\.jsonl has no field 'instruction'"):
        lintseq(tmp_path, [{"response": PROGRAM}])


# Values that are not text


def test_lintseq_rejects_programs_that_are_not_text(tmp_path: Path, cli):
    rows = [
        {"id": "ok", "instruction": "Add", "response": PROGRAM},
        {"id": "int", "instruction": "x", "response": 3},
        {"id": "list", "instruction": "x", "response": ["print(1)"]},
        {"id": "dict", "instruction": "x", "response": {"code": "print(1)"}},
        {"id": "bool", "instruction": "x", "response": True},
        {"id": "null", "instruction": "x", "response": None},
        {"id": "empty", "instruction": "x", "response": ""},
    ]
    outcome, records, reasons = lintseq(tmp_path, rows)
    assert outcome == {"ok": 1, "not_text": 4, "empty_program": 2}
    assert [r["id"] for r in records] == ["ok"]
    assert reasons == {
        "int": "not_text",
        "list": "not_text",
        "dict": "not_text",
        "bool": "not_text",
        "null": "empty_program",
        "empty": "empty_program",
    }
    source = tmp_path / "in.jsonl"
    result = cli("lintseq", "--input", source, "--output", tmp_path / "o.jsonl", check=True)
    assert "not_text 4" in result.stdout and "ok 1" in result.stdout


def test_audit_leaves_out_values_that_are_not_text(tmp_path: Path):
    rows = [
        {"id": "list", "problem": [full("HumanEval/0")], "solution": None},  # str() would flag
        {"id": "number", "problem": 12345, "solution": "def f():\n    return 1\n"},
        {"id": "text", "problem": full("HumanEval/12"), "solution": ""},
    ]
    source = write_jsonl(tmp_path / "d.jsonl", rows)
    report = tmp_path / "report"
    [result] = audit([str(source)], ["problem", "solution"], ITEMS, SCANNER, report)
    assert result.samples == 3 and result.flagged == {"text"}
    assert result.not_text == {"problem: list": 1, "problem: int": 1, "solution: null": 1}
    markdown = (report / "report.md").read_text()
    assert "`problem: int` 1, `problem: list` 1, `solution: null` 1" in markdown


# The language of each row


def test_lintseq_language_field(tmp_path: Path):
    rows = [
        {"id": "py", "instruction": "x", "response": PROGRAM, "lang": "py"},
        {"id": "null", "instruction": "x", "response": PROGRAM, "lang": None},
        {"id": "rust", "instruction": "x", "response": "fn main() {}\n", "lang": "Rust"},
        {"id": "cobol", "instruction": "x", "response": PROGRAM, "lang": "cobol"},
        {"id": "number", "instruction": "x", "response": PROGRAM, "lang": 3},
    ]
    outcome, records, reasons = lintseq(tmp_path, rows, "lang")
    assert outcome == {"ok": 3, "unknown_language": 2}
    assert [(r["id"], r["language"]) for r in records] == [
        ("py", "python"),
        ("null", "python"),
        ("rust", "rust"),
    ]
    assert reasons == {"cobol": "unknown_language", "number": "unknown_language"}
    del rows[2]["lang"]
    with pytest.raises(ConfigError, match=r"^row 3 of .*in\.jsonl has no field 'lang' \(given as"):
        lintseq(tmp_path, rows, "lang")


def test_lintseq_cli_with_a_language_field_no_row_has(tmp_path: Path, cli):
    source = write_jsonl(tmp_path / "in.jsonl", [{"instruction": "x", "response": PROGRAM}])
    result = cli(
        "lintseq", "--input", source, "--output", tmp_path / "o.jsonl", "--language-field", "no"
    )
    assert_one_line_error(result, "row 1 of", "has no field 'no' (given as --language-field)")


# No rows at all


def test_an_empty_dataset_is_audited_without_warnings(tmp_path: Path, cli):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    report = tmp_path / "report"
    [result] = audit([str(empty)], ["problem", "solution"], ITEMS, SCANNER, report)
    assert result.samples == 0  # warnings are errors here: none was raised
    assert "No samples: the dataset has no rows" in (report / "report.md").read_text()
    assert (report / "similarity.png").stat().st_size > 0
    text = write_jsonl(tmp_path / "text.jsonl", [{"problem": UNRELATED[0], "solution": ""}])
    audit([str(empty), str(text)], ["problem", "solution"], ITEMS, SCANNER, report)
    result_cli = cli("audit", empty, "--report", report, check=True)
    assert result_cli.stderr == ""
    assert f"{empty}: 0 of 0 samples flagged" in result_cli.stdout
