"""The command line: the main flow, and one clear line (exit 1, no traceback) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main

from magicoder_data.cli import app
from tests.conftest import code_doc, doc


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_sample_status_dump(tmp_path: Path, corpus, cli):
    rows = [doc(f"{i}", code_doc(i)) for i in range(50)]
    root = corpus(
        {"python": rows, "rust": [doc(f"r{i}", "fn f() -> u8 { 1 }\n") for i in range(4)]}
    )
    run = tmp_path / "run"
    first = cli("sample", run, "--source", root, "--mix", "python=20,rust=6", check=True)
    assert "warning: rust: only 1 of 6 seeds found" in first.stderr
    status = cli("status", run, "--json", check=True)
    info = json.loads(status.stdout)["stages"]["sample"]
    assert info["status"] == "complete"
    assert info["rows"] == {"python": 20, "rust": 1}
    assert info["drops"]["rust"] == {"duplicate": 3}
    assert "duplicate 3" in cli("status", run, check=True).stdout
    seeds = [json.loads(line) for line in cli("dump", run, "seeds", check=True).stdout.splitlines()]
    assert [s["id"] for s in seeds] == list(range(21))
    assert {s["language"] for s in seeds} == {"python", "rust"}
    out = tmp_path / "seeds.jsonl"
    cli("dump", run, "seeds", "--out", out, check=True)
    assert [json.loads(line) for line in out.read_text().splitlines()] == seeds
    drops = cli("dump", run, "drops", check=True).stdout.splitlines()
    assert len(drops) == 3

    again = cli("sample", run, check=True)  # resumes with the stored options; nothing to do
    assert "20" in again.stdout
    assert [
        json.loads(x) for x in cli("dump", run, "seeds", check=True).stdout.splitlines()
    ] == seeds


def test_total_scales_the_magicoder_mix(tmp_path: Path, cli):
    run = tmp_path / "run"
    cli("sample", run, "--source", "bundled", "--total", "160", check=True)
    config = json.loads((run / "config.json").read_text())["sample"]
    assert config["mix"]["python"] == 80
    assert sum(config["mix"].values()) == 160
    assert set(config["mix"]) == {
        "python",
        "cpp",
        "java",
        "typescript",
        "shell",
        "csharp",
        "rust",
        "php",
        "swift",
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--source", "{tmp}/missing"], ["not found"]),
        (["--source", "bigcode/starcoderdata", "--mix", "python=5"], ["offline", "--source DIR"]),
        (["--source", "bundled", "--mix", "cobol=5"], ["unknown language 'cobol'"]),
        (["--source", "bundled", "--mix", "python=-1"], ["cannot be negative"]),
        (["--source", "bundled", "--mix", "python=0"], ["no seeds at all"]),
        (["--source", "bundled", "--mix", "python:5"], ["bad mix entry"]),
        (["--source", "bundled", "--total", "0"], ["invalid --total", "greater than 0"]),
        (["--source", "bundled", "--min-lines", "9", "--max-lines", "3"], ["min_lines (9)"]),
        (["--mix", "python=5"], ["needs --source"]),
    ],
)
def test_sample_errors(tmp_path: Path, cli, args, fragments):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_one_line_error(cli("sample", tmp_path / "run", *args), *fragments)


def test_corrupt_shard_keeps_stored_work(tmp_path: Path, corpus, cli):
    root = corpus({"python": [doc(f"{i}", code_doc(i)) for i in range(30)]}, shards=2)
    (root / "python" / "train-00002-of-00002.parquet").write_bytes(b"garbage")
    run = tmp_path / "run"
    result = cli("sample", run, "--source", root, "--mix", "python=5")
    assert_one_line_error(result, "train-00002-of-00002.parquet")
    status = json.loads(cli("status", run, "--json", check=True).stdout)["stages"]["sample"]
    assert status["documents"]["python"]["shards"] == 2  # the two good shards stay done


def test_run_with_a_different_config(tmp_path: Path, cli):
    run = tmp_path / "run"
    cli("sample", run, "--source", "bundled", "--mix", "python=5", check=True)
    assert_one_line_error(
        cli("sample", run, "--seed", "1"), "different sample config", "seed=976 (not 1)"
    )


def test_status_and_dump_errors(tmp_path: Path, cli):
    assert_one_line_error(cli("status", tmp_path / "none"), "not a run directory")
    cli("sample", tmp_path / "run", "--source", "bundled", "--mix", "python=3", check=True)
    assert_one_line_error(cli("dump", tmp_path / "run", "widgets"), "unknown stage 'widgets'")


def test_usage_errors_exit_2_without_traceback(cli):
    result = cli("sample")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_every_command_has_help_with_an_example():
    for command in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        assert command.help and "Example: magicoder-data" in command.help, command.name


def test_unwritable_output_is_a_one_line_error(tmp_path: Path, cli):
    cli("sample", tmp_path / "run", "--source", "bundled", "--mix", "python=2", check=True)
    result = cli("dump", tmp_path / "run", "seeds", "--out", tmp_path / "no" / "such" / "x.jsonl")
    assert_one_line_error(result, "does not exist")


def test_a_choice_outside_its_list_is_a_usage_error_naming_the_choices(tmp_path: Path, cli):
    result = cli("sample", tmp_path / "run", "--source", "bundled", "--source-kind", "ftp")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "--source-kind" in result.stderr
        and "'ftp' is not one of 'auto', 'bundled'" in result.stderr
    )
    assert not (tmp_path / "run").exists()
