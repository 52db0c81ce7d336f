"""A policy served by vLLM, with schema-constrained decoding over the current page's names.

vLLM compiles a JSON schema into a token grammar (``response_format`` of type ``json_schema``).
Built per request from the page the shopper is looking at, the schema makes ``name`` an enum of
that page's clickable (or input) names, so every answer is valid JSON *and* an executable
action: a small model can no longer lose a step to a typo in a name. ``structured=False`` sends
free text instead (what the paper's models produce; useful to measure format errors).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from shop_r1.envs.actions import action_json_schema
from shop_r1.envs.observation import Observation
from shop_r1.simulator.agent.llm.vllm_server import VLLMServer
from shop_r1.simulator.records.exchange import PolicyRequest
from shop_r1.simulator.agent.policies.http_policy import HTTPChatPolicy

SCHEMA_NAME = "shop_r1_action"

#: JSON forbids raw control characters inside strings, but vLLM's grammar (xgrammar) lets a model
#: emit them, and a strict JSON parser then rejects the whole answer. Every free-text string of
#: the schema is therefore constrained to this character class.
SAFE_CHARS = r"[^\x00-\x1f]"


def _forbid_control_chars(node: Any) -> Any:
    """A copy of a JSON schema whose free-text strings exclude control characters.

    Length bounds stay ``minLength``/``maxLength``. With ``pattern`` beside them, vLLM's "auto"
    structured-output backend picks the guidance engine, which handles both; xgrammar 0.2.8 can
    do neither the pair nor (it fails to compile) a ``{min,max}`` quantifier in the pattern.
    """
    if isinstance(node, dict):
        out = {k: _forbid_control_chars(v) for k, v in node.items()}
        if out.get("type") == "string" and not {"enum", "const", "pattern", "format"} & out.keys():
            out["pattern"] = f"^{SAFE_CHARS}*$"
        return out
    if isinstance(node, list):
        return [_forbid_control_chars(v) for v in node]
    return node


def page_schema(observation: Observation) -> dict[str, Any]:
    """The answer's JSON schema for this page: ``name`` an enum of its usable names
    (:meth:`Observation.executable_names`, the one definition the token grammar shares)."""
    clickable, inputs = observation.executable_names()
    return _forbid_control_chars(action_json_schema(clickable, inputs))


def response_format_for_page(observation: Observation) -> dict[str, Any]:
    """The ``response_format`` that constrains an answer to this page's executable actions."""
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": page_schema(observation)}}


class VLLMPolicy(HTTPChatPolicy):
    """A policy answered by a vLLM OpenAI-compatible server (running, or started by :meth:`launch`)."""

    name = "vllm"
    server: Any = None  # the VLLMServer started by launch(), if any
    def __init__(self, base_url: str, model: str, *, structured: bool = True, api_key: str | None = None,
                 **kwargs: Any) -> None:
        """``api_key`` defaults to ``$VLLM_API_KEY`` (vLLM's own ``--api-key`` variable) when set.

        ``structured`` sends the page's schema as the standard ``response_format``, which any
        OpenAI-compatible server with JSON-schema support understands. The grammar still lets a
        model put whitespace between JSON tokens: give ``max_tokens`` some room. (vLLM 0.32 has
        no per-request switch for that, and its server-wide ``disable_any_whitespace`` with
        xgrammar 0.2.8 fails to compile this schema.)
        """
        super().__init__(base_url, model, api_key=api_key or os.environ.get("VLLM_API_KEY"), **kwargs)
        self.structured = structured

    def response_format_for(self, request: PolicyRequest) -> dict[str, Any] | None:
        return response_format_for_page(request.observation) if self.structured else None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "structured": self.structured}

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, model_dir: str | os.PathLike[str], *, server_kwargs: dict[str, Any] | None = None,
                     **policy_kwargs: Any) -> AsyncIterator[VLLMPolicy]:
        """Start a :class:`~shop_r1.simulator.agent.llm.vllm_server.VLLMServer` for ``model_dir`` and yield a policy on it.

        The server is stopped (its whole process group) when the block exits, also on error.
        ``server_kwargs`` go to ``VLLMServer`` (``max_model_len``, ``kv_cache_gib``, ``dev_mode`` ...),
        the rest to the policy. The server is reachable as ``policy.server``.
        """
        server = VLLMServer(model_dir, **(server_kwargs or {}))
        async with server:
            policy = cls(server.base_url, server.served_model_name, **policy_kwargs)
            policy.server = server
            try:
                yield policy
            finally:
                await policy.close()
