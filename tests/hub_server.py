"""A loopback stub of the Hugging Face Hub's HTTP API, enough for `HfApi` to push a dataset.

It speaks the endpoints `create_repo`, `create_branch`, `dataset_info`, `update_repo_settings`,
`list_repo_tree`, preupload and commit use, keeps every repo's branches as {path: bytes} in
memory, and records each commit's added and deleted paths so tests can assert exactly what was
uploaded. It listens on 127.0.0.1 only; point huggingface_hub at it with HF_ENDPOINT.

Preupload answers "regular" for every file, so content travels base64 inside the commit. The real
Hub answers "lfs" for parquet, which huggingface_hub then sends through Xet storage: that transfer
is huggingface_hub's own, while everything our push decides (repo, branch, which files, deletions,
skipping unchanged files) goes through the endpoints stubbed here.

    with FakeHub(token="hf_test") as hub:   # HF_ENDPOINT=hub.url HF_TOKEN=hf_test
        ...
        assert hub.commits[-1].added == ["README.md", ...]
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

#: A few of the licence identifiers the Hub accepts (it checks against its full list).
LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "odc-by", "other"}
SIZE_CATEGORIES = {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"}
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob, which the Hub reports as a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    branch: str
    summary: str
    added: list[str]
    deleted: list[str]


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)


class FakeHub:
    """The stub server; `repos` and `commits` show what clients did."""

    def __init__(self, token: str, namespaces: tuple[str, ...] = ("demo-org",)) -> None:
        self.token = token
        self.namespaces = namespaces
        self.repos: dict[str, Repo] = {}
        self.commits: list[Commit] = []
        self.authorizations: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env(self, home: Path, token: str | None) -> dict[str, str]:
        """A process environment online against this stub only, with a login folder of its own."""
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
        env |= {"HF_ENDPOINT": self.url, "HF_HOME": str(home)}
        env |= {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        return env | ({"HF_TOKEN": token} if token else {})

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[branch])

    # -- the API ----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, auth: str, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        self.authorizations.add(auth)
        if auth != f"Bearer {self.token}":
            return 401, {"X-Error-Message": "Invalid credentials in Authorization header"}, {}
        parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
        if method == "POST" and parts == ["api", "repos", "create"]:
            return self._create(json.loads(body))
        if method == "POST" and parts == ["api", "validate-yaml"]:
            errors = [{"message": m} for m in _card_errors(json.loads(body)["content"])]
            return (400 if errors else 200), {}, {"errors": errors, "warnings": []}
        if parts[:2] != ["api", "datasets"] or len(parts) < 4:
            return 404, {"X-Error-Message": f"no route {method} {path}"}, {}
        repo_id, action, rest = f"{parts[2]}/{parts[3]}", parts[4:5], parts[5:]
        repo = self.repos.get(repo_id)
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, {"error": "Repository not found"}
        revision = rest[0] if rest else "main"
        if action == ["branch"] and method == "POST":
            if revision in repo.branches:
                return 409, {}, {"error": "Reference already exists"}
            repo.branches[revision] = dict(repo.branches["main"])
            repo.heads[revision] = repo.heads["main"]
            return 200, {}, {}
        if action == ["settings"] and method == "PUT":
            repo.private = _private(json.loads(body), repo.private)
            return 200, {}, {}
        if revision not in repo.branches:
            return 404, {"X-Error-Code": "RevisionNotFound"}, {"error": "Invalid rev id"}
        files = repo.branches[revision]
        if method == "GET" and action in ([], ["revision"]):
            return 200, {}, {"id": repo_id, "sha": repo.heads[revision], "private": repo.private}
        if method == "GET" and action == ["tree"]:
            return 200, {}, _tree(files)
        if method == "POST" and action == ["preupload"]:
            return 200, {}, {"files": [_mode(f, files) for f in json.loads(body)["files"]]}
        if method == "POST" and action == ["commit"]:
            return self._commit(repo_id, repo, revision, body)
        return 404, {"X-Error-Message": f"no route {method} {path}"}, {}

    def _create(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        namespace = payload.get("organization") or "demo-user"
        repo_id = f"{namespace}/{payload['name']}"
        if payload.get("type") != "dataset" or namespace not in self.namespaces:
            return 403, {"X-Error-Message": f"You cannot create repos in {namespace}"}, {}
        url = f"{self.url}/datasets/{repo_id}"
        if repo_id in self.repos:
            return 409, {}, {"error": "You already created this dataset repo", "url": url}
        repo = Repo(private=_private(payload, False))
        repo.branches["main"] = {".gitattributes": GITATTRIBUTES}
        repo.heads["main"] = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = repo
        return 200, {}, {"url": url, "name": repo_id}

    def _commit(
        self, repo_id: str, repo: Repo, branch: str, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        files = dict(repo.branches[branch])
        added, deleted, summary = [], [], ""
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                summary = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                added.append(value["path"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return 404, {}, {"error": f"{value['path']} does not exist"}
                deleted.append(value["path"])
            else:
                return 400, {}, {"error": f"unsupported commit line {key!r}"}
        oid = hashlib.sha1(json.dumps([repo.heads[branch], sorted(added), deleted]).encode())
        repo.branches[branch], repo.heads[branch] = files, oid.hexdigest()
        self.commits.append(Commit(oid.hexdigest(), branch, summary, sorted(added), deleted))
        url = f"{self.url}/datasets/{repo_id}/commit/{oid.hexdigest()}"
        return 200, {}, {"commitUrl": url, "commitOid": oid.hexdigest(), "pullRequestUrl": None}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hub._lock:
                    status, headers, payload = hub.handle(
                        self.command, self.path, self.headers.get("Authorization", ""), body
                    )
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _private(payload: dict[str, Any], default: bool) -> bool:
    """Visibility as huggingface_hub >= 1.0 sends it, or the older `private` flag."""
    if "visibility" in payload:
        return payload["visibility"] == "private"
    return bool(payload.get("private", default))


def _tree(files: dict[str, bytes]) -> list[dict[str, Any]]:
    folders = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    entries = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in folders]
    entries += [
        {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        for path, data in files.items()
    ]
    return sorted(entries, key=lambda entry: entry["path"])


def _mode(file: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    existing = files.get(file["path"])
    return {
        "path": file["path"],
        "uploadMode": "regular",
        "shouldIgnore": False,
        "oid": None if existing is None else git_blob_sha1(existing),
    }


def _card_errors(card: str) -> list[str]:
    """What the Hub's YAML validation would reject in a dataset card's metadata."""
    if not card.startswith("---\n") or "\n---\n" not in card:
        return ["no YAML metadata block"]
    meta = yaml.safe_load(card[4 : card.index("\n---\n")])
    if not isinstance(meta, dict):
        return ["metadata is not a mapping"]
    sizes = meta.get("size_categories", [])
    errors = [f"unknown size category {c!r}" for c in sizes if c not in SIZE_CATEGORIES]
    if meta.get("license") not in LICENSES:
        errors.append(f'"license" must be a known licence identifier, not {meta.get("license")!r}')
    for config in meta.get("configs", []):
        if not isinstance(config.get("config_name"), str) or not config.get("data_files"):
            errors.append(f"config {config!r} needs config_name and data_files")
    if sum(bool(c.get("default")) for c in meta.get("configs", [])) > 1:
        errors.append("more than one default config")
    return errors
