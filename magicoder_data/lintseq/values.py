"""Names and members whose only value is None: what deleting the line that gave them another
value leaves behind.

`zreplace = None` then, in a branch, `zreplace = compute()`: delete that branch's lines and
`'%' in zreplace` reads a name that can only be None. pylint infers the value and reports the
use (unsubscriptable-object, unsupported-membership-test, unsupported-assignment-operation,
unsupported-delete-operation, not-an-iterable, not-callable); so does this pass, for local,
enclosing and module names bound only by `name = None`, and for `self` members that every
method sets only to None. Like pylint, it trusts the guards that narrow a value: a use inside
`if x:` or `if x is not None:`, after `x is not None and`, after `assert x`, and after an
`if x is None:` whose body returns, raises or leaves the loop.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field

from .nodes import TRIES, Nodes, children, walk

Function = ast.FunctionDef | ast.AsyncFunctionDef
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_ENDS = (ast.Return, ast.Raise, ast.Continue, ast.Break)


@dataclass
class _Scope:
    """A module's or function's names: which are bound only to None, and which are declared
    to live elsewhere."""

    none: set[str] = field(default_factory=set)
    other: set[str] = field(default_factory=set)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)

    def bind(self, name: str, none: bool) -> None:
        (self.none if none else self.other).add(name)

    def only_none(self) -> set[str]:
        return self.none - self.other


def none_uses(nodes: Nodes) -> list[tuple[int, str]]:
    """(line, message) for each use pylint rejects of a value that can only be None."""
    if not _suspects(nodes):
        return []
    tree = nodes.tree
    module = _Scope()
    functions: list[tuple[Function | ast.Module, list[_Scope], set[str]]] = []
    _collect(tree, module, [module], functions, set())
    found: list[tuple[int, str]] = []
    for node, chain, members in functions:
        names: set[str] = set()
        for name in _reads(node):
            owner = _owner(name, chain, module)
            if owner is not None and name in owner.only_none():
                names.add(name)
        keys = names | {f"self.{m}" for m in members}
        if keys:
            _Uses(keys, found).block(node.body, frozenset())
    return found


def _suspects(nodes: Nodes) -> set[str]:
    """Names and members set to None somewhere that are also used where None fails: only
    those can be reported, and most states have none (the full pass is skipped)."""
    none = {
        key
        for node in nodes.of(ast.Assign)
        if _is_none(node.value)
        for target in node.targets
        if (key := _key(target)) is not None
    }
    if not none:
        return set()
    used: list[ast.AST] = [  # what is subscripted, called, iterated or searched
        *(n.value for n in nodes.of(ast.Subscript)),
        *(n.func for n in nodes.of(ast.Call)),
        *(n.iter for n in nodes.of(ast.For, ast.AsyncFor, ast.comprehension)),
        *(c for n in nodes.of(ast.Compare) for c in n.comparators),
    ]
    return {k for n in used if (k := _key(n)) in none}


def _collect(
    node: ast.Module | Function,
    scope: _Scope,
    chain: list[_Scope],
    functions: list[tuple[Function | ast.Module, list[_Scope], set[str]]],
    members: set[str],
) -> None:
    """Records `node`'s bindings in `scope`, then does the same for every function inside
    it (a method gets its class's None-only members)."""
    functions.append((node, chain, members))
    if not isinstance(node, ast.Module):
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                scope.bind(arg.arg, none=False)
    nested: list[tuple[Function, set[str]]] = []
    for child in _own(node):
        if isinstance(child, ast.Global):
            scope.globals.update(child.names)
        elif isinstance(child, ast.Nonlocal):
            scope.nonlocals.update(child.names)
    assigned: set[int] = set()  # names stored by an `=` (recorded with it, None or not)
    for child in _own(node):
        if isinstance(child, ast.Assign):
            none = _is_none(child.value)
            for target in child.targets:
                for name in walk(target):
                    if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
                        assigned.add(id(name))
                        _bind(scope, chain[0], name.id, none and name is target)
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            if id(child) not in assigned:
                _bind(scope, chain[0], child.id, False)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            _bind(scope, chain[0], child.name, False)
            nested.append((child, set()))
        elif isinstance(child, ast.ClassDef):
            _bind(scope, chain[0], child.name, False)
            methods = [
                m for m in child.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            none_members = _none_members(child, methods)
            nested.extend((m, none_members) for m in methods)
        elif isinstance(child, ast.alias):
            _bind(scope, chain[0], (child.asname or child.name).split(".")[0], False)
        elif isinstance(child, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and child.name:
            _bind(scope, chain[0], child.name, False)
        elif isinstance(child, ast.MatchMapping) and child.rest:
            _bind(scope, chain[0], child.rest, False)
    for function, none_members in nested:
        inner = _Scope()
        _collect(function, inner, [*chain, inner], functions, none_members)


def _bind(scope: _Scope, module: _Scope, name: str, none: bool) -> None:
    if name in scope.nonlocals:
        return  # an enclosing function's name: its reads there are taken as not None
    (module if name in scope.globals else scope).bind(name, none)
    if name in scope.globals:
        module.other.add(name)  # a function's `global` binding: trust it is not None


def _own(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope's body, not entering nested functions, classes or lambdas (but
    yielding them)."""
    stack = list(reversed(children(node)))
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, _DEFS):
            stack.extend(children(current))


def _reads(node: ast.Module | Function) -> set[str]:
    return {
        n.id for n in _own(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)
    }


def _owner(name: str, chain: list[_Scope], module: _Scope) -> _Scope | None:
    """The scope a read of `name` in the innermost scope of `chain` finds it in."""
    here = chain[-1]
    if name in here.globals:
        return module
    if name in here.nonlocals:
        return None
    for scope in reversed(chain):
        if name in scope.none or name in scope.other:
            return scope
    return None


def _none_members(node: ast.ClassDef, methods: list[Function]) -> set[str]:
    """Members every method sets only to None (`self.lines = None` and nothing else), that
    the class body does not bind."""
    none: set[int] = set()  # the targets of `self.x = None`
    stores: list[ast.Attribute] = []
    for method in methods:
        for child in walk(method):
            if isinstance(child, ast.Assign) and _is_none(child.value):
                none.update(id(t) for t in child.targets)
            elif (
                isinstance(child, ast.Attribute)
                and _is_self(child.value)
                and isinstance(child.ctx, ast.Store)
            ):
                stores.append(child)
    at_class = {m.name for m in methods} | {
        n.id
        for statement in node.body
        if not isinstance(statement, _DEFS)
        for n in walk(statement)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    only_none = {a.attr for a in stores} - {a.attr for a in stores if id(a) not in none}
    return only_none - at_class


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _key(node: ast.AST) -> str | None:
    """`x` for a name, `self.x` for a member of self, None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and _is_self(node.value):
        return f"self.{node.attr}"
    return None


def _tested(test: ast.expr) -> tuple[set[str], set[str]]:
    """The keys a test proves not None when it is true, and when it is false."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        true, false = _tested(test.operand)
        return false, true
    key = _key(test)
    if key is not None:
        return {key}, set()
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and _is_none(test.comparators[0])
        and (key := _key(test.left)) is not None
    ):
        if isinstance(test.ops[0], ast.IsNot | ast.NotEq):
            return {key}, set()
        if isinstance(test.ops[0], ast.Is | ast.Eq):
            return set(), {key}
    return set(), set()


class _Uses:
    """Walks a scope's statements with the keys narrowed to not None so far."""

    def __init__(self, keys: set[str], found: list[tuple[int, str]]) -> None:
        self.keys = keys
        self.found = found

    def block(self, statements: list[ast.stmt], narrowed: frozenset[str]) -> None:
        for statement in statements:
            narrowed = self.statement(statement, narrowed)

    def statement(self, node: ast.stmt, narrowed: frozenset[str]) -> frozenset[str]:
        """Checks one statement; returns what is narrowed after it."""
        if isinstance(node, _DEFS):
            for part in children(node):
                if not isinstance(part, ast.stmt | ast.arguments):
                    self.expression(part, narrowed)  # decorators, bases
            return narrowed
        if isinstance(node, ast.If):
            self.expression(node.test, narrowed)
            true, false = _tested(node.test)
            self.block(node.body, narrowed | true)
            self.block(node.orelse, narrowed | false)
            if node.body and isinstance(node.body[-1], _ENDS):
                narrowed |= false
            if node.orelse and isinstance(node.orelse[-1], _ENDS):
                narrowed |= true
            return narrowed
        if isinstance(node, ast.Assert):
            self.expression(node.test, narrowed)
            return narrowed | _tested(node.test)[0]
        if isinstance(node, ast.For | ast.AsyncFor):
            self.use(node.iter, narrowed, "is None: not iterable")
        for part in children(node):
            if isinstance(part, ast.stmt):
                continue
            if isinstance(part, ast.excepthandler | ast.match_case | ast.withitem):
                for inner in children(part):
                    if not isinstance(inner, ast.stmt):
                        self.expression(inner, narrowed)
            else:
                self.expression(part, narrowed)
        for body in ("body", "orelse", "finalbody"):
            self.block(getattr(node, body, []), narrowed)
        for handler in getattr(node, "handlers", []):
            self.block(handler.body, narrowed)
        for case in getattr(node, "cases", []):
            self.block(case.body, narrowed)
        return narrowed

    def use(self, node: ast.expr, narrowed: frozenset[str], message: str) -> None:
        key = _key(node)
        if key in self.keys and key not in narrowed:
            self.found.append((node.lineno, f"{key!r} {message}"))

    def expression(self, node: ast.AST, narrowed: frozenset[str]) -> None:
        if isinstance(node, _DEFS):
            return  # a lambda's body runs later
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.expression(value, narrowed)
                true, false = _tested(value)
                narrowed |= true if isinstance(node.op, ast.And) else false
            return
        if isinstance(node, ast.IfExp):
            self.expression(node.test, narrowed)
            true, false = _tested(node.test)
            self.expression(node.body, narrowed | true)
            self.expression(node.orelse, narrowed | false)
            return
        if isinstance(node, ast.Subscript):
            self.use(node.value, narrowed, "is None: not subscriptable")
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    self.use(right, narrowed, "is None: no membership test")
        elif isinstance(node, ast.Call):
            self.use(node.func, narrowed, "is None: not callable")
        elif isinstance(node, ast.comprehension):
            self.use(node.iter, narrowed, "is None: not iterable")
        for part in children(node):
            self.expression(part, narrowed)


def except_order(nodes: Nodes) -> list[tuple[int, str]]:
    """An `except` that can never run because an earlier handler of the same `try` catches a
    built-in base of its class (`except Exception` before `except OSError`, two handlers that
    deleting the lines between them merged): pylint's bad-except-order."""
    found: list[tuple[int, str]] = []
    for node in nodes.of(*TRIES):
        if len(node.handlers) < 2:
            continue
        caught: list[type] = []
        for handler in node.handlers:
            classes = _builtin_exceptions(handler.type)
            for cls in classes:
                if any(issubclass(cls, earlier) for earlier in caught):
                    found.append((handler.lineno, f"{cls.__name__} caught by an earlier except"))
            caught.extend(classes)
    return found


def _builtin_exceptions(node: ast.expr | None) -> list[type]:
    """The built-in exception classes an `except` names (a name or a tuple of names)."""
    names = node.elts if isinstance(node, ast.Tuple) else [node]
    found = []
    for name in names:
        if isinstance(name, ast.Name):
            value = getattr(builtins, name.id, None)
            if isinstance(value, type) and issubclass(value, BaseException):
                found.append(value)
    return found
