"""A policy answered by any OpenAI-compatible endpoint: zero-shot baselines and teacher models.

Configured like the official SDK (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``; arguments win), so a
user's existing set-up works unchanged, whether it points at OpenAI, a gateway or a local server.
"""

from __future__ import annotations

import os
from typing import Any

from shop_r1.simulator.policies.base import PolicyRequest
from shop_r1.simulator.policies.http_policy import HTTPChatPolicy

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIPolicy(HTTPChatPolicy):
    """Chat-completions policy for an OpenAI-compatible API.

    ``json_mode=True`` sends ``response_format={"type": "json_object"}``: supported widely, it
    rules out prose around the JSON but (unlike vLLM's schema decoding) not unknown names, which
    :func:`shop_r1.simulator.prompt.parse_output` still catches and records.
    """

    name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 json_mode: bool = False, **kwargs: Any) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key and base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL:
            raise ValueError(
                f"no API key for {base_url}: set OPENAI_API_KEY or pass api_key "
                "(or set OPENAI_BASE_URL to a compatible endpoint that needs none)"
            )
        super().__init__(base_url, model, api_key=api_key, **kwargs)
        self.json_mode = json_mode

    def response_format_for(self, request: PolicyRequest) -> dict[str, Any] | None:
        return {"type": "json_object"} if self.json_mode else None

    def describe(self) -> dict[str, Any]:
        # Never the key: describe() is written into run.json.
        return {**super().describe(), "json_mode": self.json_mode}
