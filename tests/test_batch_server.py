"""The loopback Batch API answers the real `openai` SDK as OpenAI's does (the batch backend's
tests stand on it)."""

from __future__ import annotations

import io
import json
import time

import openai
import pytest

from tests.batch_server import FakeBatchAPI
from tests.conftest import FAKE_KEY
from tests.openai_server import expected_content


def _input(seeds: list[int]) -> bytes:
    lines = [
        {
            "custom_id": f"seed-{seed}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "seed": seed,
                "messages": [{"role": "user", "content": "write a problem"}],
            },
        }
        for seed in seeds
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _wait(client: openai.OpenAI, batch_id: str) -> openai.types.Batch:
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.05)


def _lines(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_a_batch_goes_through_its_statuses_and_answers_by_seed_faults():
    with FakeBatchAPI(delay=0.4, faults={3: ["500"], 4: ["truncate"]}, api_key=FAKE_KEY) as api:
        client = openai.OpenAI(base_url=api.base_url, api_key=FAKE_KEY, max_retries=0)
        upload = client.files.create(
            file=("in.jsonl", io.BytesIO(_input([1, 2, 3, 4]))), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"run": "r1"},
        )
        assert batch.status == "validating" and batch.metadata == {"run": "r1"}
        assert client.batches.retrieve(batch.id).status in ("validating", "in_progress")
        done = _wait(client, batch.id)
        assert done.status == "completed"
        assert (
            done.request_counts.total,
            done.request_counts.completed,
            done.request_counts.failed,
        ) == (4, 3, 1)
        output = {line["custom_id"]: line for line in _lines(client, done.output_file_id)}
        body = output["seed-1"]["response"]["body"]
        assert body["choices"][0]["message"]["content"] == expected_content(1)
        assert output["seed-4"]["response"]["body"]["choices"][0]["finish_reason"] == "length"
        (failed,) = _lines(client, done.error_file_id)
        assert failed["custom_id"] == "seed-3" and failed["response"]["status_code"] == 500
        assert [b.id for b in client.batches.list(limit=10)] == [batch.id]
        assert client.files.delete(upload.id).deleted
        assert api.calls["batches.retrieve"] >= 2


def test_expired_failed_and_cancelled_batches():
    with FakeBatchAPI(delay=0.3, batch_faults={0: "expired", 1: "failed"}) as api:
        client = openai.OpenAI(base_url=api.base_url, api_key="sk-x", max_retries=0)
        upload = client.files.create(
            file=("in.jsonl", io.BytesIO(_input([1, 2, 3, 4]))), purpose="batch"
        )
        made = [
            client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            for _ in range(3)
        ]
        cancelled = client.batches.cancel(made[2].id)
        assert cancelled.status == "cancelled"
        expired = _wait(client, made[0].id)
        assert expired.status == "expired"
        assert len(_lines(client, expired.output_file_id)) == 2
        errors = _lines(client, expired.error_file_id)
        assert [e["error"]["code"] for e in errors] == ["batch_expired", "batch_expired"]
        failed = _wait(client, made[1].id)
        assert failed.status == "failed" and failed.errors is not None
        assert failed.output_file_id is None


def test_a_bad_key_is_refused():
    with FakeBatchAPI(api_key=FAKE_KEY) as api:
        client = openai.OpenAI(base_url=api.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            client.files.create(file=("in.jsonl", io.BytesIO(_input([1]))), purpose="batch")
