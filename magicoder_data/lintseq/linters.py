"""Linters behind one interface: `errors(code)` gives the 1-based lines that have errors.

- Python: in-process `compile` (syntax, indentation, its warnings), the compiler's symbol
  tables for undefined names, and `flow` for what deleting lines leaves that pylint calls an
  error (names read before they are bound, broken methods and members); no subprocess.
- Other languages: tree-sitter; a state is clean when its tree has no ERROR or MISSING node.
- `pylint`: the reference's checker (errors only) on a temporary file per state, for fidelity
  checks and as the benchmark's baseline.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import symtable
import tempfile
import warnings
from typing import Protocol

from ..errors import ConfigError
from ..languages import LANGUAGES
from ..syntax import parse
from .calls import builtin_misuse, call_errors, format_errors, import_errors
from .flow import class_errors, function_members, no_return_results, unbound_reads
from .nodes import Nodes
from .values import except_order, none_uses


class Linter(Protocol):
    def errors(self, code: str) -> list[tuple[int, str]]:
        """(1-based line, message) of each error in `code`."""
        ...


#: Names every module can use without defining them.
_PREDEFINED = frozenset(dir(builtins)) | {
    "__file__",
    "__builtins__",
    "__annotations__",
    "__path__",
    "__cached__",
    "WindowsError",
}


class PythonLinter:
    """Syntax and indentation via `compile` (its SyntaxWarnings too: `(a, b)(c)` is pylint's
    not-callable); undefined names via the compiler's own symbol tables (`symtable`), which
    resolve every scope the way Python does; and checks for the rest of what pylint's error
    checks report after deletions, on one walk of the tree (`nodes`): `flow` (locals read
    before they are bound, methods that lost `self` or their return value, members no longer
    bound, property parts, redefinitions, results of functions that return nothing), `values`
    (values that can only be None, shadowed except clauses) and `calls` (format strings and
    calls that no longer fit, names a standard-library module lacks). Checked against pylint
    itself (`tests/parity.py`).
    """

    def errors(self, code: str) -> list[tuple[int, str]]:
        try:
            tree = ast.parse(code)
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                compile(tree, "<lintseq>", "exec", dont_inherit=True)
            top = symtable.symtable(code, "<lintseq>", "exec")
        except SyntaxError as exc:
            return [(max(1, exc.lineno or 1), f"syntax: {exc.msg}")]
        except (ValueError, RecursionError) as exc:  # null bytes, absurd nesting
            return [(1, f"syntax: {exc}")]
        nodes = Nodes(tree)
        missing = _undefined_names(top, bool(nodes.of(ast.Global)))
        unbound = [
            *unbound_reads(nodes, top),
            *class_errors(nodes),
            *no_return_results(nodes),
            *function_members(nodes, top),
            *none_uses(nodes),
            *except_order(nodes),
            *format_errors(nodes),
            *call_errors(nodes),
            *import_errors(nodes),
            *builtin_misuse(nodes),
            # `(a, b)(c)` and the like, what pylint calls not-callable or unsubscriptable
            *((w.lineno or 1, f"compile warning: {w.message}") for w in warned),
        ]
        if not missing or any(
            isinstance(node, ast.ImportFrom) and node.names[0].name == "*" for node in tree.body
        ):
            return unbound  # with a star import any name may be defined
        return sorted(
            [
                *unbound,
                *(
                    (node.lineno, f"undefined name {node.id!r}")
                    for node in nodes.of(ast.Name)
                    if isinstance(node.ctx, ast.Load) and node.id in missing
                ),
            ]
        )


def _undefined_names(top: symtable.SymbolTable, declares_globals: bool) -> set[str]:
    """Names some scope reads as globals that the module never binds; `declares_globals`
    says whether the program has a `global` statement (one that binds a module name)."""
    bound, read = set(), set()
    for symbol in top.get_symbols():
        if symbol.is_assigned() or symbol.is_imported() or symbol.is_parameter():
            bound.add(symbol.get_name())
        if symbol.is_referenced():
            read.add(symbol.get_name())
    tables = list(top.get_children())
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        if isinstance(table, symtable.Function):
            # Its globals: names it reads from the module, or declares global.
            names = table.get_globals()
            read.update(names)
            if not declares_globals:
                continue
            declared = [table.lookup(n) for n in names]
        else:  # a class body: the names it reads that are not its own
            declared = [s for s in table.get_symbols() if s.is_global()]
            read.update(s.get_name() for s in declared if s.is_referenced())
        # `global x` then `x = ...` inside a function binds a module name
        bound.update(s.get_name() for s in declared if s.is_declared_global() and s.is_assigned())
    missing = read - bound - _PREDEFINED
    # A name read in a class is mangled there (`__marker` is `_Class__marker`): the AST has
    # the name as written.
    return missing | {"__" + name.split("__", 1)[1] for name in missing if "__" in name[1:]}


class TreeSitterLinter:
    """Syntax errors from a tree-sitter grammar: rows of ERROR and MISSING nodes."""

    def __init__(self, language: str) -> None:
        self.language = language

    def errors(self, code: str) -> list[tuple[int, str]]:
        root = parse(self.language, code.encode("utf-8", "surrogatepass")).root_node
        if not root.has_error:
            return []
        found: list[tuple[int, str]] = []
        stack = [root]
        while stack:
            node = stack.pop()
            if node.is_error or node.is_missing:
                found.append((node.start_point[0] + 1, "missing" if node.is_missing else "error"))
                continue
            stack.extend(child for child in node.children if child.has_error)
        return sorted(found)


class PylintLinter:
    """The reference's checker: pylint (errors only) on a temporary file for every state."""

    def errors(self, code: str) -> list[tuple[int, str]]:
        from pylint.lint import Run
        from pylint.reporters import CollectingReporter

        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=True) as handle:
            handle.write(code)
            handle.flush()
            reporter = CollectingReporter()
            Run(
                [handle.name, "--disable=all", "--enable=E,F", "--score=n", "--persistent=n"],
                reporter=reporter,
                exit=False,
            )
        return sorted((m.line, m.msg) for m in reporter.messages)


def linter_for(language: str, fidelity: bool = False) -> Linter:
    """The linter for a canonical language name; `fidelity` picks pylint for Python."""
    if language == "python":
        if fidelity and importlib.util.find_spec("pylint") is None:
            raise ConfigError("--fidelity needs pylint: pip install 'magicoder-data[fidelity]'")
        return PylintLinter() if fidelity else PythonLinter()
    if language not in LANGUAGES:
        raise ConfigError(f"no linter for language {language!r}")
    return TreeSitterLinter(language)
