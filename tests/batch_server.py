"""A loopback fake of the OpenAI Files and Batch APIs, beside the chat endpoint it extends.

For end-to-end tests of a batch client on the real `openai` SDK: upload a JSONL input file
(`files.create(purpose="batch")`), create a batch, poll it, download its output and error
files. A batch moves through validating, in_progress and finalizing to completed as `delay`
seconds pass (each status is taken on reading it, so nothing runs in the background). Each
line is answered by the chat fake's fault script for its body's `seed`: success faults become
output lines with the chat.completion body, the others error-file lines with the HTTP error
they stand for. Batch-level faults (`batch_faults[n]` for the n-th batch created, from 0):

- "failed": the batch fails validation (`errors` filled, no output);
- "expired": half its lines are answered, the rest go to the error file as `batch_expired`.

A cancelled batch that was past validating answers half its lines and leaves the rest out of
both files, as a batch stopped midway does. `create_latency` holds the answer to
`batches.create` back after the batch exists (a client killed then never learns its id).
`calls` counts requests per endpoint, so a test can see how often a client polls; each batch
keeps the `custom_ids` of its input, so a test can see what was asked twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.openai_server import SUCCESS_FAULTS, FakeOpenAI

_JSON = {"Content-Type": "application/json"}
#: Share of `delay` a batch spends validating, then in progress; finalizing takes the rest.
VALIDATING, IN_PROGRESS = 0.1, 0.8


@dataclass
class FakeFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    created: float
    fault: str
    custom_ids: list[str]
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    ended_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        stamp = int(self.created)
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": stamp,
            "in_progress_at": None,
            "expires_at": stamp + 86400,
            "finalizing_at": None,
            "completed_at": int(self.ended_at) if self.status == "completed" else None,
            "failed_at": int(self.ended_at) if self.status == "failed" else None,
            "expired_at": int(self.ended_at) if self.status == "expired" else None,
            "cancelling_at": None,
            "cancelled_at": int(self.ended_at) if self.status == "cancelled" else None,
            "request_counts": {
                "total": self.counts["total"],
                "completed": self.counts["completed"],
                "failed": self.counts["failed"],
            },
            "metadata": self.metadata,
        }


class FakeBatchAPI(FakeOpenAI):
    """FakeOpenAI plus /v1/files and /v1/batches; see the module docstring."""

    def __init__(
        self,
        *,
        delay: float = 0.5,
        batch_faults: dict[int, str] | None = None,
        create_latency: float = 0.0,
        foreign: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        #: Output files lead with lines we never sent: ids that read as another seed's
        #: ("seed-05", "seed-1_0") with other content, and a duplicate of a real line.
        self.foreign = foreign
        self.delay = delay
        self.create_latency = create_latency
        self.batch_faults = batch_faults or {}
        self.files: dict[str, FakeFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.calls: Counter[str] = Counter()
        self._file_ids = itertools.count()

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}", self._file)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_delete("/v1/files/{id}", self._delete)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)

    # -- files ---------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        self.calls["files.create"] += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or purpose != "batch":
            return _error(400, "invalid_request_error", "expected a file and purpose=batch")
        with self._lock:
            made = FakeFile(
                f"file-{next(self._file_ids):06d}",
                upload.filename,
                str(purpose),
                upload.file.read(),
                int(time.time()),
            )
            self.files[made.id] = made
        return web.json_response(made.as_json())

    def _find_file(self, request: web.Request) -> FakeFile | web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        found = self.files.get(request.match_info["id"])
        return found if found is not None else _error(404, "invalid_request_error", "no such file")

    async def _file(self, request: web.Request) -> web.Response:
        self.calls["files.retrieve"] += 1
        found = self._find_file(request)
        return found if isinstance(found, web.Response) else web.json_response(found.as_json())

    async def _content(self, request: web.Request) -> web.Response:
        self.calls["files.content"] += 1
        found = self._find_file(request)
        if isinstance(found, web.Response):
            return found
        return web.Response(body=found.content, content_type="application/octet-stream")

    async def _delete(self, request: web.Request) -> web.Response:
        self.calls["files.delete"] += 1
        found = self._find_file(request)
        if isinstance(found, web.Response):
            return found
        with self._lock:
            self.files.pop(found.id, None)
        return web.json_response({"id": found.id, "object": "file", "deleted": True})

    # -- batches -------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        self.calls["batches.create"] += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await request.json()
        if body.get("input_file_id") not in self.files:
            return _error(400, "invalid_request_error", "input_file_id does not exist")
        lines = self.files[body["input_file_id"]].content.splitlines()
        with self._lock:
            number = len(self.batches)
            batch = FakeBatch(
                f"batch_{number:06d}",
                body["input_file_id"],
                body.get("endpoint", ""),
                body.get("completion_window", ""),
                body.get("metadata"),
                time.monotonic(),
                self.batch_faults.get(number, "ok"),
                [json.loads(line)["custom_id"] for line in lines],
            )
            batch.counts["total"] = len(lines)
            self.batches[batch.id] = batch
        if self.create_latency:
            await asyncio.sleep(self.create_latency)
        return web.json_response(batch.as_json())

    def _find_batch(self, request: web.Request) -> FakeBatch | web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        found = self.batches.get(request.match_info["id"])
        return found if found is not None else _error(404, "invalid_request_error", "no such batch")

    async def _retrieve(self, request: web.Request) -> web.Response:
        self.calls["batches.retrieve"] += 1
        batch = self._find_batch(request)
        if isinstance(batch, web.Response):
            return batch
        return web.json_response(self._advance(batch).as_json())

    async def _list(self, request: web.Request) -> web.Response:
        self.calls["batches.list"] += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        newest = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
        after = request.query.get("after")
        if after:
            newest = [b for b in newest if b.id < after]
        limit = int(request.query.get("limit", "20"))
        page = [self._advance(b).as_json() for b in newest[:limit]]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest) > limit,
            }
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        self.calls["batches.cancel"] += 1
        batch = self._find_batch(request)
        if isinstance(batch, web.Response):
            return batch
        self._advance(batch)
        with self._lock:
            if batch.status == "validating":
                batch.status, batch.ended_at = "cancelled", time.time()
            elif batch.status in ("in_progress", "finalizing"):
                self._finish(batch, cancelled=True)
        return web.json_response(batch.as_json())

    # -- the batch's life ----------------------------------------------------------------------

    def _advance(self, batch: FakeBatch) -> FakeBatch:
        """Move `batch` to the status its age calls for; write its files when it ends."""
        with self._lock:
            if batch.status in ("completed", "failed", "expired", "cancelled"):
                return batch
            age = (time.monotonic() - batch.created) / max(self.delay, 1e-9)
            if age < VALIDATING:
                batch.status = "validating"
            elif batch.fault == "failed":
                batch.status, batch.ended_at = "failed", time.time()
                batch.errors = {
                    "object": "list",
                    "data": [{"code": "invalid_request", "message": "fake failure", "line": 1}],
                }
            elif age < IN_PROGRESS:
                batch.status = "in_progress"
            elif age < 1:
                batch.status = "finalizing"
            else:
                self._finish(batch)
        return batch

    def _finish(self, batch: FakeBatch, cancelled: bool = False) -> None:
        """Answer the lines (under the lock): output and error files, counts, final status."""
        lines = self.files[batch.input_file_id].content.decode().splitlines()
        expired = batch.fault == "expired"
        answered = len(lines) // 2 if expired or cancelled else len(lines)
        output, errors = [], []
        for index, line in enumerate(lines):
            request = json.loads(line)
            custom_id, body = request["custom_id"], request["body"]
            if index >= answered:
                if not cancelled:
                    errors.append(_expired(custom_id))
                continue
            seed = body.get("seed")
            fault = self._fault_of(seed)
            n = next(self._ids)
            if fault in SUCCESS_FAULTS:
                if self.record and isinstance(seed, int):
                    self._seen.append(seed)
                response = {
                    "status_code": 200,
                    "request_id": f"req_fake{n:010d}",
                    "body": self.completion_body(body, seed, fault, n),
                }
                output.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": custom_id,
                        "response": response,
                        "error": None,
                    }
                )
            else:
                status = int(fault) if fault.isdigit() else 500
                response = {
                    "status_code": status,
                    "request_id": f"req_fake{n:010d}",
                    "body": {"error": {"message": f"fake {fault}", "type": "server_error"}},
                }
                errors.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": custom_id,
                        "response": response,
                        "error": None,
                    }
                )
        if self.foreign and output:
            output = _foreign(output) + output
        batch.output_file_id = self._write(batch, "output", output)
        batch.error_file_id = self._write(batch, "errors", errors)
        batch.counts["completed"] = len(output)
        batch.counts["failed"] = len(errors)
        final = "cancelled" if cancelled else "expired" if expired else "completed"
        batch.status, batch.ended_at = final, time.time()

    def _fault_of(self, seed: Any) -> str:
        """The chat fake's script for `seed` (one attempt used), as for a chat request."""
        script = self._faults.get(seed) if seed is not None else None
        if script is None:
            return self.default_fault
        attempt = self._attempts.get(seed, 0)
        self._attempts[seed] = attempt + 1
        return script[attempt] if attempt < len(script) else "ok"

    def _write(self, batch: FakeBatch, kind: str, rows: list[dict[str, Any]]) -> str | None:
        if not rows:
            return None
        made = FakeFile(
            f"file-{next(self._file_ids):06d}",
            f"{batch.id}_{kind}.jsonl",
            "batch_output",
            "".join(json.dumps(row) + "\n" for row in rows).encode(),
            int(time.time()),
        )
        self.files[made.id] = made
        return made.id


def _foreign(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines no request asked for: each real id written with a leading zero and with an
    underscore (both int() to a seed id), answered FOREIGN, and the first line twice."""
    forged = []
    for row in output:
        number = row["custom_id"].removeprefix("seed-")
        for custom_id in (f"seed-0{number}", f"seed-{number[:1]}_{number[1:] or '0'}"):
            copy = json.loads(json.dumps(row))
            copy["custom_id"] = custom_id
            copy["response"]["body"]["choices"][0]["message"]["content"] = "FOREIGN"
            forged.append(copy)
    return [*forged, output[0]]


def _expired(custom_id: str) -> dict[str, Any]:
    return {
        "id": None,
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.Response(status=status, body=json.dumps(body).encode(), headers=_JSON)
