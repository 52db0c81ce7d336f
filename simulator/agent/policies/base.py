"""The one interface every policy backend implements.

Batches, not single calls: the runner collects the shoppers waiting for a decision and sends
them together, so a local model can batch its generation and an HTTP backend can overlap calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from shop_r1.envs.actions import ParseError
from shop_r1.simulator.agent.prompt import parse_output_for
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse


class Policy(ABC):
    """A shopper policy. Implementations must be safe to call from one event loop."""

    name: str = "policy"
    #: Tokens of reduced page this policy reads best (None: the run's ``page_token_budget``).
    page_budget_tokens: int | None = None

    def page_budget(self, session_id: str) -> int | None:
        """The page budget for this session: a small model next to scripted shoppers in one run
        wants short pages, while a rule-based shopper reads the whole page for free."""
        return self.page_budget_tokens

    @abstractmethod
    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """One response per request, in order. Must not raise for one bad request."""

    async def close(self) -> None:  # pragma: no cover - default no-op
        return None

    def describe(self) -> dict[str, Any]:
        """Recorded in run.json so a trace says which policy produced it."""
        return {"policy": self.name}


def failure(reason: str, message: str, **detail: Any) -> ParseError:
    """The error of a step whose model produced no text to parse (a failed call, a prompt that
    could not be built or does not fit): ``generation_failed``, with the reason in ``detail``."""
    return ParseError(code="generation_failed", message=message, detail={"reason": reason, **detail})


def response_from_text(request: PolicyRequest, text: str, *, finish_reason: str | None, prompt_tokens: int,
                       completion_tokens: int, latency_s: float, extra: dict[str, Any] | None = None) -> PolicyResponse:
    """A model's text read against the request's page: the one place every model backend parses.

    The parser's error object is passed through as it is; a cut-off answer (``finish_reason``
    ``length``) says so in its ``detail``, since that, not the model, is then the likely cause.
    """
    extra = {**(extra or {}), "finish_reason": finish_reason}
    parsed = parse_output_for(text, request.observation)
    extra["strict_json"] = parsed.strict
    extra["extraction"] = parsed.how
    error = parsed.error
    if error is not None and finish_reason == "length":
        error = error.model_copy(update={"detail": {**error.detail, "truncated": True}})
    return PolicyResponse(action=parsed.action, rationale=parsed.rationale or "", raw_text=text, error=error,
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_s=latency_s,
                          extra=extra)

