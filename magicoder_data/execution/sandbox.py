"""Run untrusted Python with its tests, isolated, many jobs a second.

`Sandbox` starts one warm worker per core. With isolation (the default) each worker runs under
bubblewrap (`bwrap`): new user, network, PID, IPC and UTS namespaces, no capabilities, a
read-only view of only the system and Python folders (no home, no run folder, no `/tmp` to
write to), and an environment holding nothing of the caller's. Inside, the worker forks a fresh
process tree per job with namespaces and a scratch tmpfs of its own (see `worker.py`), so a
job's start costs a fork, not an interpreter.

Without bubblewrap and user namespaces there is no isolation to be had: `Sandbox` refuses with
`SandboxError`, unless built with `unsafe=True` (the CLI's `--unsafe-no-sandbox`), which runs
jobs in plain child processes with the same limits, a scrubbed environment and a temporary
working folder, and nothing more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from ..errors import SandboxError
from .harness import FAST_AFTER
from .worker import BOOT
from .worker import STATUSES as REPORTED

Status = Literal["passed", "failed", "error", "timeout", "memory", "no_tests"]
#: What a check's outcome can be: the statuses the worker accepts from a job's report.
STATUSES: tuple[Status, ...] = REPORTED  # type: ignore[assignment]
UNSAFE_FLAG = "--unsafe-no-sandbox"
INSTALL = "install bubblewrap (apt install bubblewrap)"
#: System folders bound read-only into the sandbox (when they exist), besides Python's own.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The few files of /etc that programs need; the rest of /etc stays outside.
ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
)
#: Seconds a worker may take beyond a job's own timeout before it is deemed stuck and replaced.
GRACE = 5.0
#: Jobs queued per worker ahead of the oldest unfinished one (results are yielded in order).
LOOKAHEAD = 64
#: Statuses a fast run may settle: the program could only have made its own checks fail. A
#: pass, or tests that checked nothing, run again with the program apart.
SETTLED = ("failed", "error", "timeout", "memory")


@dataclass(frozen=True)
class Limits:
    """What one job may use."""

    timeout: float = 5.0
    """Wall-clock seconds for the program and all its checks."""
    memory: int = 4 << 30
    """Address space of each process, and the memory of all the job's processes together,
    bytes (4 GiB, as evalplus and SelfCodeAlign)."""
    file_size: int = 16 << 20
    """Largest file a job may write, bytes."""
    output: int = 1 << 20
    """Bytes a job may print before it is stopped."""
    output_tail: int = 4096
    """Bytes of what it printed that are kept."""
    scratch: int = 64 << 20
    """Size of the job's own writable folder, bytes."""
    processes: int = 64
    """Processes a job may run at once."""


@dataclass(frozen=True)
class Check:
    """Tests to run against the program: code run as `__main__` (asserts, `test_*`
    functions and TestCase classes all count), then `call` (e.g. HumanEval's
    `check(candidate)`), after binding each alias in `bind` to a name the program defines.
    `suite` names tests the sandbox was started with, instead of `tests`."""

    tests: str = ""
    call: str | None = None
    bind: dict[str, str] = field(default_factory=dict)
    suite: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One check's result: a status and a short reason (the failing assertion, exception...)."""

    status: Status
    detail: str = ""


@dataclass(frozen=True)
class Result:
    """One job's results, one per check, with the tail of what it printed."""

    outcomes: list[Outcome]
    output: str
    seconds: float


@dataclass(frozen=True)
class Job:
    """A program to run once, and the checks to run against it."""

    program: str
    checks: list[Check]


class Sandbox:
    """Warm workers that run jobs in parallel; use as a context manager.

    `run` runs one job (thread-safe); `map` runs many in parallel and yields results in order.
    `suites` are test sources compiled once in every worker, for checks that name them
    (benchmark items' tests, run against many samples).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        workers: int | None = None,
        *,
        unsafe: bool = False,
        suites: dict[str, str] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.unsafe = unsafe
        self.suites = suites or {}
        self.size = max(1, workers or os.cpu_count() or 1)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Sandbox:
        _check_memory(self.limits.memory)
        command = _command(self.unsafe)
        if self.unsafe:
            logging.getLogger("magicoder_data").warning(
                "%s: generated code runs WITHOUT isolation, as you on this machine", UNSAFE_FLAG
            )
        first = _Worker(command, self.limits, self.suites)
        self._workers.append(first)
        try:
            first.probe(self._payload("x = 1", [Check("assert x == 1")]))
            for _ in range(self.size - 1):
                self._workers.append(_Worker(command, self.limits, self.suites))
        except BaseException:
            self.close()
            raise
        for worker in self._workers:
            self._idle.put(worker)
        self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="sandbox")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker and the process trees they run."""
        for worker in self._workers:  # first, so jobs in flight end at once (as errors)
            worker.retired = True
            worker.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._workers.clear()

    def run(self, program: str, checks: list[Check]) -> Result:
        """Run `program` once and each check against it; one outcome per check.

        Many checks (a benchmark's tests against a sample) run first fast, program and tests
        in one process, where the program could only have failed itself: those failures
        stand, and the other checks run again with the program in a process of its own."""
        worker = self._idle.get()
        try:
            if len(checks) <= FAST_AFTER:
                return worker.submit(self._payload(program, checks), len(checks))
            first = worker.submit(self._payload(program, checks, fast=True), len(checks))
            again = [i for i, o in enumerate(first.outcomes) if o.status not in SETTLED]
            if not again:
                return first
            share = self.limits.timeout / len(checks)  # each check keeps its share of the time
            payload = self._payload(program, [checks[i] for i in again], timeout=share * len(again))
            second = worker.submit(payload, len(again))
        finally:
            self._idle.put(worker)
        outcomes = list(first.outcomes)
        for index, outcome in zip(again, second.outcomes, strict=True):
            outcomes[index] = outcome
        output = (first.output + second.output)[-self.limits.output_tail :]
        return Result(outcomes, output, round(first.seconds + second.seconds, 4))

    def map(self, jobs: Iterable[Job]) -> Iterator[Result]:
        """Results of `jobs`, in order, running `size` at a time; reads `jobs` lazily."""
        if self._pool is None:
            raise RuntimeError("use Sandbox as a context manager")
        pending: deque[Future[Result]] = deque()
        for job in jobs:
            pending.append(self._pool.submit(self.run, job.program, job.checks))
            if len(pending) >= LOOKAHEAD * self.size:  # wide: a job that hangs stalls no worker
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _payload(self, program: str, checks: list[Check], **given: object) -> bytes:
        job: dict[str, Any] = {
            "program": program,
            "checks": [asdict(check) for check in checks],
            "isolate": not self.unsafe,
            **asdict(self.limits),
            **given,
        }
        return json.dumps(job).encode() + b"\n"


class _Worker:
    """One warm fork server, replaced when it dies or stops answering."""

    def __init__(self, command: list[str], limits: Limits, suites: dict[str, str]) -> None:
        self.command = command
        self.limits = limits
        self.suites = suites
        self.lock = threading.Lock()
        #: Set when the sandbox closes: a worker that stops then is not replaced.
        self.retired = False
        self._start()

    def _start(self) -> None:
        """Start the worker and send it the shared test suites."""
        self._spawn()
        if self.suites:
            self._exchange(json.dumps({"suites": self.suites}).encode() + b"\n", GRACE * 6)

    def _spawn(self) -> None:
        # Where bwrap says why it could not start; closed in stop().
        self.errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            env=_environment(),
            cwd="/",
            start_new_session=True,
        )

    def probe(self, payload: bytes) -> None:
        """Run one trivial job that must pass; SandboxError saying why when the sandbox cannot
        start."""
        try:
            result = self.submit(payload, 1)
        except OSError as exc:
            raise SandboxError(f"the sandbox did not start: {exc}") from None
        if result.outcomes[0].status != "passed":
            self.errors.seek(0)
            said = self.errors.read().decode("utf-8", "replace").strip().splitlines()
            why = said[-1] if said else result.outcomes[0].detail
            raise SandboxError(
                f"the sandbox cannot isolate code on this machine ({why}); {INSTALL} with user "
                f"namespaces enabled, or pass {UNSAFE_FLAG} to run generated code unprotected"
            )

    def submit(self, payload: bytes, checks: int) -> Result:
        """Send one job and wait for its result; a dead or stuck worker is replaced and the job
        is an error."""
        with self.lock:
            line = self._exchange(payload, self.limits.timeout + GRACE)
            if line:
                data = json.loads(line)
                outcomes = [Outcome(r["status"], r["detail"]) for r in data["results"]]
                return Result(outcomes, data["output"], data["seconds"])
            died = self.process.poll() is not None
            self.stop()
            if self.retired:
                return Result([Outcome("error", "the sandbox closed")] * checks, "", 0.0)
            self._start()
            why = "the sandbox's worker died" if died else "the sandbox's worker stopped answering"
            return Result([Outcome("error", why)] * checks, "", 0.0)

    def _exchange(self, payload: bytes, wait: float) -> bytes:
        """Send one message and read the answer line; empty when the worker died or is stuck."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(payload)
            stdin.flush()
            ready, _, _ = select.select([stdout], [], [], wait)
            return stdout.readline() if ready else b""
        except (OSError, ValueError):  # a dead worker, or one the sandbox closed meanwhile
            return b""

    def stop(self) -> None:
        """Kill the worker and everything it started (its session and, isolated, its
        namespaces go with it); safe to call twice."""
        if self.errors.closed:
            return
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, 9)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.process.wait()
        self.errors.close()


def _check_memory(memory: int) -> None:
    """SandboxError when this process may not give jobs `memory` (a `ulimit -v` below it):
    every job would fail to start, and say only that."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and hard < memory:
        raise SandboxError(
            f"jobs may use {memory >> 20:,} MiB (--memory-mb) but this shell's limit is "
            f"{hard >> 20:,} MiB (ulimit -v {hard >> 10}): lower --memory-mb or raise the limit"
        )


def _environment() -> dict[str, str]:
    """All a worker gets of the caller's environment: nothing but a search path and a locale."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


#: Who isolated workers run as when the caller is root: never root, whose namespaces would map
#: a job to the host's root (able to write kernel settings under /proc/sys).
NOBODY = 65534
#: Run by root before bubblewrap: in a mount namespace of its own, Python's folders are bound
#: under a fresh tmpfs at argv[1] (so that nobody can reach them even under a private home),
#: then it becomes nobody and runs the rest of its arguments.
LAUNCH = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def check(result, what):
    if result != 0:
        raise SystemExit(f"sandbox launcher: {what}: {os.strerror(ctypes.get_errno())}")
check(libc.unshare(0x00020000), "unshare")
check(libc.mount(b"none", b"/", None, 0x40000 | 0x4000, None), "private mounts")
stage, count = sys.argv[1], int(sys.argv[2])
check(libc.mount(b"tmpfs", stage.encode(), b"tmpfs", 0, b"mode=0755"), "tmpfs")
for root in sys.argv[3 : 3 + count]:
    os.makedirs(stage + root, mode=0o755, exist_ok=True)
    check(libc.mount(root.encode(), (stage + root).encode(), None, 0x1000 | 0x4000, None), root)
os.setgroups([])
os.setgid(NOBODY)
os.setuid(NOBODY)
os.execv(sys.argv[3 + count], sys.argv[3 + count :])
""".replace("NOBODY", str(NOBODY))


def _command(unsafe: bool) -> list[str]:
    """The worker's command line: bwrap around Python (started as nobody when the caller is
    root), or Python alone when unsafe."""
    here = Path(__file__).parent
    sources = [
        item
        for name in ("wire", "harness", "worker")
        for item in (name, (here / f"{name}.py").read_text(encoding="utf-8"))
    ]
    # abspath, not realpath: a venv's python is a symlink whose target lacks the venv.
    interpreter = os.path.abspath(sys.executable)
    python = [interpreter, "-I", "-c", BOOT, *sources]  # BOOT: the worker's own boot line
    if unsafe:
        return python
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError(
            f"the sandbox needs bubblewrap, which is not installed: {INSTALL}, or pass "
            f"{UNSAFE_FLAG} to run generated code unprotected"
        )
    roots = _python_roots()
    if os.geteuid() != 0:
        return [bwrap, *_bwrap_options({root: root for root in roots}), *python]
    stage = next((d for d in ("/run", "/mnt", "/srv") if os.path.isdir(d)), "/tmp")
    launcher = [interpreter, "-I", "-c", LAUNCH, stage, str(len(roots)), *roots]
    binds = {stage + root: root for root in roots}
    return [*launcher, bwrap, *_bwrap_options(binds), *python]


def _bwrap_options(roots: dict[str, str]) -> list[str]:
    """Namespaces, no capabilities, and a read-only root holding only what Python needs:
    `roots` are Python's own folders (where bwrap finds each, where the job sees it)."""
    options = [
        "--unshare-all",
        "--unshare-user",
        # Not root inside: a job's own namespace may then map its id without CAP_SETFCAP.
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "HOME",
        "/sandbox",
    ]
    for path in SYSTEM:
        if os.path.islink(path):
            options += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            options += ["--ro-bind", path, path]
    for path in ETC:
        options += ["--ro-bind-try", path, path]
    for source, root in roots.items():
        options += ["--ro-bind", source, root]
    return [
        *options,
        "--dir",
        "/sandbox",
        "--dir",
        "/tmp",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        "/",
    ]


def _python_roots() -> list[str]:
    """The folders of this Python and its environment outside the system folders."""
    prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    found = {*map(os.path.abspath, prefixes), *map(os.path.realpath, prefixes)}
    found.add(os.path.dirname(os.path.realpath(sys.executable)))
    found.add(os.path.dirname(os.path.abspath(sys.executable)))
    outside = [p for p in found if not any(_within(p, s) for s in SYSTEM)]
    return sorted(p for p in outside if not any(p != q and _within(p, q) for q in outside))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
