"""Whole sessions as chats (the paper's SFT examples) and the canonical answer they train on.

A session's pages are shown exactly as :mod:`.render` shows a current page, so SFT and RL
examples never differ in how a page looks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shop_r1.envs.actions import ACTION_MODELS, Action, ActionValidationError, answer_json, parse_action
from shop_r1.personas.model import Persona
from shop_r1.simulator.prompt.render import (
    ANSWER_REMINDER,
    TRUNCATION_MARKER,
    TokenCounter,
    _get,
    _memoized,
    _page_block,
    default_count_tokens,
    system_prompt,
    truncate_to_tokens,
)

logger = logging.getLogger(__name__)


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
    action: Mapping[str, Any] | Action | None
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
    count = _memoized(count_tokens or default_count_tokens) if max_page_tokens is not None else None
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


def format_answer(rationale: str, action: Mapping[str, Any] | Action) -> str:
    """The canonical answer: ``{"rationale": ..., "action": {...}}``, rationale first (the model
    states its reason before it commits to an action). Validates both; raises ValueError."""
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValueError("rationale must be a non-empty string (synthesise one for steps that lack it)")
    if not isinstance(action, ACTION_MODELS):
        try:
            action = parse_action(dict(action) if isinstance(action, Mapping) else action)
        except ActionValidationError as exc:
            raise ValueError(str(exc)) from exc
    return answer_json(rationale.strip(), action)
