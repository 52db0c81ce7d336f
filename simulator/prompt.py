"""The prompt format: the one module that says what a policy reads and how its answer is read.

Simulation (policies), SFT data and RL data all go through these functions, so a model is
trained on exactly the text it will see when it shops:

- :data:`SYSTEM_PROMPT` / :func:`system_prompt`: the Shop-R1 task (the shopper's role, the
  three actions and their JSON, "one JSON object, nothing else"), optionally with a persona
  block and the session's goal (Customer-R1 style).
- :func:`build_messages`: one decision as the paper's RL examples define it: the previous pages'
  simplified HTML and the actions taken, concatenated before the current page, under a token
  budget (policy in :func:`build_prompt`).
- :func:`build_chat_session`: a whole session as one multi-turn chat, the paper's SFT examples.
- :func:`format_answer`: the canonical assistant answer (SFT targets).
- :func:`parse_output`: a model's text back to an action, with a distinct error code for each
  way it can fail; it never raises on bad output.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from shop_r1.envs.actions import ActionValidationError, Click, Terminate, TypeAndSubmit, parse_action
from shop_r1.envs.observation import Observation

if TYPE_CHECKING:
    from shop_r1.personas.model import Persona
    from shop_r1.simulator.policies.base import HistoryItem

logger = logging.getLogger(__name__)

ActionT = Click | TypeAndSubmit | Terminate

SYSTEM_PROMPT = """\
You are a human shopper browsing an online store in a web browser. At each step you see the \
simplified HTML of the current page (scripts, styles and purely visual content removed), after \
the pages you saw earlier in this session and the actions you took on them. Every element you \
can interact with carries a unique `name` attribute.

Decide what this shopper does next. There are exactly three actions:
1. {"type": "click", "name": "<name>"} -- click a link, button, tab or option.
2. {"type": "type_and_submit", "name": "<name>", "text": "<text>"} -- type text into an input \
field (such as the search box) and press Enter.
3. {"type": "terminate"} -- close the browser: you are done, or you give up.

Rules:
- "name" must be exactly one of the `name` attributes on the current page; type_and_submit \
needs the name of an input field.
- Output a single JSON object with "rationale" and "action" and nothing else: no code fences, \
no text before or after it.
- "rationale" is one short first-person sentence saying why you take this action.

Example answer:
{"rationale": "I want to see what headphones this store has, so I search for them.", \
"action": {"type": "type_and_submit", "name": "search_input", "text": "wireless headphones"}}"""

ANSWER_REMINDER = 'Answer with one JSON object: {"rationale": "...", "action": {...}}'
HISTORY_HEADER = "## Earlier in this session (oldest first)"
TRUNCATION_MARKER = "<!-- page truncated here: it exceeds the context budget ({kept} of {total} tokens kept) -->"
OMITTED_MARKER = "[{n} earlier step(s) omitted to fit the context budget]"


def system_prompt(persona: Persona | Mapping[str, Any] | None = None, *, intent: str | None = None) -> str:
    """The system prompt, with the shopper's persona and goal when given.

    ``intent`` overrides ``persona.intent``; without either, no goal line is added (the
    shopper browses as the persona would). A persona given as a dict (e.g. read back from a
    trace) is validated into a :class:`~shop_r1.personas.model.Persona` first.
    """
    if isinstance(persona, Mapping):
        from shop_r1.personas.model import Persona as _Persona

        persona = _Persona.model_validate(persona)
    goal = intent if intent is not None else getattr(persona, "intent", None)
    parts = [SYSTEM_PROMPT]
    if persona is not None:
        parts.append(f"You are shopping as: {persona.to_prompt_block()}")
    if goal:
        parts.append(f"Your goal: {goal.strip()}")
    return "\n\n".join(parts)


# -- token counting ---------------------------------------------------------------------------

TokenCounter = Callable[[str], int]


@lru_cache(maxsize=1)
def _default_counter() -> TokenCounter:
    """``shop_r1.envs.tokens.count_tokens`` (the project's one tokenizer), imported on first use.

    The fallback (words and punctuation marks, close to a BPE count for HTML) exists only for
    an installation without ``shop_r1.envs.tokens``; it is announced once.
    """
    try:
        from shop_r1.envs.tokens import count_tokens
    except ImportError as exc:
        logger.warning("envs.tokens is not available (%s); prompt budgets use an approximate count", exc)
        return approximate_tokens
    return count_tokens


@lru_cache(maxsize=8)
def _memoized(counter: TokenCounter) -> TokenCounter:
    """``counter`` with a cache of recent texts. Each step of a session re-renders every earlier
    page; pages are kept as separate parts (see :func:`build_prompt`), so each page is counted
    once per session instead of once per step (a 3k-token page takes ~20 ms to count here)."""
    return lru_cache(maxsize=256)(counter)


def approximate_tokens(text: str) -> int:
    """Roughly one token per word and per punctuation mark."""
    return len(re.findall(r"\w+|[^\w\s]", text))


# -- rendering --------------------------------------------------------------------------------

def _action_json(action: Any) -> str:
    if action is None:
        return "(none: the answer could not be used)"
    if isinstance(action, (Click, TypeAndSubmit, Terminate)):
        action = action.to_json()
    return json.dumps(action, ensure_ascii=False)


def _page_parts(step: int, url: str, html: str) -> tuple[str, str]:
    """The current page as (header line, HTML): counted apart, so the HTML's count is reused
    when the same page comes back as history."""
    return f"## Current page (step {step}) -- URL: {url or '(unknown)'}\n", f"{html.strip()}\n"


def _page_block(step: int, url: str, html: str) -> str:
    return "".join(_page_parts(step, url, html))


def _history_full_parts(step: int, item: Any) -> tuple[str, str, str]:
    head = f"### Step {step} -- URL: {_get(item, 'url') or '(unknown)'}\n"
    body = f"{str(_get(item, 'simplified_html') or '').strip()}\n"
    rationale = str(_get(item, "rationale") or "").strip()
    tail = (f"Rationale: {rationale}\n" if rationale else "") + f"Action: {_action_json(_get(item, 'action'))}\n"
    return head, body, tail


def _history_collapsed(step: int, item: Any) -> str:
    return f"### Step {step} -- URL: {_get(item, 'url') or '(unknown)'} (page omitted)\n" \
           f"Action: {_action_json(_get(item, 'action'))}\n"


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _last_fitting(positions: Sequence[int], fits: Callable[[int], bool], guess: int) -> int:
    """The largest index i with ``fits(positions[i])`` (-1 if none), for a monotone ``fits``.

    Starts from ``guess`` and gallops outwards to bracket the answer, then bisects: when the
    guess is good, only a few counts of about the budget's size are made, instead of a
    bisection over the whole (possibly much longer) text.
    """
    n = len(positions)
    if n == 0:
        return -1
    g = min(max(guess, 0), n - 1)
    step = max(1, n // 64)
    if fits(positions[g]):
        lo, hi = g, n
        probe = g + step
        while probe < n and fits(positions[probe]):
            lo, probe, step = probe, probe + step, step * 2
        hi = min(probe, n)
    else:
        lo, hi = -1, g
        probe = g - step
        while probe >= 0 and not fits(positions[probe]):
            hi, probe, step = probe, probe - step, step * 2
        lo = max(probe, -1)
    while hi - lo > 1:  # invariant: fits at lo (or lo == -1), not at hi (or hi == n)
        mid = (lo + hi) // 2
        if fits(positions[mid]):
            lo = mid
        else:
            hi = mid
    return lo


def truncate_to_tokens(text: str, max_tokens: int, count_tokens: TokenCounter) -> str:
    """The longest prefix of ``text`` within ``max_tokens``, preferably ending at a line end.

    Searches line ends first, starting where the text's own characters-per-token ratio says
    the cut should be; then, when the next line is long (a page without line breaks), the
    characters of that line.
    """
    if max_tokens <= 0:
        return ""
    total = count_tokens(text)
    if total <= max_tokens:
        return text

    def fits(end: int) -> bool:
        return count_tokens(text[:end]) <= max_tokens

    estimate = len(text) * max_tokens / total
    ends = [m.end() for m in re.finditer(r"\n", text)]
    guess = next((i for i, e in enumerate(ends) if e > estimate), len(ends)) - 1
    i = _last_fitting(ends, fits, guess)
    best = ends[i] if i >= 0 else 0
    nxt = text.find("\n", best)
    line_end = len(text) if nxt == -1 else nxt
    if line_end - best > 200:  # a long next line: fill the rest of the budget from it
        chars = range(best + 1, line_end + 1)
        guess = int(min(max(estimate, best + 1), line_end)) - best - 1
        j = _last_fitting(chars, fits, guess)
        if j >= 0:
            end = chars[j]
            tag_end = text.rfind(">", best, end)
            return text[: tag_end + 1] if tag_end >= best + (end - best) * 0.8 else text[:end]
    return text[:best]


# -- one decision (RL examples, live policies) ------------------------------------------------

@dataclass(frozen=True)
class PromptReport:
    """What the budget did to one prompt (recorded by callers that care, logged when applied)."""

    budget: int
    total_tokens: int
    page_tokens: int
    page_truncated: bool
    history_full: int
    history_collapsed: int
    history_dropped: int


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    report: PromptReport


def build_prompt(current: Observation | str, history: Sequence[HistoryItem] = (), persona: Persona | None = None,
                 *, intent: str | None = None, token_budget: int = 6000,
                 count_tokens: TokenCounter | None = None, url: str = "") -> Prompt:
    """Chat messages for one decision, and a report of what the budget did.

    Messages: the system prompt (with persona and goal), then ONE user message holding the
    session so far and the current page -- the paper's RL example: "all previous contexts and
    actions concatenated before the current page".

    Budget policy (``token_budget`` counts the text of all messages; leave headroom for the
    chat template's few tokens per message):

    1. The system prompt and the fixed framing are always kept.
    2. The current page is kept whole; only when it alone exceeds what is left is it cut (at a
       line or tag end) and a marker says so.
    3. History is filled newest first: steps in full (page, rationale, action) while they fit;
       from the first step that does not fit, older steps are collapsed to one "action only"
       line each; from the first that does not fit even so, it and all older steps are dropped
       and a marker says how many.

    The budget is kept in the sum of the parts' token counts, each part counted exactly as it
    is joined into the message (the joined text usually counts the same or a few tokens less:
    BPE merges across part boundaries). ``report.total_tokens`` is that sum. A
    budget that changes anything is logged at INFO. ``url`` names the page when ``current`` is
    bare HTML.
    """
    count = _memoized(count_tokens or _default_counter())
    if isinstance(current, Observation):
        page_html, page_url = current.simplified_html, url or current.url
    else:
        page_html, page_url = str(current), url
    history = list(history)
    step_now = len(history) + 1

    system = system_prompt(persona, intent=intent)
    fixed = count(system) + count("\n" + ANSWER_REMINDER)
    left = token_budget - fixed

    # The history header is set aside before the page is measured, so that a page cut to the
    # budget still leaves room for it. The "N omitted" marker is only needed if something is
    # dropped: every step but the oldest must leave room for it.
    reserve = count(HISTORY_HEADER + "\n") + count("\n") if history else 0
    marker_cost = count(OMITTED_MARKER.format(n=len(history)) + "\n") if history else 0
    left -= reserve

    # Every part is counted exactly as it is joined into the message.
    page_parts = _page_parts(step_now, page_url, page_html)
    page_tokens_full = count(page_parts[1])
    page_cost = count(page_parts[0]) + page_tokens_full
    truncated = False
    if page_cost > left - marker_cost:
        # The page alone does not fit: cut it (all history goes, hence the marker's room).
        room = left - marker_cost
        if room <= 0:
            logger.warning("prompt budget %d is smaller than the system prompt and framing (%d tokens); "
                           "the page is cut to nothing", token_budget, token_budget - left)
        frame = count(page_parts[0]) + count(
            "\n" + TRUNCATION_MARKER.format(kept=page_tokens_full, total=page_tokens_full))
        target = room - frame
        for _ in range(4):  # joins can merge or split a token or two: re-cut until it fits
            cut = truncate_to_tokens(page_parts[1], max(0, target), count)
            html = f"{cut.rstrip()}\n" + TRUNCATION_MARKER.format(kept=count(cut), total=page_tokens_full)
            page_parts = _page_parts(step_now, page_url, html)
            page_cost = sum(count(p) for p in page_parts)
            if page_cost <= room or target <= 0:
                break
            target -= page_cost - room
        truncated = True
    left -= page_cost

    blocks: list[str] = []  # parts, newest first (reversed when joined)
    n_full = n_collapsed = n_dropped = 0
    mode = "full"
    for index in range(len(history) - 1, -1, -1):
        item = history[index]
        room = left - (marker_cost if index > 0 else 0)
        if mode == "full":
            full = _history_full_parts(index + 1, item)
            cost = sum(count(p) for p in full)
            if cost <= room:
                blocks.extend(reversed(full))
                left -= cost
                n_full += 1
                continue
            mode = "collapsed"
        block = _history_collapsed(index + 1, item)
        cost = count(block)
        if cost <= room:
            blocks.append(block)
            left -= cost
            n_collapsed += 1
            continue
        n_dropped = index + 1
        break

    parts: list[str] = []
    if blocks or n_dropped:
        parts.append(HISTORY_HEADER + "\n")
        if n_dropped:
            parts.append(OMITTED_MARKER.format(n=n_dropped) + "\n")
        parts.extend(reversed(blocks))
        parts.append("\n")
    parts.extend(page_parts)
    parts.append("\n" + ANSWER_REMINDER)
    user = "".join(parts)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]

    total = count(system) + sum(count(p) for p in parts)
    report = PromptReport(budget=token_budget, total_tokens=total, page_tokens=page_cost,
                          page_truncated=truncated, history_full=n_full,
                          history_collapsed=n_collapsed, history_dropped=n_dropped)
    if truncated or n_collapsed or n_dropped:
        logger.info("prompt budget %d applied: current page %s (%d tokens); history: %d in full, "
                    "%d collapsed to actions, %d dropped; ~%d tokens in all",
                    token_budget, f"cut from {page_tokens_full}" if truncated else "whole", page_cost,
                    n_full, n_collapsed, n_dropped, total)
    return Prompt(messages=messages, report=report)


def build_messages(current: Observation | str, history: Sequence[HistoryItem] = (), persona: Persona | None = None,
                   *, intent: str | None = None, token_budget: int = 6000,
                   count_tokens: TokenCounter | None = None, url: str = "") -> list[dict[str, str]]:
    """Chat messages (system, then the user turn) for one decision; see :func:`build_prompt`
    for the layout and the budget policy."""
    return build_prompt(current, history, persona, intent=intent, token_budget=token_budget,
                        count_tokens=count_tokens, url=url).messages


# -- whole sessions (SFT examples) ------------------------------------------------------------

@dataclass(frozen=True)
class SessionStep:
    """One step of a recorded session for :func:`build_chat_session`.

    ``result`` describes what the action did when that is worth telling the model (typically an
    execution error: "unknown_name: no element named ..."); it is shown before the next page.
    Trace steps (``shop_r1.simulator.trace.TraceStep``), ``HistoryItem`` and plain dicts with the same
    field names are accepted too; a trace step's ``exec_error`` serves as its result.
    """

    url: str
    simplified_html: str
    action: Mapping[str, Any] | ActionT | None
    rationale: str = ""
    result: str | None = None


def _result_text(step: Any) -> str | None:
    result = _get(step, "result")
    if result:
        return str(result)
    err = _get(step, "exec_error")
    if err:
        code, message = _get(err, "code"), _get(err, "message")
        return f"{code}: {message}" if code else str(message or err)
    return None


def build_chat_session(steps: Sequence[Any], persona: Persona | None = None, *, intent: str | None = None,
                       max_page_tokens: int | None = None,
                       count_tokens: TokenCounter | None = None) -> list[dict[str, str]]:
    """A whole session as one multi-turn chat: system, then per step a user turn (the result of
    the previous action, if any, and the page) and an assistant turn (the canonical answer).

    The page block is the same as the current page in :func:`build_messages`, so SFT and RL
    examples show pages identically. Steps without an action (an answer that could not be
    parsed) are skipped: the model is not trained to produce them, and the same page usually
    follows again. ``max_page_tokens`` cuts each page like the budget does for a current page.
    Raises ValueError naming the step when an action or rationale is not a valid answer.
    """
    count = _memoized(count_tokens or _default_counter()) if max_page_tokens is not None else None
    messages = [{"role": "system", "content": system_prompt(persona, intent=intent)}]
    pending_result: str | None = None
    shown = 0
    for index, step in enumerate(steps):
        action = _get(step, "action")
        if action is None:
            logger.debug("session step %d has no action; skipped", index)
            pending_result = _result_text(step) or pending_result
            continue
        try:
            answer = format_answer(str(_get(step, "rationale") or ""), action)
        except ValueError as exc:
            raise ValueError(f"session step {index}: {exc}") from exc
        html = str(_get(step, "simplified_html") or "")
        if max_page_tokens is not None and count is not None:
            total = count(html)
            if total > max_page_tokens:
                cut = truncate_to_tokens(html, max_page_tokens, count)
                html = f"{cut.rstrip()}\n" + TRUNCATION_MARKER.format(kept=count(cut), total=total)
        shown += 1
        user = ""
        if pending_result:
            user += f"Result of your previous action: {pending_result}\n\n"
        user += _page_block(shown, str(_get(step, "url") or ""), html) + "\n" + ANSWER_REMINDER
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": answer})
        pending_result = _result_text(step)
    return messages


def format_answer(rationale: str, action: Mapping[str, Any] | ActionT) -> str:
    """The canonical answer: ``{"rationale": ..., "action": {...}}``, rationale first (the model
    states its reason before it commits to an action). Validates both; raises ValueError."""
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValueError("rationale must be a non-empty string (synthesise one for steps that lack it)")
    if not isinstance(action, (Click, TypeAndSubmit, Terminate)):
        try:
            action = parse_action(dict(action) if isinstance(action, Mapping) else action)
        except ActionValidationError as exc:
            raise ValueError(str(exc)) from exc
    return json.dumps({"rationale": rationale.strip(), "action": action.to_json()}, ensure_ascii=False)


# -- reading the model's answer ---------------------------------------------------------------

ParseErrorCode = Literal["empty", "no_json", "invalid_json", "missing_rationale", "missing_action",
                         "invalid_action", "unknown_name", "wrong_kind"]
PARSE_ERROR_CODES: tuple[str, ...] = ("empty", "no_json", "invalid_json", "missing_rationale",
                                      "missing_action", "invalid_action", "unknown_name", "wrong_kind")
Extraction = Literal["json", "fenced", "embedded", "repaired"]

_MAX_SCAN_CHARS = 32_000
_MAX_STARTS = 32


@dataclass(frozen=True)
class ParsedOutput:
    """A model answer, read.

    ``action`` is set if and only if ``error_code`` is None. ``strict`` says the text was exactly
    one JSON object with only ``rationale`` and ``action`` (the paper's format; whitespace around
    it allowed), whatever later checks found. ``how`` says how the object was found: ``json``
    (the whole text), ``fenced`` (inside a code fence), ``embedded`` (the first balanced
    ``{...}`` in surrounding text), ``repaired`` (after removing trailing commas).
    """

    rationale: str
    action: ActionT | None
    error_code: ParseErrorCode | None = None
    error: str | None = None
    strict: bool = False
    how: Extraction | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    @property
    def error_text(self) -> str | None:
        return f"{self.error_code}: {self.error}" if self.error_code else None


def _fail(code: ParseErrorCode, message: str, *, rationale: str = "", strict: bool = False,
          how: Extraction | None = None) -> ParsedOutput:
    return ParsedOutput(rationale=rationale, action=None, error_code=code, error=message, strict=strict, how=how)


def _loads(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, error message)``; never raises."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except (RecursionError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, bool]]:
    """``(index, char, structural)`` for each char from ``start``; ``structural`` is False
    inside JSON string literals (quotes included), where braces and commas mean nothing."""
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            yield i, ch, False
        elif ch == '"':
            in_string = True
            yield i, ch, False
        else:
            yield i, ch, True


def _match_brace(text: str, start: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``start`` (JSON-string aware), or None."""
    depth = 0
    for i, ch, structural in _scan(text, start):
        if not structural:
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i if ch == "}" else None
            if depth < 0:
                return None
    return None


def _balanced_objects(text: str) -> tuple[list[str], int | None]:
    """Top-level balanced ``{...}`` spans in order, and where an unclosed ``{`` began (if any)."""
    spans: list[str] = []
    unclosed: int | None = None
    i = text.find("{")
    starts = 0
    while i != -1 and starts < _MAX_STARTS:
        starts += 1
        end = _match_brace(text, i)
        if end is None:
            unclosed = i if unclosed is None else unclosed
            i = text.find("{", i + 1)
        else:
            spans.append(text[i:end + 1])
            i = text.find("{", end + 1)
    return spans, unclosed


def _strip_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}`` or ``]`` outside strings (a common LLM slip that has
    one obvious meaning). Nothing else is repaired: single quotes, comments or missing commas
    are ambiguous and stay errors."""
    out: list[str] = []
    for i, ch, structural in _scan(text):
        if structural and ch == "," and text[i + 1:].lstrip()[:1] in ("}", "]"):
            continue
        out.append(ch)
    return "".join(out)


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

    spans, unclosed = _balanced_objects(stripped[:_MAX_SCAN_CHARS])
    found: list[tuple[dict[str, Any], Extraction]] = []
    first_error: str | None = None
    for span in spans:
        how: Extraction = "embedded"
        value, err = _loads(span)
        if err is not None:
            repaired = _strip_trailing_commas(span)
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
                                                 "closes (truncated output?)")
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
    names) -> ``wrong_kind`` (type_and_submit on an element whose kind is not ``input``, when
    ``kinds`` is given). Keys besides ``rationale`` and ``action`` are ignored (``strict`` is
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
                         rationale=rationale, strict=strict, how=how)
    if isinstance(action, TypeAndSubmit) and kinds is not None:
        kind = kinds.get(action.name)
        if kind is not None and kind != "input":
            return _fail("wrong_kind", f"type_and_submit needs an input field, but {action.name!r} is a {kind}",
                         rationale=rationale, strict=strict, how=how)
    return ParsedOutput(rationale=rationale, action=action, strict=strict, how=how)


def parse_output_for(text: str | None, observation: Observation) -> ParsedOutput:
    """:func:`parse_output` against an observation's element names and kinds."""
    return parse_output(text, kinds={el.name: el.kind for el in observation.elements})
