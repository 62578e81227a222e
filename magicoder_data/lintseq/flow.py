"""Names read before they are bound: what deleting an assignment leaves behind.

Deleting `pos = 0` from a function keeps `pos += 2` in its loop; deleting the first line that
binds `base` keeps `base = base.replace(...)`. Python compiles both and fails at run time
(UnboundLocalError), and pylint reports them (E0601 used-before-assignment, E0606
possibly-used-before-assignment). This pass follows each scope's statements in order, keeping
the names bound on every path so far: a branch binds a name for what follows only when every
branch that goes on binds it; a loop's body and a `try` body may not run at all; `del` and the
end of an `except ... as name` unbind. Bodies of nested functions, classes and lambdas are their
own scopes; a name they read from an enclosing function is bound by the time they run.

Deliberately lenient where pylint is: only a name's first read in a scope is checked; a name
every path through a loop's body binds counts as bound after the loop (though the body may not
run); and a read in a `for` loop that comes before the name's binding in the same loop is not
flagged when the loop binds it for certain (the next iteration sees it).

The module also holds the class checks (methods and members as pylint sees them) and the
results of functions that return nothing.
"""

from __future__ import annotations

import ast
import symtable
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .nodes import TRIES, Nodes, children, walk

#: Names a read may find unbound in a loop, with the line of their last binding in it.
Lenient = Mapping[str, int]
_NOTHING: Lenient = MappingProxyType({})


def _without(lenient: Lenient, names: set[str]) -> Lenient:
    return {name: line for name, line in lenient.items() if name not in names}


#: What a branch that never goes on (return, raise, break, continue) leaves bound: anything.
_ALL: frozenset[str] = frozenset({"\0all"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
#: Statements with bodies of their own (a binding inside them may not happen).
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match)


def unbound_reads(nodes: Nodes, top: symtable.SymbolTable) -> list[tuple[int, str]]:
    """(line, message) for each read of a local name that no path has bound yet; `nodes` are
    the tree's, `top` its module's symbol table."""
    tree = nodes.tree
    tables = _tables(top)
    found: list[tuple[int, str]] = []
    star = any(isinstance(n, ast.ImportFrom) and n.names[0].name == "*" for n in tree.body)
    read = {n.id for n in nodes.of(ast.Name) if not isinstance(n.ctx, ast.Store)} | {
        n.target.id for n in nodes.of(ast.AugAssign) if isinstance(n.target, ast.Name)
    }
    deletes = bool(nodes.of(ast.Delete))
    for scope, local in _scopes(tree, nodes, tables):
        if star and isinstance(scope, ast.Module):
            continue  # with a star import any module name may be bound already
        params = _parameters(scope) if not isinstance(scope, ast.Module) else set()
        checker = _Checker(local | params, found)
        # Parameters are bound from the start; a name no scope reads is never read unbound.
        checker.consumed |= params
        checker.pending = (local - params) & read
        checker.deletes = deletes
        checker.block(scope.body, frozenset(params))
    return sorted(set(found))


def _tables(top: symtable.SymbolTable) -> dict[tuple[str, int], symtable.SymbolTable]:
    """Every symbol table by (name, first line), to find a scope's table from its node."""
    found, stack = {}, [top]
    while stack:
        table = stack.pop()
        found[table.get_name(), table.get_lineno()] = table
        stack.extend(table.get_children())
    return found


def _scopes(
    tree: ast.Module, nodes: Nodes, tables: dict[tuple[str, int], symtable.SymbolTable]
) -> Iterator[tuple[ast.Module | ast.FunctionDef | ast.AsyncFunctionDef, set[str]]]:
    """The module and each function with the names local to it (bound there, not declared
    nonlocal; a `global` one counts when the module itself never binds it); class bodies are
    left out (their reads fall back to globals)."""
    top = tables["top", 0]
    module = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    yield tree, module
    declares_globals = bool(nodes.of(ast.Global))
    for node in nodes.of(ast.FunctionDef, ast.AsyncFunctionDef):
        line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        table = tables.get((node.name, node.lineno)) or tables.get((node.name, line))
        if table is None:
            continue
        # Bound in the function: its locals (parameters too, bound from the start), not the
        # names it declares nonlocal (they are free) or global (below).
        local = set(table.get_locals())  # type: ignore[attr-defined]
        if declares_globals:
            outright: set[str] | None = None  # bound by the body's own simple statements
            for name in table.get_globals():  # type: ignore[attr-defined]
                symbol = table.lookup(name)
                if not (symbol.is_declared_global() and symbol.is_assigned()):
                    continue
                # A global only this function binds, and only inside branches or loops.
                if outright is None:
                    outright = _bound_in(s for s in node.body if not isinstance(s, _COMPOUND))
                if name not in module and name not in outright:
                    local.add(name)
        yield node, local


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _targets(node: ast.AST) -> Iterator[str]:
    """Names a target binds (`a, (b, *c) = ...`, `x.y = ...` binds none)."""
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _bound_in(statements: Iterable[ast.stmt]) -> set[str]:
    """Every name the statements bind anywhere in this scope."""
    return set(_binding_lines(statements))


def _binding_lines(statements: Iterable[ast.stmt]) -> dict[str, int]:
    """Every name the statements bind anywhere in this scope, with its last binding's line."""
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        found[name] = max(line, found.get(name, 0))

    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            add(statement.name, statement.lineno)  # its body binds names of its own scope
            continue
        for node in _walk_scope(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                add(node.id, node.lineno)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                add(node.name, node.lineno)
            elif isinstance(node, ast.alias):
                add((node.asname or node.name).split(".")[0], statement.lineno)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                add(node.name, node.lineno)
    return found


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk`, not entering nested scopes' bodies (their names are their own)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, _SCOPES) and current is not node:
            continue
        stack.extend(children(current))


class _Checker:
    """Walks one scope's statements with the set of names bound on every path so far."""

    def __init__(self, local: set[str], found: list[tuple[int, str]]) -> None:
        self.local = local
        self.found = found
        self._bound: dict[int, set[str]] = {}  # a loop body's bindings, by the body's identity
        self.consumed: set[str] = set()  # names read so far
        self.pending: set[str] = set()  # local names whose first read may still come
        self.deletes = True  # whether a `del` may make a name pending again

    def bound_in(self, body: list[ast.stmt]) -> set[str]:
        """`_bound_in(body)`, once per body (a loop's test, body and end all ask)."""
        key = id(body)
        if key not in self._bound:
            self._bound[key] = _bound_in(body)
        return self._bound[key]

    def read(self, node: ast.AST, bound: frozenset[str], lenient: Lenient) -> None:
        """Flag reads, in an expression evaluated in this scope, of local names not bound.
        As pylint does, only a name's first read in the scope is checked: once read, a name
        is taken as defined (pylint calls it consumed)."""
        if not self.pending:
            return  # every name that is read has been: nothing left to find
        for child in _walk_expression(node):
            if (
                isinstance(child, ast.Name)
                and isinstance(child.ctx, ast.Load | ast.Del)
                and child.id in self.local
                and child.id not in self.consumed
            ):
                self.consumed.add(child.id)
                self.pending.discard(child.id)
                if not (
                    bound is _ALL
                    or child.id in bound
                    or (child.id in lenient and child.lineno < lenient[child.id])
                ):
                    self.found.append((child.lineno, f"used before assignment {child.id!r}"))

    def block(
        self,
        statements: list[ast.stmt],
        bound: frozenset[str],
        lenient: Lenient = _NOTHING,
    ) -> frozenset[str]:
        for statement in statements:
            if not self.pending and not self.deletes:
                return bound  # nothing left to find: what is bound no longer matters
            bound = self.statement(statement, bound, lenient)
        return bound

    def statement(self, node: ast.stmt, bound: frozenset[str], lenient: Lenient) -> frozenset[str]:
        if bound is _ALL:  # unreachable: its reads count as reads, nothing more
            self.read(node, bound, lenient)
            return bound
        if isinstance(node, TRIES):
            return self.try_(node, bound, lenient)
        match node:
            case ast.Assign(targets=targets, value=value):
                self.read(value, bound, lenient)
                for target in targets:
                    self.read_target(target, bound, lenient)
                return bound | {n for t in targets for n in _targets(t)}
            case ast.AnnAssign(target=target, value=value):
                if value is None:
                    return bound
                self.read(value, bound, lenient)
                self.read_target(target, bound, lenient)
                return bound | set(_targets(target))
            case ast.AugAssign(target=target, value=value):
                self.read(value, bound, lenient)
                if isinstance(target, ast.Name):
                    self.read(ast.Name(target.id, ast.Load(), lineno=target.lineno), bound, lenient)
                else:
                    self.read_target(target, bound, lenient)
                return bound | set(_targets(target))
            case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
                for part in _evaluated_at_definition(node):
                    self.read(part, bound, lenient)
                return bound | {node.name}
            case ast.Import(names=names) | ast.ImportFrom(names=names):
                return bound | {(a.asname or a.name).split(".")[0] for a in names}
            case ast.Delete(targets=targets):
                for target in targets:
                    self.read(target, bound, lenient)
                deleted = {n for t in targets for n in _targets(t)}
                # stricter than pylint: a read after `del` fails
                self.consumed -= deleted
                self.pending |= deleted & self.local
                return bound - deleted
            case ast.Return() | ast.Raise() | ast.Break() | ast.Continue():
                for part in children(node):
                    self.read(part, bound, lenient)
                return _ALL
            case ast.If(test=test, body=body, orelse=orelse):
                self.read(test, bound, lenient)
                return _meet(self.block(body, bound, lenient), self.block(orelse, bound, lenient))
            case (
                ast.For(target=target, iter=iterable, body=body, orelse=orelse)
                | ast.AsyncFor(target=target, iter=iterable, body=body, orelse=orelse)
            ):
                self.read(iterable, bound, _without(lenient, self.bound_in(body)))
                return self.loop(node, bound | set(_targets(target)), body, orelse, lenient)
            case ast.While(test=test, body=body, orelse=orelse):
                # The test runs before the body: what only the body binds is no help to it.
                self.read(test, bound, _without(lenient, self.bound_in(body)))
                return self.loop(node, bound, body, orelse, lenient)
            case ast.With(items=items, body=body) | ast.AsyncWith(items=items, body=body):
                for item in items:
                    self.read(item.context_expr, bound, lenient)
                    if item.optional_vars is not None:
                        bound = bound | set(_targets(item.optional_vars))
                return self.block(body, bound, lenient)
            case ast.Match(subject=subject, cases=cases):
                self.read(subject, bound, lenient)
                ends = []
                for case in cases:
                    captured = {
                        n.name
                        for n in walk(case.pattern)
                        if isinstance(n, ast.MatchAs | ast.MatchStar) and n.name
                    }
                    inner = bound | captured
                    if case.guard is not None:
                        self.read(case.guard, inner, lenient)
                    ends.append(self.block(case.body, inner, lenient))
                return _meet(bound, *ends) if ends else bound
            case ast.Global() | ast.Nonlocal() | ast.Pass():
                return bound
            case _:  # Expr, Assert and the like: reads, and bindings by `:=`
                for part in children(node):
                    self.read(part, bound, lenient)
                return bound | _walrus(node)

    def read_target(self, target: ast.AST, bound: frozenset[str], lenient: Lenient) -> None:
        """Reads inside an assignment target (`a[i] = ...` reads `a` and `i`)."""
        if isinstance(target, ast.Attribute | ast.Subscript):
            self.read(target, bound, lenient)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self.read_target(element, bound, lenient)
        elif isinstance(target, ast.Starred):
            self.read_target(target.value, bound, lenient)

    def loop(
        self,
        node: ast.stmt,
        bound: frozenset[str],
        body: list[ast.stmt],
        orelse: list[ast.stmt],
        lenient: Lenient,
    ) -> frozenset[str]:
        """A loop body may run any number of times. As pylint has it, in a `for` loop a name the
        body binds for certain (not under an `if` only one branch of which binds it) is bound
        for the next iteration, so a read of it that comes before the binding in the body is
        lenient (not one after it: the path that reaches it skipped the binding); after any
        loop, what every path through the body binds counts as bound."""
        # A name the body binds only by reading it first (`pos += 2`) is no help to itself.
        skipped = bound | _self_dependent(body)
        # pylint is lenient in `for` loops only: a `while` loop's reads are checked in order.
        certain = _certain(body) if isinstance(node, ast.For | ast.AsyncFor) else set()
        inside = {
            name: line
            for name, line in _binding_lines(body).items()
            if name not in skipped and name in certain
        }
        merged = dict(lenient)
        for name, line in inside.items():
            merged[name] = max(line, merged.get(name, 0))
        after = self.block(body, bound, merged)
        ended = frozenset(bound | (self.bound_in(body) if after is _ALL else after))
        end = self.block(orelse, ended, lenient)
        # A `break` skips the `else`: what follows is reachable even when the `else` raises.
        return _meet(end, ended) if _breaks(body) else end

    def try_(self, node: Any, bound: frozenset[str], lenient: Lenient) -> frozenset[str]:
        """The body may stop anywhere: handlers and `finally` see only what was bound before;
        after the statement a name is bound when the body (and else) and every handler that
        goes on bind it."""
        body = self.block(node.body, bound, lenient)
        ends = []
        for handler in node.handlers:
            if handler.type is not None:
                self.read(handler.type, bound, lenient)
            name = {handler.name} if handler.name else set()
            end = self.block(handler.body, bound | name, lenient)
            ends.append(end if end is _ALL else end - name)
        ends.append(self.block(node.orelse, body, lenient))
        after = _meet(*ends)
        finished = self.block(node.finalbody, bound, lenient)
        if finished is _ALL:
            return _ALL
        return after if after is _ALL else after | finished


def _breaks(body: list[ast.stmt]) -> bool:
    """Whether the loop body has a `break` of its own (not one of a nested loop)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break):
            return True
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            stack.extend(node.orelse)  # its `else` belongs to the outer loop
        elif not isinstance(node, (*_SCOPES, ast.expr)):
            stack.extend(children(node))
    return False


def _certain(statements: list[ast.stmt]) -> set[str]:
    """Names the statements bind for certain, as pylint judges a binding in a loop: by a
    statement of the body itself, or an `if` (or `match`) every branch of which binds them,
    not inside a nested loop, `with` or `try`; a branch that returns, raises, breaks or
    continues binds anything."""
    found = _certain_or_all(statements)
    return _bound_in(statements) if found is _ALL else set(found)


def _certain_or_all(statements: list[ast.stmt]) -> frozenset[str]:
    bound: set[str] = set()
    for statement in statements:
        if isinstance(statement, ast.Return | ast.Raise | ast.Break | ast.Continue):
            return _ALL
        if isinstance(statement, ast.If):
            met = _meet(_certain_or_all(statement.body), _certain_or_all(statement.orelse))
            if met is _ALL:
                return _ALL
            bound |= met
        elif isinstance(statement, ast.Match):
            bound |= _meet(frozenset(), *(_certain_or_all(c.body) for c in statement.cases))
        elif not isinstance(statement, _COMPOUND):
            bound |= _bound_in([statement])
    return frozenset(bound)


def _meet(*ends: frozenset[str]) -> frozenset[str]:
    """Names bound on every path that goes on (paths that return or raise do not)."""
    going = [end for end in ends if end is not _ALL]
    if not going:
        return _ALL
    met = set(going[0])
    for end in going[1:]:
        met &= end
    return frozenset(met)


def _walrus(node: ast.AST) -> set[str]:
    return {
        n.target.id
        for n in _walk_expression(node)
        if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
    }


def _self_dependent(body: list[ast.stmt]) -> set[str]:
    """Names the loop binds only from themselves (`pos += 2`, `offset = -offset`): their first
    iteration reads them unbound."""
    dependent: set[str] = set()
    plain: set[str] = set()
    for statement in body:
        for node in _walk_scope(statement):
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                dependent.add(node.target.id)
            elif isinstance(node, ast.Assign):
                reads = {n.id for n in _walk_expression(node.value) if isinstance(n, ast.Name)}
                for name in (n for t in node.targets for n in _targets(t)):
                    (dependent if name in reads else plain).add(name)
            elif isinstance(node, ast.AnnAssign | ast.For | ast.AsyncFor | ast.With):
                for target in getattr(node, "targets", []) or [getattr(node, "target", None)]:
                    if target is not None:
                        plain.update(_targets(target))
                for item in getattr(node, "items", []):
                    if item.optional_vars is not None:
                        plain.update(_targets(item.optional_vars))
    return dependent - plain


def _evaluated_at_definition(node: ast.AST) -> Iterator[ast.AST]:
    """What a def or class statement evaluates where it stands: decorators, defaults, bases."""
    yield from getattr(node, "decorator_list", [])
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        yield from node.args.defaults
        yield from (d for d in node.args.kw_defaults if d is not None)
    if isinstance(node, ast.ClassDef):
        yield from node.bases
        yield from (k.value for k in node.keywords)


def _walk_expression(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes an expression evaluates in this scope: not lambda bodies, and of a
    comprehension only its first iterable (the rest is the comprehension's own scope)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Lambda):
            stack.extend(current.args.defaults)
            stack.extend(d for d in current.args.kw_defaults if d is not None)
            continue
        if isinstance(current, _COMPREHENSIONS):
            # The first iterable is evaluated here; the rest reads this scope's names as they
            # are when the comprehension runs, which is now.
            stack.append(current.generators[0].iter)
            own = {n for g in current.generators for n in _targets(g.target)}
            rest: list[ast.AST] = [*current.generators[1:], *current.generators[0].ifs]
            for name in ("elt", "key", "value"):
                if (part := getattr(current, name, None)) is not None:
                    rest.append(part)
            for part in rest:
                stack.extend(
                    n
                    for n in _walk_expression(part)
                    if not (isinstance(n, ast.Name) and n.id in own)
                )
            continue
        if isinstance(current, _SCOPES):
            stack.extend(_evaluated_at_definition(current))
            continue
        yield current
        stack.extend(children(current))


#: Special methods whose result Python checks, so pylint wants them to return a value.
_MUST_RETURN = frozenset(
    {
        "__bool__", "__bytes__", "__format__", "__getnewargs__", "__getnewargs_ex__",
        "__hash__", "__index__", "__iter__", "__len__", "__length_hint__", "__repr__",
        "__str__",
    }
)  # fmt: skip
#: Decorators that make a second def of the same name no redefinition.
_REDEFINABLE = ("setter", "getter", "deleter", "overload", "register")
#: Methods that are class methods without saying so.
_IMPLICIT_CLASSMETHODS = frozenset({"__new__", "__init_subclass__", "__class_getitem__"})


def class_errors(nodes: Nodes) -> list[tuple[int, str]]:
    """What deleting a line inside a class leaves that pylint calls an error: a method whose
    first parameter is no longer `self` (a `@classmethod` or `@staticmethod` line deleted),
    `self.name` read where the class no longer binds it, and a special method that returns
    nothing."""
    found: list[tuple[int, str]] = []
    for node in nodes.of(ast.ClassDef):
        found += _class_errors(node)
    found += _redefined(nodes.tree.body)
    return found


Method = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _SelfUse:
    """What one method does with its first parameter (`self`, or `cls` in a class method),
    gathered in one walk (its closures included)."""

    loads: list[ast.Attribute] = field(default_factory=list)
    stores: list[ast.Attribute] = field(default_factory=list)
    #: Stores that read the attribute they set (`self.x = self.x ** 2`, `self.x += 1`).
    dependent: set[int] = field(default_factory=set)
    returns_self: bool = False
    #: (line, member, what) where `self.member` is used as a value a method is not: its
    #: attributes read, subscripted, unpacked, iterated.
    as_value: list[tuple[int, str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, method: Method, name: str = "self") -> _SelfUse:
        use = cls()

        def mine(node: ast.AST) -> bool:
            return isinstance(node, ast.Name) and node.id == name

        def member(node: ast.AST) -> str | None:
            return node.attr if isinstance(node, ast.Attribute) and mine(node.value) else None

        for child in walk(method):
            if isinstance(child, ast.Attribute) and mine(child.value):
                (use.stores if isinstance(child.ctx, ast.Store) else use.loads).append(child)
            elif isinstance(child, ast.Attribute) and (inner := member(child.value)):
                if child.attr not in _FUNCTION_ATTRIBUTES:
                    use.as_value.append((child.lineno, inner, f"has no {child.attr!r}"))
            elif isinstance(child, ast.Subscript) and (inner := member(child.value)):
                use.as_value.append((child.lineno, inner, "is not subscriptable"))
            elif isinstance(child, ast.For | ast.comprehension) and (inner := member(child.iter)):
                use.as_value.append((child.iter.lineno, inner, "is not iterable"))
            elif isinstance(child, ast.AugAssign) and isinstance(child.target, ast.Attribute):
                use.dependent.add(id(child.target))
                if mine(child.target.value):
                    use.loads.append(child.target)  # `self.x += 1` reads `self.x` first
            elif isinstance(child, ast.Assign):
                if (inner := member(child.value)) and any(
                    isinstance(t, ast.Tuple | ast.List) for t in child.targets
                ):
                    use.as_value.append((child.lineno, inner, "cannot be unpacked"))
                read = {
                    n.attr
                    for n in walk(child.value)
                    if isinstance(n, ast.Attribute) and mine(n.value)
                }
                use.dependent.update(
                    id(t) for t in child.targets if isinstance(t, ast.Attribute) and t.attr in read
                )
            elif isinstance(child, ast.Return) and child.value is not None:
                use.returns_self |= mine(child.value)
        return use

    def members(self) -> set[str]:
        """What the method's stores bind (not a store that reads what it sets)."""
        return {a.attr for a in self.stores if id(a) not in self.dependent}


def _class_errors(node: ast.ClassDef) -> list[tuple[int, str]]:
    """As pylint has it: members are what the class body binds and what any method stores on
    `self` (`__new__` included); `setattr` and `__dict__` add none; a class method's `cls.x`
    needs a class-level `x`."""
    found: list[tuple[int, str]] = []
    methods = _methods(node)
    at_class = {m.name for m in methods} | _bound_in(node.body)
    uses: list[tuple[str, _SelfUse]] = []  # methods whose first parameter is `self` (a
    # property's getter and setter share a name)
    class_uses: list[_SelfUse] = []  # class methods, on their first parameter
    elsewhere: set[str] = set()  # stored on `self` by `__new__` and static methods
    for method in methods:
        decorators = {_decorator_name(d) for d in method.decorator_list}
        params = [*method.args.posonlyargs, *method.args.args]
        static = any(d.endswith("staticmethod") for d in decorators)
        if not params and not static:
            if method.args.vararg is None:
                found.append((method.lineno, f"method {method.name!r} has no argument"))
            continue
        classy = method.name in _IMPLICIT_CLASSMETHODS or any(
            d.endswith("classmethod") for d in decorators
        )
        if static or method.name in _IMPLICIT_CLASSMETHODS:
            elsewhere |= _SelfUse.of(method).members()  # `self = super().__new__(cls)`
        if classy and not static:
            class_uses.append(_SelfUse.of(method, params[0].arg))
        if static or classy:
            continue
        if params[0].arg != "self":
            found.append((method.lineno, f"method {method.name!r} has no self argument"))
            continue
        use = _SelfUse.of(method)
        uses.append((method.name, use))
        if method.name in _MUST_RETURN and not _returns_something(method):
            found.append((method.lineno, f"{method.name} returns nothing"))
        if method.name == "__iter__" and use.returns_self and "__next__" not in at_class:
            found.append((method.lineno, "__iter__ returns self, which has no __next__"))
    at_class |= {a for use in class_uses for a in use.members()}
    stored = elsewhere | {a for _, use in uses for a in use.members()}
    members = at_class | stored
    defined = _bound_in(s for s in node.body if not isinstance(s, ast.FunctionDef))
    found += _methods_as_values(methods, uses, stored | defined)
    found += _property_parts(node, methods)
    found += _redefined(node.body)
    found += _before_definition(uses, at_class)
    if {"__getattr__", "__getattribute__"} & at_class:
        return found  # members no reading can list
    slots = _slots(node)
    for _, use in uses:
        if slots is not None:
            found += [
                (a.lineno, f"assigning {a.attr!r}, not in __slots__")
                for a in use.stores
                if a.attr not in slots and a.attr not in at_class
            ]
        found += _missing(use.loads, members | _EVERY_INSTANCE_HAS, "no member")
    for use in class_uses:
        found += _missing(use.loads, at_class | _EVERY_CLASS_HAS, "no class member")
    return found


#: What every instance has (`__class__`, `__dict__`...) and every class (`__name__`, `__mro__`
#: too), not other special names: a deleted `def __isabstractmethod__` leaves
#: `self.__isabstractmethod__` bare.
_EVERY_INSTANCE_HAS = frozenset(dir(object)) | {"__dict__", "__weakref__", "__module__"}
_EVERY_CLASS_HAS = _EVERY_INSTANCE_HAS | frozenset(dir(type)) | {"__annotations__", "__slots__"}


def _missing(loads: list[ast.Attribute], members: set[str], what: str) -> list[tuple[int, str]]:
    return [(a.lineno, f"{what} {a.attr!r}") for a in loads if a.attr not in members]


def _methods_as_values(
    methods: list[Method], uses: list[tuple[str, _SelfUse]], data: set[str]
) -> list[tuple[int, str]]:
    """`self.name` used as data (`.attr`, `[i]`, unpacked, iterated) where `name` can only be a
    plain method (its `@property` line deleted, say), or a property whose getter returns
    nothing (its `return` deleted). `data` is what else the class binds."""
    names = [m.name for m in methods]
    single = {m.name: m for m in methods if names.count(m.name) == 1 and m.name not in data}
    plain = {name for name, m in single.items() if not m.decorator_list}
    empty = {
        name
        for name, m in single.items()
        if [_decorator_name(d).rsplit(".", 1)[-1] for d in m.decorator_list]
        in (["property"], ["cached_property"])
        and _gives(m, decorated=True) is not None
    }
    return [
        (line, f"method {name!r} {what}")
        for _, use in uses
        for line, name, what in use.as_value
        if name in plain
    ] + [
        (line, f"property {name!r} is None and {what}")
        for _, use in uses
        for line, name, what in use.as_value
        if name in empty and not what.startswith("has no")
    ]


def _methods(node: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The class's methods, those under an `if` or `try` in its body too."""
    found = []
    stack: list[ast.stmt] = list(reversed(node.body))
    while stack:
        statement = stack.pop()
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(statement)
        elif isinstance(statement, (ast.If, ast.With, *TRIES)):
            stack.extend(reversed([s for s in children(statement) if isinstance(s, ast.stmt)]))
            for handler in getattr(statement, "handlers", []):
                stack.extend(reversed(handler.body))
    return found


def _redefined(body: list[ast.stmt]) -> list[tuple[int, str]]:
    """A def or class whose name an earlier one in the same body already took (a `@x.setter`
    line deleted), unless it is a property part or an overload."""
    seen: set[str] = set()
    found = []
    for statement in body:
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        names = {_decorator_name(d) for d in statement.decorator_list}
        part = any(
            n.endswith(("setter", "getter", "deleter", "overload", "register")) for n in names
        )
        if statement.name in seen and not part:
            found.append((statement.lineno, f"{statement.name!r} defined again"))
        seen.add(statement.name)
    return found


def _decorator_name(node: ast.expr) -> str:
    """`classmethod`, `abc.abstractclassmethod`, `functools.wraps(f)` -> a dotted name."""
    if isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _returns_something(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the body returns a value, yields, or raises (an abstract method's body)."""
    for child in _walk_scope(method):
        if isinstance(child, ast.Yield | ast.YieldFrom | ast.Raise):
            return True
        if (
            isinstance(child, ast.Return)
            and child.value is not None
            and not (isinstance(child.value, ast.Constant) and child.value.value is None)
        ):
            return True
    return False


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _slots(node: ast.ClassDef) -> set[str] | None:
    """The names a literal `__slots__` lists (None when there is none, or it is computed)."""
    for statement in node.body:
        if (
            isinstance(statement, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in statement.targets)
            and isinstance(statement.value, ast.Tuple | ast.List | ast.Constant)
        ):
            values = (
                [statement.value]
                if isinstance(statement.value, ast.Constant)
                else statement.value.elts
            )
            if all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in values):
                return {str(v.value) for v in values if isinstance(v, ast.Constant)}
    return None


def _property_parts(
    node: ast.ClassDef, methods: list[ast.FunctionDef | ast.AsyncFunctionDef]
) -> list[tuple[int, str]]:
    """`@name.setter` (or getter, deleter) where `name` is a method but no longer a property."""
    properties = {
        m.name
        for m in methods
        if any(_decorator_name(d).endswith("property") for d in m.decorator_list)
    }
    plain = {m.name for m in methods} - properties
    found = []
    for method in methods:
        for decorator in method.decorator_list:
            if (
                isinstance(decorator, ast.Attribute)
                and decorator.attr in ("setter", "getter", "deleter")
                and isinstance(decorator.value, ast.Name)
                and decorator.value.id in plain
            ):
                found.append((decorator.lineno, f"{decorator.value.id!r} is no property"))
    return found


def _before_definition(
    uses: list[tuple[str, _SelfUse]], at_class: set[str]
) -> list[tuple[int, str]]:
    """`self.x` read in a method before the line that assigns it there, when that method is
    the only place the class binds `x`."""
    where: dict[str, set[str]] = {}
    first: dict[tuple[str, str], int] = {}
    for name, use in uses:
        for a in use.stores:
            where.setdefault(a.attr, set()).add(name)
            first[name, a.attr] = min(first.get((name, a.attr), a.lineno), a.lineno)
    return [
        (a.lineno, f"{a.attr!r} read before its definition")
        for name, use in uses
        for a in use.loads
        if where.get(a.attr) == {name} and a.attr not in at_class and a.lineno < first[name, a.attr]
    ]


def no_return_results(nodes: Nodes) -> list[tuple[int, str]]:
    """A call's result assigned, iterated, subscripted or searched where the function it calls,
    defined in the program, returns nothing or only None: what deleting its `return` lines
    leaves (pylint's assignment-from-no-return, assignment-from-none, not-an-iterable)."""
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for node in nodes.of(ast.FunctionDef, ast.AsyncFunctionDef):
        functions.setdefault(node.name, []).append(node)
    calls = {id(node): name for node in nodes.of(ast.Call) if (name := _called(node)) in functions}
    if not calls:
        return []
    used: list[tuple[int, str, str]] = []  # (line, name, how) of `name(...)`, `self.name(...)`
    for node in nodes.of(ast.Assign, ast.AnnAssign, ast.For, ast.comprehension, ast.Subscript):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            value, how = node.value, "assigning"
        elif isinstance(node, ast.For | ast.comprehension):
            value, how = node.iter, "iterating over"
        else:
            value, how = node.value, "subscripting"
        if value is not None and id(value) in calls:
            used.append((value.lineno, calls[id(value)], how))
    silent: dict[str, str] = {}
    for name in {name for _, name, _ in used} & set(functions):
        kinds = {_gives(d) for d in functions[name]}
        if len(kinds) == 1 and (kind := kinds.pop()) is not None:
            silent[name] = kind
    return [
        (line, f"{how} the result of {name!r}, which returns {silent[name]}")
        for line, name, how in used
        if name in silent
    ]


def _called(call: ast.Call) -> str | None:
    """`name` of `name(...)` and of `self.name(...)`."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute) and _is_self(call.func.value):
        return call.func.attr
    return None


def _gives(function: ast.FunctionDef | ast.AsyncFunctionDef, decorated: bool = False) -> str | None:
    """ "nothing" for a function with no `return`, "None" for one whose returns are all bare or
    None, None for any other, or one pylint leaves alone: async, decorated (unless
    `decorated`: a property's getter), a generator, a body that only raises, or one that
    starts by raising NotImplementedError."""
    body = function.body
    if ast.get_docstring(function, clean=False) is not None and len(body) > 1:
        body = body[1:]
    first = body[0]
    if (
        isinstance(function, ast.AsyncFunctionDef)
        or (function.decorator_list and not decorated)
        or (len(body) == 1 and isinstance(first, ast.Raise))
        or (isinstance(first, ast.Raise) and "NotImplementedError" in ast.dump(first))
    ):
        return None
    returns = []
    for child in _walk_scope(function):
        if isinstance(child, ast.Yield | ast.YieldFrom):
            return None
        if isinstance(child, ast.Return):
            returns.append(child)
    if not returns:
        return "nothing"
    if all(r.value is None or _is_none_constant(r.value) for r in returns):
        return "None"
    return None


def _is_none_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


#: What a function object has, for `name.attr` where `name` is a module-level def.
_FUNCTION_ATTRIBUTES = frozenset(dir(_walk_scope))


def function_members(nodes: Nodes, top: symtable.SymbolTable) -> list[tuple[int, str]]:
    """`name.attr` read where `name` can only be a module-level function (its local binding
    deleted, say) and functions have no `attr`."""
    body = nodes.tree.body
    defs = {n.name for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if not any(
        isinstance(n.value, ast.Name) and n.value.id in defs for n in nodes.of(ast.Attribute)
    ):
        return []
    functions = {
        s.get_name()
        for s in top.get_symbols()
        if s.get_name() in defs
        and not s.is_imported()
        and not _assigned_otherwise(body, s.get_name())
    }
    tables = _tables(top)
    found = []
    for node in nodes.of(ast.FunctionDef, ast.AsyncFunctionDef):
        table = tables.get((node.name, node.lineno))
        if table is None:
            continue
        global_here = {
            s.get_name()
            for s in table.get_symbols()
            if s.get_name() in functions and s.is_global() and not s.is_local()
        }
        for child in _walk_scope(node):
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Load)
                and isinstance(child.value, ast.Name)
                and child.value.id in global_here
                and child.attr not in _FUNCTION_ATTRIBUTES
            ):
                found.append((child.lineno, f"function {child.value.id!r} has no {child.attr!r}"))
    return found


def _assigned_otherwise(body: list[ast.stmt], name: str) -> bool:
    """Whether the module binds `name` other than by one def (an assignment, a second def)."""
    defs = sum(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name for n in body
    )
    return defs > 1 or name in _bound_in(
        n for n in body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    )
