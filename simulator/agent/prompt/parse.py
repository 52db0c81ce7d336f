"""Reading a model's answer: text back to an action, with one error object for each way it can fail.

Every policy, the evaluation and the rewards read answers through :func:`parse_output`, so they
agree on what counts as a well-formed answer. It never raises on bad output: a shopper's bad
answer is a recorded :class:`~shop_r1.envs.actions.ParseError`, not a crash.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shop_r1.envs.actions import Action, ActionValidationError, ParseError, ParseErrorCode, parse_action
from shop_r1.envs.observation import Observation
from shop_r1.simulator.agent.prompt.jsonscan import balanced_objects, strip_trailing_commas

#: The codes :func:`parse_output` gives (``generation_failed`` is the policies', not the parser's).
PARSE_ERROR_CODES: tuple[ParseErrorCode, ...] = ("empty", "no_json", "invalid_json", "missing_rationale",
                                                 "missing_action", "invalid_action", "unknown_name", "wrong_kind")
Extraction = Literal["json", "fenced", "embedded", "repaired"]

_MAX_SCAN_CHARS = 32_000


@dataclass(frozen=True)
class ParsedOutput:
    """A model answer, read.

    ``action`` is set if and only if ``error`` is None. ``strict`` says the text was exactly one
    JSON object with only ``rationale`` and ``action`` (the paper's format; whitespace around
    it allowed), whatever later checks found. ``how`` says how the object was found: ``json``
    (the whole text), ``fenced`` (inside a code fence), ``embedded`` (the first balanced
    ``{...}`` in surrounding text), ``repaired`` (after removing trailing commas).
    """

    rationale: str
    action: Action | None
    error: ParseError | None = None
    strict: bool = False
    how: Extraction | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _fail(code: ParseErrorCode, message: str, *, rationale: str = "", strict: bool = False,
          how: Extraction | None = None, detail: dict[str, Any] | None = None) -> ParsedOutput:
    error = ParseError(code=code, message=message, detail=detail or {})
    return ParsedOutput(rationale=rationale, action=None, error=error, strict=strict, how=how)


def _loads(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, error message)``; never raises."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except (RecursionError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_ANSWER_KEYS = ("rationale", "action")


def _find_object(text: str) -> tuple[dict[str, Any] | None, Extraction | None, ParsedOutput | None]:
    """Locate the answer object: ``(object, how, None)`` or ``(None, None, failure)``."""
    stripped = text.strip()
    whole, whole_error = _loads(stripped)
    if isinstance(whole, dict):
        return whole, "json", None

    for block in _FENCE.findall(stripped):
        value, _ = _loads(block.strip())
        if isinstance(value, dict):
            return value, "fenced", None

    spans, unclosed = balanced_objects(stripped[:_MAX_SCAN_CHARS])
    found: list[tuple[dict[str, Any], Extraction]] = []
    first_error: str | None = None
    for span in spans:
        how: Extraction = "embedded"
        value, err = _loads(span)
        if err is not None:
            repaired = strip_trailing_commas(span)
            if repaired != span:
                how = "repaired"
                value, err = _loads(repaired)
        if err is not None:
            first_error = first_error or err
        elif isinstance(value, dict):
            found.append((value, how))
    for value, how in found:
        if any(k in value for k in _ANSWER_KEYS):
            return value, how, None
    if unclosed is not None:
        return None, None, _fail("invalid_json", f"the JSON object starting at character {unclosed} never "
                                                 "closes (truncated output?)", detail={"position": unclosed})
    if found:
        return found[0][0], found[0][1], None
    if first_error is not None:
        return None, None, _fail("invalid_json", f"the JSON object in the output does not parse: {first_error}")
    if whole_error is None:
        return None, None, _fail("no_json", f"the output is JSON but not an object (a {type(whole).__name__})")
    return None, None, _fail("no_json", "no JSON object ({...}) in the output")


def parse_output(text: str | None, names: Collection[str] | None = None,
                 kinds: Mapping[str, str] | None = None) -> ParsedOutput:
    """Read a model's answer; never raises for bad output.

    Order of checks, each failure with its own code: ``empty`` (no text) -> find the object
    (strict JSON first; then a code fence; then the first balanced ``{...}`` in surrounding
    text, preferring one with ``rationale``/``action`` keys, trailing commas repaired) ->
    ``no_json`` / ``invalid_json`` (nothing object-like / it does not parse or is truncated) ->
    ``missing_rationale`` (absent, not a string, or blank) -> ``missing_action`` (absent or
    null) -> ``invalid_action`` (fails ``shop_r1.envs.actions.parse_action``) -> ``unknown_name`` (not a
    name on the current page, when ``names`` or ``kinds`` is given; the message suggests close
    names) -> ``wrong_kind`` (an action that types into an input -- ``target_kind == "input"``,
    i.e. type_and_submit -- on an element whose kind is not ``input``, when ``kinds`` is given). Keys besides ``rationale`` and ``action`` are ignored (``strict`` is
    then False).
    """
    if text is None or not str(text).strip():
        return _fail("empty", "the output is empty")
    text = str(text)
    obj, how, failure = _find_object(text)
    if failure is not None:
        return failure
    assert obj is not None and how is not None
    strict = how == "json" and set(obj) == set(_ANSWER_KEYS)

    rationale = obj.get("rationale")
    if "rationale" not in obj:
        return _fail("missing_rationale", "the answer has no \"rationale\"", strict=strict, how=how)
    if not isinstance(rationale, str) or not rationale.strip():
        got = "a blank string" if isinstance(rationale, str) else f"a {type(rationale).__name__}"
        return _fail("missing_rationale", f"\"rationale\" must be a non-empty string, got {got}",
                     strict=strict, how=how)
    rationale = rationale.strip()

    raw_action = obj.get("action")
    if raw_action is None:
        what = "is null" if "action" in obj else "is missing"
        return _fail("missing_action", f"\"action\" {what}", rationale=rationale, strict=strict, how=how)
    if not isinstance(raw_action, dict):
        return _fail("invalid_action", f"\"action\" must be a JSON object, got a {type(raw_action).__name__}",
                     rationale=rationale, strict=strict, how=how)
    try:
        action = parse_action(raw_action)
    except ActionValidationError as exc:
        return _fail("invalid_action", str(exc), rationale=rationale, strict=strict, how=how)

    if names is None and kinds is not None:
        names = kinds.keys()
    name = getattr(action, "name", None)
    if name is not None and names is not None:
        known = names if isinstance(names, (set, frozenset, Mapping)) else set(names)
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            return _fail("unknown_name", f"no element named {name!r} on the current page{hint}",
                         rationale=rationale, strict=strict, how=how, detail={"name": name, "suggestions": close})
    if action.target_kind == "input" and kinds is not None and name is not None:
        kind = kinds.get(name)
        if kind is not None and kind != "input":
            return _fail("wrong_kind", f"{action.type} needs an input field, but {name!r} is a {kind}",
                         rationale=rationale, strict=strict, how=how, detail={"name": name, "kind": kind})
    return ParsedOutput(rationale=rationale, action=action, strict=strict, how=how)


def parse_output_for(text: str | None, observation: Observation) -> ParsedOutput:
    """:func:`parse_output` against an observation's element names and kinds."""
    return parse_output(text, kinds={el.name: el.kind for el in observation.elements})
