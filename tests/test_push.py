"""push: the real huggingface_hub client against a loopback stub of the Hub's HTTP API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import datasets
import pytest

from magicoder_data.store import DB_NAME
from tests.conftest import generated_run, run_cli
from tests.hub_server import FakeHub

TOKEN = "hf_test_push_token_0123456789"
REPO = "demo-org/oss-instruct-tiny"


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    return generated_run(tmp_path / "run", "python=4,rust=2")


def hub_env(hub: FakeHub, tmp_path: Path, token: str | None = TOKEN) -> dict[str, str]:
    return hub.env(tmp_path / "hf-home", token)


def test_push_uploads_exactly_the_export_and_updates_in_place(generated: Path, tmp_path: Path):
    with FakeHub(token=TOKEN) as hub:
        env = hub_env(hub, tmp_path)
        result = run_cli("push", generated, "--repo-id", REPO, "--private", env=env, check=True)
        assert "oss-instruct 6 rows, sft 6 rows pushed" in result.stdout
        assert f"{hub.url}/datasets/{REPO}" in result.stdout
        assert hub.repos[REPO].private
        shards = ["data/oss-instruct/train-00000-of-00001.parquet"]
        shards.append("data/sft/train-00000-of-00001.parquet")
        assert [c.added for c in hub.commits] == [["README.md", *shards]]
        assert hub.commits[0].deleted == []

        exported = tmp_path / "exported"
        run_cli("export", generated, "--out", exported, check=True)
        remote = hub.files(REPO)
        assert set(remote) == {".gitattributes", "README.md", *shards}
        for path in shards:
            assert remote[path] == (exported / path).read_bytes(), path
        card = remote["README.md"].decode()
        assert card == (exported / "README.md").read_text().replace(str(exported), REPO)
        assert f'sft = load_dataset("{REPO}", "sft", split="train")' in card
        loaded = tmp_path / "loaded"
        for path, data in remote.items():
            (loaded / path).parent.mkdir(parents=True, exist_ok=True)
            (loaded / path).write_bytes(data)
        rows = datasets.load_dataset(str(loaded), split="train", cache_dir=tmp_path / "c")
        assert len(rows) == 6 and rows.column_names[:2] == ["lang", "raw_index"]

        # The same dataset again: nothing is sent, no commit is made.
        result = run_cli("push", generated, "--repo-id", REPO, env=env, check=True)
        assert "unchanged, nothing pushed" in result.stdout and len(hub.commits) == 1

        # Fewer configs: the new card and the stale shards' deletion land in one commit.
        result = run_cli(
            "push", generated, "--repo-id", REPO, "--config", "oss-instruct", env=env, check=True
        )
        assert [(c.added, c.deleted) for c in hub.commits[1:]] == [
            (["README.md"], ["data/sft/train-00000-of-00001.parquet"])
        ]
        assert set(hub.files(REPO)) == {".gitattributes", "README.md", shards[0]}

        # A branch: created from main, main untouched.
        run_cli("push", generated, "--repo-id", REPO, "--revision", "v2", env=env, check=True)
        assert hub.commits[-1].branch == "v2" and set(hub.files(REPO, "v2")) == set(remote)
        assert set(hub.files(REPO)) == {".gitattributes", "README.md", shards[0]}

        status = run_cli("status", generated, check=True).stdout
        assert f"pushed 4 time(s); last to {REPO}@v2" in status
        assert hub.authorizations == {f"Bearer {TOKEN}"}
    for path in generated.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    pushes = sqlite3.connect(generated / DB_NAME).execute("SELECT changed FROM pushes ORDER BY id")
    assert [changed for (changed,) in pushes] == [1, 0, 1, 1]


def test_push_errors_say_what_to_do(generated: Path, tmp_path: Path):
    with FakeHub(token=TOKEN) as hub:
        result = run_cli("push", generated, "--repo-id", REPO, env=hub_env(hub, tmp_path, None))
        assert result.returncode == 1 and "run `hf auth login` or set HF_TOKEN" in result.stderr
        bad = "hf_wrong_token_987654321"
        result = run_cli("push", generated, "--repo-id", REPO, env=hub_env(hub, tmp_path, bad))
        assert result.returncode == 1 and "the Hub refused the token (401" in result.stderr
        assert bad not in result.stderr + result.stdout
        result = run_cli(
            "push", generated, "--repo-id", "someone-else/x", env=hub_env(hub, tmp_path)
        )
        assert result.returncode == 1 and "may not write to someone-else/x (403" in result.stderr
        result = run_cli("push", generated, "--repo-id", "no-namespace", env=hub_env(hub, tmp_path))
        assert result.returncode == 1 and "needs the form ORG/NAME" in result.stderr
        offline = hub_env(hub, tmp_path) | {"HF_HUB_OFFLINE": "1"}
        result = run_cli("push", generated, "--repo-id", REPO, env=offline)
        assert result.returncode == 1 and "HF_HUB_OFFLINE is set" in result.stderr
        assert hub.commits == [] and "Traceback" not in result.stderr
        licence = ("push", generated, "--repo-id", REPO, "--license", "my-own")
        result = run_cli(*licence, env=hub_env(hub, tmp_path))
        assert result.returncode == 1 and "the Hub rejected the dataset card" in result.stderr
        assert "'my-own'" in result.stderr and hub.commits == []
        (tmp_path / "hf-home").mkdir(exist_ok=True)  # the token `hf auth login` stores
        (tmp_path / "hf-home" / "token").write_text(TOKEN)
        (generated / ".push-stale").mkdir()
        result = run_cli("push", generated, "--repo-id", REPO, env=hub_env(hub, tmp_path, None))
        assert result.returncode == 0, result.stderr
        assert len(hub.commits) == 1 and not (generated / ".push-stale").exists()
        assert not hub.repos[REPO].private
        private = ("push", generated, "--repo-id", REPO, "--private")
        assert "unchanged" in run_cli(*private, env=hub_env(hub, tmp_path), check=True).stdout
        assert hub.repos[REPO].private  # an existing public repo is made private too
    result = run_cli("push", generated, "--repo-id", REPO, env=hub_env(hub, tmp_path))
    assert result.returncode == 1 and "cannot reach the Hub at" in result.stderr
    assert not list(generated.glob(".push-*"))
