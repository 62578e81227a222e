"""LintSeq's promise checked against the reference's own linter: every intermediate state of a
sequence made with the fast in-process linter has no pylint error (errors only) that its
original did not already have.

Programs are real: top-level functions and classes of this Python's standard library, each with
the module's import lines that bind a name it uses. All states of all programs go to one pylint
process (one file each), so the check costs seconds, not a process per state.
"""

from __future__ import annotations

import ast
import random
import re
import sysconfig
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from magicoder_data.lintseq.linters import PythonLinter
from magicoder_data.lintseq.sampler import BackwardSampler, Rejected, normalise


def stdlib_programs(limit: int, with_imports: bool = True) -> list[str]:
    """Top-level functions and classes of 15-80 lines from the standard library, in file
    order, each after the module's single-line imports that bind a name it uses."""
    programs = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.split("\n")
        imports = [
            (node, lines[node.lineno - 1])
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno == node.end_lineno
        ]
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef | ast.ClassDef) and node.end_lineno):
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if not 15 <= node.end_lineno - start + 1 <= 80:
                continue
            body = "\n".join(lines[start - 1 : node.end_lineno])
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            head = [
                line
                for statement, line in imports
                if with_imports
                and {(a.asname or a.name).split(".")[0] for a in statement.names} & used
            ]
            programs.append("\n".join([*head, *([""] if head else []), body]))
            if len(programs) == limit:
                return programs
    return programs


def stdlib_functions(low: int, high: int) -> list[str]:
    """Top-level functions of low..high lines from the standard library, in file order: real
    code on many topics (the decontamination benchmarks' negatives and stand-in items)."""
    found = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            source = path.read_text(encoding="utf-8")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.split("\n")
        found += [
            "\n".join(lines[node.lineno - 1 : node.end_lineno])
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and node.end_lineno
            and low <= node.end_lineno - node.lineno + 1 <= high
        ]
    return found


@dataclass
class Parity:
    """What the check found: programs and states checked, and the states with new errors."""

    programs: int = 0
    rejected: int = 0
    sequences: int = 0
    states: int = 0
    new_errors: list[tuple[str, str]] = field(default_factory=list)  # (state, message)
    by_symbol: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))


def states_of(program: str, sequences: int, rng: random.Random) -> list[str]:
    """Every intermediate state (neither the original nor empty) of `sequences` sequences."""
    lines = normalise(program)
    sampler = BackwardSampler(lines, "python", PythonLinter())
    found = []
    for _ in range(sequences):
        present = set(range(len(lines)))
        for deleted in sampler.sample(rng)[:-1]:
            present -= deleted
            found.append("\n".join(lines[i] for i in sorted(present)) + "\n")
    return found


#: pylint words one error two ways, by what else the program binds: a read of a name that
#: some branch binds is "possibly" used before assignment, one that no branch binds is "used".
_SAME = {"possibly-used-before-assignment": "used-before-assignment"}


def _identity(symbol: str, message: str) -> tuple[str, str]:
    """An error as the original and its states share it: deleting lines elsewhere changes
    neither what it is nor where, only line numbers and file names in its text and pylint's
    wording."""
    symbol = _SAME.get(symbol, symbol)
    message = re.sub(r"\bline \d+", "line N", message).replace("Possibly using", "Using")
    message = re.sub(r"\bp\d{4}_(orig|s\d{4})\b", "FILE", message)  # the module's name
    return symbol, message


def check(programs: list[str], sequences: int = 2, seed: int = 16) -> Parity:
    """Sequences for each program, then pylint on the originals and every state at once."""
    from pylint.lint import Run
    from pylint.reporters import CollectingReporter

    rng = random.Random(seed)
    result = Parity()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files: dict[str, tuple[int, str]] = {}  # file -> (program, text)
        for p, program in enumerate(programs):
            try:
                states = states_of(program, sequences, rng)
            except Rejected:
                result.rejected += 1
                continue
            result.programs += 1
            result.sequences += sequences
            result.states += len(states)
            for s, text in enumerate([program + "\n", *states]):
                name = f"p{p:04d}_{'orig' if s == 0 else f's{s:04d}'}.py"
                (folder / name).write_text(text, encoding="utf-8")
                files[name] = (p, text)
        reporter = CollectingReporter()
        Run(
            [str(folder / n) for n in sorted(files)]
            + ["--disable=all", "--enable=E,F", "--score=n", "--persistent=n", "--jobs=1"],
            reporter=reporter,
            exit=False,
        )
    messages: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for message in reporter.messages:
        messages[Path(message.path).name].add(_identity(message.symbol, message.msg))
    for name, (p, text) in sorted(files.items()):
        if name.endswith("_orig.py"):
            continue
        for symbol, msg in sorted(messages[name] - messages[f"p{p:04d}_orig.py"]):
            result.new_errors.append((text, f"{symbol}: {msg}"))
            result.by_symbol[symbol] += 1
    return result
