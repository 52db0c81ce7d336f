"""Where an OpenAI-compatible endpoint is and which key it takes: the one place env vars are read.

Configured like the official SDK (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``; arguments win), so a
user's existing set-up works unchanged, whether it points at OpenAI, a gateway or a local server.
A vLLM server reads its key from ``VLLM_API_KEY`` (vLLM's own ``--api-key`` variable). Policies
and rationale teachers both resolve their endpoint here, so the rules and the error read the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Endpoint:
    """An API root (with ``/v1``) and its key; ``repr`` never shows the key (it reaches logs)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


def openai_endpoint(base_url: str | None = None, api_key: str | None = None) -> Endpoint:
    """Arguments, else ``$OPENAI_BASE_URL`` / ``$OPENAI_API_KEY``, else OpenAI itself.

    OpenAI without a key fails here, before any request, with the variable to set.
    """
    url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key and url.rstrip("/") == OPENAI_DEFAULT_BASE_URL:
        raise ValueError(
            f"no API key for {url}: set OPENAI_API_KEY or pass api_key "
            "(or set OPENAI_BASE_URL / --base-url to a compatible endpoint that needs none)"
        )
    return Endpoint(url, key)


def vllm_endpoint(base_url: str, api_key: str | None = None) -> Endpoint:
    """A vLLM server's endpoint; the key defaults to ``$VLLM_API_KEY`` when set."""
    return Endpoint(base_url, api_key or os.environ.get("VLLM_API_KEY"))


__all__ = ["Endpoint", "OPENAI_DEFAULT_BASE_URL", "openai_endpoint", "vllm_endpoint"]
