"""LintSeq: every sequence rebuilds its program, every state lints clean, nothing is deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from magicoder_data import MAGICODER_MIX, open_source
from magicoder_data.languages import LANGUAGES
from magicoder_data.lintseq.diffs import SEPARATOR, apply
from magicoder_data.lintseq.linters import PythonLinter, TreeSitterLinter, linter_for
from magicoder_data.lintseq.sampler import Rejected, normalise
from magicoder_data.lintseq.stage import LintSeqConfig, edit_sequences
from tests.conftest import generated_run, run_cli, select_all

CONFIG = LintSeqConfig(samples=3)


def rebuild(edits: list[str]) -> list[str]:
    lines: list[str] = []
    for diff in edits:
        assert not any(
            line.startswith("-") for line in diff.split("\n") if not line.startswith("@@")
        )
        lines = apply(lines, diff)
    return lines


def check_invariants(program: str, language: str) -> int:
    records = edit_sequences(program, language, CONFIG, key="t")
    linter = linter_for(language)
    baseline = {m for _, m in linter.errors("\n".join(normalise(program)))}
    for record in records:
        assert record["text"] == SEPARATOR.join(record["edits"])
        state: list[str] = []
        for diff in record["edits"]:
            state = apply(state, diff)
            assert all(m in baseline for _, m in linter.errors("\n".join(state)))
        assert state == normalise(program)
    return len(records)


def real_programs(language: str, limit: int) -> list[str]:
    source = open_source("bundled")
    shards = source.shards(language, LANGUAGES[language].data_dir)
    docs = [d.content for s in shards for _, d in s.documents(select_all)]
    return [d for d in docs if isinstance(d, str) and 15 <= d.count("\n") <= 250][:limit]


def test_invariants_on_real_python_programs():
    checked = rejected = 0
    for program in real_programs("python", 12):
        try:
            checked += check_invariants(program, "python")
        except Rejected:
            rejected += 1
    assert checked >= 20 and rejected <= 3


@pytest.mark.parametrize("language", [lang for lang in MAGICODER_MIX if lang != "python"])
def test_invariants_on_real_programs_in_other_languages(language):
    linter = TreeSitterLinter(language)
    parsing = [p for p in real_programs(language, 100) if not linter.errors(p)][:3]
    assert len(parsing) == 3  # some real C++ headers are beyond tree-sitter: those are rejected
    assert sum(check_invariants(program, language) for program in parsing) == 9
    unparsable = [p for p in real_programs(language, 100) if linter.errors(p)][:1]
    for program in unparsable:
        with pytest.raises(Rejected, match="syntax_error"):
            edit_sequences(program, language, CONFIG, key="u")


def test_deleting_a_definition_deletes_its_uses():
    program = "import os\n\n\ndef f():\n    return os.sep\n\n\nprint(f())\n"
    for record in edit_sequences(program, "python", LintSeqConfig(samples=10), key="k"):
        states = []
        state: list[str] = []
        for diff in record["edits"]:
            state = apply(state, diff)
            states.append(state)
        for s in states:  # a use never appears before what it uses
            if "print(f())" in s:
                assert "def f():" in s
            if "    return os.sep" in s:
                assert "import os" in s


def test_pre_existing_errors_are_a_baseline_not_the_first_edit():
    program = "def f():\n    return helper(1)\n\n\nx = f()\ny = x + 1\n"
    assert PythonLinter().errors(program) == [(2, "undefined name 'helper'")]
    records = edit_sequences(program, "python", LintSeqConfig(samples=10), key="b")
    # Were the error not a baseline, the first deletion would always take its line, so the
    # last insertion would always add it.
    assert any("helper" not in r["edits"][-1] for r in records)


@pytest.mark.parametrize(
    ("program", "reason"),
    [("", "empty_program"), ("\n\n  \n", "empty_program"), ("def f(:\n    pass\n", "syntax_error")],
)
def test_rejections_have_reasons(program, reason):
    with pytest.raises(Rejected, match=reason):
        edit_sequences(program, "python", CONFIG, key="r")


@pytest.mark.parametrize(
    "program",
    [
        "# only a comment\n# and another\n",
        "print('one line')",
        "def f():\n\treturn 1\n\nprint(f())\n",
        "x = 1\r\ny = x + 1\r\n",
        "caf\u00e9 = '\u00fcber \u2603'\nprint(caf\u00e9)\n",
    ],
    ids=["comments", "one-line", "tabs", "crlf", "non-ascii"],
)
def test_edge_cases(program):
    assert check_invariants(program, "python") == 3


def test_same_seed_same_sequences():
    program = real_programs("python", 1)[0]
    a = edit_sequences(program, "python", CONFIG, key="x")
    assert a == edit_sequences(program, "python", CONFIG, key="x")
    assert a != edit_sequences(program, "python", LintSeqConfig(samples=3, seed=1), key="x")


def test_tree_sitter_linter_finds_syntax_errors():
    assert TreeSitterLinter("rust").errors("fn main() {\n    let x = 1;\n}\n") == []
    assert TreeSitterLinter("rust").errors("fn main() {\n    let x = ;\n}\n")


def test_lintseq_cli_on_a_file(tmp_path: Path):
    rows = [
        {
            "id": "ok",
            "instruction": "Add",
            "response": "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
        },
        {"id": "bad", "instruction": "Broken", "response": "def f(:\n"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "lintseq", "--input", source, "--output", out, "-s", "2", "--workers", "2", check=True
    )
    assert "ok 1" in result.stdout and "syntax_error 1" in result.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["sample"], r["language"]) for r in records] == [
        ("ok", 0, "python"),
        ("ok", 1, "python"),
    ]
    assert records[0]["instruction"] == "Add" and records[0]["edits"]
    rejected = (tmp_path / "out.jsonl.rejected.jsonl").read_text()
    assert json.loads(rejected)["reason"] == "syntax_error"
    other = tmp_path / "other.jsonl"
    missing = run_cli("lintseq", "--input", source, "--output", other, "--code-field", "code")
    assert missing.returncode == 1 and "has no field 'code'" in missing.stderr


@pytest.mark.parametrize(
    ("program", "undefined"),
    [
        ("import os\nprint(os.sep, len([]), __name__, __file__)\n", set()),
        ("def f():\n    global G\n    G = 1\n\nf()\nprint(G)\n", set()),
        ("def outer(a):\n    def inner():\n        return a + b\n    return inner\n", {"b"}),
        ("class C:\n    x = 1\n    def m(self):\n        return x\n", {"x"}),
        ("print([i for i in range(3)], i)\n", {"i"}),
        ("from os.path import *\nprint(join('a', 'b'))\n", set()),
    ],
)
def test_python_linter_resolves_scopes_like_python(program, undefined):
    found = {message.split("'")[1] for _, message in PythonLinter().errors(program)}
    assert found == undefined


def test_lintseq_on_a_run(tmp_path: Path):
    run = generated_run(tmp_path / "run", "python=4")
    result = run_cli("lintseq", run, "-s", "2", "--workers", "1", check=True)
    assert "ok 4" in result.stdout
    rows = [
        json.loads(line) for line in run_cli("dump", run, "lintseq", check=True).stdout.splitlines()
    ]
    assert len(rows) == 8 and {r["sample"] for r in rows} == {0, 1}
    first = rows[0]
    assert rebuild(first["edits"]) == normalise(first["program"])
    assert first["instruction"].startswith("Write a function for seed")
    again = run_cli("lintseq", run, "-s", "2", "--workers", "1", check=True)
    assert "nothing to do" in again.stdout
    run_cli("clean", run, check=True)  # the fake's one-line problems are all too short
    assert run_cli("dump", run, "lintseq", check=True).stdout == ""


def test_lintseq_on_a_run_that_skipped_clean_counts_an_answer_without_code(tmp_path: Path):
    """An answer with no code block stores no solution code; without `clean` it reaches
    lintseq, which rejects it by reason (it once raised)."""
    run = generated_run(
        tmp_path / "run",
        "python=3",
        answer=lambda s: (
            f"[Problem Description]\nWrite a function for seed {s}.\n\n[Solution]\nJust words.\n"
        ),
    )
    result = run_cli("lintseq", run, "-s", "1", "--workers", "1")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "no_code 3" in result.stdout, result.stdout


DELETED_STATES = [
    # (a state a deletion leaves, the message the fast linter must give)
    ("def f(items):\n    for item in items:\n        pos += 2\n    return pos\n", "'pos'"),
    ("import os\ndef g(path):\n    base = base.replace(os.sep, '.')\n    return base\n", "'base'"),
    ("def h(flag):\n    if flag:\n        print(value)\n    value = 1\n", "'value'"),
    ("def k(flag):\n    if flag:\n        x = 1\n    return x\n", "'x'"),
    ("def w():\n    while 1:\n        while key is None:\n            key = input()\n", "'key'"),
    ("def t():\n    try:\n        y = int('1')\n    except ValueError:\n        print(y)\n", "'y'"),
    (
        "def e():\n    try:\n        pass\n    except OSError as err:\n        pass\n    return err\n",
        "'err'",
    ),
    ("def d(x):\n    del x\n    return x\n", "'x'"),
    ("def init():\n    global log\n    if 1:\n        log = print\n    log('x')\n", "'log'"),
    ("class C:\n    def m(cls):\n        return cls\n", "no self argument"),
    ("class C:\n    def m():\n        return 1\n", "has no argument"),
    (
        "class C:\n    def __init__(self):\n        self.a = 1\n    def m(self):\n        return self.b\n",
        "no member 'b'",
    ),
    ("class C:\n    def m(self):\n        self.v = self.v ** 2\n", "no member 'v'"),
    ("class C:\n    def __len__(self):\n        pass\n", "__len__ returns nothing"),
    ("class C:\n    def __iter__(self):\n        return self\n", "has no __next__"),
    (
        "class C:\n    __slots__ = ('a',)\n    def __init__(self):\n        self.b = 1\n",
        "not in __slots__",
    ),
    (
        "class C:\n    def x(self):\n        return 1\n    @x.setter\n    def x(self, v):\n        pass\n",
        "is no property",
    ),
    (
        "class C:\n    def x(self):\n        return 1\n    def x(self):\n        return 2\n",
        "defined again",
    ),
    (
        "class C:\n    def m(self):\n        old = self.a\n        self.a = 1\n        return old\n",
        "'a' read before",
    ),
    ("def f():\n    pass\ndef g():\n    r = f()\n    return r\n", "returns nothing"),
    (
        "def f(xs):\n    for x in xs:\n        if x:\n            seen = True\n            continue\n        if seen:\n            print(x)\n",
        "'seen'",
    ),
    ("def fields(x):\n    return fields.values()\n", "has no 'values'"),
    ("def f(a, b):\n    return (a, b)(1)\n", "not callable"),
    # what the compiler and its symbol tables reject
    ("def f():\n    pass\nreturn 1\n", "'return' outside function"),
    ("def f(xs):\n    print(xs)\nbreak\n", "'break' outside loop"),
    ("def f(xs):\n    print(xs)\ncontinue\n", "'continue' not properly in loop"),
    ("def f():\n    await g()\n", "'await' outside async function"),
    ("class C:\n    yield 1\n", "'yield' outside function"),
    ("def f():\n    nonlocal x\n", "no binding for nonlocal 'x' found"),
    ("def f(a):\n    global a\n", "is parameter and global"),
    ("def f(a, a):\n    return a\n", "duplicate argument"),
    ("def f():\n    print(undefined_thing)\n", "undefined name 'undefined_thing'"),
    # a while loop reads in order (pylint is lenient in for loops only)
    ("def f():\n    while True:\n        a = pos\n        pos = 1\n", "'pos'"),
    ("def f(xs):\n    for x in xs:\n        print(m)\n        with x:\n            m = 1\n", "'m'"),
    # values that can only be None
    ("def f(s):\n    z = None\n    if s:\n        print(1)\n    return '%' in z\n", "'z' is None"),
    ("X = None\ndef f():\n    return X[0]\n", "'X' is None"),
    (
        "class C:\n    def __init__(self):\n        self.v = None\n    def m(self):\n        return self.v[0]\n",
        "'self.v' is None",
    ),
    ("def f():\n    pass\nfor x in f():\n    print(x)\n", "iterating over the result of 'f'"),
    ("def f():\n    return\ny = f()\n", "which returns None"),
    # members as pylint counts them
    ("class C:\n    @classmethod\n    def m(self):\n        return self.data\n", "no class member"),
    ("class C:\n    def m(self):\n        self.n += 1\n", "no member 'n'"),
    (
        "class C:\n    def __init__(self):\n        setattr(self, 'a', 1)\n    def m(self):\n        return self.a\n",
        "no member 'a'",
    ),
    ("class C:\n    def m(self):\n        return self.__isabstractmethod__\n", "no member"),
    (
        "class C:\n    def d(self):\n        return 1, 2\n    def m(self):\n        a, b = self.d\n",
        "method 'd' cannot be unpacked",
    ),
    (
        "class C:\n    def d(self):\n        return 1\n    def m(self):\n        return self.d.x\n",
        "has no 'x'",
    ),
    ("def f():\n    total += 1\n", "'total'"),
    (
        "class C:\n    @property\n    def p(self):\n        pass\n    def m(self):\n        a, b = self.p\n",
        "property 'p' is None",
    ),
    # calls that no longer fit
    ("print('%s of %s' % (1,))\n", "takes 2 values, given 1"),
    ("print('{} {}'.format(1))\n", "takes 2 values, given 1"),
    ("def f(a, b):\n    return a\nf(1)\n", "missing a required argument: 'b'"),
    ("def f(a):\n    return a\nf(1, 2)\n", "too many positional arguments"),
    ("class K:\n    def __init__(self, x):\n        self.x = x\nK()\n", "call of 'K'"),
    ("class K:\n    def m(self, y):\n        return self.m()\n", "call of 'self.m'"),
    ("import collections\ncollections.namedtuple('P')\n", "'field_names'"),
    ("def f():\n    import shutil\n    shutil.copyfile('a')\n", "'dst'"),
    ("print(', '.join())\n", "'iterable'"),
    ("from os import no_such_name\n", "no name 'no_such_name' in module 'os'"),
    ("def f():\n    return vars['x']\n", "builtin function 'vars'"),
    (
        "try:\n    pass\nexcept Exception:\n    pass\nexcept OSError:\n    pass\n",
        "OSError caught by an earlier except",
    ),
]


@pytest.mark.parametrize(("state", "message"), DELETED_STATES)
def test_the_fast_linter_flags_what_deletions_leave(state, message):
    found = PythonLinter().errors(state)
    assert any(message in text for _, text in found), found


@pytest.mark.parametrize(
    "program",
    [
        "def f(xs, cond):\n    for x in xs:\n        if cond:\n            print(prev)\n        prev = x\n",
        "def f(c):\n    if c:\n        x = 1\n    else:\n        x = 2\n    return x\n",
        "def f():\n    try:\n        x = 1\n    except OSError:\n        return None\n    return x\n",
        "def f():\n    def g():\n        return later\n    later = 1\n    return g\n",
        "def f(xs):\n    return [y for y in xs if y]\n",
        "def f(x):\n    match x:\n        case [a, *rest]:\n            return a, rest\n",
        "class C:\n    @property\n    def x(self):\n        return 1\n    @x.setter\n    def x(self, v):\n        self._x = v\n",
        "class C:\n    @classmethod\n    def m(cls):\n        return cls\n",
        "class C:\n    def __init__(self):\n        self.a = 1\n    def m(self):\n        return self.a\n",
        # pylint checks a name's first read only, and trusts guards against None
        "def f(a):\n    if a:\n        x = 1\n        print(x)\n    print(x)\n",
        "def f(a):\n    x = None\n    if x is not None:\n        print(x[0])\n    return x and x[1]\n",
        "def f(a):\n    x = None\n    if x is None:\n        return 0\n    return 1 in x\n",
        "def f(xs):\n    x = None\n    for y in xs:\n        x = y\n    return x[0]\n",
        "import os.path\nprint(os.path.join('a', 'b'), '{0}-{0}'.format(1), '%d%%' % (1,))\n",
        "try:\n    from os import no_such_name\nexcept ImportError:\n    pass\n",
        "class C:\n    def __new__(cls):\n        self = super().__new__(cls)\n        self.a = 1\n        return self\n    def m(self):\n        return self.a\n",
    ],
)
def test_the_fast_linter_passes_what_python_runs(program):
    assert PythonLinter().errors(program) == []


def test_parity_with_pylint_on_real_programs():
    """Every state of sequences made with the fast linter, checked by pylint (errors only)
    against its original: no new error (a sample from across the standard library;
    `bench/lintseq_parity.py` runs all of it)."""
    from tests.parity import check, stdlib_programs

    found = check(stdlib_programs(2000)[::15], sequences=2, seed=16)
    assert found.programs > 60 and found.states > 500
    assert found.new_errors == [], dict(found.by_symbol)
