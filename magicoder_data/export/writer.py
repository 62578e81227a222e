"""The parquet side of an export: rows per config, fixed schemas, shards, and the folder."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..lintseq.stage import iter_lintseq
from ..outputs import replacing_folder
from ..store import RunStore
from .card import card
from .stage import check_finished, kept_samples

log = logging.getLogger("magicoder_data")
SHARD_ROWS = 100_000
WRITE_BATCH = 2_000
#: Magicoder's system prompt for instruction tuning (src/magicoder/prompt_template.py).
SFT_SYSTEM = "You are a helpful coding assistant that responds appropriately to user instructions."


#: Columns the oss-instruct config adds after Magicoder's when the run's samples have tests.
VERIFIED = ("tests", "verify_status", "verify_detail")


def _rows(store: RunStore, config: str, verified: bool) -> Iterator[dict[str, Any]]:
    if config == "lintseq":
        for sequence in iter_lintseq(store):
            yield {
                "instruction": sequence.instruction,
                "program": sequence.program,
                "language": sequence.language,
                "edits": sequence.edits,
                "text": sequence.text,
                "seed_id": sequence.seed_id,
                "sample": sequence.sample,
            }
        return
    for index, row in enumerate(kept_samples(store)):
        if config == "oss-instruct":
            yield {
                "lang": row.language,
                "raw_index": row.seed_id,
                "index": index,
                "seed": row.snippet,
                "openai_fingerprint": row.system_fingerprint or "",
                "problem": row.problem,
                "solution": row.solution,
                **({name: getattr(row, name) for name in VERIFIED} if verified else {}),
            }
        else:
            yield {
                "messages": [
                    {"role": "system", "content": SFT_SYSTEM},
                    {"role": "user", "content": row.problem},
                    {"role": "assistant", "content": row.solution},
                ],
                "lang": row.language,
                "index": index,
            }


def _schema(config: str, verified: bool) -> Any:
    """Fixed column types, so every shard agrees whatever its first rows hold; oss-instruct
    has Magicoder's columns, then the tests and verdicts when the run has them."""
    import pyarrow as pa

    text, number = pa.string(), pa.int64()
    if config == "oss-instruct":
        names = (
            "lang",
            "raw_index",
            "index",
            "seed",
            "openai_fingerprint",
            "problem",
            "solution",
            *(VERIFIED if verified else ()),
        )
        return pa.schema([(n, number if n.endswith("index") else text) for n in names])
    if config == "sft":
        message = pa.struct([("role", text), ("content", text)])
        return pa.schema([("messages", pa.list_(message)), ("lang", text), ("index", number)])
    return pa.schema(
        [
            ("instruction", text),
            ("program", text),
            ("language", text),
            ("edits", pa.list_(text)),
            ("text", text),
            ("seed_id", number),
            ("sample", number),
        ]
    )


def _write(rows: Iterable[dict[str, Any]], folder: Path, schema: Any) -> int:
    """Stream rows into parquet shards of at most SHARD_ROWS rows; returns the row count.

    Rows go out in batches of WRITE_BATCH, so memory holds one batch, not a shard; shards get
    their `-of-N` names once N is known. A config without rows still gets one (empty) shard.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rows = iter(rows)  # shards slice one stream
    written: list[Path] = []
    total = 0
    while True:
        shard = islice(rows, SHARD_ROWS)
        batch = list(islice(shard, WRITE_BATCH))
        if not batch and written:
            break
        written.append(folder / f"shard-{len(written):05d}.parquet")
        with pq.ParquetWriter(written[-1], schema) as writer:
            while True:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                total += len(batch)
                batch = list(islice(shard, WRITE_BATCH))
                if not batch:
                    break
    for number, path in enumerate(written):
        path.rename(folder / f"train-{number:05d}-of-{len(written):05d}.parquet")
    return total


def export(
    store: RunStore,
    out: Path,
    configs: list[str],
    license: str = "other",
    repo_id: str | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write the chosen configs and a dataset card into `out`; returns rows per config.

    `out` is replaced only when it is new, empty or an earlier export (see `outputs`), or with
    `overwrite`. `repo_id` is where the folder is going, for the card's loading example.
    """
    from ..pipeline import STAGES
    from ..verify import has_tests

    check_finished(store, configs)
    for stage in STAGES:
        if stage.filters and store.stage_status(stage.name) is None and stage.expected(store):
            log.warning(
                "%s: %s never ran, so the export is not %s; run `magicoder-data %s %s` first",
                store.root,
                stage.name,
                stage.funnel,
                stage.name,
                store.root,
            )
    verified = has_tests(store) or store.stage_config("verify") is not None
    with replacing_folder(out, kind="export", protect=[store.root], overwrite=overwrite) as folder:
        counts = {
            config: _write(
                _rows(store, config, verified),
                folder / "data" / config,
                _schema(config, verified),
            )
            for config in configs
        }
        if not any(counts.values()):
            raise RunError(
                f"{store.root}: no sample survived generation and cleaning; nothing to export"
            )
        (folder / "README.md").write_text(
            card(store, counts, license, repo_id or str(out)), encoding="utf-8"
        )
    return counts
