"""A shopper policy answered by an OpenAI-compatible chat-completions endpoint.

Both HTTP backends (a local vLLM server, :mod:`.vllm_policy`, and any OpenAI-compatible API,
:mod:`.openai_policy`) share this policy; the wire, retries and token accounting are the
:class:`~shop_r1.simulator.agent.llm.chat.ChatClient`'s. Every failure (HTTP, timeout, unparsable
output) becomes a :class:`~shop_r1.simulator.agent.policies.base.PolicyResponse` with ``error`` set,
because one shopper's bad call must never abort the batch the runner is waiting on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shop_r1.simulator.agent.llm.chat import ChatClient, ChatRequestError
from shop_r1.simulator.agent.llm.sampling import SamplingParams, derive_seed
from shop_r1.simulator.agent.policies.base import Policy, failure, response_from_text
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.prompt import build_messages

logger = logging.getLogger(__name__)


class HTTPChatPolicy(Policy):
    """A policy answered by an OpenAI-compatible chat-completions endpoint.

    Prompts come from ``request.messages`` or, when absent, from
    :func:`shop_r1.simulator.agent.prompt.build_messages`; answers are parsed against the current page's
    names and kinds (:func:`~shop_r1.simulator.agent.policies.base.response_from_text`), so the prompt
    format has exactly one owner. Subclasses choose a ``response_format`` per request
    (:meth:`response_format_for`).
    """

    name = "http"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        sampling: SamplingParams | None = None,
        max_concurrency: int = 8,
        max_retries: int = 3,
        timeout_s: float = 120.0,
        token_budget: int = 6000,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        self.client = ChatClient(
            base_url, model, api_key=api_key, max_concurrency=max_concurrency, max_retries=max_retries,
            timeout_s=timeout_s, headers=headers, max_tokens_field=max_tokens_field,
        )
        self.sampling = sampling or SamplingParams()
        self.token_budget = token_budget
        self.extra_body = dict(extra_body or {})

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def base_url(self) -> str:
        return self.client.base_url

    # -- hooks -------------------------------------------------------------------------------
    def response_format_for(self, request: PolicyRequest) -> dict[str, Any] | None:
        """The ``response_format`` for one request; ``None`` sends none (free text)."""
        return None

    def extra_body_for(self, request: PolicyRequest) -> dict[str, Any]:
        """Server-specific body fields for one request (default: the policy's ``extra_body``)."""
        return dict(self.extra_body)

    def messages_for(self, request: PolicyRequest) -> list[dict[str, str]]:
        if request.messages is not None:
            return request.messages
        return build_messages(request.observation, request.history, request.persona, token_budget=self.token_budget)

    # -- Policy ------------------------------------------------------------------------------
    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """Answer all requests concurrently (at most ``max_concurrency`` in flight), in order."""
        return list(await asyncio.gather(*(self._act_one(r) for r in requests)))

    async def _act_one(self, request: PolicyRequest) -> PolicyResponse:
        t0 = time.perf_counter()
        try:
            messages = self.messages_for(request)
            response_format = self.response_format_for(request)
            extra_body = self.extra_body_for(request)
        except Exception as exc:  # a bad request must not sink the batch
            logger.exception("could not build the request for session %s step %d", request.session_id, request.step)
            return PolicyResponse(action=None, error=failure("prompt_error", f"{type(exc).__name__}: {exc}"),
                                  latency_s=time.perf_counter() - t0)
        try:
            result = await self.client.complete(
                messages, self.sampling, seed=derive_seed(self.sampling.seed, request.session_id, request.step),
                response_format=response_format, extra_body=extra_body,
            )
        except ChatRequestError as exc:
            logger.warning("session %s step %d: %s", request.session_id, request.step, exc)
            return PolicyResponse(action=None, error=exc.as_parse_error(), latency_s=time.perf_counter() - t0,
                                  extra={"attempts": exc.attempts, "status": exc.status})
        except Exception as exc:  # unexpected: record, never raise
            logger.exception("session %s step %d: unexpected failure", request.session_id, request.step)
            return PolicyResponse(action=None, error=failure("internal", f"{type(exc).__name__}: {exc}"),
                                  latency_s=time.perf_counter() - t0)
        return response_from_text(
            request, result.text, finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens, latency_s=result.latency_s,
            extra={"attempts": result.attempts},
        )

    async def close(self) -> None:
        await self.client.aclose()

    def describe(self) -> dict[str, Any]:
        s = self.sampling
        return {
            "policy": self.name, "model": self.model, "base_url": self.base_url,
            "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed,
            "max_concurrency": self.client.max_concurrency, "max_retries": self.client.max_retries,
        }


__all__ = ["HTTPChatPolicy"]
