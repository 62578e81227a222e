"""Each seed source on real files: parquet and jsonl folders, source trees, Hub-style loading."""

from __future__ import annotations

import gzip
import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from magicoder_data import SourceError, bundled_corpus, open_source
from magicoder_data.corpus import (
    FolderSource,
    HubSource,
    SkippedShard,
    TreeSource,
    Unusable,
    open_regular,
)
from magicoder_data.languages import LANGUAGES, MAGICODER_MIX, canonical, language_of_path
from tests.conftest import code_doc, doc, select_all, write_parquet


def everything(source, language: str, data_dir: str | None = None):
    data_dir = data_dir or LANGUAGES[language].data_dir
    return [
        d for shard in source.shards(language, data_dir) for _, d in shard.documents(select_all)
    ]


def test_parquet_folder_reads_content_and_provenance(corpus):
    rows = [doc(f"{i}", code_doc(i), repo=f"o/r{i}", path=f"p/{i}.py", stars=i) for i in range(100)]
    source = open_source(str(corpus({"python": rows}, shards=3)))
    assert isinstance(source, FolderSource)
    docs = sorted(everything(source, "python"), key=lambda d: int(d.doc_id))
    assert [d.content for d in docs] == [r["content"] for r in rows]
    assert (docs[7].repo, docs[7].path, docs[7].stars) == ("o/r7", "p/7.py", 7)


def test_parquet_ids_and_rows_stay_aligned_across_row_groups(tmp_path: Path):
    rows = [doc(f"id{i}", code_doc(i), path=f"p/{i}.py") for i in range(300)]
    write_parquet(tmp_path / "c" / "python" / "one.parquet", rows, row_group_size=64)
    docs = everything(open_source(str(tmp_path / "c")), "python")
    assert [d.doc_id for d in docs] == [f"id{i}" for i in range(300)]
    assert all(
        d.path == f"p/{d.doc_id[2:]}.py" and d.content == code_doc(int(d.doc_id[2:])) for d in docs
    )


def test_parquet_reader_only_materialises_wanted_rows(corpus):
    rows = [doc(f"{i}", code_doc(i)) for i in range(200)]
    source = open_source(str(corpus({"python": rows})))
    asked: list[str] = []

    def select(ids: list[str]) -> list[tuple[int, int]]:
        asked.extend(ids)
        return [(i, 1) for i, doc_id in enumerate(ids) if doc_id == "150"]

    got = [d for shard in source.shards("python", "python") for _, d in shard.documents(select)]
    assert len(asked) == 200
    assert [d.doc_id for d in got] == ["150"]


def test_jsonl_and_gzipped_jsonl_shards(tmp_path: Path):
    rows = [doc(f"{i}", code_doc(i)) for i in range(10)]
    folder = tmp_path / "c" / "rust"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:5]))
    with gzip.open(folder / "b.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows[5:])
    docs = everything(open_source(str(tmp_path / "c")), "rust")
    assert sorted(d.doc_id for d in docs) == [str(i) for i in range(10)]


def test_missing_id_column_falls_back_to_shard_and_row(corpus):
    rows = [{"content": code_doc(i)} for i in range(3)]
    root = corpus({"python": rows})
    ids = [d.doc_id for d in everything(open_source(str(root)), "python")]
    assert ids == [f"python/train-00000-of-00001.parquet:{i}" for i in range(3)]


def test_configurable_data_dir(corpus):
    root = corpus({"CSharp": [doc("1", "class A {}\n")]})
    assert [d.doc_id for d in everything(open_source(str(root)), "csharp", "CSharp")] == ["1"]
    assert everything(open_source(str(root)), "csharp") == []


def test_corrupt_parquet_shard_names_the_file(corpus):
    root = corpus({"python": [doc("1", code_doc(1))]})
    bad = root / "python" / "train-00009-of-00010.parquet"
    bad.write_bytes(b"PAR1 this is not parquet at all PAR1")
    with pytest.raises(SourceError, match=r"train-00009-of-00010\.parquet"):
        everything(open_source(str(root)), "python")


def test_corrupt_jsonl_line_names_file_and_line(tmp_path: Path):
    folder = tmp_path / "c" / "python"
    folder.mkdir(parents=True)
    (folder / "x.jsonl").write_text(json.dumps(doc("1", "a = 1\n")) + "\n{not json\n")
    with pytest.raises(SourceError, match=r"x\.jsonl, line 2"):
        everything(open_source(str(tmp_path / "c")), "python")


def test_source_tree_uses_extensions_and_gitignore(tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "a.py").write_text("a = 1\n")
    (tree / "pkg" / "b.rs").write_text("fn main() {}\n")
    (tree / "build").mkdir()
    (tree / "build" / "gen.py").write_text("ignored = True\n")
    (tree / "notes.txt").write_text("not code\n")
    (tree / ".gitignore").write_text("build/\n")
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    source = open_source(str(tree))
    assert isinstance(source, TreeSource)
    assert [d.doc_id for d in everything(source, "python")] == ["pkg/a.py"]
    assert [d.content for d in everything(source, "rust")] == [b"fn main() {}\n"]
    assert everything(source, "java") == []


def test_source_tree_without_git_walks_files(tmp_path: Path):
    tree = tmp_path / "plain"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "Main.java").write_text("class Main {}\n")
    assert [d.doc_id for d in everything(open_source(str(tree)), "java")] == ["src/Main.java"]


def test_hub_reader_streams_a_starcoderdata_shaped_dataset(corpus):
    """The Hub code path, `datasets` in streaming mode, on a local folder of the same shape."""
    rows = [doc(f"{i}", code_doc(i), repo=f"o/{i}") for i in range(40)]
    root = corpus({"python": rows, "c-sharp": [doc("cs1", "class A {}\n")]}, shards=2)
    source = HubSource(str(root))
    shards = source.shards("python", "python")
    assert len(shards) == 2
    docs = everything(source, "python")
    assert sorted(int(d.doc_id) for d in docs) == list(range(40))
    assert {d.repo for d in docs} == {f"o/{i}" for i in range(40)}
    assert [d.doc_id for d in everything(source, "csharp")] == ["cs1"]


def test_hub_name_offline_fails_with_a_way_forward():
    with pytest.raises(SourceError) as info:
        open_source("bigcode/starcoderdata").shards("python", "python")
    message = str(info.value)
    assert "offline" in message
    assert "--source DIR" in message
    assert "\n" not in message


def test_missing_sources(tmp_path: Path):
    with pytest.raises(SourceError, match="not found"):
        open_source(str(tmp_path / "nowhere"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SourceError, match="not a folder"):
        open_source(str(tmp_path / "file.txt"), "folder")


def test_language_names_and_extensions():
    assert canonical("C#") == canonical("c-sharp") == "csharp"
    assert canonical("C++") == "cpp"
    assert LANGUAGES["csharp"].data_dir == "c-sharp"
    assert language_of_path("a/b.HPP") == "cpp"
    assert language_of_path("Makefile") is None
    assert language_of_path("dir.py/file") is None
    assert set(MAGICODER_MIX) <= set(LANGUAGES)


def test_bundled_corpus_has_every_magicoder_language():
    source = open_source("bundled")
    assert (bundled_corpus() / "NOTICE.md").is_file()
    for language in MAGICODER_MIX:
        docs = everything(source, language)
        assert 30 <= len(docs) <= 60, language
        assert len({d.doc_id for d in docs}) == len(docs)
        assert all(d.repo and d.path for d in docs)


# -- files that are not regular files ----------------------------------------------------------


def make_unix_socket(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real unix socket file at `path` (bound by a relative name: AF_UNIX paths are short)."""
    monkeypatch.chdir(path.parent)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path.name)
    monkeypatch.undo()
    assert stat.S_ISSOCK(path.lstat().st_mode)


def tree_with_special_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.py").write_text("secret = 1\n")
    (tree / "a.py").write_text("a = 1\n")
    (tree / "data" / "real.txt").write_text("linked = 1\n")
    os.symlink("data/real.txt", tree / "link.py")  # inside the tree: read
    os.mkfifo(tree / "pipe.py")
    make_unix_socket(tree / "sock.py", monkeypatch)
    os.symlink(tmp_path / "outside" / "secret.py", tree / "outside.py")
    os.symlink("../outside/secret.py", tree / "relative_out.py")
    os.symlink("pipe.py", tree / "to_pipe.py")  # a symlink to a FIFO is a FIFO
    os.symlink("missing.py", tree / "dangling.py")
    return tree


SPECIAL_REASONS = {
    "a.py": None,
    "link.py": None,
    "pipe.py": "special_file",
    "sock.py": "special_file",
    "to_pipe.py": "special_file",
    "outside.py": "symlink_outside_tree",
    "relative_out.py": "symlink_outside_tree",
    "dangling.py": "unreadable",
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("git", [False, True])
def test_source_tree_never_opens_special_files(tmp_path: Path, monkeypatch, git: bool):
    tree = tree_with_special_files(tmp_path, monkeypatch)
    expected = dict(SPECIAL_REASONS)
    if git:
        # git lists untracked symlinks but never FIFOs or sockets: those must have been tracked
        # as regular files and replaced since, which --cached still lists.
        (tree / "tracked.py").write_text("t = 1\n")
        subprocess.run(["git", "init", "-q", str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "add", "tracked.py"], check=True)
        (tree / "tracked.py").unlink()
        os.mkfifo(tree / "tracked.py")
        expected = {k: v for k, v in expected.items() if k not in ("pipe.py", "sock.py")}
        expected["tracked.py"] = "special_file"
    docs = {d.doc_id: d for d in everything(open_source(str(tree)), "python")}
    assert {k: d.reason for k, d in docs.items()} == expected
    assert docs["link.py"].content == b"linked = 1\n"
    assert docs["a.py"].content == b"a = 1\n"
    assert all(d.content == b"" and d.detail for d in docs.values() if d.reason)
    assert "FIFO" in docs["to_pipe.py"].detail


@pytest.mark.timeout(30)
def test_open_regular_checks_the_opened_file_and_never_blocks(tmp_path: Path, monkeypatch):
    tree = tree_with_special_files(tmp_path, monkeypatch)
    with open_regular(tree / "a.py", tree) as handle:
        assert handle.read() == b"a = 1\n"
    for name, reason in SPECIAL_REASONS.items():
        if reason is None:
            continue
        with pytest.raises(Unusable) as info:
            open_regular(tree / name, tree)
        assert info.value.reason == reason, name
    # Without a folder to stay inside, symlinks are followed wherever they lead.
    with open_regular(tree / "outside.py") as handle:
        assert handle.read() == b"secret = 1\n"
    with pytest.raises(Unusable, match="a directory"):
        open_regular(tree / "data")


@pytest.mark.timeout(30)
def test_folder_source_skips_special_and_outside_shards(tmp_path: Path, corpus):
    root = corpus({"python": [doc(f"{i}", code_doc(i)) for i in range(5)]})
    folder = root / "python"
    os.mkfifo(folder / "pipe.jsonl")
    os.mkfifo(folder / "fifo.parquet")
    elsewhere = write_parquet(tmp_path / "elsewhere" / "x.parquet", [doc("far", code_doc(99))])
    os.symlink(elsewhere, folder / "outside.parquet")
    write_parquet(root / "shared" / "in.parquet", [doc("near", code_doc(98))])
    os.symlink("../shared/in.parquet", folder / "inside.parquet")
    (folder / "folder.jsonl").mkdir()  # a folder named like a shard is no shard: not reported
    source = open_source(str(root))
    assert isinstance(source, FolderSource)
    shards = {s.name: s for s in source.shards("python", "python")}
    skipped = {n: s.reason for n, s in shards.items() if isinstance(s, SkippedShard)}
    assert skipped == {
        "python/fifo.parquet": "special_file",
        "python/pipe.jsonl": "special_file",
        "python/outside.parquet": "symlink_outside_tree",
    }
    ids = sorted(d.doc_id for d in everything(source, "python"))
    assert ids == sorted([*(str(i) for i in range(5)), "near"])


def test_non_text_content_is_not_text_not_empty(tmp_path: Path):
    rows = [
        {"id": "n", "content": 5},
        {"id": "l", "content": ["a = 1"]},
        {"id": "d", "content": {"a": 1}},
        {"id": "z", "content": None},
        {"id": "e", "content": ""},
        {"id": "s", "content": "a = 1\n"},
    ]
    folder = tmp_path / "c" / "python"
    folder.mkdir(parents=True)
    (folder / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_parquet(tmp_path / "c" / "python" / "y.parquet", [{"id": "p", "content": 7}])
    docs = {d.doc_id: d for d in everything(open_source(str(tmp_path / "c")), "python")}
    assert {k: d.reason for k, d in docs.items()} == {
        "n": "not_text",
        "l": "not_text",
        "d": "not_text",
        "z": "not_text",
        "e": None,
        "s": None,
        "p": "not_text",
    }
    assert docs["z"].detail == "content is null"
    assert docs["l"].detail == "content is an array"
