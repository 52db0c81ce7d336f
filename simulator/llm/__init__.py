"""The LLM client layer: everything that reaches a language model, in one subpackage.

* :mod:`.endpoint` -- base URL and API key from arguments or the environment (the one place);
* :mod:`.chat` -- the OpenAI-compatible chat client on the official ``openai`` SDK;
* :mod:`.sampling` -- the one sampling-settings dataclass and the one seed hash;
* :mod:`.loader` -- loading a local transformers model for generation;
* :mod:`.models` / :mod:`.tiny_model` -- where a model lives (default-model conversion, tiny test models);
* :mod:`.vllm_server` -- starting, watching and stopping a local vLLM server.

Policies (:mod:`shop_r1.simulator.policies`) and the rationale teachers
(:mod:`shop_r1.training.rationales`) both build on it.
"""

from shop_r1.simulator.llm.chat import ChatClient, ChatRequestError, ChatResult, ClientStats
from shop_r1.simulator.llm.endpoint import OPENAI_DEFAULT_BASE_URL, Endpoint, openai_endpoint, vllm_endpoint
from shop_r1.simulator.llm.loader import LoadedModel, load_for_generation, resolve_device, resolve_dtype
from shop_r1.simulator.llm.models import ModelNotFoundError, resolve_model
from shop_r1.simulator.llm.sampling import SamplingParams, derive_seed, seed_hash

__all__ = [
    "ChatClient", "ChatRequestError", "ChatResult", "ClientStats", "Endpoint", "LoadedModel", "ModelNotFoundError",
    "OPENAI_DEFAULT_BASE_URL", "SamplingParams", "derive_seed", "load_for_generation", "openai_endpoint",
    "resolve_device", "resolve_dtype", "resolve_model", "seed_hash", "vllm_endpoint",
]
