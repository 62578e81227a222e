"""Syntax trees from tree-sitter grammars, one per language, and the questions stages ask of them.

Grammars are compiled wheels (tree-sitter-python, tree-sitter-cpp, ...), loaded on first use and
cached: parsing is in-process C, fast enough to run on every sampled document.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache

import tree_sitter as ts

from .languages import LANGUAGES


@cache
def grammar(language: str) -> ts.Language:
    """The tree-sitter language of `language` (a canonical name)."""
    module, function = LANGUAGES[language].grammar.split(":")
    return ts.Language(getattr(importlib.import_module(module), function)())


@cache
def _parser(language: str) -> ts.Parser:
    return ts.Parser(grammar(language))


@cache
def _comment_query(language: str) -> ts.Query:
    """Every comment node, and for Python docstrings too (strings standing as statements)."""
    lang = grammar(language)
    names = (
        lang.node_kind_for_id(i)
        for i in range(lang.node_kind_count)
        if lang.node_kind_is_named(i) and lang.node_kind_is_visible(i)
    )
    kinds = sorted({name for name in names if name and name.endswith("comment")})
    patterns = [f"({kind}) @comment" for kind in kinds]
    if language == "python":
        patterns.append("(expression_statement (string) @comment)")
    return ts.Query(lang, " ".join(patterns))


def parse(language: str, source: bytes) -> ts.Tree:
    """The syntax tree of `source`; tree-sitter recovers from errors, so there always is one."""
    return _parser(language).parse(source)


def comment_nodes(language: str, tree: ts.Tree, first_row: int, last_row: int) -> list[ts.Node]:
    """Comment (and docstring) nodes of `tree` touching rows first_row..last_row (0-based)."""
    cursor = ts.QueryCursor(_comment_query(language))
    cursor.set_point_range((first_row, 0), (last_row + 1, 0))
    return cursor.captures(tree.root_node).get("comment", [])


def has_errors(language: str, source: str) -> bool:
    """Whether tree-sitter finds syntax errors (ERROR or MISSING nodes) in `source`."""
    return parse(language, source.encode("utf-8", "surrogatepass")).root_node.has_error


#: What every identifier becomes in `code_tokens`.
IDENTIFIER = "ID"


@dataclass(frozen=True)
class Tokens:
    """A program's normalised tokens and where each lies in the source (byte offsets)."""

    tokens: list[str]
    spans: list[tuple[int, int]]


def code_tokens(code: str, language: str) -> Tokens:
    """`code`'s tree-sitter tokens: identifiers as `ID`, no comments, docstrings or imports,
    string literals whole."""
    source = code.encode("utf-8", "surrogatepass")
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    stack = [parse(language, source).root_node]
    while stack:
        node = stack.pop()
        kind = node.type
        if (
            kind.endswith("comment")
            or _IMPORTS.search(kind)
            or (
                language == "python"
                and kind == "expression_statement"
                and node.named_child_count == 1
                and node.named_children[0].type == "string"
            )
        ):
            continue  # comments, docstrings and imports say little of the code
        if node.child_count and not (node.is_named and "string" in kind):
            stack.extend(reversed(node.children))
            continue
        if node.end_byte == node.start_byte:
            continue  # a MISSING node the parser invented
        if node.is_named and (kind.endswith("identifier") or kind in _NAMES):
            tokens.append(IDENTIFIER)
        else:
            tokens.append(source[node.start_byte : node.end_byte].decode("utf-8", "replace"))
        spans.append((node.start_byte, node.end_byte))
    return Tokens(tokens, spans)


#: Import-like statements of every grammar (`import`, `#include`, `using`, `use`, `package`).
_IMPORTS = re.compile(r"import|include|using_directive|use_declaration|package_")
#: Identifier node types of grammars that do not end them in "identifier".
_NAMES = frozenset({"name", "variable_name", "constant", "word"})
