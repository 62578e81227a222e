"""Bad input, as users give it: never a traceback, one `error:` line, the right exit code, and the
run, its inputs and the user's files unchanged. Also the two ways money was lost: two writers
on one run, and a Ctrl-C that threw away answers already paid for."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magicoder_data import cli as cli_module
from tests.conftest import FAKE_KEY, generate_command, generated_run, run_cli, run_generate
from tests.openai_server import FakeOpenAI

SKIPPED = {"run.lock", "run.db-wal", "run.db-shm"}  # lock bookkeeping and SQLite's own files


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under `roots` (or the file itself) with its SHA-256."""
    found: dict[str, str] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if path.name not in SKIPPED:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_user_error(result: subprocess.CompletedProcess, code: int = 1, *fragments: str) -> str:
    """No traceback; exactly one `error:` line on stderr (warnings and `run`'s stage headers
    aside); exit `code`."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    others = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(("error:", "warning:", "== "))
    ]
    assert len(errors) == 1 and not others, result.stderr
    assert result.returncode == code, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated and cleaned run, made once; tests work on copies."""
    run = generated_run(tmp_path_factory.mktemp("made") / "run", "python=6,rust=2")
    run_cli("clean", run, "--min-problem", "5", "--min-solution", "5", check=True)
    return run


@pytest.fixture
def run(made_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(made_run, copy)
    return copy


@pytest.mark.parametrize("words", [["status"], ["dump", "seeds"]])
def test_a_reader_that_stops_early_ends_a_command_quietly_and_well(
    made_run: Path, words: list[str]
):
    """`status | head`, `dump RUN seeds | head`: the reader closed the pipe before anything was
    written (rich's console and plain writes alike)."""
    command = [sys.executable, "-m", "magicoder_data", words[0], str(made_run), *words[1:]]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        errors = process.stderr.read()
        assert process.wait(timeout=60) == 0, errors
    assert errors == b""


# -- outputs never destroy what the tool did not write ------------------------------------------


def test_export_refuses_the_run_itself_and_keeps_it(run: Path):
    before = snapshot(run)
    assert_user_error(run_cli("export", run, "--out", run), 1, "an input of this command")
    assert_user_error(run_cli("export", run, "--out", run.parent), 1, "an input of this command")
    assert snapshot(run) == before
    assert run_cli("status", run, check=True).returncode == 0


def test_export_from_inside_the_run_refuses_dot_and_dotdot(run: Path):
    (run.parent / "notes.txt").write_text("mine")
    before = snapshot(run.parent)
    for out in (".", "..", "../"):
        result = run_cli("export", ".", "--out", out, cwd=run)
        assert_user_error(result, 1, "current folder")
    assert snapshot(run.parent) == before


def test_export_refuses_a_folder_of_the_users_files(run: Path, tmp_path: Path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    sibling = tmp_path / "mine.partial"  # the old staging name: must never be touched
    sibling.mkdir()
    (sibling / "keep.txt").write_text("keep")
    before = snapshot(out, sibling, run)
    assert_user_error(run_cli("export", run, "--out", out), 1, "not empty", "--overwrite")
    assert snapshot(out, sibling, run) == before
    # --overwrite is the user saying so; the sibling stays untouched even then
    run_cli("export", run, "--out", out, "--overwrite", check=True)
    assert not (out / "thesis.tex").exists() and (out / "README.md").is_file()
    assert (sibling / "keep.txt").read_text() == "keep"


def test_export_replaces_only_its_own_folder_and_leaves_no_temporaries(run: Path, tmp_path: Path):
    out = tmp_path / "dataset"
    run_cli("export", run, "--out", out, check=True)
    card = (out / "README.md").read_text()
    (out / "README.md").write_text("edited")
    run_cli("export", run, "--out", out, check=True)  # an earlier export: replaced
    assert (out / "README.md").read_text() == card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "run"]
    empty = tmp_path / "empty"
    empty.mkdir()
    run_cli("export", run, "--out", empty, check=True)  # an empty folder is fine
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_user_error(run_cli("export", run, "--out", a_file), 1, "not a folder")
    assert a_file.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "empty", "file.txt", "run"]


def test_export_of_an_unfiltered_run_warns(run: Path, tmp_path: Path):
    result = run_cli("export", run, "--out", tmp_path / "d", check=True)
    assert "warning:" in result.stderr and "decontaminate never ran" in result.stderr


def test_lintseq_file_outputs(tmp_path: Path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"instruction": "add", "response": "x = 1\ny = x + 1\n"}) + "\n")
    before = snapshot(data)
    assert_user_error(
        run_cli("lintseq", "--input", data, "--output", data, "--workers", "1"), 1, "also an input"
    )
    assert snapshot(data) == before
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_user_error(
        run_cli("lintseq", "--input", data, "--output", folder, "--workers", "1"), 1, "a folder"
    )
    out = tmp_path / "edits.jsonl"
    run_cli("lintseq", "--input", data, "--output", out, "--workers", "1", check=True)
    assert_user_error(
        run_cli("lintseq", "--input", data, "--output", out, "--workers", "1"), 1, "--overwrite"
    )
    run_cli(
        "lintseq", "--input", data, "--output", out, "--workers", "1", "--overwrite", check=True
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.jsonl",
        "edits.jsonl",
        "edits.jsonl.rejected.jsonl",
        "folder",
    ]


def test_dump_out_refuses_folders_run_files_and_existing_files(run: Path, tmp_path: Path):
    folder = tmp_path / "folder"
    folder.mkdir()
    before = snapshot(run)
    assert_user_error(run_cli("dump", run, "seeds", "--out", folder), 1, "a folder")
    assert_user_error(run_cli("dump", run, "seeds", "--out", run / "run.db"), 1, "also an input")
    assert snapshot(run) == before
    out = tmp_path / "seeds.jsonl"
    run_cli("dump", run, "seeds", "--out", out, check=True)
    assert_user_error(run_cli("dump", run, "seeds", "--out", out), 1, "--overwrite")
    run_cli("dump", run, "seeds", "--out", out, "--overwrite", check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "run", "seeds.jsonl"]


# -- one writer per run; readers beside it ------------------------------------------------------


def _stored(db: Path) -> set[int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {row[0] for row in conn.execute("SELECT seed_id FROM samples")}


def _wait_for(condition, proc: subprocess.Popen) -> None:  # type: ignore[no-untyped-def]
    """Poll until `condition()` holds, while `proc` still runs (60 s at most)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    run = tmp_path / "seeded"
    run_cli("sample", run, "--source", "bundled", "--mix", "python=24", check=True)
    return run


def test_a_second_writer_is_refused_naming_the_first_and_nothing_is_paid_twice(seeded: Path):
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    with FakeOpenAI(latency=1.5) as server:
        cmd = generate_command(seeded, server.base_url, "--concurrency", "4")
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: (seeded / "run.db-wal").exists() and _stored(seeded / "run.db"), first)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        line = assert_user_error(second, 1, "is being written by pid", "--queue")
        assert f"pid {first.pid} " in line and "generate" in line
        status = run_cli("status", seeded, "--json", check=True)  # readers work beside it
        assert json.loads(status.stdout)["stages"]["generate"]["status"] == "running"
        assert first.poll() is None
        waited = subprocess.run([*cmd, "--queue"], env=env, capture_output=True, text=True)
        assert waited.returncode == 0, waited.stderr
        assert "waiting" in waited.stderr
        assert first.wait(60) == 0
        seeds = [r["seed"] for r in server.requests]
    assert len(seeds) == len(set(seeds)) == 24


def test_the_lock_does_not_outlive_a_killed_writer(seeded: Path):
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    with FakeOpenAI(latency=0.4) as server:
        cmd = generate_command(seeded, server.base_url, "--concurrency", "2")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: _stored(seeded / "run.db"), proc)
        proc.kill()
        proc.wait()
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    assert len(_stored(seeded / "run.db")) == 24


def _read_only(run: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """`magicoder-data ARGS` with RUN mounted read-only (a private mount namespace)."""
    command = " ".join(f"'{a}'" for a in (sys.executable, "-m", "magicoder_data", *args))
    script = f"mount --bind -o ro '{run}' '{run}' && exec {command}"
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )


def test_readers_work_on_a_read_only_run_and_writers_say_why_not(run: Path, tmp_path: Path):
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespaces here to make a read-only folder")
    before = snapshot(run)
    status = _read_only(run, "status", run, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["stages"]["clean"]["status"] == "complete"
    assert _read_only(run, "dump", run, "samples").stdout.count("\n") == 8
    exported = _read_only(run, "export", run, "--out", tmp_path / "d")
    assert exported.returncode == 0, exported.stderr
    assert_user_error(_read_only(run, "clean", run), 1, "cannot lock")
    assert snapshot(run) == before


def test_an_empty_run_database_is_named_and_left_alone(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.db").write_bytes(b"")
    for args in (["status", run], ["dump", run, "seeds"], ["clean", run]):
        assert_user_error(run_cli(*args), 1, "is empty, not a run database")
    assert_user_error(run_cli("sample", run, "--source", "bundled"), 1, "is empty")
    assert (run / "run.db").stat().st_size == 0


# -- a graceful Ctrl-C --------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stores_the_answers_in_flight_and_says_how_to_resume(seeded: Path, workers: int):
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    with FakeOpenAI(latency=1.5) as server:
        cmd = generate_command(
            seeded, server.base_url, "--concurrency", "8", "--workers", str(workers)
        )
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_for(lambda: len(server.requests) >= 8, proc)  # the first wave is in flight
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        asked = {r["seed"] - 976 for r in server.requests}
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stdout + stderr
        assert "every answer that arrived is stored" in stderr
        assert f"magicoder-data generate {seeded}" in stderr
        assert _stored(seeded / "run.db") == asked  # answered after Ctrl-C, and kept
        assert len(asked) < 24
        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        seeds = [r["seed"] for r in server.requests]
    assert len(seeds) == len(set(seeds)) == 24  # nothing paid twice


def test_a_second_ctrl_c_stops_waiting(seeded: Path):
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    with FakeOpenAI(latency=30) as server:
        cmd = generate_command(seeded, server.base_url, "--concurrency", "4", "--timeout", "60")
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_for(lambda: len(server.requests) >= 4, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
        assert time.monotonic() - started < 8  # not the 10 s grace, not the 30 s answers
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "4 requests in flight" in stderr
    assert not _stored(seeded / "run.db")


# -- options checked in the library, named as the user typed them ------------------------------


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--timeout", "-1"], 1, "--timeout"),
        (["--timeout", "0"], 1, "--timeout"),
        (["--timeout", "nan"], 1, "--timeout"),
        (["--max-cost", "-1"], 1, "--max-cost"),
        (["--limit", "-3"], 1, "--limit"),
        (["--concurrency", "0"], 1, "--concurrency"),
        (["--max-attempts", "0"], 1, "--max-attempts"),
        (["--rpm", "0"], 1, "--rpm"),
        (["--tpm", "-5"], 1, "--tpm"),
        (["--workers", "-1"], 1, "--workers"),
        (["--backend", "nosuch"], 2, "'auto', 'openai', 'local'"),
        (["--backend", "lokal"], 2, "--backend"),
        (["--timeout", "soon"], 2, "--timeout"),
        (["--price", "gpt-4o-mini=1"], 1, "MODEL=IN,OUT"),
    ],
)
def test_bad_generate_options_send_nothing(run: Path, args: list[str], code: int, fragment: str):
    before = snapshot(run)
    with FakeOpenAI() as server:
        result = run_generate(run, server.base_url, "--retry-failed", *args)
        assert not server.requests
    assert_user_error(result, code, fragment)
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["clean", "{run}", "--near-duplicate", "2"], "--near-duplicate"),
        (["clean", "{run}", "--min-problem", "-1"], "--min-problem"),
        (["decontaminate", "{run}", "--threshold", "0"], "--threshold"),
        (["decontaminate", "{run}", "--ngram", "0"], "--ngram"),
        (["decontaminate", "{run}", "--methods", "regex"], "unknown method"),
        (["decontaminate", "{run}", "--candidates", "0"], "--candidates"),
        (["verify", "{run}", "--timeout", "-1"], "--timeout"),
        (["verify", "{run}", "--memory-mb", "1"], "--memory-mb"),
        (["verify", "{run}", "--output", "x.jsonl"], "--output goes with --input"),
        (["lintseq", "{run}", "-s", "0"], "--samples"),
        (["sample", "{run}", "--total", "0"], "--total"),
        (["sample", "{run}", "--max-lines", "0"], "--max-lines"),
        (["export", "{run}", "--out", "."], "current folder"),
        (["dump", "{run}", "nosuch"], "unknown stage"),
    ],
)
def test_bad_stage_options_change_nothing(run: Path, args: list[str], fragment: str):
    before = snapshot(run)
    result = run_cli(*[str(run) if a == "{run}" else a for a in args], cwd=run.parent)
    assert_user_error(result, 1, fragment)
    assert snapshot(run) == before


# -- run CONFIG ---------------------------------------------------------------------------------


def _config(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"run": "{run}", "sample": 5}, "section sample"),
        ({"run": "{run}", "sample": "bundled"}, "section sample"),
        ({"run": "{run}", "sample": [1, 2]}, "section sample"),
        ({"run": "{run}"}, "names no stage"),
        ({"run": "{run}", "sample": {"total": True}}, "sample.total"),
        ({"run": "{run}", "sample": {"total": "5"}}, "sample.total"),
        ({"run": "{run}", "generate": {"concurrency": 1.5}}, "generate.concurrency"),
        ({"run": "{run}", "generate": {"plain": "yes"}}, "generate.plain"),
        ({"run": "{run}", "generate": {"backend": "lokal"}}, "generate.backend"),
        ({"run": "{run}", "export": {"config": "all"}}, "needs `out`"),
        ({"run": "{run}", "export": {"out_dir": "x"}}, "export.out_dir"),
        ({"run": "{run}", "clean": {"near_duplicate": 3}, "export": {"out": "d"}}, "clean."),
        ({"run": "{run}", "generate": {"timeout": -1}}, "generate.timeout"),
        ({"run": "{run}", "generate": {"max_cost": -1}}, "generate.max_cost"),
        ({"run": 5}, "needs `run: DIR`"),
        ("run: [unclosed", "not valid YAML"),
    ],
)
def test_bad_run_configs(run: Path, tmp_path: Path, data: object, fragment: str):
    if isinstance(data, dict):
        data = {k: (str(run) if v == "{run}" else v) for k, v in data.items()}
    before = snapshot(run)
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    assert_user_error(run_cli("run", _config(tmp_path, data), env=env), 1, fragment)
    assert snapshot(run) == before


def test_a_missing_config_file_is_one_line(tmp_path: Path):
    assert_user_error(run_cli("run", tmp_path / "nope.yaml"), 1, "nope.yaml")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # A kilobyte of nested aliases under a valid key once grew `run` to 2.9 GB and abort.
        (
            "run: r\nsample:\n  data_dirs: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"  k{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 9)}]\n"
                for i in range(9)
            ),
            "aliases",
        ),
        ("[" * 20_000 + "]" * 20_000, "nested too deeply"),
        ('"other.yaml"\n', "needs `run: DIR`"),  # a string is not a path to another config
        ("run: r\n" + "# " + "x" * (1 << 20) + "\n", "larger than 1 MiB"),
    ],
)
def test_hostile_config_files_are_one_line(tmp_path: Path, text: str, fragment: str):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert_user_error(run_cli("run", config), 1, fragment)


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "."])
def test_a_config_that_is_no_regular_file_is_one_line(special: str):
    assert_user_error(run_cli("run", special), 1, "not a regular file")


# -- fuzzing: whatever a config or an option holds, one line and no traceback -------------------

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
STAGES = ["generate", "clean", "decontaminate", "lintseq", "export", "push"]


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        cli_module.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    stage=st.sampled_from(STAGES),
    key=st.sampled_from(
        [
            "timeout",
            "limit",
            "max_cost",
            "concurrency",
            "near_duplicate",
            "samples",
            "out",
            "config",
            "threshold",
            "methods",
            "workers",
            "plain",
            "nosuch",
            "min_problem",
            "seed",
        ]
    ),
    value=VALUES,
)
def test_fuzzed_config_sections_fail_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, capsys, stage: str, key: str, value: object
):
    folder = tmp_path_factory.mktemp("fuzz")
    not_a_run = folder / "file"
    not_a_run.write_text("not a run")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"run": str(not_a_run), stage: {key: value}}))
    code, out, err = _main(["run", str(path)], capsys)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1, err
    assert not_a_run.read_text() == "not a run"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    option=st.sampled_from(
        [
            "--timeout",
            "--limit",
            "--max-cost",
            "--concurrency",
            "--rpm",
            "--tpm",
            "--workers",
            "--max-attempts",
            "--temperature",
            "--top-p",
            "--max-tokens",
            "--backend",
            "--seed",
        ]
    ),
    value=st.one_of(
        st.integers(min_value=-(10**6), max_value=0).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    ),
)
def test_fuzzed_generate_options_fail_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, capsys, option: str, value: str
):
    missing = tmp_path_factory.mktemp("fuzz") / "no-run"
    code, out, err = _main(["generate", str(missing), option, value, "--model", "m"], capsys)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code in (1, 2) and len(errors) == 1, err
    assert not missing.exists()


def test_run_config_takes_the_base_url_from_the_environment_as_generate_does(
    seeded: Path, tmp_path: Path
):
    config = _config(tmp_path, {"run": str(seeded), "generate": {"model": "gpt-4o-mini"}})
    with FakeOpenAI() as server:
        env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "OPENAI_BASE_URL": server.base_url}
        result = run_cli("run", config, env=env)
        assert result.returncode == 0, result.stderr
        assert len(server.requests) == 24


def test_audit_report_replaces_only_its_own_folder_and_never_an_input(run: Path, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.jsonl").write_text(json.dumps({"problem": "p", "solution": "s"}) + "\n")
    before = snapshot(data, run)
    for report, extra in ((data, "--overwrite"), (run, "--overwrite"), (data, "--benchmarks")):
        args = [extra] if extra == "--overwrite" else [extra, "humaneval"]
        result = run_cli("audit", data / "x.jsonl", run, "--report", report, *args)
        assert_user_error(result, 1, "--report")
    assert snapshot(data, run) == before
    report = tmp_path / "report"
    run_cli("audit", data / "x.jsonl", "--report", report, check=True)
    run_cli("audit", data / "x.jsonl", "--report", report, check=True)  # its own: replaced
    assert (report / "report.html").is_file() and (report / ".magicoder-data.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "report", "run"]


def test_an_export_folder_with_files_added_later_or_a_run_inside_is_not_replaced(
    run: Path, tmp_path: Path
):
    out = tmp_path / "proj"
    run_cli("export", run, "--out", out, check=True)
    (out / "notes.txt").write_text("mine")
    assert_user_error(run_cli("export", run, "--out", out), 1, "notes.txt", "--overwrite")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    run_cli("sample", out / "myrun", "--source", "bundled", "--mix", "python=2", check=True)
    before = snapshot(out)
    for extra in ([], ["--overwrite"]):
        assert_user_error(run_cli("export", run, "--out", out, *extra), 1, "holds a run")
    assert snapshot(out) == before


def test_only_stale_staging_folders_of_our_own_are_removed(run: Path, tmp_path: Path):
    out = tmp_path / "data"
    run_cli("export", run, "--out", out, check=True)
    backup = tmp_path / ".data.2024.old"  # a user's copy, marker and all
    shutil.copytree(out, backup)
    live = tmp_path / ".data.abcdefgh.partial"  # another export, still running (this pid)
    live.mkdir()
    (live / ".magicoder-data.json").write_text(json.dumps({"pid": os.getpid()}))
    other = tmp_path / ".data.v2.abcdefgh.partial"  # staging of an export to data.v2
    other.mkdir()
    (other / ".magicoder-data.json").write_text(json.dumps({"pid": 2**22 + 7}))
    dead = tmp_path / ".data.zyxwvuts.partial"  # ours, its process gone: removed
    dead.mkdir()
    (dead / ".magicoder-data.json").write_text(json.dumps({"pid": 2**22 + 7}))
    run_cli("export", run, "--out", out, check=True)
    assert backup.is_dir() and live.is_dir() and other.is_dir() and not dead.exists()


def test_a_request_seed_past_any_provider_is_one_line(run: Path):
    """Once accepted, then stored as seed + i past SQLite's integers: every rerun paid again."""
    before = snapshot(run)
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    for seed in ("9223372036854775807", "-9223372036854775809"):
        result = run_cli("generate", run, "--model", "m", "--seed", seed, env=env)
        assert_user_error(result, 1, "--seed")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    "words",
    [
        ["sample", "{new}", "--source", "bundled"],
        ["generate", "{run}"],
        ["verify", "--input", "x.jsonl", "--output", "y.jsonl"],
        ["lintseq", "--input", "x.jsonl", "--output", "y.jsonl"],
    ],
)
def test_workers_past_any_machine_are_one_line(run: Path, tmp_path: Path, words: list[str]):
    before = snapshot(run)
    given = [
        str(run) if w == "{run}" else str(tmp_path / "new") if w == "{new}" else w for w in words
    ]
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    result = run_cli(*given, "--workers", "100000", env=env)
    assert_user_error(result, 1, "--workers")
    assert snapshot(run) == before and not (tmp_path / "new").exists()


def test_a_lone_surrogate_in_input_loses_no_work(tmp_path: Path):
    r"""`\ud83d` alone is valid JSON but no UTF-8: the row is kept, escaped as it came, and every
    other row's work is written (it once failed the whole output)."""
    data = tmp_path / "data.jsonl"
    data.write_text(
        '{"problem": "Write \\ud83d a function", "solution": "x = 1  # \\ud83d",'
        ' "tests": "assert x == 1"}\n'
        '{"problem": "Add two numbers", "solution": "x = 1", "tests": "assert x == 1"}\n'
    )
    out = tmp_path / "out.jsonl"
    verified = run_cli("verify", "--input", data, "--output", out)
    assert verified.returncode == 0 and "Traceback" not in verified.stderr, verified.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["solution"] for r in rows] == ["x = 1  # \ud83d", "x = 1"]
    assert rows[1]["verify_status"] == "passed"
    audited = run_cli("audit", data, "--benchmarks", "humaneval", "--report", tmp_path / "r")
    assert audited.returncode == 0 and "Traceback" not in audited.stderr, audited.stderr
    assert "\\ud83d" in (tmp_path / "r" / "report.md").read_text()


def test_ctrl_c_in_file_mode_says_nothing_was_written(tmp_path: Path):
    """File mode writes its output whole at the end: Ctrl-C there keeps nothing, and says so
    (it once said stored work is kept)."""
    data, out = tmp_path / "data.jsonl", tmp_path / "out.jsonl"
    row = json.dumps({"solution": "import time\ntime.sleep(30)\n", "tests": "assert True"})
    data.write_text((row + "\n") * 4)
    command = [sys.executable, "-m", "magicoder_data", "verify", "--input", str(data)]
    command += ["--output", str(out), "--timeout", "60"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.jsonl.*.tmp")):  # the output being written
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 130, errors
    assert "nothing was written to" in errors and "stored work is kept" not in errors, errors
    assert "Traceback" not in errors and not out.exists()
