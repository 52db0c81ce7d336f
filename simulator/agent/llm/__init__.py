"""The LLM client layer: everything that reaches a language model, in one subpackage.

* :mod:`.endpoint` -- base URL and API key from arguments or the environment (the one place);
* :mod:`.chat` -- the OpenAI-compatible chat client on the official ``openai`` SDK;
* :mod:`.sampling` -- the one sampling-settings dataclass and the one seed hash;
* :mod:`.loader` -- loading a local transformers model for generation;
* :mod:`.models` / :mod:`.tiny_model` -- where a model lives (default-model conversion, tiny test models);
* :mod:`.vllm_server` -- starting, watching and stopping a local vLLM server.

Policies (:mod:`shop_r1.simulator.agent.policies`) and the rationale teachers
(:mod:`shop_r1.training.rationales`) both build on it.
"""

from importlib import import_module
from typing import Any

# Public names by submodule. Resolved on first use (PEP 562) because ``openai`` takes seconds to
# import: code that only needs a model folder (resolve_model) or the loader must not pay for it.
_EXPORTS = {
    "chat": ("ChatClient", "ChatRequestError", "ChatResult", "ClientStats"),
    "endpoint": ("OPENAI_DEFAULT_BASE_URL", "Endpoint", "openai_endpoint", "vllm_endpoint"),
    "loader": ("LoadedModel", "load_for_generation", "resolve_device", "resolve_dtype"),
    "models": ("ModelNotFoundError", "resolve_model"),
    "sampling": ("SamplingParams", "derive_seed", "seed_hash"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
