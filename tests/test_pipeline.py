"""`magicoder-data run CONFIG.yaml`: every stage from one config, resumable, strictly checked."""

from __future__ import annotations

from pathlib import Path

import datasets

from tests.conftest import run_cli
from tests.hub_server import FakeHub
from tests.openai_server import FakeOpenAI

EXAMPLE = Path(__file__).parent.parent / "examples" / "oss-instruct-75k.yaml"


def config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"""
run: {tmp_path / "run"}
sample:
  source: bundled
  mix: {{python: 4, rust: 2}}
generate:
  model: gpt-4o-mini
  base_url: {base_url}
  concurrency: 4
  plain: true
{extra}
clean:
  min_problem: 10
decontaminate:
  benchmarks: humaneval
lintseq:
  samples: 2
  workers: 1
export:
  out: {tmp_path / "dataset"}
  config: all
push:
  repo_id: demo-org/pipeline
  config: all
""")
    return path


def test_the_whole_pipeline_from_one_config_then_nothing_to_redo(tmp_path: Path):
    with FakeOpenAI() as server, FakeHub(token="hf_test_pipeline") as hub:
        env = hub.env(tmp_path / "hf-home", "hf_test_pipeline")
        env["OPENAI_API_KEY"] = "sk-test-pipeline-0123456789"
        path = config(tmp_path, server.base_url)
        first = run_cli("run", path, env=env)
        assert first.returncode == 0, first.stderr
        sent = len(server.requests)
        again = run_cli("run", path, env=env)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == sent == 6  # the second run sent nothing
        assert len(hub.commits) == 1 and len(hub.commits[0].added) == 4  # card + 3 configs
    cache = tmp_path / "hf-cache"  # offline, datasets may reuse a same-named folder's cache
    assert (
        len(datasets.load_dataset(str(tmp_path / "dataset"), split="train", cache_dir=cache)) == 4
    )


def test_unknown_and_invalid_settings_name_their_path(tmp_path: Path):
    bad = config(tmp_path, "http://127.0.0.1:9/v1").read_text().replace("  model:", "  modle:")
    (tmp_path / "bad.yaml").write_text(bad)
    result = run_cli("run", tmp_path / "bad.yaml")
    assert result.returncode == 1 and "unknown setting generate.modle" in result.stderr
    worse = config(tmp_path, "http://127.0.0.1:9/v1", extra="  temperature: hot")
    result = run_cli("run", worse)
    assert result.returncode == 1 and "generate.temperature" in result.stderr
    (tmp_path / "top.yaml").write_text("run: x\nsampel: {}\n")
    result = run_cli("run", tmp_path / "top.yaml")
    assert result.returncode == 1 and "unknown key 'sampel'" in result.stderr


def test_the_example_config_is_valid(tmp_path: Path):
    text = EXAMPLE.read_text().replace("runs/oss-instruct-75k", str(tmp_path / "run"))
    text = text.replace("source: bigcode/starcoderdata", "source: bigcode/starcoderdata-missing")
    (tmp_path / "example.yaml").write_text(text)
    result = run_cli("run", tmp_path / "example.yaml")
    # Every setting is accepted; offline, the first stage stops at the Hub, with one line.
    assert result.returncode == 1
    assert "cannot load Hub dataset bigcode/starcoderdata-missing" in result.stderr


def test_run_pipeline_from_python_without_a_subprocess(tmp_path: Path, monkeypatch):
    import magicoder_data as md

    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-library-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # no base_url in the dict
        pipeline = {
            "run": str(tmp_path / "run"),
            "sample": {"source": "bundled", "mix": {"python": 4, "rust": 2}},
            "generate": {"model": "gpt-4o-mini", "concurrency": 4},
            "clean": {"min_problem": 10},
            "decontaminate": {"benchmarks": "humaneval"},
            "lintseq": {"samples": 2, "workers": 1},
            "export": {"out": str(tmp_path / "dataset"), "config": "all"},
        }
        report = md.run_pipeline(pipeline)
        assert len(server.requests) == 6  # the environment's endpoint answered every seed
        assert list(report.reports) == [
            "sample",
            "generate",
            "clean",
            "decontaminate",
            "lintseq",
            "export",
        ]
        assert isinstance(report.reports["generate"], md.GenerateStats)
        assert report.reports["export"].rows["oss-instruct"] == 4  # type: ignore[attr-defined]
        again = md.run_pipeline(pipeline)
        assert len(server.requests) == 6 and not again.interrupted
    with md.RunStore.open(tmp_path / "run", readonly=True) as store:
        assert md.funnel(store)["python"]["seeds"] == 4
        status = md.run_status(store)
        assert [*status.stages] == ["sample", "generate", "clean", "decontaminate", "lintseq"]


def test_stages_reuse_stored_options_and_name_a_real_conflict(tmp_path: Path):
    import pytest

    import magicoder_data as md
    from tests.conftest import generated_run

    run = generated_run(tmp_path / "run", "python=6")
    md.run_stage("clean", run, {"min_problem": 20})
    md.run_stage("clean", run)  # the stored option is reused: no mismatch
    md.run_stage("clean", run, md.CleanOptions(min_problem=20))
    with pytest.raises(md.RunMismatchError, match="min_problem=20 \\(not 30\\)"):
        md.run_stage("clean", run, {"min_problem": 30})
    md.run_stage("decontaminate", run, {"benchmarks": "humaneval", "ngram": 12})
    md.run_stage("decontaminate", run)
    with pytest.raises(md.RunMismatchError, match="ngram=12 \\(not 8\\)"):
        md.run_stage("decontaminate", run, {"ngram": 8})
    md.run_stage("lintseq", run, {"samples": 2, "workers": 1})
    md.run_stage("lintseq", run, {"workers": 1})
    with pytest.raises(md.RunMismatchError, match="samples=2 \\(not 3\\)"):
        md.run_stage("lintseq", run, {"samples": 3, "workers": 1})
    with md.RunStore.open(run, readonly=True) as store:
        assert store.stage_config("clean")["min_problem"] == 20  # type: ignore[index]


def test_library_callers_get_the_same_validation_as_the_cli(tmp_path: Path):
    import pytest

    import magicoder_data as md

    for stage, values, field in [
        ("clean", {"near_duplicate": 3}, "near_duplicate"),
        ("decontaminate", {"threshold": 0}, "threshold"),
        ("decontaminate", {"methods": "substring,minhash"}, "methods"),
        ("generate", {"timeout": -1}, "timeout"),
        ("generate", {"backend": "lokal"}, "backend"),
        ("lintseq", {"samples": 0}, "samples"),
    ]:
        with pytest.raises(md.InvalidOption) as caught:
            md.run_stage(stage, tmp_path / "never-created", values)
        assert caught.value.field.split(".")[0] == field, (stage, caught.value)
    assert not (tmp_path / "never-created").exists()


def test_run_pipeline_takes_the_example_config_as_the_command_does(tmp_path: Path):
    import pytest

    import magicoder_data as md

    text = EXAMPLE.read_text().replace("runs/oss-instruct-75k", str(tmp_path / "run"))
    text = text.replace("source: bigcode/starcoderdata", "source: bigcode/starcoderdata-missing")
    (tmp_path / "example.yaml").write_text(text)
    assert md.load_pipeline(tmp_path / "example.yaml").generate.max_cost == 150  # type: ignore[attr-defined]
    with pytest.raises(md.SourceError, match="bigcode/starcoderdata-missing"):
        md.run_pipeline(tmp_path / "example.yaml")  # offline: the first stage stops at the Hub
