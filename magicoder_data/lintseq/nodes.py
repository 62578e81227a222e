"""A program state's syntax tree, walked once and indexed by node type for every check.

The linter runs a dozen checks on every state; each looks at a few kinds of node (calls,
classes, assignments). Walking the tree once, and handing each check only the kinds it asks
for, keeps the linter within a few tenths of a millisecond a state.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from typing import Any

#: `try` statements (`try ... except*` from Python 3.11 on).
TRIES: tuple[type, ...] = tuple(t for t in (ast.Try, getattr(ast, "TryStar", None)) if t)

#: Each node type's fields that may hold nodes: not `ctx` (Load and Store are no help here)
#: nor fields that hold names or constants (a type's field holds one kind of value).
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def children(node: ast.AST) -> list[ast.AST]:
    """`ast.iter_child_nodes` without expression contexts or scalar fields, several times
    faster: the checks walk parts of every state's tree."""
    fields = _CHILD_FIELDS.get(type(node))
    if fields is None:
        fields = _CHILD_FIELDS[type(node)] = tuple(
            f
            for f in node._fields
            if f != "ctx" and not (type(node) is ast.Constant or f in ("id", "attr", "arg"))
        )
    found: list[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            found.append(value)
        elif value.__class__ is list:
            found.extend(v for v in value if isinstance(v, ast.AST))
    return found


def walk(node: ast.AST) -> list[ast.AST]:
    """`ast.walk`'s nodes, in its order, as a list (see `children`)."""
    found = [node]
    for current in found:
        found.extend(children(current))
    return found


class Nodes:
    """A module's nodes by type, each type's in `ast.walk` order."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self._bound: dict[str, int] | None = None
        self._by_type: defaultdict[type, list[ast.AST]] = defaultdict(list)
        for node in walk(tree):
            self._by_type[type(node)].append(node)

    def bound_names(self) -> dict[str, int]:
        """How many times each name is bound anywhere in the program (any scope); a name
        declared `global` or `nonlocal` counts twice (bound elsewhere: never known here)."""
        if self._bound is None:
            names = [
                *(n.id for n in self.of(ast.Name) if not isinstance(n.ctx, ast.Load)),
                *(n.name for n in self.of(ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)),
                *(n.arg for n in self.of(ast.arg)),
                *((n.asname or n.name).split(".")[0] for n in self.of(ast.alias)),
                *(n.name for n in self.of(ast.ExceptHandler, ast.MatchAs, ast.MatchStar) if n.name),
                *(name for n in self.of(ast.Global, ast.Nonlocal) for name in n.names * 2),
            ]
            self._bound = {}
            for name in names:
                self._bound[name] = self._bound.get(name, 0) + 1
        return self._bound

    def of(self, *types: type) -> list[Any]:
        """The nodes of these exact types (`ast.FunctionDef`, not a base class)."""
        if len(types) == 1:
            return self._by_type.get(types[0], [])
        return [node for kind in types for node in self._by_type.get(kind, [])]
