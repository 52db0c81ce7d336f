"""The one interface every policy backend implements.

Batches, not single calls: the runner collects the shoppers waiting for a decision and sends
them together, so a local model can batch its generation and an HTTP backend can overlap calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.observation import Observation


@dataclass(frozen=True)
class HistoryItem:
    """One earlier step of the session as the policy saw and did it."""

    url: str
    simplified_html: str
    action: dict[str, Any] | None
    rationale: str = ""


@dataclass
class PolicyRequest:
    session_id: str
    observation: Observation
    history: Sequence[HistoryItem] = ()
    persona: Any = None  # personas.model.Persona (kept loose: scripted policies read fields)
    messages: list[dict[str, str]] | None = None  # built by simulator.prompt
    step: int = 0


@dataclass
class PolicyResponse:
    action: Click | TypeAndSubmit | Terminate | None
    rationale: str = ""
    raw_text: str = ""
    error: str | None = None  # parse/validation error code + message when action is None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Policy(ABC):
    """A shopper policy. Implementations must be safe to call from one event loop."""

    name: str = "policy"

    @abstractmethod
    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """One response per request, in order. Must not raise for one bad request."""

    async def close(self) -> None:  # pragma: no cover - default no-op
        return None

    def describe(self) -> dict[str, Any]:
        """Recorded in run.json so a trace says which policy produced it."""
        return {"policy": self.name}
