"""The seed sampler's guarantees: verbatim bounded snippets, uniform draws, determinism."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magicoder_data import RunStore, SampleConfig, draw_seeds
from magicoder_data.records import Document, Drop, Seed
from magicoder_data.seeds import (
    Reservoir,
    clean_document,
    document_lines,
    draw_span,
    iter_seeds,
    make_seed,
)
from tests.conftest import code_doc, doc, write_jsonl, write_parquet

CONFIG = SampleConfig(source="bundled", mix={"python": 10})


def chi_square(counts: Counter, cells: list[int], expected: float) -> float:
    return sum((counts[c] - expected) ** 2 / expected for c in cells)


code_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=40
).map(lambda s: f"x = {s!r}")


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.one_of(code_line, st.just(""), st.just("    pass")), min_size=1, max_size=60),
    min_lines=st.integers(1, 5),
    span=st.integers(0, 15),
    rank=st.integers(0, 2**63 - 1),
    crlf=st.booleans(),
)
def test_every_seed_is_a_verbatim_bounded_line_range(lines, min_lines, span, rank, crlf):
    config = SampleConfig(
        source="bundled", mix={"python": 1}, min_lines=min_lines, max_lines=min_lines + span
    )
    content = ("\r\n" if crlf else "\n").join(lines) + "\n"
    result = make_seed(rank, Document("python", "d", content, "test"), config)
    if not isinstance(result, Seed):
        return
    text, _ = clean_document(content, config)
    assert text is not None
    doc_lines = document_lines(text)
    assert result.snippet == "\n".join(doc_lines[result.start_line - 1 : result.end_line])
    length = result.end_line - result.start_line + 1
    assert config.min_lines <= length <= config.max_lines
    assert 1 <= result.start_line <= result.end_line <= len(doc_lines)


@given(seed=st.integers(0, 10**6), n=st.integers(1, 200))
def test_draw_span_fits_and_is_deterministic(seed, n):
    a = draw_span(n, random.Random(seed), 1, 15)
    assert a == draw_span(n, random.Random(seed), 1, 15)
    start, end = a
    assert 0 <= start < end <= n
    assert 1 <= end - start <= min(15, n)


def test_lengths_are_uniform_not_truncated_at_file_end():
    rng = random.Random(1)
    lengths = Counter(
        end - start for start, end in (draw_span(40, rng, 1, 15) for _ in range(15_000))
    )
    # 14 degrees of freedom: the 0.001 critical value is 36.12.
    assert chi_square(lengths, list(range(1, 16)), 1_000) < 36.12


def test_starts_are_uniform_over_positions_that_fit():
    rng = random.Random(2)
    starts = Counter(draw_span(30, rng, 5, 5)[0] for _ in range(26_000))
    assert set(starts) == set(range(26))
    # 25 degrees of freedom: the 0.001 critical value is 52.62.
    assert chi_square(starts, list(range(26)), 1_000) < 52.62


def reservoir_pick(docs: list[Document], quota: int, seed: int, order: int = 0) -> list[str]:
    config = SampleConfig(source="bundled", mix={"python": quota}, seed=seed)
    reservoir = Reservoir("python", quota, config, [])
    shuffled = docs[:]
    random.Random(order).shuffle(shuffled)
    for d in shuffled:
        for _, rank in reservoir.select([d.doc_id]):
            reservoir.offer(rank, d)
    return sorted(s.doc_id for s in reservoir.seeds())


def python_docs(n: int) -> list[Document]:
    return [Document("python", f"doc{i}", code_doc(i), "test") for i in range(n)]


def test_documents_are_drawn_uniformly_from_the_whole_stream():
    docs = python_docs(20)
    hits = Counter(d for seed in range(400) for d in reservoir_pick(docs, 5, seed))
    assert sum(hits.values()) == 2_000
    # Each document is expected 100 times; 19 degrees of freedom: 0.001 critical value 43.82.
    assert chi_square(hits, [d.doc_id for d in docs], 100) < 43.82


def test_same_seed_same_seeds_whatever_the_order():
    docs = python_docs(300)
    picks = {tuple(reservoir_pick(docs, 25, seed=976, order=o)) for o in range(5)}
    assert len(picks) == 1
    assert reservoir_pick(docs, 25, seed=977) != reservoir_pick(docs, 25, seed=976)


def test_duplicates_keep_the_lowest_ranked_copy_in_any_order():
    docs = [Document("python", f"doc{i}", "x = 1\n", "test") for i in range(10)]
    docs += [Document("python", f"other{i}", "x  =  1  \n", "test") for i in range(3)]
    picks = {tuple(reservoir_pick(docs, 3, seed=1, order=o)) for o in range(6)}
    assert len(picks) == 1
    assert len(next(iter(picks))) == 1  # whitespace-normalised: all thirteen are one snippet


def test_sampling_is_independent_of_shard_layout(tmp_path: Path, corpus):
    rows = [doc(f"{i}", code_doc(i, lines=5 + i % 40)) for i in range(400)]
    results = []
    for shards in (1, 7):
        root = corpus({"python": rows}, shards=shards)
        config = SampleConfig(source=str(root), mix={"python": 60})
        with RunStore.open(tmp_path / f"run{shards}") as store:
            draw_seeds(store, config)
            results.append([(s.doc_id, s.snippet) for s in iter_seeds(store)])
        root.rename(tmp_path / f"old{shards}")
    assert results[0] == results[1]
    assert len(results[0]) == 60


def test_worker_processes_give_the_same_seeds_and_drops(tmp_path: Path, corpus):
    rows = [doc(f"{i}", code_doc(i, lines=2 + i % 30)) for i in range(500)]
    rows += [doc(f"dup{i}", "same = 1\n") for i in range(40)]
    rows += [doc(f"c{i}", "# only\n# comments\n") for i in range(40)]
    root = corpus({"python": rows}, shards=3)
    results = []
    for workers in (1, 2):
        with RunStore.open(tmp_path / f"run{workers}") as store:
            draw_seeds(store, SampleConfig(source=str(root), mix={"python": 150}), workers=workers)
            results.append((list(iter_seeds(store)), store.drop_counts("sample")))
    assert results[0] == results[1]
    assert set(results[0][1]["python"]) == {"duplicate", "comment_only"}


# -- sources with files that are not documents -------------------------------------------------


def code_tree(root: Path, n: int = 40) -> Path:
    """A source tree of `n` distinct Python files, plus one file reached through a symlink."""
    (root / "pkg").mkdir(parents=True)
    for i in range(n):
        (root / "pkg" / f"m{i}.py").write_text(code_doc(i, lines=3 + i % 20))
    (root / "data").mkdir()
    (root / "data" / "real.txt").write_text(code_doc(1000))
    return root


def sampled(store: RunStore) -> list[tuple[str, int, int, str]]:
    return [(s.doc_id, s.start_line, s.end_line, s.snippet) for s in iter_seeds(store)]


@pytest.mark.timeout(60)
def test_special_files_in_a_tree_are_dropped_and_the_sample_is_unchanged(
    tmp_path: Path, monkeypatch
):
    plain = code_tree(tmp_path / "plain")
    (plain / "pkg" / "linked.py").write_text(code_doc(1000))
    tree = code_tree(tmp_path / "tree")
    os.symlink("../data/real.txt", tree / "pkg" / "linked.py")  # inside the tree: sampled
    os.mkfifo(tree / "pkg" / "pipe.py")
    os.mkfifo(tree / "pkg" / "pipe2.py")
    monkeypatch.chdir(tree / "pkg")
    with socket.socket(socket.AF_UNIX) as sock:  # bound by a relative name: AF_UNIX paths are short
        sock.bind("sock.py")
    monkeypatch.undo()
    (tmp_path / "secret.py").write_text(code_doc(2000))
    os.symlink(tmp_path / "secret.py", tree / "pkg" / "outside.py")
    os.symlink("gone.py", tree / "pkg" / "dangling.py")
    results = []
    for root in (plain, tree):
        with RunStore.open(tmp_path / f"run-{root.name}") as store:
            draw_seeds(store, SampleConfig(source=str(root), mix={"python": 100}))
            results.append((sampled(store), store.drop_counts("sample")))
            drops = list(store.iter_drops())
    (plain_seeds, plain_drops), (tree_seeds, tree_drops) = results
    assert tree_seeds == plain_seeds
    assert len(plain_seeds) == 41
    assert plain_drops == {}
    assert tree_drops == {"python": {"special_file": 3, "symlink_outside_tree": 1, "unreadable": 1}}
    assert {d.item: d.reason for d in drops} == {
        "pkg/pipe.py": "special_file",
        "pkg/pipe2.py": "special_file",
        "pkg/sock.py": "special_file",
        "pkg/outside.py": "symlink_outside_tree",
        "pkg/dangling.py": "unreadable",
    }
    assert all(d.detail for d in drops)


@pytest.mark.timeout(60)
def test_skipped_shards_are_drops_and_the_rest_is_sampled(tmp_path: Path, corpus, cli):
    rows = [doc(f"{i}", code_doc(i, lines=3 + i % 20)) for i in range(60)]
    root = corpus({"python": rows}, shards=2)
    os.mkfifo(root / "python" / "pipe.jsonl")
    outside = write_parquet(tmp_path / "elsewhere.parquet", [doc("far", code_doc(999))])
    os.symlink(outside, root / "python" / "outside.parquet")
    run = tmp_path / "run"
    result = cli("sample", run, "--source", root, "--mix", "python=100", "--workers", "2")
    assert result.returncode == 0, result.stderr
    status = json.loads(cli("status", run, "--json", check=True).stdout)
    assert status["stages"]["sample"]["drops"] == {
        "python": {"special_file": 1, "symlink_outside_tree": 1}
    }
    with RunStore.open(run) as store:
        assert sorted(s.doc_id for s in iter_seeds(store)) == sorted(r["id"] for r in rows)
        assert {d.item: d.reason for d in store.iter_drops()} == {
            "python/pipe.jsonl": "special_file",
            "python/outside.parquet": "symlink_outside_tree",
        }
    again = cli("sample", run)  # finished: nothing is recorded twice
    assert again.returncode == 0, again.stderr
    status = json.loads(cli("status", run, "--json", check=True).stdout)
    assert status["stages"]["sample"]["drops"]["python"]["special_file"] == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_content_that_is_not_text_is_dropped_as_not_text(tmp_path: Path, workers):
    rows = [doc(f"{i}", code_doc(i)) for i in range(5)]
    rows += [{"id": f"x{i}", "content": v} for i, v in enumerate([3, 2.5, ["a"], {"a": 1}, None])]
    rows.append({"id": "blank", "content": "  \n"})
    write_jsonl(tmp_path / "c" / "python" / "a.jsonl", rows)
    with RunStore.open(tmp_path / "run") as store:
        draw_seeds(
            store, SampleConfig(source=str(tmp_path / "c"), mix={"python": 50}), workers=workers
        )
        drops = store.drop_counts("sample")
        assert len(list(iter_seeds(store))) == 5
    assert drops == {"python": {"not_text": 5, "empty": 1}}


def test_a_document_the_reader_could_not_use_gives_its_reason():
    unusable = Document("python", "d", b"", "t", reason="special_file", detail="d is a FIFO")
    assert make_seed(1, unusable, CONFIG) == Drop("python", "special_file", "d", 1, "d is a FIFO")


@pytest.mark.timeout(120)
def test_ctrl_c_with_workers_exits_130_without_tracebacks(tmp_path: Path, corpus):
    rows = [doc(f"{i}", code_doc(i, lines=5 + i % 30)) for i in range(200_000)]
    root = corpus({"python": rows}, shards=4)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "magicoder_data", "sample", run, "--source", root]
    process = subprocess.Popen(
        [*map(str, command), "--mix", "python=100000", "--workers", "2", "--plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which the Ctrl-C below goes to
    )
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if (run / "run.db").exists():  # the run is open: the CLI is past its imports
                break
            time.sleep(0.05)
        time.sleep(1)  # the workers are being spawned or drawing snippets
        if process.poll() is not None:
            pytest.fail(f"sample ended before it could be interrupted: {process.communicate()}")
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted")
