"""The viewer in a real browser: `magicoder-data serve` in a subprocess, Debian's headless
chromium driven by Playwright, over a run made by the loopback OpenAI server with snippets
that carry HTML and script payloads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    FAKE_KEY,
    doc,
    generate_command,
    run_cli,
    run_generate,
    write_parquet,
)
from tests.openai_server import FakeOpenAI

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium: `make browser`")

#: Text that a careless page would run or render as markup.
PAYLOADS = [
    "<script>document.title='pwned'</script>",
    "</pre><img src=x id=injected onerror=\"document.title='pwned'\">",
    "<b id=bold>not bold</b> &amp; `</code></pre>`",
]
HUMANEVAL_0 = (
    "def has_close_elements(numbers, threshold):\n"
    "    for idx, elem in enumerate(numbers):\n"
    "        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n"
    "                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n"
    "                    return True\n\n"
    "    return False\n"
)


def answer(request_seed: int) -> str:
    """Answers of three kinds: clean ones, copies of HumanEval/0 (seeds 1 and 6), and problems
    with payloads (seeds 2 and 7)."""
    seed = request_seed - 976
    if seed % 5 == 1:
        code = HUMANEVAL_0
    else:
        code = (
            f"def total_{seed}(values):\n"
            "    result = 0\n"
            "    for value in values:\n"
            "        result += value\n"
            "    return result\n"
        )
    problem = f"Write a function that sums a list of numbers (task {seed})."
    if seed % 5 == 2:
        problem += " " + " ".join(PAYLOADS)
    return f"[Problem Description]\n{problem}\n\n[Solution]\n```python\n{code}```\n"


@pytest.fixture(scope="module")
def viewed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run through sample, generate (10 of 12 answered), clean, decontaminate, lintseq."""
    root = tmp_path_factory.mktemp("viewer")
    rows = [
        doc(
            f"d{i}",
            "".join(
                f"value_{i}_{n} = compute({i}, {n})  # {PAYLOADS[n % len(PAYLOADS)]}\n"
                for n in range(20)
            ),
        )
        for i in range(12)
    ]
    write_parquet(root / "corpus" / "python" / "train-00000-of-00001.parquet", rows)
    run = root / "run"
    run_cli(
        "sample",
        run,
        "--source",
        root / "corpus",
        "--mix",
        "python=12",
        "--min-lines",
        "3",
        check=True,
    )
    with FakeOpenAI(answer=answer) as server:
        run_generate(run, server.base_url, "--limit", "10", check=True)
    run_cli("clean", run, "--min-problem", "0", "--near-duplicate-code", "1", check=True)
    run_cli(
        "decontaminate",
        run,
        "--benchmarks",
        "humaneval",
        "--methods",
        "substring,ngram",
        check=True,
    )
    run_cli("lintseq", run, "-s", "1", check=True)
    return run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(viewed: Path) -> Iterator[str]:
    """`magicoder-data serve RUN` on a free loopback port; its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "magicoder_data", "serve", str(viewed), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/api/runs", timeout=2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the viewer did not start"
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: object, tmp_path: Path) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    opened = context.new_page()
    opened.dialogs = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def shoot(page: object, name: str) -> Path:
    """A full-page screenshot under tests/screens (looked at by people, kept out of git)."""
    folder = Path(__file__).parent / "screens"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    assert path.stat().st_size > 5_000
    return path


def test_the_overview_shows_stages_funnel_and_spend(server: str, page):
    page.goto(server + "/")
    assert page.title().startswith("run")
    stages = page.locator("main table").first.inner_text()
    for stage in ("sample", "generate", "clean", "decontaminate", "lintseq"):
        assert stage in stages
    funnel = page.locator("#funnel").inner_text()
    assert "python" in funnel and "12" in funnel  # seeds
    assert "10 of 12 seeds answered" in page.locator("#progress").inner_text()
    assert "spend $" in page.locator("main").inner_text()
    shoot(page, "overview")


def test_samples_filter_search_and_paginate_on_the_server(server: str, page):
    page.goto(server + "/samples")
    assert page.locator("#count").inner_text().startswith("10 samples")
    assert page.locator("table.samples tbody tr").count() == 10
    shoot(page, "samples")
    page.select_option("select[name=status]", "dropped")
    page.click("form.filters button")
    assert "status=dropped" in page.url
    dropped = page.locator("table.samples tbody").inner_text()
    assert "decontaminate: " in dropped
    page.goto(server + "/samples?q=task+3")  # every word, as a prefix
    assert page.locator("#count").inner_text() == "1 sample"


def test_a_sample_shows_its_snippet_problem_evidence_and_edits(server: str, page):
    page.goto(server + "/samples/1")  # HumanEval/0 copied: flagged
    text = page.locator("main").inner_text()
    assert "compute(" in page.locator("#seed").inner_text()
    assert "lines" in page.locator("#seed .muted").inner_text()
    assert "task 1" in page.locator("#problem").inner_text()
    assert "has_close_elements" in page.locator("#solution").inner_text()
    assert "dropped by decontaminate" in text
    evidence = page.locator("#contamination")
    assert "humaneval HumanEval/0" in evidence.inner_text()
    assert evidence.locator("mark").count() >= 2  # marked on both sides
    shoot(page, "sample-flagged")
    page.goto(server + "/samples/3")
    stepper = page.locator(".stepper").first
    assert "edit 1 of" in stepper.inner_text()
    first = stepper.locator("pre.step:visible").inner_text()
    assert first.startswith("@@")
    stepper.locator("button.next").click()
    assert "edit 2 of" in stepper.inner_text()
    assert stepper.locator("pre.step:visible").inner_text() != first
    shoot(page, "sample-edits")


def test_drops_and_contamination_pages(server: str, page):
    page.goto(server + "/drops")
    table = page.locator("#drop-table").inner_text()
    assert "decontaminate" in table and "humaneval/substring" in table
    page.goto(server + "/contamination")
    flags = page.locator("#flags").inner_text()
    assert "humaneval" in flags and "HumanEval/0" in flags and "substring" in flags
    page.locator("#flags a").first.click()
    assert "/samples/" in page.url
    shoot(page, "contamination")


def test_untrusted_text_is_shown_never_run(server: str, page):
    page.goto(server + "/samples/2")  # payloads in its snippet (every seed's) and problem
    page.wait_for_load_state("load")
    assert page.title() != "pwned" and not page.dialogs
    assert page.locator("#injected").count() == 0 and page.locator("#bold").count() == 0
    seed, problem = page.locator("#seed").inner_text(), page.locator("#problem").inner_text()
    for shown in (seed, problem):
        assert "<script>document.title='pwned'</script>" in shown
        assert "<img src=x id=injected" in shown
    assert "<b id=bold>" in problem
    shoot(page, "sample-payloads")


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_foreign_host_header_gets_no_page(server: str):
    """DNS rebinding: another site's name pointed at 127.0.0.1 reaches the port, not the runs,
    and no asset URL is built from its name."""
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
        request = urllib.request.Request(server + "/", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, body = answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        assert status == 400 and "evil" not in body, (host, status, body[:200])
    assert _status(server + "/")[0] == 200
    port = server.rsplit(":", 1)[1]
    local = urllib.request.Request(server + "/", headers={"Host": f"localhost:{port}"})
    with urllib.request.urlopen(local, timeout=10) as answer:
        assert answer.status == 200


@pytest.mark.parametrize(
    "path, code",
    [
        ("/samples?page=0", 400),
        ("/samples?page=abc", 400),
        ("/samples?page=99999", 404),
        ("/samples?status=nonsense", 400),
        ("/samples?sort=id", 400),
        ("/samples/99999", 404),
        ("/samples/99999999999999999999999", 404),  # past SQLite's integers
        ("/api/samples/99999999999999999999999", 404),
        ("/samples/-1", 404),
        ("/samples/1%20OR%201=1", 404),
        ("/samples?run=elsewhere", 404),
        ("/static/../../store.py", 404),
        ("/static/%2e%2e/%2e%2e/store.py", 404),
        ("/static/..%2f..%2fstore.py", 404),
        ("/api/samples?page=-3", 400),
        ("/api/samples/424242", 404),
        ("/nowhere", 404),
    ],
)
def test_bad_requests_are_4xx_never_500(server: str, path: str, code: int):
    status, body = _status(server + path)
    assert status == code, body[:300]
    assert "Traceback" not in body
    if path.startswith("/api/"):
        assert "error" in json.loads(body)


def test_the_json_api_serves_the_same_data(server: str):
    status, body = _status(server + "/api/samples?status=kept")
    page = json.loads(body)
    assert status == 200 and page["total"] == len(page["rows"]) > 0
    status, body = _status(server + "/api/samples/1")
    sample = json.loads(body)
    assert sample["seed"]["id"] == 1 and sample["evidence"][0]["item_id"] == "HumanEval/0"
    status, body = _status(server + "/static/style.css")
    assert status == 200 and "font" in body


def test_serving_never_writes_the_run_and_shows_new_answers(viewed: Path, server: str):
    before = hashlib.sha256((viewed / "run.db").read_bytes()).hexdigest()
    listing = sorted(p.name for p in viewed.iterdir())
    for path in ("/", "/samples", "/samples?q=sums", "/samples/1", "/drops", "/contamination"):
        assert _status(server + path)[0] == 200
    assert hashlib.sha256((viewed / "run.db").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in viewed.iterdir()) == listing
    with FakeOpenAI(answer=answer, latency=1.5) as fake:  # the last two, while it serves
        env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
        generating = subprocess.Popen(
            generate_command(viewed, fake.base_url),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while json.loads(_status(server + "/api/overview")[1])["writer"] is None:
            assert time.monotonic() < deadline, "the viewer never saw the writer"
            time.sleep(0.05)
        overview = _status(server + "/")[1]
        assert 'http-equiv="refresh"' in overview and "being written by pid" in overview
        assert generating.wait(timeout=60) == 0
    assert 'http-equiv="refresh"' not in _status(server + "/")[1]
    _, body = _status(server + "/api/overview")
    assert json.loads(body)["progress"] == {"seeds": 12, "answered": 12}
    assert "task 11" in _status(server + "/samples?q=task+11")[1]


def test_the_audit_report_shows_code_in_code_and_flagged_samples_side_by_side(tmp_path: Path, page):
    from markdown_it import MarkdownIt

    fenced = f"Here is the reference:\n```python\n{HUMANEVAL_0}```\nand `x`."
    rows = [
        {"id": "copy", "problem": "Check closeness. " + PAYLOADS[0], "solution": fenced},
        {"id": "clean", "problem": "Sort a list. " + PAYLOADS[1], "solution": "````\nsorted(x)"},
        {"id": "also-copy", "problem": "Again.", "solution": HUMANEVAL_0},
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = tmp_path / "report"
    run_cli(
        "audit",
        data,
        "--benchmarks",
        "humaneval",
        "--methods",
        "substring,ngram,tfidf",
        "--report",
        report,
        check=True,
    )
    # Markdown: every sample's heading is a heading, none swallowed by a code block.
    tokens = MarkdownIt("commonmark").parse((report / "report.md").read_text())
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert sum(h.startswith("sample ") for h in headings) == 3
    page.goto((report / "report.html").as_uri())
    assert page.title() == "Contamination audit" and not page.dialogs
    assert page.locator("#injected").count() == 0
    flags = page.locator(".flag")
    assert flags.count() == 2
    for n in range(2):
        assert flags.nth(n).locator(".side-by-side pre").count() == 2
        assert flags.nth(n).locator("mark").count() >= 2
    tops = page.locator(".top > h4").all_inner_texts()
    assert len(tops) == 3 and all(t.startswith("sample ") for t in tops)
    assert "```python" in page.locator(".top pre").first.inner_text() + "".join(
        page.locator(".top pre").all_inner_texts()
    )
    shoot(page, "audit-report")


def test_serve_refuses_a_busy_port_and_a_missing_run_in_one_line(viewed: Path, server: str):
    port = server.rsplit(":", 1)[1]
    busy = run_cli("serve", viewed, "--port", port)
    assert busy.returncode == 1
    assert busy.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use); pick another --port"
    )
    missing = run_cli("serve", viewed.parent / "nowhere")
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")
    assert "Traceback" not in busy.stderr + missing.stderr
    # A bad --host is the host's fault, not the port's (no packet leaves: nothing listens).
    for host, said in (
        ("no.such.host.invalid", "--host no.such.host.invalid is no address"),
        ("999.1.1.1", "--host 999.1.1.1 is no address"),
        ("198.51.100.7", "pick an address of this machine"),  # TEST-NET-2: no machine has it
    ):
        refused = run_cli("serve", viewed, "--host", host, "--port", port)
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
        assert "--port" not in refused.stderr and "Traceback" not in refused.stderr
