"""Turning untrusted text into HTML that only shows it: code highlighted by Pygments, problems
as Markdown with raw HTML off, evidence marked where it matches. Every function escapes what
it is given; nothing here lets a snippet's `<script>` run."""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from ..decontam.fuzzy import aligned_spans, item_code, sample_code
from ..errors import ConfigError
from ..languages import canonical

_FORMATTER = HtmlFormatter(nowrap=True)
_WORDS = re.compile(r"\w+")
#: Pygments' names for the languages whose names differ from ours.
_LEXERS = {"cpp": "cpp", "csharp": "csharp", "shell": "bash", "typescript": "typescript"}


def style_sheet() -> str:
    """Pygments' colours for the classes `code` emits."""
    return str(HtmlFormatter(style="default").get_style_defs(".code"))


@lru_cache(maxsize=64)
def _lexer(language: str | None):  # type: ignore[no-untyped-def]
    if not language:
        return TextLexer()
    try:
        name = canonical(language)
    except ConfigError:  # a tag of no language we know: Pygments may still know it
        name = language.lower()
    try:
        return get_lexer_by_name(_LEXERS.get(name, name))
    except ClassNotFound:
        return TextLexer()


def code(text: str | None, language: str | None = None) -> Markup:
    """`text` highlighted as `language` (plain when unknown), escaped by Pygments."""
    return Markup(highlight(text or "", _lexer(language), _FORMATTER))


def diff(text: str) -> Markup:
    """A unified diff, its added and removed lines coloured."""
    return Markup(highlight(text, DiffLexer(), _FORMATTER))


def markdown(text: str | None) -> Markup:
    """A model's Markdown as HTML, raw HTML in it shown as text and unsafe links dropped."""
    from markdown_it import MarkdownIt

    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text or ""))


def evidence_text(span: str | None) -> str:
    """What matched, from a contamination row's `span` (`role: text` for substrings)."""
    if not span:
        return ""
    role, sep, rest = span.partition(": ")
    return rest if sep and role in ("problem", "solution", "prompt", "canonical_solution") else span


def marked(text: str | None, span: str | None) -> Markup:
    """`text` escaped, with each place the evidence `span` matches in `<mark>`: its words in
    order, whatever is between them (n-gram spans are words without their punctuation)."""
    text = text or ""
    words = _WORDS.findall(evidence_text(span))[:200]
    if len(words) < 3:  # too short to say where it matched
        return Markup(html.escape(text))
    pattern = re.compile(r"\W+".join(map(re.escape, words)))
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        out.append(f"<mark>{html.escape(match.group())}</mark>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return Markup("".join(out))


def aligned(text: str | None, evidence: str | None, side: str) -> Markup:
    """`text` escaped, with the code a fuzzy flag aligned on `side` in `<mark>` (falls back
    to `marked` for other evidence)."""
    spans = aligned_spans(evidence, side)
    if spans is None:
        return marked(text, evidence)
    text = text or ""
    out, last = [], 0
    for start, end in spans:
        if start < last or end > len(text):
            break  # evidence of another text: leave the rest unmarked
        out += [html.escape(text[last:start]), f"<mark>{html.escape(text[start:end])}</mark>"]
        last = end
    out.append(html.escape(text[last:]))
    return Markup("".join(out))


def scanned_code(text: str | None) -> str:
    """The code of a sample's text that the fuzzy method compared (as `audit` scans it)."""
    found = sample_code(text or "", "python")
    return found[1] if found else ""


def environment() -> jinja2.Environment:
    """The templates (the viewer's pages and the audit report), autoescaping, with these
    functions as filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    )
    env.filters.update(
        aligned=aligned,
        benchmark_code=item_code,
        code=code,
        diff=diff,
        markdown=markdown,
        marked=marked,
        scanned_code=scanned_code,
    )
    return env


def fenced(text: str, language: str = "") -> str:
    """`text` as a Markdown code block whose fence no run of backticks inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"
