"""What passes between the loop and a policy, as records: the page and history a shopper is
asked about, and what the policy answered.

They live with the records, not with the policies, because the trace is built from them and a
trace must be readable without importing any policy backend (layer rule: records sit below the
agent; tests/test_layout.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_r1.envs.actions import Action, ParseError
from shop_r1.envs.observation import Observation
from shop_r1.personas.model import Persona


@dataclass(frozen=True)
class HistoryItem:
    """One earlier step of the session as the policy saw and did it."""

    url: str
    simplified_html: str
    action: dict[str, Any] | None
    rationale: str = ""
    #: Why the action failed when the shop could not carry it out ("not_visible: ... covered by
    #: ..."), else "": a policy must see its failures, or it retries them (issue 24).
    error: str = ""


@dataclass
class PolicyRequest:
    session_id: str
    observation: Observation
    history: Sequence[HistoryItem] = ()
    persona: Persona | None = None  # validated once, where personas are loaded
    messages: list[dict[str, str]] | None = None  # built by simulator.agent.prompt
    step: int = 0


@dataclass
class PolicyResponse:
    action: Action | None
    rationale: str = ""
    raw_text: str = ""
    error: ParseError | None = None  # why there is no action: the parser's object, or a failed call
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
