"""What a teacher is asked and how its reply becomes a rationale.

The teacher's instructions live here and only here (:data:`RATIONALE_PROMPT`); its context is
the policy's own user turn, so the teacher reads exactly what the model being trained will read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shop_r1.personas.model import Persona
from shop_r1.envs.actions import Action
from shop_r1.simulator.records.exchange import HistoryItem
from shop_r1.simulator.agent.prompt import ANSWER_REMINDER, build_messages
from shop_r1.simulator.records.trace import TraceStep, observation_from_step

#: The teacher's instructions (the one place they live). Fields: ``persona`` (a paragraph, or a
#: neutral line), ``goal``, ``context`` (the session so far and the current page, as the policy
#: sees them), ``action`` (the recorded action's JSON) and ``target`` (what the named element is).
RATIONALE_PROMPT = """\
You are reconstructing the thoughts of a real person shopping online. Below is what they saw in \
this browsing session (simplified HTML of each page, with the actions they took), and the action \
they took next on the current page.

Shopper: {persona}
Their goal: {goal}

=== What they saw ===
{context}
=== End ===

The action they took on the current page: {action}
{target}
Write the one short sentence this shopper was thinking just before taking that action: first \
person ("I ..."), about why they did it, grounded in what is on the page and in their goal. Do \
not describe the HTML or mention element names, JSON or the word "action". Reply with the \
sentence only."""

#: The teacher's context budget (tokens) for the session-so-far part of the prompt.
TEACHER_CONTEXT_BUDGET = 3000
#: Longest rationale kept (characters); the policy's answer schema allows 400.
MAX_RATIONALE_CHARS = 400


class TeacherError(RuntimeError):
    """One rationale the teacher could not produce; ``code`` is short and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RationaleJob:
    """One step that needs a rationale, with what a teacher needs to write it."""

    session_id: str
    step: int
    action: Action
    messages: list[dict[str, str]]
    target_text: str = ""
    url: str = ""
    title: str = ""
    intent: str = ""

    @property
    def where(self) -> str:
        return f"session {self.session_id} step {self.step}"


def _strip_reminder(text: str) -> str:
    text = text.rstrip()
    if text.endswith(ANSWER_REMINDER):
        text = text[: -len(ANSWER_REMINDER)].rstrip()
    return text


def short(text: str, n: int) -> str:
    """``text`` on one line, at most ``n`` characters (an ellipsis marks the cut)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def teacher_messages(step: TraceStep, history: Sequence[HistoryItem], persona: Persona | None, *,
                     token_budget: int = TEACHER_CONTEXT_BUDGET) -> list[dict[str, str]]:
    """The teacher's chat for one step: :data:`RATIONALE_PROMPT` filled with the step's context.

    The context is the policy's own user turn (``build_messages``: earlier pages and actions,
    then the current page) without the answer-format reminder.
    """
    messages = build_messages(observation_from_step(step), history, None, token_budget=token_budget)
    context = _strip_reminder("\n".join(m["content"] for m in messages if m["role"] == "user"))
    action = step.action
    if action is None:
        raise ValueError(f"session {step.session_id} step {step.step} has no action to explain")
    name = getattr(action, "name", None)
    el = step.element(name) if name else None
    if el is not None and el.text.strip():
        target = f'("{name}" is the {el.kind} labelled "{short(el.text, 120)}".)\n'
    elif name:
        target = f'("{name}" is an element of the current page.)\n'
    else:
        target = ""
    persona_text = persona.to_prompt_block() if persona is not None and hasattr(persona, "to_prompt_block") \
        else "an ordinary online shopper."
    goal = (getattr(persona, "intent", None) or "").strip() or "not stated; infer it from what they did."
    content = RATIONALE_PROMPT.format(persona=persona_text, goal=goal, context=context,
                                      action=json.dumps(action.to_json(), ensure_ascii=False), target=target)
    return [{"role": "user", "content": content}]


_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")
_LABEL = re.compile(r"^(?:rationale|thought|answer|sentence)\s*:\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’"}


def _unwrap_quotes(line: str) -> str:
    """Drop quotes that wrap the whole line, and only those: a sentence that starts with a quoted
    name ("'Trail Shoes' look right for 'running'") keeps its quotes, as its first quote closes
    inside the line (an apostrophe, as in "I'll", is not a closing quote)."""
    while len(line) >= 2 and _QUOTE_PAIRS.get(line[0]) == line[-1]:
        inner = line[1:-1]
        if re.search(rf"\S{re.escape(line[-1])}(?=[\s,.;:!?]|$)", inner):
            break
        line = inner.strip()
    return line


def clean_rationale(text: str | None) -> str:
    """A teacher's reply as one clean rationale; raises :class:`TeacherError` ``empty`` if none.

    Accepts what teachers actually send: code fences, a ``Rationale:`` label, surrounding
    quotes, a JSON object with a ``rationale`` key, several lines or sentences (the first two
    sentences of the first non-empty line are kept, at most :data:`MAX_RATIONALE_CHARS`).
    """
    text = (text or "").strip()
    text = _FENCE.sub("", text).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("rationale"), str):
            text = obj["rationale"].strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _unwrap_quotes(_LABEL.sub("", line).strip())
    sentences = _SENTENCE_END.split(line)
    out = " ".join(sentences[:2]).strip()
    if len(out) > MAX_RATIONALE_CHARS:
        cut = out[:MAX_RATIONALE_CHARS]
        out = cut[: cut.rfind(" ")].rstrip(",;:") + "." if " " in cut else cut
    if not out:
        raise TeacherError("empty", f"the teacher's reply holds no sentence: {(text or '')[:80]!r}")
    return out


__all__ = ["MAX_RATIONALE_CHARS", "RATIONALE_PROMPT", "TEACHER_CONTEXT_BUDGET", "RationaleJob", "TeacherError",
           "clean_rationale", "short", "teacher_messages"]
