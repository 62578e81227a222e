"""Calls that no longer fit what they call: what deleting one line of a multi-line call, tuple
or signature leaves behind.

- Format strings given the wrong number of values: `"%s of %s" % (a,)` once the line with
  `b,` is gone, `"{} {}".format(a)` (pylint's too-few- and too-many-format-args).
- Calls whose arguments do not bind to the signature: functions, methods (through `self`) and
  classes the program defines, and functions and classes of the standard library and the
  builtins it calls by their imported names (no-value-for-parameter, too-many-function-args,
  unexpected-keyword-arg, redundant-keyword-arg). Signatures come from the AST for the
  program's own definitions and from `inspect.signature` for the standard library, whose
  modules are imported (never the program's own imports of anything else).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import re
import string
import sys
from functools import lru_cache
from types import BuiltinFunctionType, ModuleType
from typing import Any

from .nodes import TRIES, Nodes, walk

#: A printf-style conversion: optional mapping key, flags, width, precision, length, type.
_PERCENT = re.compile(
    r"%(?P<key>\([^)]*\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<type>.)",
    re.DOTALL,
)
#: Standard-library packages never imported here: importing them, or a module in them, acts
#: (a browser, a poem, a demo window).
_NEVER_IMPORT = frozenset({"antigravity", "this", "idlelib", "turtle", "turtledemo"})


def format_errors(nodes: Nodes) -> list[tuple[int, str]]:
    """Literal format strings given a literal number of values that they do not take."""
    found: list[tuple[int, str]] = []
    for node in nodes.of(ast.BinOp, ast.Call):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
            and isinstance(node.right, ast.Tuple)
            and not any(isinstance(e, ast.Starred) for e in node.right.elts)
        ):
            wanted = _percent_values(node.left.value)
            given = len(node.right.elts)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            wanted = _brace_values(node.func.value.value)
            given = len(node.args)
        else:
            continue
        if wanted is not None and wanted != given:
            found.append((node.lineno, f"format string takes {wanted} values, given {given}"))
    return found


def _percent_values(text: str) -> int | None:
    """How many values a printf-style string takes (None for a mapping or a broken one)."""
    count = 0
    for match in _PERCENT.finditer(text):
        if match["type"] == "%" and not match["key"]:
            continue
        if match["key"]:
            return None
        count += 1 + (match["width"] == "*") + (match["precision"] == "*")
    return count


def _brace_values(text: str) -> int | None:
    """How many positional values a `str.format` string takes (None if it cannot be told)."""
    automatic = 0
    highest = -1
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return None
    for _, name, spec, _ in fields:
        if name is None:
            continue
        for field in (name, *(inner for _, inner, _, _ in string.Formatter().parse(spec or ""))):
            if field is None:
                continue
            head = re.split(r"[.\[]", field, maxsplit=1)[0]
            if head == "":
                automatic += 1
            elif head.isdigit():
                highest = max(highest, int(head))
    if automatic and highest >= 0:
        return None  # mixing is an error of its own
    return max(automatic, highest + 1)


def call_errors(nodes: Nodes) -> list[tuple[int, str]]:
    """Calls whose literal arguments do not bind to what they call."""
    calls = nodes.of(ast.Call)
    if not calls:
        return []
    found: list[tuple[int, str]] = []
    if any(_self_method(call) for call in calls):
        for node in nodes.of(ast.ClassDef):
            found += _method_calls(node)
    resolve = _Resolver(nodes)
    for node in calls:
        if _has_unpacking(node):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Constant)
            and isinstance(func.value.value, str | bytes)
        ):  # `", ".join()`: a method of a literal string
            kind = type(func.value.value).__name__
            error = _misfit(node, _library_signature("builtins", (kind, func.attr)), func.value)
        else:
            error = _misfit(node, resolve(func))
        if error:
            found.append((node.lineno, error))
    return found


def _misfit(
    call: ast.Call, signature: inspect.Signature | None, self: ast.expr | None = None
) -> str | None:
    """Why the call's arguments (after `self`, for a method taken from its class) do not bind
    to the signature, or None when they do or the signature is unknown."""
    if signature is None:
        return None
    try:
        signature.bind(
            *([self] if self is not None else []),
            *call.args,
            **{k.arg: k.value for k in call.keywords if k.arg},
        )
    except TypeError as exc:
        return f"call of {ast.unparse(call.func)!r}: {exc}"
    return None


def _has_unpacking(call: ast.Call) -> bool:
    return any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    )


def _self_method(call: ast.Call) -> str | None:
    """`name` of a `self.name(...)` call."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.attr if func.value.id == "self" else None
    return None


class _Resolver:
    """The signature a called expression has, when it can be known for certain: a name bound
    once in the whole program, by a plain def or class statement or an import of the
    standard library, or a builtin never bound."""

    def __init__(self, nodes: Nodes) -> None:
        self.bound = nodes.bound_names()
        self.defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = {}
        self.imports: dict[str, tuple[str, ...]] = {}  # name -> module, then attributes
        for statement in nodes.tree.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.defs[statement.name] = statement
        for node in nodes.of(ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.imports[alias.asname] = (alias.name,)
                else:
                    self.imports[alias.name.split(".")[0]] = (alias.name.split(".")[0],)
        for node in nodes.of(ast.ImportFrom):
            if node.module and not node.level:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)

    def __call__(self, func: ast.expr) -> inspect.Signature | None:
        path: list[str] = []
        while isinstance(func, ast.Attribute):
            path.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name) or self.bound.get(func.id, 0) > 1:
            return None
        name, path = func.id, path[::-1]
        if name in self.defs and not path:
            return _own_signature(self.defs[name])
        if name in self.imports:
            module, *attributes = self.imports[name]
            return _library_signature(module, (*attributes, *path))
        if name not in self.bound and not path and name in _BUILTINS:
            return _library_signature("builtins", (name,))
        return None


_BUILTINS = frozenset(
    name for name, value in vars(builtins).items() if callable(value) and not name.startswith("_")
)


def _own_signature(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
) -> inspect.Signature | None:
    """A plain function's signature, or a plain class's (its `__init__`'s, without `self`)."""
    if node.decorator_list:
        return None
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return _signature(node.args)
    if node.bases or node.keywords:
        return None  # what it inherits is unknown here
    methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
    if "__new__" in methods:
        return None
    init = methods.get("__init__")
    if init is None:
        return inspect.Signature()
    if init.decorator_list:
        return None
    return _signature(init.args, drop_first=True)


def _method_calls(node: ast.ClassDef) -> list[tuple[int, str]]:
    """`self.name(...)` calls, inside the class, of its own plain methods."""
    methods = {s.name: s for s in node.body if isinstance(s, ast.FunctionDef)}
    names = [s.name for s in node.body if isinstance(s, ast.FunctionDef)]  # one def each
    found = []
    for method in methods.values():
        for child in walk(method):
            if not isinstance(child, ast.Call):
                continue
            name = _self_method(child)
            if name not in methods or names.count(name) > 1 or _has_unpacking(child):
                continue
            target = methods[name]
            decorators = [ast.unparse(d) for d in target.decorator_list]
            if decorators not in ([], ["staticmethod"], ["classmethod"]):
                continue
            signature = _signature(target.args, drop_first=decorators != ["staticmethod"])
            if error := _misfit(child, signature):
                found.append((child.lineno, error))
    return found


def _signature(args: ast.arguments, drop_first: bool = False) -> inspect.Signature | None:
    """An `inspect.Signature` with the parameters an AST def lists (defaults as markers)."""
    kind = inspect.Parameter
    positional = [*args.posonlyargs, *args.args]
    if drop_first:
        if not positional:
            return None  # no `self`: a method error of its own
        positional = positional[1:]
    first_default = len([*args.posonlyargs, *args.args]) - len(args.defaults)
    offset = 1 if drop_first else 0
    parameters = []
    for index, arg in enumerate(positional, start=offset):
        parameters.append(
            kind(
                arg.arg,
                kind.POSITIONAL_ONLY
                if index < len(args.posonlyargs)
                else kind.POSITIONAL_OR_KEYWORD,
                default=None if index >= first_default else kind.empty,
            )
        )
    if args.vararg:
        parameters.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        parameters.append(
            kind(arg.arg, kind.KEYWORD_ONLY, default=kind.empty if default is None else None)
        )
    if args.kwarg:
        parameters.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    try:
        return inspect.Signature(parameters)
    except ValueError:  # duplicate names and the like: errors of their own
        return None


def builtin_misuse(nodes: Nodes) -> list[tuple[int, str]]:
    """A builtin function subscripted, searched or iterated, where the program no longer
    binds the name to anything else (`vars = {}` deleted leaves `vars['x']`)."""
    used = [
        *(n.value for n in nodes.of(ast.Subscript)),
        *(c for n in nodes.of(ast.Compare) for c in n.comparators),
        *(n.iter for n in nodes.of(ast.For, ast.comprehension)),
    ]
    suspects = [n for n in used if isinstance(n, ast.Name) and n.id in _BUILTIN_FUNCTIONS]
    if not suspects:
        return []
    bound = nodes.bound_names()
    return [
        (n.lineno, f"builtin function {n.id!r} used as a container")
        for n in suspects
        if n.id not in bound
    ]


_BUILTIN_FUNCTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, BuiltinFunctionType)
)


def import_errors(nodes: Nodes) -> list[tuple[int, str]]:
    """`from module import name` of a standard-library module that has no such name (two
    `try` statements merged, their `except ImportError` deleted), unless an enclosing `try`
    catches the ImportError: pylint's no-name-in-module."""
    imports = [n for n in nodes.of(ast.ImportFrom) if n.module and not n.level]
    if not imports:
        return []
    guarded = {
        id(inner)
        for node in nodes.of(*TRIES)
        if any(_catches_import_error(h.type) for h in node.handlers)
        for statement in node.body
        for inner in walk(statement)
    }
    found = []
    for node in imports:
        module = _stdlib_module(node.module)
        if module is None or id(node) in guarded:
            continue
        for alias in node.names:
            if alias.name == "*" or hasattr(module, alias.name):
                continue
            if not _submodule(module, alias.name):
                found.append((node.lineno, f"no name {alias.name!r} in module {node.module!r}"))
    return found


def _submodule(package: ModuleType, name: str) -> bool:
    """Whether `name` is a submodule of the package (`from xml import dom`)."""
    if not hasattr(package, "__path__"):
        return False
    try:
        return importlib.util.find_spec(f"{package.__name__}.{name}") is not None
    except (ImportError, ValueError):
        return False


def _catches_import_error(node: ast.expr | None) -> bool:
    names = node.elts if isinstance(node, ast.Tuple) else [node]
    return any(
        n is None or (isinstance(n, ast.Name) and n.id in _IMPORT_ERROR_BASES) for n in names
    )


#: Handlers that catch an ImportError.
_IMPORT_ERROR_BASES = frozenset(
    {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
)


@lru_cache(maxsize=1024)
def _stdlib_module(name: str) -> ModuleType | None:
    """A standard-library module (imported here, so never one that acts on import), or None
    for any other or one that does not import on this machine."""
    top = name.split(".")[0]
    if top not in sys.stdlib_module_names or top in _NEVER_IMPORT:
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # missing here, or broken: not this check's to report
        return None


@lru_cache(maxsize=4096)
def _library_signature(module: str, attributes: tuple[str, ...]) -> inspect.Signature | None:
    """The signature of a standard-library function or class, when Python can tell it."""
    value: Any = _stdlib_module(module)
    try:
        for attribute in attributes:
            value = getattr(value, attribute)
    except AttributeError:  # a missing name is not this check's to report
        return None
    if value is None:
        return None
    if not callable(value) or inspect.ismodule(value):
        return None
    if isinstance(value, type) and not _plain_class(value):
        return None
    try:
        return inspect.signature(value)
    except (TypeError, ValueError):
        return None


def _plain_class(cls: type) -> bool:
    """Whether calling the class binds its arguments to one `__init__` or `__new__` that
    Python can read (not a metaclass's `__call__`, not both overridden)."""
    return type(cls).__call__ is type.__call__ and (
        cls.__init__ is object.__init__ or cls.__new__ is object.__new__  # type: ignore[misc]
    )
