"""The sandbox, for real: bubblewrap, namespaces, limits, and code that misbehaves on purpose."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from magicoder_data import Check, Job, Limits, Sandbox, SandboxError
from magicoder_data.decontam.benchmarks import load, resolve
from tests.conftest import run_cli

HUMANEVAL = load(resolve(["humaneval"])[0])
SECRET = "sk-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    os.environ["OPENAI_API_KEY"] = SECRET  # the caller's secrets must not reach a job
    os.environ["HF_TOKEN"] = "hf_" + SECRET
    try:
        with Sandbox(Limits(timeout=2, memory=1 << 30)) as started:
            yield started
    finally:
        del os.environ["OPENAI_API_KEY"], os.environ["HF_TOKEN"]


def run(sandbox: Sandbox, program: str, tests: str = "assert True", **check: object):
    result = sandbox.run(program, [Check(tests, **check)])  # type: ignore[arg-type]
    return result.outcomes[0], result


ADD = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize(
    ("program", "tests", "status", "detail"),
    [
        (ADD, "assert add(1, 2) == 3", "passed", ""),
        (ADD, "assert add(1, 2) == 4, 'off'", "failed", "AssertionError: off at tests.py:1"),
        (ADD, "assert add(1, 2) == 3\nassert add(2, 2) == 5", "failed", "tests.py:2"),
        ("def add(a, b):\n    return a / 0\n", "add(1, 2)", "error", "ZeroDivisionError"),
        ("def add(a, b)\n    return a\n", "assert add(1, 2)", "error", "SyntaxError"),
        (ADD, "assert add(1, 2) ==", "error", "SyntaxError in the tests"),
        ("while True:\n    pass\n", "assert True", "timeout", ""),
        (ADD, "while True:\n    pass", "timeout", ""),
        ("big = bytearray(8 << 30)\n", "assert True", "memory", "MemoryError"),
        ("import os\nos._exit(0)\n", "assert True", "error", "before the end"),
        ("import sys\nsys.exit(3)\n", "assert True", "failed", "exit status 3"),
        (ADD, "x = 1", "no_tests", "the tests check nothing"),
        ("def f(n):\n    return f(n + 1)\n", "f(0)", "error", "RecursionError"),
        ("import ctypes\nctypes.string_at(0)\n", "assert True", "error", "killed by SIGSEGV"),
    ],
)
def test_statuses(sandbox: Sandbox, program: str, tests: str, status: str, detail: str):
    outcome, _ = run(sandbox, program, tests)
    assert outcome.status == status, outcome
    assert detail in outcome.detail


def test_test_functions_testcases_and_humaneval_checks(sandbox: Sandbox):
    tests = (
        "def test_small():\n    assert add(1, 1) == 2\n\n"
        "def test_big():\n    assert add(1, 1) == 3\n"
    )
    assert run(sandbox, ADD, tests)[0].status == "failed"
    unit = (
        "import unittest\n\nclass T(unittest.TestCase):\n"
        "    def test_a(self):\n        self.assertEqual(add(1, 1), {})\n\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    )
    assert run(sandbox, ADD, unit.format(2))[0].status == "passed"
    outcome = run(sandbox, ADD, unit.format(3))[0]
    assert outcome.status == "failed" and "2 != 3" in outcome.detail
    raising = (
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        {}[1]\n"
    )
    assert run(sandbox, ADD, raising)[0].status == "error"
    item = HUMANEVAL[0]  # a renamed function bound to the entry point, as decontamination does
    renamed = (item.texts["prompt"] + item.texts["solution"]).replace(item.entry_point, "close")
    outcome = run(
        sandbox,
        renamed,
        item.tests,
        call=f"check({item.entry_point})",
        bind={item.entry_point: "close"},
    )[0]
    assert outcome.status == "passed"


def test_one_job_runs_many_checks_each_with_its_own_outcome(sandbox: Sandbox):
    checks = [
        Check("assert add(1, 1) == 2"),
        Check("assert add(1, 1) == 3"),
        Check("while True:\n    pass"),
        Check("assert add(2, 2) == 4"),
    ]
    result = sandbox.run(ADD, checks)
    assert [o.status for o in result.outcomes] == ["passed", "failed", "timeout", "passed"]


def test_no_network(sandbox: Sandbox):
    program = (
        "import socket\n"
        "print(sorted(socket.if_nameindex()))\n"
        "socket.create_connection(('1.1.1.1', 80), timeout=1)\n"
    )
    outcome, result = run(sandbox, program)
    assert outcome.status == "error" and "Network is unreachable" in outcome.detail
    assert "eth" not in result.output  # only loopback in its network namespace


def test_nothing_outside_the_job_folder_is_writable(sandbox: Sandbox, tmp_path: Path):
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    (run_folder / "run.db").write_text("precious")
    for target in (
        "/tmp/escaped",
        str(Path.home() / "escaped"),
        str(run_folder / "run.db"),
        str(Path.cwd() / "escaped"),
        "/usr/escaped",
        "/escaped",
    ):
        outcome, _ = run(sandbox, f"open({target!r}, 'w').write('x')\n")
        assert outcome.status == "error", target
        assert "Read-only file system" in outcome.detail or "No such file" in outcome.detail
    assert (run_folder / "run.db").read_text() == "precious"
    assert not Path("/tmp/escaped").exists() and not (Path.home() / "escaped").exists()
    own = "import os\nopen('mine.txt', 'w').write('x')\nprint(os.getcwd(), os.environ['HOME'])\n"
    outcome, result = run(sandbox, own, "assert open('mine.txt').read() == 'x'")
    assert outcome.status == "passed" and result.output.split() == ["/sandbox", "/sandbox"]
    later = run(sandbox, "import os\nprint(os.listdir('.'))\n")[1]
    assert "mine.txt" not in later.output  # every job starts in a fresh, empty folder


def test_the_callers_environment_and_files_are_out_of_reach(sandbox: Sandbox, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text(SECRET)
    program = (
        "import os\nprint(sorted(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        print(open(f'/proc/{pid}/environ').read())\n"
        "    except OSError:\n"
        "        pass\n"
        f"print(os.path.exists({str(keys)!r}), os.path.exists({str(Path.home())!r} + '/.ssh'))\n"
    )
    outcome, result = run(sandbox, program)
    assert outcome.status == "passed"
    assert SECRET not in result.output
    assert "['HOME', 'LANG', 'PATH', 'TMPDIR']" in result.output
    assert "False False" in result.output


def _count(pattern: str) -> int:
    found = subprocess.run(["pgrep", "-fc", pattern], capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


def test_the_whole_process_tree_dies_with_the_job(sandbox: Sandbox):
    spawn = (
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '317'])\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    subprocess.Popen(['sleep', '318'])\n"
        "    import time; time.sleep(300)\n"
    )
    assert run(sandbox, spawn)[0].status == "passed"
    assert run(sandbox, spawn, "while True:\n    pass")[0].status == "timeout"
    time.sleep(0.3)
    assert _count("sleep 31[78]") == 0


def test_a_job_that_kills_its_parent_or_everything_costs_only_its_row(sandbox: Sandbox):
    for program in (
        "import os\nos.kill(os.getppid(), 9)\n",
        "import os\nos.kill(-1, 9)\n",
        "import os, signal\nos.killpg(0, signal.SIGKILL)\n",
    ):
        outcome, _ = run(sandbox, program, "assert True")
        assert outcome.status in ("passed", "error"), program
        assert run(sandbox, ADD, "assert add(1, 2) == 3")[0].status == "passed"


def test_a_worker_that_dies_is_replaced_and_its_job_is_an_error(sandbox: Sandbox):
    for worker in list(sandbox._workers):
        worker.process.kill()
    outcomes = [run(sandbox, ADD, "assert add(1, 2) == 3")[0] for _ in range(4)]
    assert {o.status for o in outcomes} <= {"passed", "error"}
    assert any("worker died" in o.detail for o in outcomes)
    assert run(sandbox, ADD, "assert add(1, 2) == 3")[0].status == "passed"


def test_output_is_capped_and_its_tail_kept(sandbox: Sandbox):
    outcome, result = run(sandbox, "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n")
    assert outcome.status == "error" and "printed more than" in outcome.detail
    assert 0 < len(result.output) <= Limits().output_tail
    shown = run(sandbox, "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n")[1]
    assert shown.output == "hello\noops\n"


def test_map_runs_in_parallel_in_order(sandbox: Sandbox):
    jobs = [Job(ADD, [Check(f"assert add({i}, 1) == {i + 1 if i % 3 else 0}")]) for i in range(60)]
    statuses = [r.outcomes[0].status for r in sandbox.map(jobs)]
    assert statuses == ["failed" if i % 3 == 0 else "passed" for i in range(60)]


def test_humaneval_canonical_solutions_pass_their_own_tests(sandbox: Sandbox):
    jobs = [
        Job(
            item.texts["prompt"] + item.texts["solution"],
            [Check(item.tests, f"check({item.entry_point})")],
        )
        for item in HUMANEVAL
    ]
    statuses = [r.outcomes[0].status for r in sandbox.map(jobs)]
    assert statuses.count("passed") == len(HUMANEVAL)


def test_unsafe_mode_runs_without_isolation_but_with_limits():
    with Sandbox(Limits(timeout=1), workers=1, unsafe=True) as unsafe:
        assert unsafe.run(ADD, [Check("assert add(1, 2) == 3")]).outcomes[0].status == "passed"
        assert unsafe.run(ADD, [Check("assert add(1, 2) == 4")]).outcomes[0].status == "failed"
        slow = unsafe.run(
            "import subprocess\nsubprocess.Popen(['sleep', '319'])\nwhile 1: pass\n",
            [Check("assert True")],
        )
        assert slow.outcomes[0].status == "timeout"
    time.sleep(0.3)
    assert _count("sleep 319") == 0


def test_without_bubblewrap_verify_refuses_unless_told_unsafe(tmp_path: Path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"solution": "x = 1", "tests": "assert x == 1"}\n')
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap on it
    with pytest.raises(SandboxError, match="not installed"):
        old = os.environ["PATH"]
        os.environ["PATH"] = str(tmp_path)
        try:
            Sandbox().__enter__()
        finally:
            os.environ["PATH"] = old
    refused = run_cli("verify", "--input", data, "--output", tmp_path / "out.jsonl", env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "bubblewrap" in refused.stderr and "--unsafe-no-sandbox" in refused.stderr
    assert not (tmp_path / "out.jsonl").exists()
    unsafe = run_cli(
        "verify",
        "--input",
        data,
        "--output",
        tmp_path / "out.jsonl",
        "--unsafe-no-sandbox",
        env=env,
    )
    assert unsafe.returncode == 0, unsafe.stderr
    assert "WITHOUT isolation" in unsafe.stderr and "passed 1" in unsafe.stdout


def test_after_a_timeout_or_a_death_the_next_check_runs_against_the_program_afresh(
    sandbox: Sandbox,
):
    program = (
        "import os\n"
        "print('loaded')\n"
        "def add(a, b):\n    return a + b\n"
        "def hang():\n    while True:\n        pass\n"
        "def die():\n    os._exit(3)\n"
    )
    checks = [Check("hang()"), Check("assert add(1, 2) == 3"), Check("die()")]
    result = sandbox.run(program, checks)
    assert [o.status for o in result.outcomes] == ["timeout", "passed", "error"], result
    assert "exited with status 3" in result.outcomes[2].detail
    assert result.output.count("loaded") == 2  # run again in a fresh interpreter after hang()
    again = sandbox.run(program, [Check("die()"), Check("assert add(2, 2) == 4")])
    assert [o.status for o in again.outcomes] == ["error", "passed"], again


def test_a_memory_limit_above_the_shells_own_is_one_line(tmp_path: Path):
    """`ulimit -v` below --memory-mb: no job could start; say which limit, not 'cannot isolate'."""
    data, out = tmp_path / "data.jsonl", tmp_path / "out.jsonl"
    data.write_text('{"solution": "x = 1", "tests": "assert x == 1"}\n')

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    refused = run_cli("verify", "--input", data, "--output", out, preexec_fn=limited)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "ulimit -v" in refused.stderr and "--memory-mb" in refused.stderr, refused.stderr
    assert not out.exists()
    fits = run_cli("verify", "--input", data, "--output", out, "--memory-mb", "1024",
                   preexec_fn=limited)  # fmt: skip
    assert fits.returncode == 0 and "passed 1" in fits.stdout, fits.stderr
