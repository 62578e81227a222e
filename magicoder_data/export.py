"""Export: a Hub-ready folder of parquet shards and a dataset card, from a run's kept samples.

`datasets.load_dataset(DIR)` loads it with no other arguments (the first config is the default)
and the Hub renders it. Configs:

- `oss-instruct`: the schema of ise-uiuc/Magicoder-OSS-Instruct-75K
  (lang, raw_index, index, seed, openai_fingerprint, problem, solution);
- `sft`: chat `messages` in Magicoder's wording;
- `lintseq`: instruction plus its LintSeq edit sequence.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, HubError, RunError
from .local import LOCAL_MODEL
from .outputs import MARKER, replacing_folder
from .store import RunStore, reason_totals

if TYPE_CHECKING:
    from huggingface_hub.errors import HfHubHTTPError

log = logging.getLogger("magicoder_data")
CONFIGS = ("oss-instruct", "sft", "lintseq")
SHARD_ROWS = 100_000
WRITE_BATCH = 2_000
#: What the card asks users to cite: the method (and LintSeq's when its config is exported).
MAGICODER_BIBTEX = """@inproceedings{wei2024magicoder,
  title={Magicoder: Empowering Code Generation with {OSS-Instruct}},
  author={Wei, Yuxiang and Wang, Zhe and Liu, Jiawei and Ding, Yifeng and Zhang, Lingming},
  booktitle={Proceedings of the 41st International Conference on Machine Learning},
  year={2024}
}"""
LINTSEQ_BIBTEX = """@misc{piterbarg2024lintseq,
  title={Training Language Models on Synthetic Edit Sequences Improves Code Synthesis},
  author={Piterbarg, Ulyana and Pinto, Lerrel and Fergus, Rob},
  year={2024},
  eprint={2410.02749},
  archivePrefix={arXiv}
}"""
#: Magicoder's system prompt for instruction tuning (src/magicoder/prompt_template.py).
SFT_SYSTEM = "You are a helpful coding assistant that responds appropriately to user instructions."


def _rows(store: RunStore, config: str) -> Iterator[dict[str, Any]]:
    if config == "lintseq":
        for row in store.iter_lintseq():
            yield {
                "instruction": row["instruction"],
                "program": row["program"],
                "language": row["language"],
                "edits": row["edits"],
                "text": row["text"],
                "seed_id": row["seed_id"],
                "sample": row["sample"],
            }
        return
    for index, row in enumerate(store.kept_samples()):
        if config == "oss-instruct":
            yield {
                "lang": row["language"],
                "raw_index": row["seed_id"],
                "index": index,
                "seed": row["seed"],
                "openai_fingerprint": row["system_fingerprint"] or "",
                "problem": row["problem"],
                "solution": row["solution"],
            }
        else:
            yield {
                "messages": [
                    {"role": "system", "content": SFT_SYSTEM},
                    {"role": "user", "content": row["problem"]},
                    {"role": "assistant", "content": row["solution"]},
                ],
                "lang": row["language"],
                "index": index,
            }


def _schema(config: str) -> Any:
    """Fixed column types, so every shard agrees whatever its first rows hold."""
    import pyarrow as pa

    text, number = pa.string(), pa.int64()
    if config == "oss-instruct":
        names = ("lang", "raw_index", "index", "seed", "openai_fingerprint", "problem", "solution")
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


def _write(rows: Iterable[dict[str, Any]], folder: Path, config: str) -> int:
    """Stream rows into parquet shards of at most SHARD_ROWS rows; returns the row count.

    Rows go out in batches of WRITE_BATCH, so memory holds one batch, not a shard; shards get
    their `-of-N` names once N is known. A config without rows still gets one (empty) shard.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(config)
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


def _check_finished(store: RunStore, configs: list[str]) -> None:
    """An export of a half-done stage would silently miss rows: say what to resume instead."""
    if store.stage_status("generate") is None:
        raise RunError(f"{store.root}: nothing to export yet; run `magicoder-data generate` first")
    if "lintseq" in configs and store.stage_status("lintseq") is None:
        raise RunError(f"{store.root}: no LintSeq edits; run `magicoder-data lintseq {store.root}`")
    for stage in ("generate", "clean", "decontaminate", "lintseq"):
        status = store.stage_status(stage)
        if status not in (None, "complete"):
            raise RunError(
                f"{store.root}: {stage} has not finished ({status}); resume it with "
                f"`magicoder-data {stage} {store.root}` before exporting"
            )
    for stage in ("clean", "decontaminate", "lintseq"):
        if missing := store.unseen(stage):
            raise RunError(
                f"{store.root}: {stage} has not seen {missing:,} newer samples; re-run "
                f"`magicoder-data {stage} {store.root}` before exporting"
            )


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
    _check_finished(store, configs)
    for stage in ("clean", "decontaminate"):
        if store.stage_status(stage) is None:
            log.warning(
                "%s: %s never ran, so the export is not %s; run `magicoder-data %s %s` first",
                store.root,
                stage,
                "cleaned" if stage == "clean" else "decontaminated",
                stage,
                store.root,
            )
    with replacing_folder(out, kind="export", protect=[store.root], overwrite=overwrite) as folder:
        counts = {
            config: _write(_rows(store, config), folder / "data" / config, config)
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
    api = HfApi(token=token)
    for stale in store.root.glob(".push-*"):  # left by a push that was killed
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".push-", dir=store.root) as tmp:
        folder = Path(tmp) / "dataset"
        rows = export(store, folder, configs, license, repo_id)
        with _hub_errors(repo_id, token, api.endpoint):
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
    changed = info.oid != before.sha
    store.record_push(repo_id, revision or "main", (info.oid, info.commit_url), rows, changed)
    where = f"{api.endpoint}/datasets/{repo_id}" + (f"/tree/{revision}" if revision else "")
    return {"url": where, "commit": info.oid, "changed": changed, "rows": rows}


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


def _table(funnel: dict[str, dict[str, int]]) -> list[str]:
    """A Markdown table of rows per language and stage, with a total row."""
    columns = next(iter(funnel.values()), {})
    total = {c: sum(row[c] for row in funnel.values()) for c in columns}
    return [
        "| language | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        *(
            f"| {language} | " + " | ".join(f"{n:,}" for n in row.values()) + " |"
            for language, row in [*funnel.items(), ("**total**", total)]
        ),
    ]


def _size_category(rows: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return name
    return "1M<n<10M"


def card(store: RunStore, counts: dict[str, int], license: str, where: str) -> str:
    """The dataset card: YAML metadata the Hub reads, then the run's provenance."""
    status = store.status()["stages"]
    configs = [
        {"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}]}
        | ({"default": True} if number == 0 else {})
        for number, name in enumerate(counts)
    ]
    languages = sorted({lang for lang in status.get("sample", {}).get("rows", {})})
    meta: dict[str, Any] = {
        "license": license,
        "task_categories": ["text-generation"],
        "language": ["en"],
        "tags": ["code", "synthetic", "oss-instruct", *languages],
        "size_categories": [_size_category(max(counts.values()))],
        "configs": configs,
    }
    generation = status.get("generate", {})
    config = store.stage_config("generate") or {}
    sample_config = store.stage_config("sample") or {}
    from huggingface_hub import DatasetCardData

    lines = [
        "---",
        DatasetCardData(**meta).to_yaml().rstrip(),
        "---",
        "",
        f"# {store.root.name}",
        "",
        "Synthetic code instruction data made the Magicoder OSS-Instruct way with "
        "[magicoder-data](https://pypi.org/project/magicoder-data/): a model writes a problem and "
        "solution inspired by a random snippet of real open-source code.",
        "",
        *(
            [
                f"> Generated by the embedded {LOCAL_MODEL} model, a 135M-parameter model meant "
                "for trying the pipeline: expect weak problems. Real datasets use a stronger "
                "model (see magicoder-data's README).",
                "",
            ]
            if config.get("model") == LOCAL_MODEL
            else []
        ),
        "## Configs",
        "",
        *(f"- `{name}`: {rows:,} rows" for name, rows in counts.items()),
        "",
        "## Provenance",
        "",
        f"- Generator model: `{config.get('model')}`; system fingerprints: "
        f"{', '.join(store.fingerprints()) or 'none reported'}",
        f"- Prompt template: `{config.get('template')}` (sha256 `{config.get('template_sha256')}`)",
        f"- Sampling: temperature {config.get('temperature')}, top_p {config.get('top_p')}, "
        f"max_tokens {config.get('max_tokens')}, "
        f"request seed {config.get('seed')} + index",
        f"- Seed source: `{sample_config.get('source')}`, "
        f"mix {json.dumps(sample_config.get('mix'))}, "
        f"snippets of {sample_config.get('min_lines')}-{sample_config.get('max_lines')} lines, "
        f"seed {sample_config.get('seed')}",
        f"- Tokens: {generation.get('prompt_tokens', 0):,} prompt + "
        f"{generation.get('completion_tokens', 0):,} completion; "
        f"cost US${generation.get('cost_usd', 0):,.4f}",
        "",
        "## Counts at every stage",
        "",
        *_table(store.funnel()),
        "",
        "Dropped, by stage and reason:",
        "",
        "| stage | reason | count |",
        "|---|---|---|",
    ]
    for stage, info in status.items():
        totals = sorted(reason_totals(info).items())
        lines += [f"| {stage} | {reason} | {n:,} |" for reason, n in totals]
    lines += ["", "## Decontamination", ""]
    decontam = store.stage_config("decontaminate")
    if decontam:
        lines.append(
            f"Benchmarks `{decontam['benchmarks']}`, methods {', '.join(decontam['methods'])} "
            f"(n-gram {decontam['ngram']}, TF-IDF threshold {decontam['threshold']})."
        )
        removed = sorted(reason_totals(status["decontaminate"]).items())
        lines += [f"- {reason}: {n:,} samples removed" for reason, n in removed]
        if not removed:
            lines.append("- no sample was flagged")
    else:
        lines.append("Not decontaminated: run `magicoder-data decontaminate` before exporting.")
    first, *others = counts
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'train = load_dataset("{where}", split="train")  # {first}',
        *(f'{name} = load_dataset("{where}", "{name}", split="train")' for name in others),
        "```",
        "",
        "## Citation",
        "",
        "```bibtex",
        MAGICODER_BIBTEX,
        *(["", LINTSEQ_BIBTEX] if "lintseq" in counts else []),
        "```",
    ]
    return "\n".join(lines) + "\n"
