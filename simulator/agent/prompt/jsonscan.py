"""Scanning JSON-like model output: the one string-aware lexer, shared by the answer parser
(finding the answer object, repairing trailing commas) and the self-certainty reward (locating
the rationale's characters).

Model text is often not valid JSON (prose around it, a truncated end, a trailing comma), so
``json.loads`` alone cannot say where an object ends or where a string value sits. What every
caller needs is the same: which characters belong to string literals, where braces and commas
mean structure. That is one regular expression here, so no caller keeps its own copy of the
string state machine.
"""

from __future__ import annotations

import json
import re

# One lexeme per match (``lastgroup`` names its kind); whitespace -- what ``str.strip`` removes
# -- lies between matches. Strings keep escapes as written; an unterminated string runs to the
# end of the text (truncated output). A run of opening brackets is one lexeme, and callers loop
# over ``finditer`` themselves: garbage such as ``"{" * 32_000`` must stay cheap to scan.
_LEXEME = re.compile(
    r'(?P<string>"[^"\\]*(?:\\.[^"\\]*)*")'
    r'|(?P<unterminated>".*)'
    r'|(?P<open>[{\[]+)'
    r'|(?P<close>[}\]])'
    r'|(?P<sep>[:,])'
    r'|(?P<other>[^\s{}\[\]:,"]+)',
    re.S,
)


def match_brace(text: str, start: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``start``, or None (unclosed, or mismatched)."""
    depth = 0
    for m in _LEXEME.finditer(text, start):
        kind = m.lastgroup
        if kind == "open":
            depth += m.end() - m.start()
        elif kind == "close":
            depth -= 1
            if depth == 0:
                return m.start() if text[m.start()] == "}" else None
            if depth < 0:
                return None
        elif kind == "unterminated":
            return None
    return None


def balanced_objects(text: str, max_starts: int = 32) -> tuple[list[str], int | None]:
    """Top-level balanced ``{...}`` spans in order, and where an unclosed ``{`` began (if any).

    At most ``max_starts`` opening braces are tried: each try scans to the end in the worst
    case, and garbage such as ``"{" * 50_000`` must stay cheap.
    """
    spans: list[str] = []
    unclosed: int | None = None
    i = text.find("{")
    starts = 0
    while i != -1 and starts < max_starts:
        starts += 1
        end = match_brace(text, i)
        if end is None:
            unclosed = i if unclosed is None else unclosed
            i = text.find("{", i + 1)
        else:
            spans.append(text[i:end + 1])
            i = text.find("{", end + 1)
    return spans, unclosed


def strip_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}`` or ``]`` outside strings (a common LLM slip that has
    one obvious meaning). Nothing else is repaired: single quotes, comments or missing commas
    are ambiguous and stay errors."""
    drop: list[int] = []
    comma: int | None = None
    for m in _LEXEME.finditer(text):
        kind, at = m.lastgroup, m.start()
        if kind == "close" and comma is not None:
            drop.append(comma)
        comma = at if kind == "sep" and text[at] == "," else None
    if not drop:
        return text
    out, prev = [], 0
    for i in drop:
        out.append(text[prev:i])
        prev = i + 1
    out.append(text[prev:])
    return "".join(out)


def string_value_span(text: str, key: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of the string value of top-level ``key`` in raw text.

    The first object (scanning from each ``{`` in turn) whose top level has ``key`` with a
    string value wins. The span covers the characters between the quotes, escapes as written
    (``\\"`` stays two characters), so it lines up with tokenizer offsets of the raw text; the
    key itself may be written with escapes. A value cut off by the end of the text runs to the
    end. None when no such string is found.
    """
    pos = text.find("{")
    while pos != -1:
        span, after = _key_span_in_object(text, pos, key)
        if span is not None:
            return span
        if after is None:
            return None
        pos = text.find("{", after)
    return None


def _key_span_in_object(text: str, start: int, key: str) -> tuple[tuple[int, int] | None, int | None]:
    """(the value span if found, index after the object if it closes) for the ``{`` at ``start``."""
    depth = 0
    awaiting = False  # just read `"key":` at the top level
    candidate: tuple[int, int] | None = None  # a top-level string that may be a key
    for m in _LEXEME.finditer(text, start):
        kind, s, e = m.lastgroup, m.start(), m.end()
        if kind == "unterminated":
            return ((s + 1, len(text)) if depth == 1 and awaiting else None), None
        if kind == "string":
            if depth == 1:
                if awaiting:
                    return (s + 1, e - 1), None
                candidate = (s, e)
            continue
        if kind == "sep" and text[s] == ":" and candidate is not None:
            awaiting = _decoded(text[candidate[0]:candidate[1]]) == key
            candidate = None
            continue
        candidate = None
        awaiting = False  # the value is not a string
        if kind == "open":
            depth += e - s
        elif kind == "close":
            depth -= 1
            if depth == 0:
                return None, e
    return None, None


def _decoded(literal: str) -> str | None:
    try:
        return json.loads(literal)
    except json.JSONDecodeError:
        return None
