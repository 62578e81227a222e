"""The backend seam: who answers `generate`'s requests, chosen by a validated name.

- `openai` (`online.py`): any OpenAI-compatible endpoint over the async SDK.
- `batch` (`batch.py`, with `--batch`): the same endpoint's Batch API, at half the price.
- `local` (`local.py`): the embedded llama.cpp server with a tiny model, for trying the pipeline
  with no key and no network.

`choose_backend` turns the `generate` options (and the environment, so `run CONFIG` and the
`generate` command behave the same) into one of them; `auto` picks `local` only when nothing
points anywhere else.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..llm import display_url
from .base import Backend, SendRequest
from .batch import BatchBackend, BatchRow, BatchStats, batches, cancel, open_batches
from .local import LOCAL_MODEL, LocalBackend
from .online import OnlineBackend

if TYPE_CHECKING:
    from ..generate import GenerateOptions

#: Every backend by the name that chooses it (`auto` chooses between them); `--batch` sends
#: the `openai` one's requests through the Batch API instead (`BatchBackend`).
BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend for backend in (OnlineBackend, LocalBackend)
}

#: Where the OpenAI SDK, and so `generate`, takes the endpoint from when none is given.
BASE_URL_ENV = "OPENAI_BASE_URL"

__all__ = [
    "BACKENDS",
    "Backend",
    "BatchBackend",
    "BatchRow",
    "BatchStats",
    "LocalBackend",
    "OnlineBackend",
    "SendRequest",
    "batches",
    "cancel",
    "choose_backend",
    "open_batches",
]


def choose_backend(
    options: GenerateOptions, stored: dict[str, Any] | None, batches_open: bool = False
) -> Backend:
    """The backend `options` ask for, given the run's `stored` generate config (None when new)
    and whether the run has batches open.

    `auto` is the local model when nothing names another: no API key, no base URL (option or
    environment), no model given, and a run that is new or already the local model's.
    `batch` (None: while batches are open) sends the online backend's requests as batches.
    """
    api_key = os.environ.get(options.api_key_env, "")
    if not api_key.isascii():
        raise ConfigError(f"the key in {options.api_key_env} has non-ASCII characters; check it")
    base_url = options.base_url
    if base_url is None:
        base_url = os.environ.get(BASE_URL_ENV) or None
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--base-url {display_url(base_url)!r} is not an http(s) URL")
    name: str = options.backend
    batch = batches_open if options.batch is None else options.batch
    if name == "auto":
        nothing_else = not (api_key or batch) and base_url is None and options.model is None
        local = nothing_else and (stored or {}).get("model") in (None, LOCAL_MODEL)
        name = LocalBackend.name if local else OnlineBackend.name
    if batch and name == LocalBackend.name:
        raise ConfigError("the local model has no Batch API; leave out --batch")
    chosen = BatchBackend if batch else BACKENDS[name]
    return chosen.from_options(options, options.client_settings(base_url), api_key)
