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

#: Fields that never hold a node the checks look for: names, numbers, strings, and the
#: expression contexts and operators (Load, Store, Add, Eq) that nothing walks to.
_NOT_CHILDREN = frozenset(
    {
        "ctx", "op", "ops", "id", "attr", "arg", "name", "module", "level", "kind",
        "type_comment", "conversion", "is_async", "simple", "asname", "rest", "kwd_attrs",
    }
)  # fmt: skip
#: Lists that may hold None (a `**` entry of a dict, a keyword-only parameter's missing
#: default).
_GAPPY = frozenset({(ast.Dict, "keys"), (ast.arguments, "kw_defaults")})
#: Each node type's child fields: (name, 0 for one node or None, 1 for a list of nodes, 2 for
#: a list that may hold None), learnt from the first node of the type (a field holds one kind).
_CHILD_FIELDS: dict[type, tuple[tuple[str, int], ...]] = {}


def children(node: ast.AST) -> list[ast.AST]:
    """`ast.iter_child_nodes` without names, constants, contexts and operators, several times
    faster, and kept on the node: the checks walk parts of every state's tree again."""
    found: list[ast.AST] | None = getattr(node, "_children", None)
    if found is not None:
        return found
    kind = node.__class__
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = _CHILD_FIELDS[kind] = tuple(
            (
                f,
                0
                if not isinstance(getattr(node, f, None), list)
                else 2
                if (kind, f) in _GAPPY
                else 1,
            )
            for f in node._fields
            if f not in _NOT_CHILDREN
            and not (kind is ast.Constant or kind in (ast.Global, ast.Nonlocal))
        )
    found = []
    for name, shape in fields:
        value: Any = getattr(node, name, None)
        if shape == 1:
            found += value
        elif shape == 0:
            if value is not None:
                found.append(value)
        else:
            found += [v for v in value if v is not None]
    node._children = found  # type: ignore[attr-defined]
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
        found: list[ast.AST] = [tree]
        for node in found:  # `walk`, grouping as it goes
            self._by_type[node.__class__].append(node)
            found.extend(children(node))

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
