"""Build a policy backend from CLI-style options, importing only the backend asked for.

One place maps ``--policy``/``--model`` to a backend so ``simulate``, ``replay`` and
``evaluate`` accept the same options and errors read the same everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.agent.policies.mixed import MixedPolicy, PolicyPart

POLICY_NAMES = ("scripted", "transformers", "vllm", "openai")
MIXED = "mixed"  # several of the above in one run (``PolicySpec.parts``), shopper i -> part i % n


class PolicyConfigError(ValueError):
    pass


@dataclass
class PolicySpec:
    name: str = "scripted"
    model: str | None = None  # folder, "default", or (vllm/openai) a served model name
    base_url: str | None = None  # vllm/openai endpoint; vllm without it starts a server
    seed: int = 0
    allow_purchase: bool = False
    constrained: bool = True
    temperature: float | None = None
    max_concurrency: int = 8
    prompt_budget: int | None = None  # prompt tokens (None: the backend's default)
    page_budget: int | None = None  # tokens of reduced page for this policy's shoppers (None: the run's)
    # Seconds a batch of decisions may take (transformers, without prompt_budget): the prompt and
    # page are sized from the model's speed measured where it runs (simulator/agent/llm/speed.py).
    step_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    parts: tuple["PolicySpec", ...] = ()  # for ``mixed``: the sub-policies, in routing order
    label: str | None = None  # what people are told this policy is (default: from name and model)

    def __post_init__(self) -> None:
        if self.name == MIXED:
            if not self.parts:
                raise PolicyConfigError("policy 'mixed' needs parts (the sub-policies to route shoppers to)")
            if any(p.name == MIXED for p in self.parts):
                raise PolicyConfigError("a mixed policy's parts cannot themselves be mixed")
            return
        if self.name not in POLICY_NAMES:
            raise PolicyConfigError(f"unknown policy {self.name!r}; choose one of {', '.join(POLICY_NAMES)}")
        if self.parts:
            raise PolicyConfigError(f"policy {self.name!r} takes no parts (only 'mixed' does)")

    def describe_line(self) -> str:
        """One plain line saying what this policy is, for people watching a run."""
        if self.label:
            return self.label
        if self.name == "scripted":
            return "scripted: a rule-based shopper (no model), persona-driven, seeded"
        if self.name == "transformers":
            model = "the embedded SmolLM2-135M-Instruct" if self.model in (None, "", "default") else self.model
            how = "constrained decoding: names from the page, queries from the intent" if self.constrained \
                else "free decoding"
            return f"transformers: {model}, run in-process ({how})"
        if self.name == MIXED:
            return "mixed: " + "; ".join(f"shopper i % {len(self.parts)} == {k} -> {p.describe_line()}"
                                         for k, p in enumerate(self.parts))
        return f"{self.name}: model {self.model or '(server default)'}" + (f" at {self.base_url}" if self.base_url else "")


@contextlib.asynccontextmanager
async def open_policy(spec: PolicySpec) -> AsyncIterator[Policy]:
    """Yield a ready policy; servers it started are stopped on exit, also on error."""
    async with _open_policy(spec) as policy:
        if spec.page_budget is not None:
            policy.page_budget_tokens = spec.page_budget
        yield policy


@contextlib.asynccontextmanager
async def _open_policy(spec: PolicySpec) -> AsyncIterator[Policy]:
    if spec.name == MIXED:
        async with contextlib.AsyncExitStack() as stack:
            parts = [PolicyPart(label=p.describe_line(), policy=await stack.enter_async_context(open_policy(p)))
                     for p in spec.parts]
            yield MixedPolicy(parts)
        return
    if spec.name == "scripted":
        from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy

        policy: Policy = ScriptedPolicy(seed=spec.seed, allow_purchase=spec.allow_purchase)
        yield policy
        return
    if spec.name == "transformers":
        from shop_r1.simulator.agent.llm.models import resolve_model
        from shop_r1.simulator.agent.policies.transformers_policy import TransformersPolicy

        kwargs: dict[str, Any] = {"constrained": spec.constrained, "seed": spec.seed, **spec.extra}
        if spec.temperature is not None:
            kwargs["temperature"] = spec.temperature
        if spec.prompt_budget is not None:
            kwargs["token_budget"] = spec.prompt_budget
        elif spec.step_seconds is not None:
            kwargs.setdefault("step_seconds", spec.step_seconds)
            kwargs.setdefault("batch_size", max(1, min(8, spec.max_concurrency)))
        policy = TransformersPolicy(resolve_model(spec.model, show_status=True), **kwargs)
        try:
            if policy.step_seconds is not None:
                # Loaded and measured now, in a thread: the first session asks for its page budget.
                await asyncio.to_thread(policy.load)
            yield policy
        finally:
            await policy.close()
        return
    if spec.name == "vllm":
        from shop_r1.simulator.agent.llm.sampling import SamplingParams
        from shop_r1.simulator.agent.policies.vllm_policy import VLLMPolicy

        sampling = SamplingParams(temperature=spec.temperature) if spec.temperature is not None else None
        common: dict[str, Any] = {"structured": spec.constrained, "max_concurrency": spec.max_concurrency,
                                  "sampling": sampling}
        if spec.prompt_budget is not None:
            common["token_budget"] = spec.prompt_budget
        if spec.base_url:
            if not spec.model:
                raise PolicyConfigError("--policy vllm with --base-url needs --model (the served model name)")
            policy = VLLMPolicy(spec.base_url, spec.model, **common)
            try:
                yield policy
            finally:
                await policy.close()
            return
        from shop_r1.simulator.agent.llm.models import resolve_model

        async with VLLMPolicy.launch(resolve_model(spec.model, show_status=True), **common) as policy:
            yield policy
        return
    from shop_r1.simulator.agent.policies.openai_policy import OpenAIPolicy

    if not spec.model:
        raise PolicyConfigError("--policy openai needs --model (the endpoint's model name)")
    extra_kw: dict[str, Any] = {"token_budget": spec.prompt_budget} if spec.prompt_budget is not None else {}
    policy = OpenAIPolicy(spec.model, base_url=spec.base_url, json_mode=True, max_concurrency=spec.max_concurrency,
                          **extra_kw)
    try:
        yield policy
    finally:
        await policy.close()
