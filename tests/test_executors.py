"""The executor seam: with `--executor ray` every stage gives what it gives locally.

The stages run for real on a local Ray instance with 2 CPUs (`ray start --head`), through the
CLI; their stored rows are compared with the same run done by the local executor.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from magicoder_data.executors import ExecutorOptions, LocalExecutor
from magicoder_data.lintseq.stage import FileProgram, LintJob, LintSeqConfig
from tests.conftest import generated_run, run_cli
from tests.test_verify import FIRST
from tests.test_verify import answer as verify_answer

RAY = [str(Path(sys.executable).with_name("ray"))]
HUMANEVAL_0 = (
    "from typing import List\n\n\n"
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    for idx, elem in enumerate(numbers):\n"
    "        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n"
    "                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n"
    "                    return True\n\n"
    "    return False\n"
)


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
    """A local Ray instance with 2 CPUs, started once for the module, that asks for the token
    `ray start` writes (~/.ray/auth_token): every command of the tests sends it."""
    subprocess.run([*RAY, "stop", "--force"], capture_output=True, check=False)
    mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
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
        if mode is None:
            del os.environ["RAY_AUTH_MODE"]
        else:
            os.environ["RAY_AUTH_MODE"] = mode


def table(run: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run / "run.db") as conn:
        return conn.execute(sql).fetchall()


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
