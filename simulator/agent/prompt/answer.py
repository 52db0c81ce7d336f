"""The canonical answer a policy is trained to write (SFT targets, the system prompt's example).

There is one context format (:func:`shop_r1.simulator.agent.prompt.build_messages`: one user turn with
the session inline); an SFT example is that prompt plus this answer as the assistant turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shop_r1.envs.actions import ACTION_MODELS, Action, ActionValidationError, answer_json, parse_action


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


__all__ = ["format_answer"]
