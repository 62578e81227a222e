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
