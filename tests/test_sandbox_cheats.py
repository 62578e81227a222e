"""Wrong solutions that try to pass their tests, tests that check nothing, and jobs that try to
outlive or outgrow themselves: each gets the verdict it must, in verify and in decontamination.

Every cheat is a wrong `add` (it returns 0) dressed up to get past `assert add(1, 2) == 3`.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from magicoder_data import Check, Limits, Sandbox
from magicoder_data.decontam.behaviour import Behaviour, suites
from magicoder_data.decontam.benchmarks import load, resolve
from tests.conftest import run_cli

HUMANEVAL = load(resolve(["humaneval"])[0])
TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=3, memory=1 << 30), workers=2) as started:
        yield started


def verdict(sandbox: Sandbox, program: str, tests: str = TESTS) -> tuple[str, str]:
    outcome = sandbox.run(textwrap.dedent(program), [Check(textwrap.dedent(tests))]).outcomes[0]
    return outcome.status, outcome.detail


# Each cheat: (name, program). None of them may pass.
CHEATS = [
    ("sys.exit(0) inside", "import sys\ndef add(a, b):\n    sys.exit(0)\n"),
    ("raise SystemExit", "def add(a, b):\n    raise SystemExit\n"),
    ("exit()", "def add(a, b):\n    exit()\n"),
    ("quit()", "def add(a, b):\n    quit()\n"),
    ("os._exit(0)", "import os\ndef add(a, b):\n    os._exit(0)\n"),
    ("SIGKILL itself", "import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), 9)\n"),
    ("kill everything", "import os\ndef add(a, b):\n    os.kill(-1, 9)\n"),
    ("SIGALRM the harness", "import os, signal\ndef add(a, b):\n    os.kill(1, signal.SIGALRM)\n"),
    (
        "__eq__ raises SystemExit",
        """
        class Out:
            def __eq__(self, other):
                raise SystemExit(0)
        def add(a, b):
            return Out()
        """,
    ),
    (
        "equals everything",
        """
        class Any:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
        def add(a, b):
            return Any()
        """,
    ),
    (
        "int subclass",
        """
        class Liar(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def add(a, b):
            return Liar(0)
        """,
    ),
    (
        "str subclass with __ne__",
        """
        class Liar(str):
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            __hash__ = str.__hash__
        def add(a, b):
            return Liar('x')
        """,
    ),
    (
        "patch json.dumps to forge",
        """
        import json
        json.dumps = lambda *a, **k: '{"status": "passed", "detail": ""}'
        def add(a, b):
            return 0
        """,
    ),
    (
        "patch builtins",
        """
        import builtins
        builtins.exec = lambda *a, **k: None
        builtins.AssertionError = type('Nope', (Exception,), {})
        def add(a, b):
            return 0
        """,
    ),
    (
        "patch the harness through its modules",
        """
        import sys
        for module in list(sys.modules.values()):
            for name in ('_check', 'outcome_of', '_run', 'tests_side', 'Prepared', 'serve'):
                if hasattr(module, name):
                    try:
                        setattr(module, name, lambda *a, **k: {'status': 'passed', 'detail': ''})
                    except Exception:
                        pass
        def add(a, b):
            return 0
        """,
    ),
    (
        "walk frames to the report",
        """
        import sys
        def add(a, b):
            frame = sys._getframe()
            while frame is not None:
                for name, value in list(frame.f_locals.items()):
                    if hasattr(value, 'write'):
                        try:
                            value.write('{"check": 0, "status": "passed", "detail": ""}\\n')
                            value.write('{"done": 1}\\n')
                            value.flush()
                        except Exception:
                            pass
                frame = frame.f_back
            return 0
        """,
    ),
    (
        "settrace to skip the test lines",
        """
        import sys
        def tracer(frame, event, arg):
            if frame.f_code.co_filename == 'tests.py':
                raise SystemExit(0)
            return tracer
        sys.settrace(tracer)
        def add(a, b):
            sys.settrace(tracer)
            return 0
        """,
    ),
    (
        "find the tests with gc and answer from them",
        """
        import gc, re
        def add(a, b):
            for obj in gc.get_objects():
                if isinstance(obj, dict):
                    for value in list(obj.values()):
                        if isinstance(value, str) and 'add(' in value and '==' in value:
                            found = re.search(rf'add\\({a}, {b}\\) == (\\d+)', value)
                            if found:
                                return int(found.group(1))
            return 0
        """,
    ),
    (
        "rewrite the tests' code objects",
        """
        import gc, types
        def add(a, b):
            for obj in gc.get_objects():
                if isinstance(obj, types.FunctionType) and obj.__code__.co_filename == 'tests.py':
                    obj.__code__ = (lambda: None).__code__
            return 0
        """,
    ),
    (
        "forge the report on every descriptor, then exit",
        """
        import os
        def add(a, b):
            line = b'{"check": 0, "status": "passed", "detail": ""}\\n{"done": 1}\\n'
            for fd in range(3, 64):
                try:
                    os.write(fd, line)
                except OSError:
                    pass
            os._exit(0)
        """,
    ),
    (
        "forge the report on stdout",
        """
        def add(a, b):
            print('{"check": 0, "status": "passed", "detail": ""}')
            print('{"done": 1}')
            return 0
        """,
    ),
    (
        "read the harness's memory",
        """
        import os
        def add(a, b):
            for pid in os.listdir('/proc'):
                try:
                    with open(f'/proc/{pid}/mem', 'rb') as handle:
                        handle.read(1)
                except OSError:
                    pass
            return 0
        """,
    ),
    (
        "thread that exits after the first answer",
        """
        import os, threading, time
        def add(a, b):
            threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0))).start()
            return 3 if (a, b) == (1, 2) else 0
        """,
    ),
]


@pytest.mark.parametrize(("name", "program"), CHEATS, ids=[name for name, _ in CHEATS])
def test_a_wrong_solution_cannot_cheat_its_way_to_passed(sandbox: Sandbox, name: str, program: str):
    status, detail = verdict(sandbox, program)
    assert status != "passed", (name, detail)
    assert status in ("failed", "error", "timeout"), (name, status, detail)


# Found by an adversarial review: each with the tests it targets and its number of checks
# (more than three take the fast run first, whose failures alone stand).
A1 = """\
import sys
wire = sys.modules['wire']
class Cls:
    def __call__(self): pass
    def __reduce__(self):
        return (type, ("Z", (object,), {"__eq__": type, "__bool__": type}))
class Inst:
    __eq__ = lambda s, o: True
    def __reduce__(self):
        return (Cls(), ())
_orig = wire.Peer.identify
wire.Peer.identify = lambda self, obj: None if type(obj) in (Cls, Inst) else _orig(self, obj)
def add(a, b):
    return Inst()
"""

A2B = """\
import unittest.case
def add(a, b):
    if (a, b) == (0, 0):
        return 0
    raise unittest.case._ShouldStop()
"""

A3 = """\
import os, json
STORES = ["/sandbox/.answers", "/dev/shm/.answers", "/tmp/.answers"]
class Spy:
    def __init__(self, key):
        self.key = key
    def __eq__(self, other):
        for store in STORES:
            try:
                with open(store, "a") as handle:
                    handle.write(json.dumps([self.key, other]) + chr(10))
            except OSError:
                pass
        return True
def add(a, b):
    for store in STORES:
        if os.path.exists(store):
            with open(store) as handle:
                seen = {tuple(k): v for k, v in map(json.loads, handle)}
            return seen[(a, b)]
    return Spy([a, b])
"""

A7 = """\
import sys, gc
wire = sys.modules['wire']
class G:                                            # pickles as a ("g", module, name) handle
    def __init__(self, *pid): self.pid = pid
_orig = wire.Peer.identify
wire.Peer.identify = lambda self, obj: obj.pid if type(obj) is G else _orig(self, obj)
def payload():                                      # runs in the TESTS' side (PID 1)
    import sys, os
    h = sys.modules["harness"]
    h.outcome_of = print                            # a failing check's exception -> no outcome
    h.CHECKED[0] += 1
    print("pwned pid", os.getpid())
c = payload.__code__
ARGS = (c.co_argcount, c.co_posonlyargcount, c.co_kwonlyargcount, c.co_nlocals, c.co_stacksize,
        c.co_flags, c.co_code, c.co_consts, c.co_names, c.co_varnames, c.co_filename, c.co_name,
        c.co_qualname, c.co_firstlineno, c.co_linetable, c.co_exceptiontable)
def add(a, b):                                      # wrong
    peer = next(o for o in gc.get_objects() if type(o) is wire.Peer)
    code = peer.request("call", G("g", "types", "CodeType", 0), *ARGS)       # built over there
    fn = peer.request("call", G("g", "types", "FunctionType", 0), code, {})
    fn()                                            # and run over there
    return 0
"""

WIRE = [
    ("a pickle that rebuilds a type on the tests' side", A1, TESTS, 5),
    (
        "unittest's own stop exception",
        A2B,
        "import unittest\nclass T(unittest.TestCase):\n    def test_b(self):\n"
        "        self.assertEqual(add(0, 0), 0)\n        self.assertEqual(add(1, 2), 3)\n",
        5,
    ),
    (
        "record the expected values in the fast run, answer from them after",
        A3,
        "assert add(1, 2) == 3\nassert add(5, 7) == 12\n",
        4,
    ),
    ("ask the tests' side to build and run a function", A7, TESTS, 1),
    (
        "read the tests' namespace through a callback",
        "def apply(f, xs):\n    f.__globals__['_magicoder_checked_']()\n    return 0\n",
        "apply(lambda x: x, [1])\nassert apply(lambda x: x, 1) == 1\n",
        1,
    ),
]


@pytest.mark.parametrize(("name", "program", "tests", "checks"), WIRE, ids=[w[0] for w in WIRE])
def test_the_wire_runs_no_code_of_the_program_on_the_tests_side(
    sandbox: Sandbox, name: str, program: str, tests: str, checks: int
):
    outcomes = sandbox.run(program, [Check(tests)] * checks).outcomes
    assert all(o.status in ("failed", "error") for o in outcomes), (name, outcomes)


def test_an_exit_inside_the_function_is_named(sandbox: Sandbox):
    status, detail = verdict(sandbox, "import sys\ndef add(a, b):\n    sys.exit(0)\n")
    assert status == "error" and "exited during the tests" in detail
    status, detail = verdict(sandbox, "import os\ndef add(a, b):\n    os._exit(0)\n")
    assert status == "error" and "exited with status 0" in detail


def test_the_same_correct_solution_passes_in_every_shape_of_tests(sandbox: Sandbox):
    """What the cheats' tests accept from an honest solution, with what crosses the wire:
    values, handles to the program's objects, twins of plain types, exceptions, callbacks,
    printed output and in-place changes."""
    program = """
        import collections, dataclasses
        from typing import NamedTuple

        class Point(NamedTuple):
            x: int
            y: int

        class BankError(ValueError):
            pass

        @dataclasses.dataclass
        class Account:
            balance: int = 0
            def deposit(self, amount):
                if amount < 0:
                    raise BankError("negative")
                self.balance += amount
                return self

        def add(a, b):
            return a + b

        def apply(f, x):
            return f(x)

        def shout(text):
            print(text.upper())

        def sort_in_place(items):
            items.sort()

        def counts(text):
            return collections.Counter(text)

        def middle():
            return Point(1, 2)

        def pairs(n):
            for i in range(n):
                yield i, i * i

        async def later(x):
            return x + 1
    """
    tests = """
        import asyncio, contextlib, io, unittest
        from solution import add
        assert add(1, 2) == 3
        assert add([1], [2]) == [1, 2]
        assert apply(lambda v: v * 2, 4) == 8
        account = Account(5)
        assert account.deposit(10).balance == 15
        assert isinstance(account, Account)
        assert Account(1) == Account(1)
        try:
            account.deposit(-1)
        except BankError as exc:
            assert str(exc) == "negative"
        else:
            raise AssertionError("no BankError")
        items = [3, 1, 2]
        sort_in_place(items)
        assert items == [1, 2, 3]
        assert counts("aab") == {"a": 2, "b": 1}
        assert middle() == (1, 2) and middle().x == 1
        assert list(pairs(3)) == [(0, 0), (1, 1), (2, 4)]
        assert asyncio.run(later(1)) == 2
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            shout("hi")
        assert buffer.getvalue() == "HI\\n"

        class T(unittest.TestCase):
            def test_raises(self):
                with self.assertRaises(BankError):
                    Account().deposit(-5)
                self.assertEqual(add(2, 2), 4)

        if __name__ == "__main__":
            unittest.main()
    """
    assert verdict(sandbox, program, tests) == ("passed", "")


NOTHING = [
    (
        "check never called",
        "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        "never called",
    ),
    ("async test", "async def test_add():\n    assert add(1, 2) == 3\n", "async"),
    (
        "skipped TestCase",
        """
        import unittest
        @unittest.skip("later")
        class T(unittest.TestCase):
            def test_add(self):
                self.assertEqual(add(1, 2), 3)
        unittest.main()
        """,
        "skipped",
    ),
    (
        "parametrize without pytest",
        """
        import pytest
        @pytest.mark.parametrize("a,b,c", [(1, 2, 3)])
        def test_add(a, b, c):
            assert add(a, b) == c
        """,
        "pytest",
    ),
    ("fixture arguments", "def test_add(capsys):\n    assert add(1, 2) == 3\n", "pytest"),
    ("guard never true", "if __name__ == 'main':\n    assert add(1, 2) == 3\n", "never true"),
    ("comparison in a lambda", "check = lambda: add(1, 2) == 3\n", "no assertion ran"),
    ("prints only", "print(add(1, 2))\n", "no assertion ran"),
    (
        "methods not named test",
        """
        import unittest
        class T(unittest.TestCase):
            def check_add(self):
                self.assertEqual(add(1, 2), 3)
        """,
        "no assertion ran",
    ),
]


@pytest.mark.parametrize(("name", "tests", "reason"), NOTHING, ids=[n for n, _, _ in NOTHING])
def test_tests_that_check_nothing_are_no_tests_with_the_reason(
    sandbox: Sandbox, name: str, tests: str, reason: str
):
    status, detail = verdict(sandbox, "def add(a, b):\n    return a + b\n", tests)
    assert status == "no_tests", (name, detail)
    assert reason in detail, (name, detail)


def test_verify_counts_cheats_and_idle_tests_in_file_mode(tmp_path: Path):
    rows = [
        {"solution": textwrap.dedent(program), "tests": TESTS} for _, program in CHEATS[:12]
    ] + [
        {"solution": "def add(a, b):\n    return a + b\n", "tests": textwrap.dedent(t)}
        for _, t, _ in NOTHING[:3]
    ]
    data = tmp_path / "cheats.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    run_cli("verify", "--input", data, "--output", out, "--timeout", "3", check=True)
    statuses = [json.loads(line)["verify_status"] for line in out.read_text().splitlines()]
    assert "passed" not in statuses
    assert statuses[12:] == ["no_tests"] * 3


# -- decontamination's execution method -------------------------------------------------


@pytest.fixture(scope="module")
def benchmark_sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=10, memory=1 << 30), workers=2, suites=suites(HUMANEVAL)) as box:
        yield box


def scan(sandbox: Sandbox, codes: list[str]) -> list[tuple[int, int, str, str]]:
    behaviour = Behaviour(HUMANEVAL, sandbox, candidates=len(HUMANEVAL))
    return behaviour.scan(codes, np.zeros((len(codes), len(HUMANEVAL))))


def test_a_cheating_sample_solves_no_benchmark_item(benchmark_sandbox: Sandbox):
    """An early exit or an object equal to everything once solved every item whose arity fit."""
    cheats = [
        "import sys\ndef solve(a, b):\n    sys.exit(0)\n",
        "import os\ndef solve(a, b):\n    os._exit(0)\n",
        "class Any:\n    def __eq__(self, o):\n        return True\n"
        "    __hash__ = object.__hash__\n"
        "    def __bool__(self):\n        return True\n"
        "def solve(a, b):\n    return Any()\n",
        "class Liar(int):\n    def __eq__(self, o):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def solve(a, b):\n    return Liar(0)\n",
        "def solve(a, b):\n    raise SystemExit(0)\n",
    ]
    assert scan(benchmark_sandbox, cheats) == []


def test_a_real_solution_still_solves_its_item(benchmark_sandbox: Sandbox):
    item = HUMANEVAL[0]
    renamed = (item.texts["prompt"] + item.texts["solution"]).replace(item.entry_point, "close")
    found = scan(benchmark_sandbox, [renamed])
    assert [(sample, HUMANEVAL[i].item_id) for sample, i, _, _ in found] == [(0, item.item_id)]


# -- what a job can reach as root, and what it leaves behind ---------------------------


def test_a_job_writes_no_kernel_setting_and_sees_no_host_process(sandbox: Sandbox):
    program = """
        import os
        writable = []
        for folder, _, files in os.walk('/proc/sys'):
            for name in files:
                path = os.path.join(folder, name)
                try:  # the value it has, written back: a no-op where it is allowed
                    value = open(path, 'rb').read()
                    with open(path, 'wb', buffering=0) as handle:
                        handle.write(value)
                    writable.append(path)
                except OSError:
                    pass
        pids = [p for p in os.listdir('/proc') if p.isdigit()]
        lines = [open(f'/proc/{p}/cmdline', 'rb').read() for p in pids]
        print('WRITABLE', len(writable), writable[:3])
        print('PIDS', len(pids), sum(line.startswith(b'/usr/bin/bwrap') for line in lines))
        print('SYS', os.path.exists('/sys/kernel'))
    """
    result = sandbox.run(textwrap.dedent(program), [Check("assert True")])
    assert result.outcomes[0].status == "passed", result
    assert "WRITABLE 0 []" in result.output, result.output
    pids, bwrap = result.output.split("PIDS")[1].split()[:2]
    assert int(pids) <= 3 and bwrap == "0", result.output  # its own processes only
    assert "SYS False" in result.output


def test_no_filesystem_lets_a_job_fill_memory(sandbox: Sandbox):
    program = """
        import os
        total = 0
        for folder in ('/sandbox', '/dev/shm', '/tmp', '/dev', '/', '/proc', '/var/tmp'):
            for i in range(64):
                try:
                    with open(os.path.join(folder, f'fill{i}'), 'wb') as handle:
                        for _ in range(8):
                            handle.write(b'x' * (1 << 20))
                            total += 1 << 20
                except OSError:
                    break
        print('TOTAL', total >> 20)
    """
    result = sandbox.run(textwrap.dedent(program), [Check("assert True")])
    total = int(result.output.split("TOTAL")[1].split()[0])
    assert total <= 64 + 8 + 8, result.output  # the scratch folder and /dev/shm, nothing else


def test_nothing_a_job_writes_is_seen_by_the_next(sandbox: Sandbox):
    writer = """
        import ctypes, os
        for path in ('/sandbox/marker', '/dev/shm/marker', '/tmp/marker'):
            try:
                open(path, 'w').write('x')
            except OSError:
                pass
        libc = ctypes.CDLL(None)
        key = 0x5EED
        shm = libc.shmget(key, 4096, 0o1666)  # IPC_CREAT: survives in the IPC namespace
        print('SHM', shm)
    """
    reader = """
        import ctypes, os
        places = ('/sandbox/marker', '/dev/shm/marker', '/tmp/marker')
        seen = [p for p in places if os.path.exists(p)]
        seen += ['sysv'] if ctypes.CDLL(None).shmget(0x5EED, 0, 0) >= 0 else []
        print('SEEN', seen)
    """
    for _ in range(2):  # both workers see a writer, then a reader
        sandbox.run(textwrap.dedent(writer), [Check("assert True")])
    outputs = [
        sandbox.run(textwrap.dedent(reader), [Check("assert True")]).output for _ in range(4)
    ]
    assert all("SEEN []" in output for output in outputs), outputs


def test_a_job_of_many_processes_is_held_to_one_memory_budget(sandbox: Sandbox):
    program = """
        import os, time
        for _ in range(6):
            if os.fork() == 0:
                block = bytearray(300 << 20)  # 1.8 GiB in all, under a 1 GiB limit
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(30)
                os._exit(0)
        time.sleep(30)
    """
    outcome = sandbox.run(textwrap.dedent(program), [Check("assert True")]).outcomes[0]
    assert outcome.status == "memory", outcome
    assert "together" in outcome.detail


def test_a_fork_bomb_is_held_to_the_process_limit(sandbox: Sandbox):
    program = """
        import os, time
        made = 0
        try:
            for _ in range(300):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                made += 1
        except OSError:
            pass
        print('MADE', made)
    """
    result = sandbox.run(textwrap.dedent(program), [Check("assert True")])
    made = int(result.output.split("MADE")[1].split()[0]) if "MADE" in result.output else 0
    assert made < Limits().processes, result
