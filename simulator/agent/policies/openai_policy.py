"""A policy answered by any OpenAI-compatible endpoint: zero-shot baselines and teacher models.

Where the endpoint is and which key it takes is :func:`shop_r1.simulator.agent.llm.endpoint.openai_endpoint`'s
business (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``; arguments win), shared with the rationale teachers.
"""

from __future__ import annotations

from typing import Any

from shop_r1.simulator.agent.llm.endpoint import openai_endpoint
from shop_r1.simulator.records.exchange import PolicyRequest
from shop_r1.simulator.agent.policies.http_policy import HTTPChatPolicy


class OpenAIPolicy(HTTPChatPolicy):
    """Chat-completions policy for an OpenAI-compatible API.

    ``json_mode=True`` sends ``response_format={"type": "json_object"}``: supported widely, it
    rules out prose around the JSON but (unlike vLLM's schema decoding) not unknown names, which
    the parser still catches and records.
    """

    name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 json_mode: bool = False, **kwargs: Any) -> None:
        endpoint = openai_endpoint(base_url, api_key)
        super().__init__(endpoint.base_url, model, api_key=endpoint.api_key, **kwargs)
        self.json_mode = json_mode

    def response_format_for(self, request: PolicyRequest) -> dict[str, Any] | None:
        return {"type": "json_object"} if self.json_mode else None

    def describe(self) -> dict[str, Any]:
        # Never the key: describe() is written into run.json.
        return {**super().describe(), "json_mode": self.json_mode}
