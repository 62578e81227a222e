"""The fork server that runs inside the sandbox: one job in, one JSON line of results out.

This file is the whole program of a sandboxed worker, so it uses the standard library only and
is started as `python -I -c SOURCE` (it needs no file of the project inside the sandbox). The
worker imports common modules once, then for each job forks a supervisor that, when isolation
is on, enters new user, PID and mount namespaces and mounts a fresh size-capped tmpfs on
`/sandbox`; the supervisor forks the job's process, which is PID 1 of its namespace, so when it
ends every process it started dies with it. The job's process starts a new session (so it cannot
signal the worker's process group), takes the limits, runs the program once and each check in
turn, and reports on a pipe of its own. The worker enforces the wall-clock limit and caps what
the job prints.

A job is {"program", "checks": [{"tests" or "suite", "call", "bind": {alias: name}}],
"isolate"} and the
limits (see `Limits` in `sandbox.py`); its result is {"results": [{"status", "detail"}, ...],
"output": the tail of what it printed, "seconds"}, one result per check, each status one of
passed, failed, error, timeout, memory. Statuses come from the job's report pipe only when the
job got to the end: a program that exits early, or is killed, is an error. A message
{"suites": {name: tests}} compiles test suites once, for checks that name a suite instead of
carrying their tests (benchmark items' tests, run against many samples).
"""

from __future__ import annotations

import ast

# Imported once here, so that forked jobs do not pay for them.
import bisect  # noqa: F401
import collections  # noqa: F401
import contextlib
import ctypes
import dataclasses  # noqa: F401
import functools
import hashlib  # noqa: F401
import heapq  # noqa: F401
import io
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import random  # noqa: F401
import re  # noqa: F401
import resource
import select
import signal
import string  # noqa: F401
import sys
import time
import traceback
import types
import typing  # noqa: F401
import unittest

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CAPABILITY_VERSION_3 = 0x20080522
HOME = "/sandbox"
#: The user and group id a job has inside its namespace.
JOB_ID = 1000
DETAIL = 500
#: The job's sources by the file name they are compiled under, to quote failing lines.
SOURCES: dict[str, str] = {}
#: Exit codes of the job's process, read when it reports nothing (it died before the end).
EXIT_SETUP = 90


class CheckTimeout(BaseException):
    """Raised by SIGALRM when one check of a job takes longer than its share of the time."""


def main() -> None:
    """Serve jobs from stdin until it closes."""
    # Not dumpable: a job cannot read or write the worker's memory through /proc or ptrace.
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        message = json.loads(line)
        result = _load_suites(message["suites"]) if "suites" in message else serve(message)
        out.write(json.dumps(result).encode() + b"\n")
        out.flush()


def _load_suites(suites: dict[str, str]) -> dict:
    """Compile shared test suites once; a suite that does not compile is left out (a check
    naming it is then an error)."""
    for name, source in suites.items():
        try:
            SUITES[name] = Prepared(source, f"{name}.py")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            SUITES.pop(name, None)
    return {"suites": len(SUITES)}


def serve(job: dict) -> dict:
    """Run one job in a fresh process tree; never raises for anything the job does."""
    started = time.monotonic()
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.fork()
    if supervisor == 0:  # pragma: no cover - runs in the child
        os.close(out_r)
        os.close(res_r)
        _supervise(job, out_w, res_w)
    os.close(out_w)
    os.close(res_w)
    output, report, timed_out, overflow = _collect(job, supervisor, out_r, res_r, started)
    _, status = os.waitpid(supervisor, 0)
    seconds = round(time.monotonic() - started, 4)
    checks = len(job["checks"])
    results = _results(report, checks)
    if len(results) < checks:  # the job's process died before reporting every check
        why = _death(status, timed_out, overflow, job, output)
        results += [why] * (checks - len(results))
    tail = output[-job["output_tail"] :].decode("utf-8", "replace")
    return {"results": results, "output": tail, "seconds": seconds}


def _collect(
    job: dict, supervisor: int, out_r: int, res_r: int, started: float
) -> tuple[bytes, bytes, bool, bool]:
    """Read the job's output (keeping a capped tail) and report until both pipes close, killing
    the job at its deadline or when it prints more than allowed."""
    deadline = started + job["timeout"]
    output, report = bytearray(), bytearray()
    printed, timed_out, overflow = 0, False, False
    open_fds = {out_r, res_r}
    while open_fds:
        wait = deadline - time.monotonic()
        if wait <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(list(open_fds), [], [], wait)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                os.close(fd)
            elif fd == out_r:
                printed += len(chunk)
                output += chunk
                del output[: max(0, len(output) - job["output_tail"])]
                if printed > job["output"]:
                    overflow = True
            else:
                report += chunk[: max(0, 1_000_000 - len(report))]
        if overflow:
            break
    if open_fds:  # the deadline or the output cap: kill the tree, then drain nothing more
        _kill(supervisor)
        for fd in open_fds:
            os.close(fd)
    return bytes(output), bytes(report), timed_out, overflow


def _kill(supervisor: int) -> None:
    """SIGKILL the supervisor; the job's process dies with it (parent-death signal), and with
    it, as PID 1 of its namespace, every process it started. Unsandboxed, kill the job's
    process group instead, as the most that can be done."""
    with contextlib.suppress(OSError):
        os.killpg(supervisor, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.kill(supervisor, signal.SIGKILL)


def _results(report: bytes, checks: int) -> list[dict]:
    """Check results the job's process reported, one JSON line each; garbage ends the list."""
    results = []
    for line in report.splitlines()[:checks]:
        try:
            item = json.loads(line)
            status, detail = item["status"], str(item["detail"])[:DETAIL]
        except (ValueError, KeyError, TypeError):
            break
        if status not in ("passed", "failed", "error", "timeout", "memory"):
            break
        results.append({"status": status, "detail": detail})
    return results


def _death(status: int, timed_out: bool, overflow: bool, job: dict, output: bytes) -> dict:
    """Why the job's process stopped before reporting every check."""
    if timed_out:
        return {"status": "timeout", "detail": f"killed after {job['timeout']:g} s"}
    if overflow:
        return {"status": "error", "detail": f"printed more than {job['output']:,} bytes"}
    code = os.waitstatus_to_exitcode(status)
    if code == EXIT_SETUP:
        return {"status": "error", "detail": output.decode("utf-8", "replace").strip()[-DETAIL:]}
    number = -code if code < 0 else code - 128 if code > 128 else 0
    if not number:
        return {"status": "error", "detail": f"exited with status {code} before the end"}
    if number == signal.SIGXCPU:
        return {"status": "timeout", "detail": "CPU time limit"}
    if number == signal.SIGXFSZ:
        return {"status": "error", "detail": "file size limit"}
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    return {"status": "error", "detail": f"killed by {name}"}


def _supervise(job: dict, out_w: int, res_w: int) -> None:  # pragma: no cover - child
    """The supervisor: isolate, fork the job's process, exit with its status."""
    code = EXIT_SETUP
    try:
        os.setpgid(0, 0)
        home = _isolate(job["scratch"]) if job["isolate"] else _scratch()
        child = os.fork()
        if child == 0:
            _job(job, out_w, res_w, home)
        os.close(out_w)
        os.close(res_w)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        if not job["isolate"]:
            _remove(home)
    except Exception as exc:
        _setup_failed(out_w, exc)
    finally:
        os._exit(code)


def _setup_failed(out_w: int, exc: BaseException) -> None:  # pragma: no cover - child
    with contextlib.suppress(OSError):
        os.write(out_w, f"\nsandbox setup failed: {exc}".encode())


def _isolate(scratch: int) -> str:  # pragma: no cover - child
    """New user, PID and mount namespaces, and a fresh tmpfs on /sandbox for this job only."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{JOB_ID} {uid} 1"),
        ("gid_map", f"{JOB_ID} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)
    options = f"size={scratch},mode=0700".encode()
    if libc.mount(b"tmpfs", HOME.encode(), b"tmpfs", 0x2 | 0x4 | 0x8, options) != 0:
        raise OSError(ctypes.get_errno(), "mount")
    return HOME


def _scratch() -> str:  # pragma: no cover - child
    """Unsandboxed: a fresh temporary folder, the only isolation there is."""
    import tempfile

    return tempfile.mkdtemp(prefix="magicoder-job-")


def _remove(folder: str) -> None:  # pragma: no cover - child
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]


def _drop_capabilities() -> None:  # pragma: no cover - child
    """None of the capabilities its own user namespace gave it, and no way to gain any."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    if libc.capset(ctypes.byref(header), (_CapData * 2)()) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _job(job: dict, out_w: int, res_w: int, home: str) -> None:  # pragma: no cover - child
    """The job's process: limits, clean descriptors and environment, then the checks."""
    code = EXIT_SETUP
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if job["isolate"]:  # its own session: kill(0, ...) reaches nothing outside
            os.setsid()
            _drop_capabilities()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.closerange(3, res_w)
        os.closerange(res_w + 1, 65536)
        os.chdir(home)
        os.environ.clear()
        os.environ.update(HOME=home, TMPDIR=home, PATH="/usr/bin:/bin", LANG="C.UTF-8")
        limit = max(1, int(job["timeout"]) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
        resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_size"], job["file_size"]))
        if job["isolate"]:  # counted in the job's own user namespace; unsandboxed, it would
            # count every process the user runs
            resource.setrlimit(resource.RLIMIT_NPROC, (job["processes"], job["processes"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
        raw = open(1, "wb", buffering=0, closefd=False)  # noqa: SIM115 - likewise
        sys.stdout = io.TextIOWrapper(raw, write_through=True)
        sys.stderr = sys.stdout
        sys.argv = ["solution.py"]
        sys.setrecursionlimit(5000)
        report = os.fdopen(res_w, "w", buffering=1)
        code = 1
        run_checks(job, report)
        report.flush()
        code = 0
    except Exception as exc:
        if code == EXIT_SETUP:
            _setup_failed(out_w, exc)
    finally:
        os._exit(code)


def run_checks(job: dict, report: io.TextIOBase) -> None:  # pragma: no cover - child
    """Run the program once, then each check, writing one result line per check."""
    checks = job["checks"]
    SOURCES["solution.py"] = job["program"]
    budget = job["timeout"] / max(1, len(checks))
    namespace: dict = {"__name__": "solution", "__builtins__": __builtins__}
    outcome = _run(lambda: exec(compile(job["program"], "solution.py", "exec"), namespace), budget)
    if outcome is not None:  # a program that fails fails every check
        for _ in checks:
            report.write(json.dumps(outcome) + "\n")
        return
    for check in checks:
        report.write(json.dumps(_check(check, dict(namespace), budget)) + "\n")


class Prepared:
    """Tests compiled once, with what they hold: test functions and how many assertions."""

    def __init__(self, source: str, name: str = "tests.py") -> None:
        self.source = source
        self.name = name
        tree = ast.parse(source, name)  # SyntaxError: the caller reports it
        self.code = compile(tree, name, "exec")
        self.defined = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and node.name.startswith("test")
            and not node.args.args
        ]
        self.asserts = sum(isinstance(node, ast.Assert) for node in ast.walk(tree))


#: Test suites sent once to the worker (benchmark items' tests), compiled before any job forks.
SUITES: dict[str, Prepared] = {}


def _check(check: dict, namespace: dict, budget: float) -> dict:  # pragma: no cover - child
    """One check: bind aliases, run the tests as __main__, then their test functions, TestCase
    classes and the final call."""
    try:
        for alias, name in (check.get("bind") or {}).items():
            namespace[alias] = namespace[name]
    except KeyError as exc:
        return {"status": "error", "detail": f"the program defines no {exc.args[0]}"}
    SOURCES["check.py"] = check.get("call") or ""
    try:
        suite = check.get("suite")
        tests = SUITES[suite] if suite else Prepared(check.get("tests") or "")
    except KeyError:
        return {"status": "error", "detail": f"no test suite {check['suite']!r} in the sandbox"}
    except SyntaxError as exc:
        detail = f"SyntaxError in the tests: {exc.msg} (line {exc.lineno})"
        return {"status": "error", "detail": detail}
    SOURCES[tests.name] = tests.source
    namespace["__name__"] = "__main__"
    ran: list[int] = [0]
    unittest.main = _unittest_main(namespace, ran)  # type: ignore[assignment]

    def body() -> None:
        exec(tests.code, namespace)
        for name in tests.defined:
            namespace[name]()
        if not ran[0]:
            _unittest_main(namespace, ran)()
        if check.get("call"):
            exec(_compiled(check["call"]), namespace)

    outcome = _run(body, budget)
    if outcome is not None:
        return outcome
    if not (tests.asserts or check.get("call") or tests.defined or ran[0] > 0):
        return {"status": "error", "detail": "the tests check nothing"}
    return {"status": "passed", "detail": ""}


@functools.lru_cache(maxsize=4096)
def _compiled(call: str) -> types.CodeType:  # pragma: no cover - child
    """A check's final call, compiled once per job process (many checks share one)."""
    return compile(call, "check.py", "exec")


class TestsFailed(Exception):
    """unittest found failures (status failed) or only errors (status error)."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _unittest_main(namespace: dict, ran: list[int]):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Stands in for unittest.main: runs the TestCase classes the tests defined, once."""

    def main(*args: object, **kwargs: object) -> None:
        cases = [
            value
            for value in list(namespace.values())
            if isinstance(value, type)
            and issubclass(value, unittest.TestCase)
            and value is not unittest.TestCase
        ]
        if not cases:
            return
        loader = unittest.TestLoader()
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(case) for case in cases)
        result = unittest.TestResult()
        suite.run(result)
        ran[0] = max(1, result.testsRun)
        if result.failures:
            raise TestsFailed("failed", _last_line(result.failures[0][1]))
        if result.errors:
            raise TestsFailed("error", _last_line(result.errors[0][1]))

    return main


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _run(body, budget: float) -> dict | None:  # type: ignore[no-untyped-def]  # pragma: no cover
    """Run `body` with a per-check alarm; None when it succeeds, else the check's result."""

    def alarm(signum: int, frame: object) -> None:
        raise CheckTimeout

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        body()
        return None
    except CheckTimeout:
        return {"status": "timeout", "detail": f"longer than {budget:g} s"}
    except TestsFailed as exc:
        return {"status": exc.status, "detail": str(exc)}
    except AssertionError as exc:
        return {"status": "failed", "detail": _where(exc, "AssertionError")}
    except MemoryError:
        return {"status": "memory", "detail": "MemoryError: the memory limit was reached"}
    except SystemExit as exc:
        if exc.code in (None, 0):
            return None
        return {"status": "failed", "detail": f"exit status {exc.code}"}
    except SyntaxError as exc:
        return {"status": "error", "detail": f"SyntaxError: {exc.msg} (line {exc.lineno})"}
    except RecursionError:
        return {"status": "error", "detail": "RecursionError: maximum recursion depth exceeded"}
    except BaseException as exc:
        return {"status": "error", "detail": _where(exc, type(exc).__name__)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _where(exc: BaseException, kind: str) -> str:  # pragma: no cover - child
    """`Kind: message` and the line of the program or tests that raised it."""
    message = f"{kind}: {exc}" if str(exc) else kind
    # walk_tb, not extract_tb: no source lookups on disk (the sources are in SOURCES).
    frames = [
        (frame.f_code.co_filename, line)
        for frame, line in traceback.walk_tb(exc.__traceback__)
        if frame.f_code.co_filename in SOURCES
    ]
    if frames:
        name, line = frames[-1]
        lines = SOURCES[name].splitlines()
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        message += f" at {name}:{line}" + (f": {text}" if text else "")
    return message[:DETAIL]


if __name__ == "__main__":
    main()
