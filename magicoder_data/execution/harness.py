"""A job's two sides: the program runs in processes of its own, its tests in the job's first
process, and the verdict is that process's alone.

A verdict written by the process that runs the code under test can be faked by that code: it
can exit early, patch the checks, walk frames to the report, forge the report channel. So the
job's first process (the tests' side, PID 1 of the job's namespace when isolated, not dumpable)
forks the solution side before it reads any test: that process runs the program once and then
serves requests over a socket (`wire.py`). Each check's tests run on the tests' side with the
program's names bound to proxies; what a call returns crosses as plain data, compared with
Python's own equality by the tests' side, or as a handle that equals no plain value. The
solution side holds no report channel, no test and no harness state that decides anything; an
exit of any kind there while a check runs is an error, never a pass.

A check passes only when its tests ran to their end and at least one assertion (an `assert`, a
TestCase assertion, the final call's) ran to its end; tests that check nothing are `no_tests`,
with the reason when it can be told (a `check` never called, async or skipped tests, pytest
constructs without pytest).

Standard library only: this file runs inside the sandbox (see `worker.py`).
"""

import ast
import builtins
import contextlib
import io
import json
import os
import signal
import socket
import sys
import traceback
import types
import unittest

try:
    from . import wire
except ImportError:  # inside the sandbox: loaded by the worker's boot line
    import wire  # type: ignore[no-redef]

DETAIL = 500
#: The job's sources by the file name they are compiled under, to quote failing lines.
SOURCES: dict[str, str] = {}
#: Assertions that ran to their end in the current check.
CHECKED = [0]
COUNTER = "_magicoder_checked_"


class CheckTimeout(BaseException):
    """Raised by SIGALRM when one check takes longer than its share of the time."""


class TestsFailed(Exception):
    """unittest found failures (status failed) or only errors (status error)."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _checked() -> None:
    CHECKED[0] += 1


def _count_unittest_assertions() -> None:
    """Every public TestCase assertion counts as a check when it returns."""

    def counted(method):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            result = method(*args, **kwargs)
            _checked()
            return result

        return wrapper

    for name, method in vars(unittest.TestCase).items():
        if name.startswith(("assert", "fail")) and callable(method) and name != "failureException":
            setattr(unittest.TestCase, name, counted(method))


_count_unittest_assertions()


class _Counted(ast.NodeTransformer):
    """After every `assert`, a call that counts it as run to its end."""

    def visit_Assert(self, node: ast.Assert) -> list[ast.stmt]:
        where = {"lineno": node.lineno, "col_offset": node.col_offset}
        name = ast.Name(COUNTER, ast.Load(), **where)
        return [node, ast.Expr(ast.Call(name, [], [], **where), **where)]


class Prepared:
    """Tests compiled once, counting their assertions, with what they hold: test functions,
    and why they might check nothing."""

    def __init__(self, source: str, name: str = "tests.py") -> None:
        self.source = source
        self.name = name
        tree = ast.parse(source, name)  # SyntaxError: the caller reports it
        self.defined = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and node.name.startswith("test")
            and not node.args.args
        ]
        self.code = compile(_Counted().visit(tree), name, "exec", dont_inherit=True)

    @property
    def idle(self) -> str:
        """Why these tests may run no check (read again from the text: rarely asked)."""
        return _idle_reason(ast.parse(self.source, self.name))


def _idle_reason(tree: ast.Module) -> str:
    """Why tests like these may run no check, told from their text."""
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef) and node.name.startswith("test"):
            return f"async test {node.name} is never awaited"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:
                text = ast.unparse(decorator)
                if text.startswith("pytest."):
                    return f"{node.name} uses {text.split('(')[0]}, which needs pytest"
                if "skip" in text:
                    return f"{node.name} is skipped"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and node.args.args:
            return f"{node.name} takes pytest fixtures, which need pytest"
        if (
            isinstance(node, ast.FunctionDef)
            and node.name not in called
            and any(isinstance(inner, ast.Assert) for inner in ast.walk(node))
            and not node.name.startswith("test")
        ):
            return f"{node.name}() is defined but never called"
        guard = ast.unparse(node.test) if isinstance(node, ast.If) else ""
        if "__name__" in guard and "'__main__'" not in guard:
            return f"the guard `{guard}` is never true"
    return "no assertion ran"


#: Test suites sent once to the worker (benchmark items' tests), compiled before any job forks.
SUITES: dict[str, Prepared] = {}


# -- the solution side --------------------------------------------------------------------

#: The worker's own command line (its boot line and sources), to start a clean solution side.
BOOT: list[str] = []
#: Set in the environment of a solution side started afresh: its socket's descriptor.
RESPAWN = "MAGICODER_SOLUTION_FD"


def solution_side(job: dict, control: socket.socket) -> None:  # pragma: no cover - child
    """Forked from the tests' side before it read any test: run the program once, send its
    names, then serve requests; never returns."""
    keep = control.fileno()
    os.closerange(3, keep)  # above all the report's pipe: only the tests' side holds it
    os.closerange(keep + 1, 65536)
    program = job["program"]
    for check in job.get("checks", []):  # no test is left within reach of the program
        check.clear()
    job.get("checks", []).clear()
    job.clear()
    SUITES.clear()
    SOURCES.clear()
    _solution(program, control)


def as_a_program() -> None:  # pragma: no cover - child
    """What a job's processes see of the interpreter: no input, output written as it is
    printed (a process may be killed at any time), its own argv and recursion limit."""
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    raw = open(1, "wb", buffering=0, closefd=False)  # noqa: SIM115 - likewise
    sys.stdout = io.TextIOWrapper(raw, write_through=True)
    sys.stderr = sys.stdout
    sys.argv = ["solution.py"]
    sys.setrecursionlimit(5000)


def respawned() -> None:  # pragma: no cover - child
    """A solution side started afresh by `exec` (after the first one timed out or died):
    nothing of the tests' side is in its memory. The program comes over its socket."""
    as_a_program()
    control = socket.socket(fileno=int(os.environ.pop(RESPAWN)))
    program = wire.Peer(control).receive()
    _solution(str(program), control)


def _solution(program: str, control: socket.socket) -> None:  # pragma: no cover - child
    code = 0
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        import ctypes

        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again: its own /proc is its own
        peer = wire.Peer(control)
        peer.send(_load(program, peer))
        peer.capture = True
        _serve(peer)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


#: The program's module namespace, on the solution side.
PROGRAM: dict = {}


def _execute(program: str) -> dict | None:  # pragma: no cover - child
    """Run the program as module `solution` in PROGRAM; the outcome of every check when it
    fails, else None."""
    PROGRAM.clear()
    PROGRAM.update(__name__="solution", __builtins__=builtins)
    SOURCES["solution.py"] = program
    try:
        exec(compile(program, "solution.py", "exec", dont_inherit=True), PROGRAM)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return {"status": "failed", "detail": f"exit status {exc.code}"}
    except BaseException as exc:
        return outcome_of(exc)
    return None


def _load(program: str, peer: "wire.Peer") -> tuple:  # pragma: no cover - child
    """("loaded", {name: encoded value}) once the program ran, else ("failed", outcome)."""
    failed = _execute(program)
    if failed is not None:
        return ("failed", failed)
    names = {}
    for name, value in list(PROGRAM.items()):
        if name.startswith("__") and name.endswith("__"):
            continue
        try:
            names[name] = peer.dumps(value)
        except Exception:
            continue
    return ("loaded", names)


def _serve(peer: "wire.Peer") -> None:  # pragma: no cover - child
    """Answer the tests' side's requests until it closes the socket."""
    with contextlib.suppress(wire.Gone):
        while True:
            message = peer.receive()
            if not isinstance(message, tuple) or not message or message[0] != "op":
                return
            peer.send(peer.serve(message))


#: Jobs with more checks than this run first with the program and its tests in one process
#: (fast: a benchmark's tests against a sample mostly fail, and there a check costs no request
#: per assertion); the sandbox takes only that run's failures (see `Sandbox.run`).
FAST_AFTER = 3


class _Local:
    """The program's own names, for checks run in its own process (the fast run)."""

    stopped = ""

    def namespace(self) -> dict:
        return {k: v for k, v in PROGRAM.items() if not (k.startswith("__") and k.endswith("__"))}

    def serve(self) -> None:
        pass


# -- the tests' side ----------------------------------------------------------------------


class Solution:
    """The tests' side's hold on the solution side: its names, and its process, replaced by a
    fresh one when it dies or must be stopped (a timeout)."""

    def __init__(self, job: dict) -> None:
        self.program = job["program"]
        control, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            control.close()
            solution_side(job, theirs)
        theirs.close()
        self.pid: int | None = pid
        self.peer = wire.Peer(control, strict=True)
        self.peer.printed = _print
        self.names: dict = {}
        self.base: dict | None = None
        #: Why the solution side stopped serving during the current check, if it did.
        self.stopped = ""

    def load(self) -> dict | None:
        """Wait for the program to run; None when it did, else the outcome of every check."""
        try:
            message = self.peer.receive()
        except wire.Gone:
            return {"status": "error", "detail": self._ended(before="the end")}
        if not (isinstance(message, tuple) and len(message) == 2 and isinstance(message[1], dict)):
            return {"status": "error", "detail": "the program's process answered nonsense"}
        if message[0] == "failed":
            return message[1]
        if message[0] != "loaded":
            return {"status": "error", "detail": "the program's process answered nonsense"}
        self.names = {k: v for k, v in message[1].items() if isinstance(v, bytes)}
        return None

    def namespace(self) -> dict:
        """The program's names as the tests see them (values, proxies, the standard library's
        own modules and classes): read once per solution process, a copy for each check (as
        one process's checks share its module's globals)."""
        if self.base is None:
            self.base = {}
            for name, data in self.names.items():
                with contextlib.suppress(Exception):
                    self.base[name] = self.peer.loads(data)
        return dict(self.base)

    def serve(self) -> None:
        """Make sure a solution side is there for the next check: after a timeout or a death,
        a fresh interpreter runs the program again (exec: none of this process's memory)."""
        self.stopped = ""
        if self.pid is not None:
            return
        control, theirs = socket.socketpair()
        os.set_inheritable(theirs.fileno(), True)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            environment = {**os.environ, RESPAWN: str(theirs.fileno())}
            os.execve(BOOT[0], BOOT, environment)
        theirs.close()
        self.pid = pid
        self.peer.connect(control)
        self.base = None
        self.peer.send(self.program)
        failed = self.load()
        if failed is not None:
            raise wire.WireError(f"the program failed when run again: {failed['detail']}")

    def reset(self, kill: bool) -> str:
        """Stop the solution side (after a timeout, its death or a broken message); why it
        ended."""
        if self.pid is None:
            return ""
        if kill:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        why = self._ended(before="the check's end")
        self.peer.connect(None)
        return why

    def _ended(self, before: str) -> str:
        """How the solution side's process ended, in words."""
        pid, self.pid = self.pid, None
        try:
            _, status = os.waitpid(pid or -1, 0)
        except ChildProcessError:
            return f"the program's process stopped before {before}"
        return death(status, before)

    def stop(self) -> None:
        """Kill the solution side (isolated, the namespace does it anyway)."""
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            self.reset(kill=True)


def death(status: int, before: str) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"killed by {name} before {before}"
    return f"exited with status {code} before {before}"


def _print(text: str) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.write(str(text))


def tests_side(job: dict, report: io.TextIOBase) -> None:  # pragma: no cover - child
    """Fork the solution side, then run each check against it, one result line per check and
    a last line saying every check was reported. A fast job runs the program here instead."""
    solution: Solution | _Local = _Local() if job.get("fast") else Solution(job)
    checks = job["checks"]  # read only now: the solution side forked without them in a frame
    budget = job["timeout"] / max(1, len(checks))
    said: list[dict | None] = [None]

    def load() -> None:
        said[0] = solution.load() if isinstance(solution, Solution) else _execute(job["program"])

    failed = _run(load, budget) or said[0]
    for index, check in enumerate(checks):
        tests = _tests_of(check)
        outcome = failed or (tests if isinstance(tests, dict) else None)
        outcome = outcome or _check(check, tests, solution, budget)  # type: ignore[arg-type]
        report.write(json.dumps({"check": index, **outcome}) + "\n")
    report.write(json.dumps({"done": len(checks)}) + "\n")
    report.flush()
    if isinstance(solution, Solution):
        solution.stop()


def _tests_of(check: dict) -> "Prepared | dict":
    """The check's compiled tests, or its outcome when there are none to run."""
    suite = check.get("suite")
    if suite:
        return SUITES.get(suite) or {
            "status": "error",
            "detail": f"no test suite {suite!r} in the sandbox",
        }
    try:
        return Prepared(check.get("tests") or "")
    except SyntaxError as exc:
        return {
            "status": "error",
            "detail": f"SyntaxError in the tests: {exc.msg} (line {exc.lineno})",
        }
    except (ValueError, RecursionError, MemoryError) as exc:
        return {"status": "error", "detail": f"the tests cannot be compiled: {exc}"[:DETAIL]}


def _check(
    check: dict, tests: Prepared, solution: "Solution | _Local", budget: float
) -> dict:  # pragma: no cover
    """One check: its tests as __main__ with the program's names, then their test functions,
    TestCase classes and the final call, against a live server of the solution side."""
    namespace = solution.namespace()
    try:
        for alias, name in (check.get("bind") or {}).items():
            namespace[alias] = namespace[name]
    except KeyError as exc:
        return {"status": "error", "detail": f"the program defines no {exc.args[0]}"}
    SOURCES[tests.name] = tests.source
    SOURCES["check.py"] = check.get("call") or ""
    module = types.ModuleType("solution")
    module.__dict__.update(namespace)
    sys.modules["solution"] = module
    namespace.update(__name__="__main__", __builtins__=builtins, **{COUNTER: _checked})
    ran: list[int] = [0]
    unittest.main = _unittest_main(namespace, ran)  # type: ignore[assignment]

    def body() -> None:
        solution.serve()
        exec(tests.code, namespace)
        for name in tests.defined:
            namespace[name]()
        if not ran[0]:
            _unittest_main(namespace, ran)()
        if check.get("call"):
            exec(_compiled(check["call"]), namespace)

    CHECKED[0] = 0
    outcome = _run(body, budget, solution if isinstance(solution, Solution) else None)
    if solution.stopped:
        return {"status": "error", "detail": solution.stopped[:DETAIL]}
    if outcome is not None:
        return outcome
    if not CHECKED[0]:
        return {"status": "no_tests", "detail": f"the tests check nothing: {tests.idle}"}
    return {"status": "passed", "detail": ""}


_COMPILED: dict[str, types.CodeType] = {}


def _compiled(call: str) -> types.CodeType:  # pragma: no cover - child
    """A check's final call, compiled once per job (many checks share one), counting the
    asserts of the function it calls through the suite's instrumentation."""
    found = _COMPILED.get(call)
    if found is None:
        found = _COMPILED[call] = compile(call, "check.py", "exec", dont_inherit=True)
    return found


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


def _run(body, budget: float, solution: Solution | None = None) -> dict | None:  # type: ignore[no-untyped-def]  # pragma: no cover
    """Run `body` with a per-check alarm; None when it succeeds, else the check's result. A
    server that timed out, died or broke the wire is replaced, and why is kept."""

    def alarm(signum: int, frame: object) -> None:
        raise CheckTimeout

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    broken = timed_out = False
    try:
        body()
        return None
    except CheckTimeout:
        broken = timed_out = solution is not None
        return {"status": "timeout", "detail": f"longer than {budget:g} s"}
    except wire.Exited as exc:
        if solution is not None:
            solution.stopped = f"the solution exited during the tests: {exc}"
        return {"status": "error", "detail": f"the solution exited during the tests: {exc}"}
    except (wire.Gone, wire.WireError) as exc:
        broken = solution is not None
        return {"status": "error", "detail": f"the solution side stopped answering: {exc}"}
    except SystemExit as exc:  # the tests' own exit: fine once they ran, if it says so
        if exc.code in (None, 0):
            return None
        return {"status": "failed", "detail": f"exit status {exc.code}"}
    except BaseException as exc:
        return outcome_of(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if broken and solution is not None:
            why = solution.reset(kill=True)
            if why and not (timed_out or solution.stopped):
                solution.stopped = f"the solution's process {why}"


def outcome_of(exc: BaseException) -> dict:  # pragma: no cover - child
    """The status and detail an exception stands for."""
    if isinstance(exc, TestsFailed):
        return {"status": exc.status, "detail": str(exc)}
    if isinstance(exc, AssertionError):
        return {"status": "failed", "detail": _where(exc, "AssertionError")}
    if isinstance(exc, MemoryError):
        return {"status": "memory", "detail": "MemoryError: the memory limit was reached"}
    if isinstance(exc, SyntaxError):
        return {"status": "error", "detail": f"SyntaxError: {exc.msg} (line {exc.lineno})"}
    if isinstance(exc, RecursionError):
        return {"status": "error", "detail": "RecursionError: maximum recursion depth exceeded"}
    return {"status": "error", "detail": _where(exc, type(exc).__name__)}


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
