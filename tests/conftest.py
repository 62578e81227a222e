"""Shared fixtures: offline Hub settings, starcoderdata-shaped corpora on disk, and the CLI."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

Row = dict[str, object]


def doc(doc_id: str, content: str, **meta: object) -> Row:
    """A starcoderdata row."""
    return {
        "max_stars_repo_path": meta.get("path", f"src/{doc_id}.py"),
        "max_stars_repo_name": meta.get("repo", "octo/repo"),
        "max_stars_count": meta.get("stars", 1),
        "id": doc_id,
        "content": content,
    }


def write_parquet(path: Path, rows: list[Row], row_group_size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def write_jsonl(path: Path, rows: list[Row]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def select_all(ids: list[str]) -> list[tuple[int, int]]:
    """A `select` that wants every document (rank 0)."""
    return [(i, 0) for i in range(len(ids))]


def table(run: Path, sql: str) -> list[tuple]:
    """Every row a query gives on a run's database."""
    with sqlite3.connect(run / "run.db") as conn:
        return conn.execute(sql).fetchall()


def code_doc(i: int, lines: int = 30) -> str:
    """A distinct, filter-passing Python document of `lines` lines."""
    return "\n".join(f"value_{i}_{n} = compute({i}, {n})" for n in range(lines)) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Callable[..., Path]:
    """Make a starcoderdata-shaped folder: corpus({"python": [rows...]}, shards=2)."""

    def make(languages: dict[str, list[Row]], shards: int = 1, fmt: str = "parquet") -> Path:
        root = tmp_path / "corpus"
        for data_dir, rows in languages.items():
            for s in range(shards):
                part = rows[s::shards]
                if not part:
                    continue
                name = f"train-{s:05d}-of-{shards:05d}"
                if fmt == "parquet":
                    write_parquet(root / data_dir / f"{name}.parquet", part)
                else:
                    write_jsonl(root / data_dir / f"{name}.jsonl", part)
        return root

    return make


def run_cli(
    *args: str | Path, check: bool = False, **kwargs: object
) -> subprocess.CompletedProcess:
    """Run the real `magicoder-data` command in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "magicoder_data", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


FAKE_KEY = "sk-test-fake-0123456789"


def generate_command(run: Path, base_url: str, *args: str) -> list[str]:
    """The command line of `magicoder-data generate RUN` with gpt-4o-mini at `base_url`."""
    return [
        sys.executable,
        "-m",
        "magicoder_data",
        "generate",
        str(run),
        "--model",
        "gpt-4o-mini",
        "--base-url",
        base_url,
        "--plain",
        *args,
    ]


def run_generate(
    run: Path, base_url: str, *args: str, key: str = FAKE_KEY, check: bool = False
) -> subprocess.CompletedProcess:
    """`magicoder-data generate RUN` with gpt-4o-mini at a fake server's `base_url`."""
    env = {**os.environ, "OPENAI_API_KEY": key}
    return run_cli(*generate_command(run, base_url, *args)[3:], env=env, check=check)


def generated_run(
    run: Path,
    mix: str,
    faults: dict[int, list[str]] | None = None,
    answer: Callable[[int], str] | None = None,
    *args: str,
) -> Path:
    """A run with seeds sampled from the bundled corpus and answers from the fake server
    (`answer` writes an answer's content from its request seed; `args` go to generate)."""
    from tests.openai_server import FakeOpenAI

    run_cli("sample", run, "--source", "bundled", "--mix", mix, check=True)
    with FakeOpenAI(faults=faults, answer=answer) as server:
        run_generate(run, server.base_url, *args, check=True)
    return run


@contextmanager
def ray_token() -> Iterator[None]:
    """Token authentication for a local Ray instance, with a token of the tests' own in the
    environment that every command inherits: a fresh machine has no ~/.ray/auth_token (Ray
    2.60's `ray start` writes none), and the tests write nothing in the home folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        yield
