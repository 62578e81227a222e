"""The executor seam: with `--executor ray` every stage gives what it gives locally.

The stages run for real on a local Ray instance with 2 CPUs (`ray start --head`), through the
CLI; their stored rows are compared with the same run done by the local executor.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from magicoder_data import RunStore, SampleConfig
from magicoder_data.corpus import Shard, Source, open_source
from magicoder_data.errors import RunError, SandboxError
from magicoder_data.executors import BatchJob, ExecutorOptions, LocalExecutor, StoreRows
from magicoder_data.executors.ray import RETRIES, RayExecutor
from magicoder_data.lintseq.stage import FileProgram, LintJob, LintSeqConfig
from magicoder_data.seeds import draw_seeds, draw_shards, rank_key, rank_of
from tests.conftest import (
    code_doc,
    doc,
    generated_run,
    ray_token,
    run_cli,
    table,
    write_parquet,
)
from tests.test_verify import FIRST
from tests.test_verify import answer as verify_answer
from tests.test_viewer import HUMANEVAL_0

RAY = [str(Path(sys.executable).with_name("ray"))]


def answer(seed: int) -> str:
    """Answers that every stage has something to say about: tests that pass, fail, raise, hang
    or are missing (verify), a copy (clean), HumanEval/0 (decontaminate), and loops to take
    apart (lintseq)."""
    n = seed - FIRST
    if n < 10:
        return verify_answer(seed)
    if n == 10:
        return verify_answer(FIRST)  # the same problem as the first: a duplicate
    if n == 11:
        return (
            "[Problem Description]\nCheck if in given list of numbers, are any two numbers "
            "closer to each other than given threshold.\n\n"
            f"[Solution]\n```python\n{HUMANEVAL_0}```\n\n"
            "[Tests]\n```python\nassert has_close_elements([1.0, 2.8, 3.0], 0.3)\n```\n"
        )
    return (
        f"[Problem Description]\nSum the values above {seed % 7} and count the rest, for "
        f"seed {seed}.\n\n[Solution]\n```python\ndef solve_{seed}(values):\n    total = 0\n"
        f"    rest = 0\n    for value in values:\n        if value > {seed % 7}:\n"
        "            total += value\n        else:\n            rest += 1\n"
        "    return total, rest\n```\n\n"
        f"[Tests]\n```python\nassert solve_{seed}([100]) == (100, 0)\n```\n"
    )


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance with 2 CPUs, started once for the module, that asks for the tests'
    token: every command of the tests sends it."""
    with ray_token():
        yield from _ray_instance()


def _ray_instance() -> Iterator[str]:
    subprocess.run([*RAY, "stop", "--force"], capture_output=True, check=False)
    started = subprocess.run(
        [
            *RAY,
            "start",
            "--head",
            "--num-cpus",
            "2",
            "--port",
            "0",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    address = next(
        line.split("'")[1] for line in started.stdout.splitlines() if "ray start --address=" in line
    )
    try:
        yield address
    finally:
        subprocess.run([*RAY, "stop", "--force"], capture_output=True, check=False)


#: A detail that says how it went, not what: a timeout is seen by the worker's clock ("longer
#: than 1 s") or by its watchdog ("killed after 1 s"), whichever comes first on a busy machine.
DETAIL = "CASE WHEN reason = 'timeout' OR status = 'timeout' THEN '' ELSE detail END"


def stored(run: Path) -> dict[str, list]:
    """What the stages stored, in a fixed order (how long a sample took to verify aside)."""
    return {
        "seeds": table(run, "SELECT * FROM seeds ORDER BY id"),
        "drops": table(
            run,
            f"SELECT stage, language, reason, item, rank, {DETAIL.replace('status', 'reason')} "
            "FROM drops ORDER BY 1, 4, 3",
        ),
        "verification": table(
            run,
            f"SELECT seed_id, status, {DETAIL.replace('reason', 'status')}, output "
            "FROM verification ORDER BY 1",
        ),
        "similarity": table(run, "SELECT * FROM similarity ORDER BY 1"),
        "contamination": table(run, "SELECT * FROM contamination ORDER BY 1, 2, 3, 4"),
        "lintseq": table(run, "SELECT * FROM lintseq ORDER BY 1, 2"),
    }


@pytest.mark.timeout(300)
def test_every_stage_gives_the_same_rows_on_ray_as_locally(tmp_path: Path, ray_address: str):
    # sample: Ray started by the command itself (no address), against the local sampler.
    seeds = {}
    for executor in ("local", "ray"):
        run = tmp_path / f"sample-{executor}"
        cmd = ("sample", run, "--source", "bundled", "--mix", "python=30,rust=10,shell=10")
        run_cli(*cmd, "--executor", executor, "--plain", check=True)
        seeds[executor] = (
            table(run, "SELECT * FROM seeds ORDER BY id"),
            table(run, "SELECT stage, language, reason, item, rank FROM drops ORDER BY 4, 3"),
            table(run, "SELECT language, shard, documents FROM shards ORDER BY 1, 2"),
        )
    assert seeds["ray"] == seeds["local"] and len(seeds["local"][0]) == 50

    local = generated_run(
        tmp_path / "local", "python=20,shell=2", None, answer, "--template", "oss-instruct-tests"
    )
    ray = tmp_path / "ray"
    shutil.copytree(local, ray)
    sections = {
        "clean": {},
        "verify": {"timeout": 1},
        "decontaminate": {"benchmarks": "humaneval"},
        "lintseq": {"samples": 2},
    }
    for name, section in sections.items():
        options = [f"--{k.replace('_', '-')}={v}" for k, v in section.items()]
        run_cli(name, local, *options, "--plain", check=True)
    config = tmp_path / "ray.yaml"
    config.write_text(yaml.safe_dump({"run": str(ray), **sections}))
    done = run_cli("run", config, "--executor", "ray", "--ray-address", ray_address, check=True)
    assert "Traceback" not in done.stderr
    expected, got = stored(local), stored(ray)
    for name in expected:
        assert got[name] == expected[name], name
    reasons = {row[2] for row in expected["drops"]}
    assert {
        "duplicate_problem",
        "near_duplicate_code",
        "failed_tests",
        "timeout",
        "humaneval/substring",
    } <= reasons
    assert len(expected["lintseq"]) == 8 and expected["contamination"]
    status = json.loads(run_cli("status", ray, "--json", check=True).stdout)["stages"]
    assert {name: status[name]["status"] for name in sections} == dict.fromkeys(
        sections, "complete"
    )


def test_a_file_runs_on_ray_as_it_does_locally(tmp_path: Path, ray_address: str):
    rows = [
        {"id": i, "instruction": "Sum.", "response": f"x = {i}\ny = x + 1\nprint(x, y)\n"}
        for i in range(5)
    ] + [{"id": 9, "instruction": "?", "response": 42}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    outputs = {}
    for executor in ("local", "ray"):
        out = tmp_path / f"{executor}.jsonl"
        extra = ["--ray-address", ray_address] if executor == "ray" else []
        cmd = ("lintseq", "--input", source, "--output", out, "-s", "2", "--executor", executor)
        run_cli(*cmd, *extra, check=True)
        outputs[executor] = (out.read_text(), Path(f"{out}.rejected.jsonl").read_text())
    assert outputs["ray"] == outputs["local"] and outputs["local"][0].count("\n") == 10


def test_the_local_executor_spreads_a_job_over_processes():
    job = LintJob(LintSeqConfig(samples=1))
    programs = [FileProgram(str(i), "python", f"a = {i}\nb = a\nc = b\n") for i in range(9)]
    alone = list(LocalExecutor(1).map(job, [programs]))
    spread = list(LocalExecutor(2).map(job, [programs[:4], programs[4:]]))
    assert [r for _, out in alone for r in out] == [r for _, out in spread for r in out]


def test_executor_options_are_checked_before_anything_runs(tmp_path: Path):
    with pytest.raises(Exception, match="--ray-address goes with --executor ray"):
        ExecutorOptions(ray_address="127.0.0.1:1")
    bad = run_cli("lintseq", tmp_path / "none", "--executor", "spark")
    assert bad.returncode == 2 and "spark" in bad.stderr and "Traceback" not in bad.stderr


def test_without_the_extra_the_ray_executor_names_the_install_command(tmp_path: Path):
    run = tmp_path / "run"
    missing = tmp_path / "site" / "ray"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": str(missing.parent)}
    result = run_cli("sample", run, "--source", "bundled", "--executor", "ray", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr and not run.exists()
    assert result.stderr.strip().splitlines() == [
        "error: --executor ray needs Ray, which is not installed: pip install 'magicoder-data[ray]'"
    ]


class Reversed:
    """A source whose shards come in the other order."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.description = inner.description

    def shards(self, language: str, data_dir: str) -> list[Shard]:
        return self.inner.shards(language, data_dir)[::-1]


def test_merged_shard_bottom_k_is_the_local_sample(tmp_path: Path, corpus):
    rows = [doc(str(i), code_doc(i)) for i in range(240)]
    rows += [doc(f"twin-{i}", f"shared_{i % 20} = {i % 20}\n") for i in range(60)]  # copies
    odd = [doc("empty", "   \n"), doc("4", "a repeated id\n")]
    root = corpus({"python": rows, "rust": rows[:30] + odd}, shards=6)
    config = SampleConfig(source=str(root), mix={"python": 45, "rust": 50})

    def sampled(name: str, draw: Callable[[RunStore], object]) -> tuple[list, ...]:
        with RunStore.open(tmp_path / name) as store:
            draw(store)
        return (
            table(tmp_path / name, "SELECT * FROM seeds ORDER BY id"),
            table(
                tmp_path / name,
                "SELECT stage, language, reason, item, rank, detail FROM drops ORDER BY 2, 4, 3",
            ),
            table(tmp_path / name, "SELECT language, shard, documents FROM shards ORDER BY 1, 2"),
        )

    local = sampled("local", lambda store: draw_seeds(store, config))
    spread = sampled(
        "spread", lambda s: draw_shards(s, config, open_source(str(root)), LocalExecutor(2))
    )
    assert spread == local
    reasons = {row[2] for row in local[1]}
    assert {"duplicate", "duplicate_id", "empty"} <= reasons and len(local[0]) == 45 + 30
    # Shards read in the other order: the same bottom-k; only the repeated id keeps its other
    # copy, the one now read first.
    backwards = sampled(
        "backwards",
        lambda s: draw_shards(s, config, Reversed(open_source(str(root))), LocalExecutor(1)),
    )
    assert backwards[1:] == local[1:]
    changed = [(a[3], a[-1], b[-1]) for a, b in zip(local[0], backwards[0], strict=True) if a != b]
    assert [(doc_id, text) for doc_id, text, _ in changed] == [("4", "a repeated id")]
    assert changed[0][2].startswith("value_4_")


def test_a_corrupt_shard_read_by_a_ray_worker_is_the_same_one_line_error(
    tmp_path: Path, ray_address: str
):
    shard = tmp_path / "corpus" / "python" / "train-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"not parquet")
    options = ["--source", shard.parent.parent, "--mix", "python=10", "--plain"]
    local = run_cli("sample", tmp_path / "local", *options)
    remote = run_cli(
        "sample", tmp_path / "ray", *options, "--executor", "ray", "--ray-address", ray_address
    )
    assert local.returncode == remote.returncode == 1
    assert remote.stderr.splitlines() == local.stderr.splitlines()
    assert local.stderr.startswith("error: corrupt or unreadable shard ")


def seed_id(id: int) -> int:
    return id


def test_a_duplicate_names_the_copy_kept_whichever_copy_a_shard_met_first(tmp_path: Path, corpus):
    config = SampleConfig(source=str(tmp_path / "corpus"), mix={"python": 500})
    key = rank_key(config.seed, "python")
    a, b, c = sorted((f"copy-{i}" for i in range(30)), key=lambda i: rank_of(key, i))[:3]
    copy = "shared_value = compute(1, 2)\n"
    filler = [doc(str(i), code_doc(i)) for i in range(64)]  # B and A in other row groups
    root = corpus({"python": [doc(c, copy)]}, shards=1)
    write_parquet(root / "python" / "train-00001.parquet", [doc(b, copy), *filler, doc(a, copy)])
    details = []
    for name, draw in (
        ("local", lambda store: draw_seeds(store, config)),
        ("shards", lambda s: draw_shards(s, config, open_source(str(root)), LocalExecutor(1))),
    ):
        with RunStore.open(tmp_path / name) as store:
            draw(store)
        details.append(
            table(tmp_path / name, "SELECT item, detail FROM drops WHERE reason = 'duplicate'")
        )
    # Locally C was a copy of B (met first), on shards of A (B met A in its worker).
    assert (
        sorted(details[0])
        == sorted(details[1])
        == sorted([(b, f"same snippet as {a}"), (c, f"same snippet as {a}")])
    )


@dataclass(frozen=True)
class Flaky(BatchJob[int, int]):
    """Doubles numbers. The first time a worker meets `at`, it dies (`exit`: the whole process)
    or raises (`raise`: a bug, the actor lives on); `marker` says it happened. `times` > 1:
    every time."""

    marker: str
    at: int
    how: str
    times: int = 1

    @contextmanager
    def open(self, cores: int) -> Iterator[Callable[[list[int]], list[int]]]:
        def work(batch: list[int]) -> list[int]:
            marker = Path(self.marker)
            if self.at in batch and (self.times > 1 or not marker.exists()):
                marker.write_text(marker.read_text() + "x" if marker.exists() else "x")
                if self.how == "exit":
                    os._exit(1)
                raise RuntimeError("a bug in the job")
            return [2 * n for n in batch]

        yield work


@dataclass(frozen=True)
class NoSandbox(BatchJob[int, int]):
    """A worker that cannot start, as a node without bubblewrap."""

    @contextmanager
    def open(self, cores: int) -> Iterator[Callable[[list[int]], list[int]]]:
        raise SandboxError("the sandbox needs bubblewrap (bwrap), which is not installed")
        yield lambda batch: batch  # pragma: no cover


@pytest.mark.parametrize("how", ["exit", "raise"])
def test_a_failed_worker_costs_its_batch_once_for_plain_batches_and_store_rows(
    tmp_path: Path, ray_address: str, how: str, caplog: pytest.LogCaptureFixture
):
    run = tmp_path / "run"
    run_cli("sample", run, "--source", "bundled", "--mix", "python=40", check=True)
    ids = [row[0] for row in table(run, "SELECT id FROM seeds ORDER BY id")]
    # No pending condition, as `clean` reads its samples: a batch sent twice would show.
    rows = StoreRows(run, "id", "FROM seeds WHERE 1", "id", 5, seed_id)
    plain = [ids[i : i + 5] for i in range(0, len(ids), 5)]
    with caplog.at_level(logging.WARNING, "magicoder_data"), RayExecutor(ray_address) as ray:
        for n, batches in enumerate((plain, rows)):
            job = Flaky(str(tmp_path / str(n)), ids[17], how)
            with RunStore.open(run, readonly=True) as store:
                got = list(ray.map(job, batches, store))
            assert Path(job.marker).read_text() == "x"  # it failed, once
            assert [batch for batch, _ in got] == plain  # each once, in order
            assert all(out == [2 * b for b in batch] for batch, out in got)
    warned = [r.getMessage() for r in caplog.records if "a Ray worker failed" in r.message]
    assert len(warned) == 2 and all(m.endswith("going on with the batches left") for m in warned)


def test_ray_failures_end_in_one_line_and_a_worker_that_cannot_start_says_why(
    tmp_path: Path, ray_address: str
):
    batches = [[1, 2], [3, 4], [5, 6]]
    with RayExecutor(ray_address) as ray:
        with pytest.raises(SandboxError, match=r"^the sandbox needs bubblewrap"):
            list(ray.map(NoSandbox(), batches))
        job = Flaky(str(tmp_path / "marker"), 3, "raise", times=RETRIES + 5)
        with pytest.raises(RunError) as failed:
            list(ray.map(job, batches))
    assert Path(job.marker).read_text() == "x" * (RETRIES + 1)
    message = str(failed.value)
    assert "\n" not in message and "a bug in the job" in message
    assert message.endswith("what finished is stored, re-run to resume")
