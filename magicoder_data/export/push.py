"""Pushing an export to a Hub dataset repo, with Hub failures turned into one-line HubErrors."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, HubError
from ..outputs import MARKER
from ..store import RunStore
from .stage import record_push
from .writer import export

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, HfApi
    from huggingface_hub.errors import HfHubHTTPError


def push(
    store: RunStore,
    repo_id: str,
    configs: list[str],
    *,
    private: bool = False,
    revision: str | None = None,
    license: str = "other",
) -> dict[str, Any]:
    """Export the run and upload it to a Hub dataset repo, creating repo and branch as needed.

    A later push replaces the data in place: shards the new export lacks are deleted in the same
    commit, unchanged files are not re-sent, and an unchanged dataset makes no commit. The token
    comes from HF_TOKEN or `hf auth login`, never from options, so it stays out of shell history.
    """
    api, token = _client(repo_id)
    for stale in store.root.glob(".push-*"):  # left by a push that was killed
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".push-", dir=store.root) as tmp:
        folder = Path(tmp) / "dataset"
        rows = export(store, folder, configs, license, repo_id)
        with _hub_errors(repo_id, token, api.endpoint):
            before, info = _upload(api, store, repo_id, folder, rows, private, revision)
    changed = info.oid != before
    record_push(store, repo_id, revision or "main", (info.oid, info.commit_url), rows, changed)
    where = f"{api.endpoint}/datasets/{repo_id}" + (f"/tree/{revision}" if revision else "")
    return {"url": where, "commit": info.oid, "changed": changed, "rows": rows}


def _client(repo_id: str) -> tuple[HfApi, str]:
    """Check the repo id, offline mode and token before exporting, so a push fails fast."""
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ConfigError(f"invalid --repo-id {repo_id!r}: {str(exc).splitlines()[0]}") from None
    if "/" not in repo_id:
        raise ConfigError(f"--repo-id {repo_id!r} needs the form ORG/NAME (or USER/NAME)")
    if constants.HF_HUB_OFFLINE:
        raise HubError("HF_HUB_OFFLINE is set; unset it to push to the Hub")
    token = get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token that can write"
        )
    return HfApi(token=token), token


def _upload(
    api: HfApi,
    store: RunStore,
    repo_id: str,
    folder: Path,
    rows: dict[str, int],
    private: bool,
    revision: str | None,
) -> tuple[str | None, CommitInfo]:
    """Create repo and branch as needed, then upload; returns the head before and the commit."""
    api.create_repo(repo_id, repo_type="dataset", private=private or None, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    before = api.dataset_info(repo_id, revision=revision)
    if private and not before.private:
        api.update_repo_settings(repo_id, private=True, repo_type="dataset")
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type="dataset",
        revision=revision,
        commit_message=f"magicoder-data push of {store.root.name}: "
        + ", ".join(f"{name} {n:,} rows" for name, n in rows.items()),
        delete_patterns=["data/**"],
        ignore_patterns=[MARKER],
    )
    return before.sha, info


@contextmanager
def _hub_errors(repo_id: str, token: str, endpoint: str) -> Iterator[None]:
    """Hub failures as one-line HubErrors that say what to do; the token never shows."""
    from huggingface_hub.errors import HfHubHTTPError, HTTPError

    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)  # push reports "unchanged" itself
    try:
        yield
    except HfHubHTTPError as exc:
        raise HubError(_refusal(exc, repo_id).replace(token, "***")) from None
    except ValueError as exc:
        if not str(exc).startswith("Invalid metadata in README.md"):
            raise
        detail = " ".join(str(exc).split())
        raise HubError(f"the Hub rejected the dataset card: {detail}") from None
    except HTTPError as exc:
        raise HubError(f"cannot reach the Hub at {endpoint} ({type(exc).__name__})") from None
    finally:
        hub_logger.setLevel(level)


def _refusal(exc: HfHubHTTPError, repo_id: str) -> str:
    """One line on why the Hub said no, and what to do about it."""
    status = exc.response.status_code
    if status == 401:
        return (
            "the Hub refused the token (401 Unauthorized); run `hf auth login` again or set "
            "HF_TOKEN to a valid token"
        )
    if status == 403:
        return (
            f"the token may not write to {repo_id} (403 Forbidden); check the namespace and that "
            "the token has write access"
        )
    detail = exc.server_message or str(exc).splitlines()[0]
    return f"the Hub answered {status} for {repo_id}: {detail.strip()}"
