"""The fork server that runs inside the sandbox: one job in, one JSON line of results out.

This file is the whole program of a sandboxed worker, with `wire.py` and `harness.py` beside it:
standard library only, started as `python -I -c BOOT` with the three sources as arguments (it
needs no file of the project inside the sandbox). The worker imports common modules once, then
for each job forks a supervisor that, when isolation is on, enters new user, PID, mount, IPC and
UTS namespaces and mounts a fresh size-capped tmpfs on `/sandbox` and another on `/dev/shm`;
the supervisor forks the job's first process, which is PID 1 of its namespace, so when it ends
every process the job started dies with it, and every file it wrote is gone. That process runs
the tests and forks the program's own processes (`harness.py`): the verdict is the tests'
side's, reported on a pipe the program never holds. The worker enforces the wall-clock limit,
caps what the job prints, and watches the job's process tree: more memory than the limit in all
its processes together, or more processes than allowed, ends the job.

A job is {"program", "checks": [{"tests" or "suite", "call", "bind": {alias: name}}],
"isolate"} and the limits (see `Limits` in `sandbox.py`); its result is {"results": [{"status",
"detail"}, ...], "output": the tail of what it printed, "seconds"}, one result per check, each
status one of passed, failed, error, timeout, memory, no_tests. Statuses come from the tests'
side's report, in check order, followed by a line saying it reported every check; a job that
stops before that is an error (or a timeout, or memory) for each check it did not report. A
message {"suites": {name: tests}} compiles test suites once, for checks that name a suite
instead of carrying their tests (benchmark items' tests, run against many samples).
"""

# Imported once here, so that forked jobs do not pay for them.
import bisect  # noqa: F401
import collections  # noqa: F401
import contextlib
import ctypes
import dataclasses  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
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
import typing  # noqa: F401

try:
    from . import harness
except ImportError:  # inside the sandbox: loaded by the boot line
    import harness  # type: ignore[no-redef]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_CHILD_SUBREAPER = 36
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 0x1, 0x20, 0x1000, 0x4000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CAPABILITY_VERSION_3 = 0x20080522
HOME = "/sandbox"
#: The job's own /dev/shm (POSIX shared memory, multiprocessing's semaphores), bytes.
SHM = 8 << 20
#: Seconds between two looks at the job's process tree.
WATCH = 0.05
#: The user and group id a job has inside its namespace.
JOB_ID = 1000
DETAIL = 500
#: Exit codes of the job's process, read when it reports nothing (it died before the end).
EXIT_SETUP = 90


#: The worker's program: the sources given as arguments become modules, then it serves.
BOOT = (
    "import sys, types\n"
    "for name, source in zip(sys.argv[1::2], sys.argv[2::2]):\n"
    "    module = sys.modules[name] = types.ModuleType(name)\n"
    "    exec(compile(source, name + '.py', 'exec'), module.__dict__)\n"
    "sys.modules['worker'].main()\n"
)


def main() -> None:
    """Serve jobs from stdin until it closes (or, started afresh inside a job, be its
    solution side)."""
    if harness.RESPAWN in os.environ:
        harness.respawned()
    harness.BOOT[:] = [sys.executable, "-I", "-c", BOOT, *sys.argv[1:]]
    # Not dumpable: a job cannot read or write the worker's memory through /proc or ptrace.
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        message = json.loads(line) if line.strip() else None
        del line  # a job's tests are nowhere in the frames its program's process inherits
        if message is None:
            continue
        result = _load_suites(message["suites"]) if "suites" in message else serve(message)
        del message
        _clear_ipc()
        out.write(json.dumps(result).encode() + b"\n")
        out.flush()
        del result  # what one job said is in no frame the next job's program inherits


def _load_suites(suites: dict[str, str]) -> dict:
    """Compile shared test suites once; a suite that does not compile is left out (a check
    naming it is then an error)."""
    for name, source in suites.items():
        try:
            harness.SUITES[name] = harness.Prepared(source, f"{name}.py")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            harness.SUITES.pop(name, None)
    return {"suites": len(harness.SUITES)}


class Watch:
    """What the worker saw of a job it had to stop."""

    def __init__(self) -> None:
        self.timed_out = False
        self.overflow = False
        self.over = ""


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
    watch = Watch()
    output, report = _collect(job, supervisor, out_r, res_r, started, watch)
    _, status = os.waitpid(supervisor, 0)
    seconds = round(time.monotonic() - started, 4)
    checks = len(job["checks"])
    results = _results(report, checks)
    if len(results) < checks:  # the job stopped before reporting every check
        why = _death(status, watch, job, output)
        results += [why] * (checks - len(results))
    tail = output[-job["output_tail"] :].decode("utf-8", "replace")
    return {"results": results, "output": tail, "seconds": seconds}


def _collect(
    job: dict, supervisor: int, out_r: int, res_r: int, started: float, watch: Watch
) -> tuple[bytes, bytes]:
    """Read the job's output (keeping a capped tail) and report until both pipes close, killing
    the job at its deadline, when it prints more than allowed, or when its processes together
    hold more memory or are more than allowed."""
    deadline = started + job["timeout"]
    look = started + WATCH
    output, report = bytearray(), bytearray()
    printed = 0
    open_fds = {out_r, res_r}
    while open_fds and not (watch.overflow or watch.over):
        now = time.monotonic()
        if now >= deadline:
            watch.timed_out = True
            break
        if now >= look:
            watch.over = _over_budget(supervisor, job)
            look = now + WATCH
            continue
        ready, _, _ = select.select(list(open_fds), [], [], min(deadline, look) - now)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                os.close(fd)
            elif fd == out_r:
                printed += len(chunk)
                output += chunk
                del output[: max(0, len(output) - job["output_tail"])]
                watch.overflow = printed > job["output"]
            else:
                report += chunk[: max(0, 1_000_000 - len(report))]
    if open_fds:  # stopped: kill the tree, then drain nothing more
        _kill(supervisor)
        for fd in open_fds:
            os.close(fd)
    return bytes(output), bytes(report)


def _over_budget(root: int, job: dict) -> str:
    """Why the job's process tree is over its limits (memory of all its processes together,
    their number), or ""."""
    tree = _tree(root)
    if len(tree) - 2 > job["processes"]:  # the supervisor and the tests' side are the harness's
        return f"more than {job['processes']} processes"
    shared = _ipc_bytes()
    pages = sum(rss for _, rss in tree)
    if pages * PAGE + shared <= job["memory"]:
        return ""
    used = shared + sum(_proportional(pid) or rss * PAGE for pid, rss in tree)
    if used <= job["memory"]:
        return ""
    return f"the job's processes held more than {job['memory'] >> 20:,} MiB together"


PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> list[tuple[int, int]]:
    """(pid, resident pages) of `root` and every process under it."""
    children: dict[int, list[int]] = {}
    resident: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
            fields = data[data.rindex(b")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(name))
            resident[int(name)] = int(fields[21])
        except (OSError, ValueError, IndexError):
            continue
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append((pid, resident.get(pid, 0)))
        stack += children.get(pid, [])
    return found


#: System V IPC objects: their /proc table, the column of bytes they hold, how to remove one.
IPC = (("shm", "rss", "shmctl"), ("msg", "cbytes", "msgctl"), ("sem", None, "semctl"))
IPC_RMID = 0


def _ipc_objects(kind: str) -> list[dict[str, str]]:
    """The rows of /proc/sysvipc/KIND: what the worker's IPC namespace holds (one job at a
    time runs in it, so all of it is the current job's)."""
    try:
        with open(f"/proc/sysvipc/{kind}") as handle:
            header, *rows = handle.read().splitlines()
    except (OSError, ValueError):
        return []
    names = header.split()
    return [dict(zip(names, row.split(), strict=False)) for row in rows]


def _ipc_bytes() -> int:
    """Memory held by System V shared memory and message queues: no process's, so counted
    here."""
    return sum(
        int(row.get(column, 0) or 0)
        for kind, column, _ in IPC
        if column
        for row in _ipc_objects(kind)
    )


def _clear_ipc() -> None:
    """Remove every System V IPC object a job left (POSIX queues it cannot create)."""
    libc = ctypes.CDLL(None)
    for kind, _, remove in IPC:
        for row in _ipc_objects(kind):
            key = {"shm": "shmid", "msg": "msqid", "sem": "semid"}[kind]
            with contextlib.suppress(ValueError, KeyError):
                if remove == "semctl":
                    libc.semctl(int(row[key]), 0, IPC_RMID)
                else:
                    getattr(libc, remove)(int(row[key]), IPC_RMID, None)


def _proportional(pid: int) -> int:
    """A process's proportional share of the memory it maps, bytes (0 when unreadable): forked
    copies share their pages, which resident sizes count once per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kill(supervisor: int) -> None:
    """SIGKILL the supervisor; the job's first process dies with it (parent-death signal), and
    with it, as PID 1 of its namespace, every process it started. Unsandboxed, kill the job's
    process tree as found instead, as the most that can be done."""
    for pid, _ in reversed(_tree(supervisor)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


STATUSES = ("passed", "failed", "error", "timeout", "memory", "no_tests")


def _results(report: bytes, checks: int) -> list[dict]:
    """Check results the tests' side reported, in order, one JSON line each; garbage ends the
    list, and a report without its last line passes nothing."""
    results: list[dict] = []
    done = False
    for line in report.splitlines()[: checks + 1]:
        try:
            item = json.loads(line)
            if item.get("done") == checks == len(results):
                done = True
                break
            status, detail = item["status"], str(item["detail"])[:DETAIL]
        except (ValueError, KeyError, TypeError, AttributeError):
            break
        if status not in STATUSES or item.get("check") != len(results):
            break
        results.append({"status": status, "detail": detail})
    if not done:
        cut = "the harness stopped before its end"
        results = [
            r if r["status"] != "passed" else {"status": "error", "detail": cut} for r in results
        ]
    return results


def _death(status: int, watch: Watch, job: dict, output: bytes) -> dict:
    """Why the job stopped before reporting every check."""
    if watch.timed_out:
        return {"status": "timeout", "detail": f"killed after {job['timeout']:g} s"}
    if watch.overflow:
        return {"status": "error", "detail": f"printed more than {job['output']:,} bytes"}
    if watch.over:
        return {"status": "memory" if "MiB" in watch.over else "error", "detail": watch.over}
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
    """The supervisor: isolate, fork the job's first process, exit with its status."""
    code = EXIT_SETUP
    try:
        os.setpgid(0, 0)
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans stay in the job's tree
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # (the worker is not) to write its own id maps
        home = _isolate(job["scratch"]) if job["isolate"] else _scratch()
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        child = os.fork()
        if child == 0:
            _job(job, out_w, res_w, home)
        os.close(out_w)
        os.close(res_w)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        if not job["isolate"]:
            _kill_tree()
            _remove(home)
    except Exception as exc:
        _setup_failed(out_w, exc)
    finally:
        os._exit(code)


def _kill_tree() -> None:  # pragma: no cover - child
    """Unsandboxed, the supervisor adopts orphans: kill what is left of the job."""
    for pid, _ in _tree(os.getpid())[1:]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, 0)[0]:
            pass


def _setup_failed(out_w: int, exc: BaseException) -> None:  # pragma: no cover - child
    with contextlib.suppress(OSError):
        os.write(out_w, f"\nsandbox setup failed: {exc}".encode())


def _isolate(scratch: int) -> str:  # pragma: no cover - child
    """New user, PID, mount and UTS namespaces, a fresh tmpfs on /sandbox and a small one on
    /dev/shm, for this job only: nothing it writes outlives it or reaches the next job. (A new
    IPC namespace per job would cost a third of a job's time: the worker removes what a job
    left in its own instead, see `_clear_ipc`.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    spaces = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS
    if libc.unshare(spaces) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{JOB_ID} {uid} 1"),
        ("gid_map", f"{JOB_ID} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)
    for where, size in ((HOME, scratch), ("/dev/shm", SHM)):
        options = f"size={size},mode=0700".encode()
        if libc.mount(b"tmpfs", where.encode(), b"tmpfs", 0x2 | 0x4 | 0x8, options) != 0:
            raise OSError(ctypes.get_errno(), f"mount {where}")
    return HOME


def _own_proc() -> None:  # pragma: no cover - child
    """A /proc of the job's own PID namespace (no process of the worker's is in it), with
    /proc/sys read-only: no kernel setting, not even its namespaces' own, can be changed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount(b"proc", b"/proc", b"proc", 0x2 | 0x4 | 0x8, None)  # where refused, keep the old
    sys_ = b"/proc/sys"
    if libc.mount(sys_, sys_, None, MS_BIND | MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), "mount /proc/sys")
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | 0x2 | 0x4 | 0x8
    if libc.mount(None, sys_, None, flags, None) != 0:
        raise OSError(ctypes.get_errno(), "read-only /proc/sys")


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
    """The job's first process: limits, clean descriptors and environment, then the tests'
    side, which forks the program's."""
    code = EXIT_SETUP
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if job["isolate"]:  # its own session: kill(0, ...) reaches nothing outside
            _own_proc()
            os.setsid()
            _drop_capabilities()
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the program cannot read or trace it
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        out_w = 1  # its own number may be closed next: a setup failure is said on stdout
        os.closerange(3, res_w)
        os.closerange(res_w + 1, 65536)
        os.chdir(home)
        os.environ.clear()
        os.environ.update(HOME=home, TMPDIR=home, PATH="/usr/bin:/bin", LANG="C.UTF-8")
        _limit(job)
        harness.as_a_program()
        report = os.fdopen(res_w, "w", buffering=1)
        code = 1
        harness.tests_side(job, report)
        code = 0
    except Exception as exc:
        if code == EXIT_SETUP:
            _setup_failed(out_w, exc)
    finally:
        os._exit(code)


def _limit(job: dict) -> None:  # pragma: no cover - child
    """Per-process limits, for the tests' side and the program's processes alike."""
    limit = max(1, int(job["timeout"]) + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
    resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_size"], job["file_size"]))
    if job["isolate"]:  # counted in the job's own user namespace; unsandboxed, it would
        # count every process the user runs
        resource.setrlimit(resource.RLIMIT_NPROC, (job["processes"], job["processes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))  # no POSIX queue to outlive the job


if __name__ == "__main__":
    main()
