"""Rendering what a policy reads: the system prompt, one decision's prompt under a token budget.

Simulation (policies), SFT and RL data and evaluation render through :func:`build_prompt` -- the
one context format -- so a model is trained on exactly the text it will see when it shops. The system
prompt's text is ``system.md`` beside this module; its list of actions is rendered from the action
models (``shop_r1.envs.actions``), so the prompt cannot drift from what the parser, the schema and
the grammar accept. Where a page is cut to fit the budget is :mod:`.budget`'s search.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

from shop_r1.envs.actions import (
    ACTION_MODELS,
    ActionBase,
    Click,
    answer_json,
    describe_actions,
    describe_name_rule,
)
from shop_r1.envs.observation import Observation
from shop_r1.envs.tokens import count_tokens as default_count_tokens
from shop_r1.personas.model import Persona
from shop_r1.simulator.agent.prompt.budget import TokenCounter, memoized_counter, truncate_to_tokens

if TYPE_CHECKING:  # typing only: the policies package imports this one at run time
    from shop_r1.simulator.records.exchange import HistoryItem

logger = logging.getLogger(__name__)


#: The answer's shape, with placeholders that say what goes where (never values to copy; the
#: constrained grammar does not even allow ``<`` or ``>`` in free text, so they cannot be echoed).
ANSWER_FORMAT = answer_json("<why you take this action, in one sentence of your own>",
                            Click(name="<the name of an element on the current page>"))


#: The system prompt's text, shipped as package data beside this module: prose is edited as
#: prose, not inside a Python string. ``$actions``, ``$name_rule`` and ``$answer_format`` are
#: filled in (``string.Template``: a literal dollar sign is written ``$$``); the file's final
#: newline is not part of the prompt.
SYSTEM_TEMPLATE_FILE = "system.md"


@lru_cache(maxsize=1)
def _system_template() -> Template:
    package = __name__.rpartition(".")[0]
    text = resources.files(package).joinpath(SYSTEM_TEMPLATE_FILE).read_text(encoding="utf-8")
    return Template(text.removesuffix("\n"))


def render_system_prompt(models: Sequence[type[ActionBase]] = ACTION_MODELS) -> str:
    """The task prompt for an action space (``models``, by default the project's): ``system.md``
    with the actions, the name rule and the answer's shape filled in.

    It holds no example values: a small model copies any concrete rationale, name or search
    text it is shown (SmolLM2-135M typed ``search_input`` and repeated "I want to see what
    headphones this store has" in every session), so the answer's shape is shown with
    placeholders that describe what goes there. The shopper's goal is restated right before
    the answer (:func:`answer_reminder`), where a small model still attends to it.
    """
    return _system_template().substitute(actions=describe_actions(models), name_rule=describe_name_rule(models),
                                         answer_format=ANSWER_FORMAT)


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
    count = memoized_counter(count_tokens or default_count_tokens)
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

