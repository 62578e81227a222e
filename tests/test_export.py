"""Export: a folder that `datasets.load_dataset(DIR)` loads as is, with a useful card."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from tests.conftest import generated_run, run_cli, run_generate


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    return generated_run(tmp_path / "run", "python=5,rust=3", faults={976: ["garbage"]})


def test_export_loads_with_datasets_and_has_a_card(generated: Path, tmp_path: Path):
    out = tmp_path / "dataset"
    assert run_cli("export", generated, "--out", out, "--config", "lintseq").returncode == 1
    run_cli("lintseq", generated, "-s", "2", "--workers", "1", check=True)
    result = run_cli("export", generated, "--out", out, "--config", "all", check=True)
    assert (
        "oss-instruct 7 rows" in result.stdout and "lintseq 8 rows" in result.stdout
    )  # rust seeds, python code: rejected
    default = datasets.load_dataset(str(out), split="train", cache_dir=tmp_path / "c")
    assert default.column_names == [
        "lang",
        "raw_index",
        "index",
        "seed",
        "openai_fingerprint",
        "problem",
        "solution",
    ]
    assert len(default) == 7 and set(default["lang"]) == {"python", "rust"}
    assert default[0]["openai_fingerprint"] == "fp_fake"
    sft = datasets.load_dataset(str(out), "sft", split="train", cache_dir=tmp_path / "c")
    assert [m["role"] for m in sft[0]["messages"]] == ["system", "user", "assistant"]
    edits = datasets.load_dataset(str(out), "lintseq", split="train", cache_dir=tmp_path / "c")
    assert len(edits) == 8 and edits[0]["text"] == "<|diff|>".join(edits[0]["edits"])
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: oss-instruct" in card
    assert "gpt-4o-mini" in card and "fp_fake" in card and "| generate | unparsable | 1 |" in card
    assert "| language | seeds | parsed |\n" in card and "| **total** | 8 | 7 |" in card
    assert f'load_dataset("{out}", "lintseq", split="train")' in card
    assert "@inproceedings{wei2024magicoder" in card and "2410.02749" in card
    assert "sk-test-export" not in card
    for path in out.rglob("*"):
        if path.is_file():
            assert b"sk-test-export" not in path.read_bytes()


def test_export_errors(tmp_path: Path):
    run = tmp_path / "run"
    run_cli("sample", run, "--source", "bundled", "--mix", "python=2", check=True)
    result = run_cli("export", run, "--out", tmp_path / "x")
    assert result.returncode == 1 and "run `magicoder-data generate` first" in result.stderr
    result = run_cli("export", run, "--out", tmp_path / "x", "--config", "alpaca")
    assert result.returncode == 1 and "unknown config 'alpaca'" in result.stderr
    assert json.loads(run_cli("status", run, "--json", check=True).stdout)["stages"]["sample"]


def test_export_refuses_unfinished_or_stale_stages(tmp_path: Path):
    from tests.openai_server import FakeOpenAI

    run, out = tmp_path / "run", tmp_path / "out"
    run_cli("sample", run, "--source", "bundled", "--mix", "python=4", check=True)
    with FakeOpenAI() as server:
        run_generate(run, server.base_url, "--limit", "2", check=True)
        result = run_cli("export", run, "--out", out)
        assert result.returncode == 1
        assert (
            f"generate has not finished (running); resume it with `magicoder-data generate {run}`"
            in result.stderr
        )
        run_cli("clean", run, "--min-problem", "0", check=True)
        run_generate(run, server.base_url, check=True)
    result = run_cli("export", run, "--out", out)
    assert result.returncode == 1 and "clean has not seen 2 newer samples" in result.stderr
    assert not out.exists()
    run_cli("clean", run, "--min-problem", "0", check=True)
    assert "oss-instruct 4 rows" in run_cli("export", run, "--out", out, check=True).stdout


def test_shards_stream_in_batches_and_keep_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import pyarrow.parquet as pq

    from magicoder_data.export import writer as export

    monkeypatch.setattr(export, "SHARD_ROWS", 5)
    monkeypatch.setattr(export, "WRITE_BATCH", 2)
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}], "lang": "python", "index": i}
        for i in range(12)
    ]
    assert export._write(iter(rows), tmp_path, export._schema("sft", False)) == 12
    shards = sorted(tmp_path.glob("*.parquet"))
    assert [p.name for p in shards] == [f"train-{k:05d}-of-00003.parquet" for k in range(3)]
    assert [pq.read_metadata(p).num_rows for p in shards] == [5, 5, 2]
    table = pq.read_table(tmp_path)
    assert table.column("index").to_pylist() == list(range(12))
    assert export._write(iter([]), tmp_path / "empty", export._schema("lintseq", False)) == 0
    assert pq.read_table(tmp_path / "empty").schema.names[:2] == ["instruction", "program"]
