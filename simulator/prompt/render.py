"""Rendering what a policy reads: the system prompt, one decision's prompt under a token budget.

Simulation (policies), SFT and RL data and evaluation render through :func:`build_prompt` -- the
one context format -- so a model is trained on exactly the text it will see when it shops. The system prompt's list of actions is rendered from
the action models (``shop_r1.envs.actions``), so the prompt cannot drift from what the parser,
the schema and the grammar accept.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shop_r1.envs.actions import ACTION_MODELS, Click, answer_json, describe_actions, describe_name_rule
from shop_r1.envs.observation import Observation
from shop_r1.envs.tokens import count_tokens as default_count_tokens
from shop_r1.personas.model import Persona

if TYPE_CHECKING:  # typing only: the policies package imports this one at run time
    from shop_r1.simulator.policies.base import HistoryItem

logger = logging.getLogger(__name__)


#: The answer's shape, with placeholders that say what goes where (never values to copy; the
#: constrained grammar does not even allow ``<`` or ``>`` in free text, so they cannot be echoed).
ANSWER_FORMAT = answer_json("<why you take this action, in one sentence of your own>",
                            Click(name="<the name of an element on the current page>"))


def render_system_prompt(models: Sequence[type] = ACTION_MODELS) -> str:
    """The task prompt for an action space (``models``, by default the project's).

    It holds no example values: a small model copies any concrete rationale, name or search
    text it is shown (SmolLM2-135M typed ``search_input`` and repeated "I want to see what
    headphones this store has" in every session), so the answer's shape is shown with
    placeholders that describe what goes there. The shopper's goal is restated right before
    the answer (:func:`answer_reminder`), where a small model still attends to it.
    """
    return f"""\
You are a human shopper browsing an online store in a web browser. At each step you see the \
simplified HTML of the current page (scripts, styles and purely visual content removed), after \
the pages you saw earlier in this session and the actions you took on them. Every element you \
can interact with carries a unique `name` attribute.

Decide what this shopper does next. {describe_actions(models)}

Rules:
- {describe_name_rule(models)}
- Output a single JSON object with "rationale" and "action" and nothing else: no code fences, \
no text before or after it.
- "rationale" is one short first-person sentence, in your own words, saying why this action \
brings you closer to your goal on this page.
- Typed text is what a person types into a shop's search box: a few words naming the item.
- A dialog shown first on the page (`<dialog>`: a cookie banner, a newsletter pop-up) covers the \
page: answer or close it first (accept or reject cookies, close the pop-up); controls under it \
cannot be clicked until it is gone.
- An action that failed says so in the history: do not repeat it; try something else.

Example answer (replace each <...> by what it describes):
{ANSWER_FORMAT}"""


SYSTEM_PROMPT = render_system_prompt()

ANSWER_REMINDER = 'Answer with one JSON object: {"rationale": "...", "action": {...}}'
GOAL_REMINDER = "Your goal: {goal}"
HISTORY_HEADER = "## Earlier in this session (oldest first)"
TRUNCATION_MARKER = "<!-- page truncated here: it exceeds the context budget ({kept} of {total} tokens kept) -->"
OMITTED_MARKER = "[{n} earlier step(s) omitted to fit the context budget]"


def shopper_goal(persona: Persona | Mapping[str, Any] | None = None, *, intent: str | None = None) -> str | None:
    """The goal a prompt states: ``intent`` if given, else the persona's (None: just browsing)."""
    if isinstance(persona, Mapping):
        persona = Persona.model_validate(persona)
    goal = intent if intent is not None else getattr(persona, "intent", None)
    return goal.strip() if goal and goal.strip() else None


def answer_reminder(goal: str | None) -> str:
    """The last lines of every user turn (SFT, RL, simulation): the goal, then the answer shape.

    The goal is repeated here, after the page, because a small model reading 1-2k tokens of
    HTML no longer uses a goal stated only at the top of the system prompt.
    """
    return (GOAL_REMINDER.format(goal=goal) + "\n" if goal else "") + ANSWER_REMINDER


def system_prompt(persona: Persona | Mapping[str, Any] | None = None, *, intent: str | None = None) -> str:
    """The system prompt, with the shopper's persona and goal when given.

    ``intent`` overrides ``persona.intent``; without either, no goal line is added (the
    shopper browses as the persona would). A persona given as a dict (e.g. read back from a
    trace) is validated into a :class:`~shop_r1.personas.model.Persona` first.
    """
    if isinstance(persona, Mapping):
        persona = Persona.model_validate(persona)
    goal = shopper_goal(persona, intent=intent)
    parts = [SYSTEM_PROMPT]
    if persona is not None:
        parts.append(f"You are shopping as: {persona.to_prompt_block()}")
    if goal:
        parts.append(GOAL_REMINDER.format(goal=goal))
    return "\n\n".join(parts)


# -- token counting ---------------------------------------------------------------------------

TokenCounter = Callable[[str], int]


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
    if isinstance(action, ACTION_MODELS):
        action = action.to_json()
    return json.dumps(action, ensure_ascii=False)


def _page_parts(step: int, url: str, html: str) -> tuple[str, str]:
    """The current page as (header line, HTML): counted apart, so the HTML's count is reused
    when the same page comes back as history."""
    return f"## Current page (step {step}) -- URL: {url or '(unknown)'}\n", f"{html.strip()}\n"


def _history_full_parts(step: int, item: Any) -> tuple[str, str, str]:
    head = f"### Step {step} -- URL: {_get(item, 'url') or '(unknown)'}\n"
    body = f"{str(_get(item, 'simplified_html') or '').strip()}\n"
    rationale = str(_get(item, "rationale") or "").strip()
    tail = (f"Rationale: {rationale}\n" if rationale else "") + f"Action: {_action_json(_get(item, 'action'))}\n" \
        + _failure_line(item)
    return head, body, tail


FAILED_LINE = "Result: FAILED ({error})\n"


def _failure_line(item: Any) -> str:
    """The history's word that an action failed (the executor's code and message), so a model
    sees what did not work instead of retrying it; nothing for an action that went through."""
    error = " ".join(str(_get(item, "error") or "").split())
    return FAILED_LINE.format(error=error[:300]) if error else ""


def _history_collapsed(step: int, item: Any) -> str:
    return f"### Step {step} -- URL: {_get(item, 'url') or '(unknown)'} (page omitted)\n" \
           f"Action: {_action_json(_get(item, 'action'))}\n" + _failure_line(item)


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
    count = _memoized(count_tokens or default_count_tokens)
    if isinstance(current, Observation):
        page_html, page_url = current.simplified_html, url or current.url
    else:
        page_html, page_url = str(current), url
    history = list(history)
    step_now = len(history) + 1

    system = system_prompt(persona, intent=intent)
    reminder = answer_reminder(shopper_goal(persona, intent=intent))
    fixed = count(system) + count("\n" + reminder)
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
    parts.append("\n" + reminder)
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

