"""A policy run in-process with ``transformers``: a local model folder, CPU or GPU, batched.

The runner hands over the shoppers that are waiting for a decision; they are decoded together
(left padding, one ``generate`` call per batch), which is what makes a local model affordable
for many concurrent shoppers. The blocking torch work runs in a worker thread so the event loop
that drives the browsers keeps going meanwhile.

With ``constrained=True`` (the default for the embedded default model) decoding follows the
answer grammar of :mod:`shop_r1.simulator.agent.policies.constrained`, so even a 135M model always answers
with valid JSON naming a real element of the page. Prompts come from
:func:`shop_r1.simulator.agent.prompt.build_messages` (or ``request.messages``) rendered by the model's own
chat template; answers are parsed by :func:`shop_r1.simulator.agent.prompt.parse_output`, the same parser every
backend uses, so a constrained answer is checked exactly like a free one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shop_r1.simulator.agent.llm.loader import LoadedModel, load_for_generation
from shop_r1.simulator.agent.llm.models import PROVENANCE_FILE, resolve_model
from shop_r1.simulator.agent.llm.prefill import prefill_apart
from shop_r1.simulator.agent.llm.sampling import SamplingParams, derive_seed
from shop_r1.simulator.agent.llm.speed import MIN_PROMPT_TOKENS, ModelSpeed, measure_speed, prompt_budget_for
from shop_r1.simulator.agent.policies.base import Policy, failure, response_from_text
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.policies.constrained import (
    ConstrainedRows,
    TokenTable,
    grammar_for_observation,
    make_logits_processor,
    search_queries,
)
from shop_r1.simulator.agent.prompt import build_messages
from shop_r1.simulator.agent.prompt.render import shopper_goal

log = logging.getLogger(__name__)


def _batch_seed(base: int | None, requests: Sequence[PolicyRequest]) -> int | None:
    """One seed per batch from the run seed and who is in it: reruns repeat, batches differ."""
    return derive_seed(base, "|".join(f"{r.session_id}:{r.step}" for r in requests))


#: ``step_seconds`` is a third of the step timeout (``simulate``); a batch stops decoding at
#: 2.5 times that, before the timeout gives its answers up.
STEP_TIMEOUT_SHARE = 2.5
#: What a prompt holds besides the page (instructions, persona, recent history), in tokens: the
#: sized prompt leaves the reduced page this much less, and is never smaller than this plus a
#: minimal page (SmolLM2's instructions and framing alone take ~680).
PROMPT_OVERHEAD_TOKENS = 700


class TransformersPolicy(Policy):
    """A shopper policy decoded locally with ``transformers``.

    ``model``: a spec for :func:`shop_r1.simulator.agent.llm.models.resolve_model` (``None``/``"default"`` for the
    embedded SmolLM2-135M-Instruct, ``"tiny"``, or a local folder). ``constrained``: ``None``
    means on for the default model and off otherwise (a fine-tuned model is evaluated on what it
    writes). ``query_choices`` (with ``constrained``): typed text is chosen among short queries
    from the shopper's intent (:func:`~shop_r1.simulator.agent.policies.constrained.search_queries`)
    instead of being free. The model loads on first use (or :meth:`load`), in the worker thread.
    """

    name = "transformers"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        constrained: bool | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.6,
        top_p: float = 0.95,
        seed: int | None = 0,
        batch_size: int = 8,
        token_budget: int | None = None,
        grammar_bounds: dict[str, int] | None = None,
        num_threads: int | None = None,
        show_status: bool = False,
        query_choices: bool = True,
        prefill_apart: bool = True,
        step_seconds: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        is_default = model is None or str(model).strip().lower() in ("", "default")
        self.model_dir: Path = resolve_model(model, show_status=show_status)
        self.constrained = is_default if constrained is None else constrained
        self.settings = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed)
        self.batch_size = batch_size
        self.device_spec = device
        self.dtype_spec = dtype
        self.token_budget = token_budget
        self.grammar_bounds = dict(grammar_bounds or {})
        self.query_choices = query_choices
        # On a CPU, each prompt is prefilled alone (no padding mask): same tokens, ~2x faster
        # (simulator/agent/llm/prefill.py); False keeps the one padded prefill.
        self.prefill_apart = prefill_apart
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        # Default: leave one core to Chromium and the shop. Torch's OpenMP threads spin-wait, so
        # on a CPU shared with browsers all-cores torch is many times slower, not faster.
        self.num_threads = num_threads if num_threads is not None else max(1, (os.cpu_count() or 1) - 1)
        if step_seconds is not None and step_seconds <= 0:
            raise ValueError(f"step_seconds must be > 0, got {step_seconds}")
        # Without an explicit token_budget: the seconds one batch of decisions may take here; the
        # prompt (and the reduced page) is then sized from the model's speed measured at load.
        self.step_seconds = step_seconds
        self.speed: ModelSpeed | None = None
        self._sized_budget: int | None = None
        self._loaded: LoadedModel | None = None
        self._table: TokenTable | None = None
        self._load_lock = threading.Lock()
        self._gen_lock: asyncio.Lock | None = None
        self.load_seconds: float | None = None

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        """Load model and tokenizer (blocking; idempotent, thread-safe)."""
        with self._load_lock:
            if self._loaded is not None:
                return
            loaded = load_for_generation(self.model_dir, device=self.device_spec, dtype=self.dtype_spec)
            if self.constrained:
                self._table = TokenTable(loaded.tokenizer, vocab_size=loaded.vocab_size)
            self._loaded = loaded
            self.load_seconds = loaded.seconds
            if self.token_budget is None and self.step_seconds is not None:
                self._size_prompt(loaded)

    def _size_prompt(self, loaded: LoadedModel) -> None:
        """Measure this model here and size the prompt to ``step_seconds`` (see simulator/agent/llm/speed.py)."""
        import torch

        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        self.speed = measure_speed(loaded.model, batch=self.batch_size, vocab_size=loaded.vocab_size,
                                   device=loaded.device)
        assert self.step_seconds is not None
        self._sized_budget = prompt_budget_for(
            self.speed, seconds=self.step_seconds, batch=self.batch_size, new_tokens=self.sizing_new_tokens,
            ceiling=self.sizing_ceiling(loaded.context_length),  # under the load lock: not self.loaded
            floor=PROMPT_OVERHEAD_TOKENS + MIN_PROMPT_TOKENS)
        log.info("prompt sized to %d tokens for %.0f s per batch of %d (%s)", self._sized_budget,
                 self.step_seconds, self.batch_size, self.model_dir)

    @property
    def sizing_new_tokens(self) -> int:
        """Answer tokens a sized prompt leaves room for: a constrained answer is bounded by its
        grammar (the rationale's cap plus the action's few tokens), a free one by max_new_tokens."""
        if self.constrained:
            return min(self._max_new_tokens, self.grammar_bounds.get("rationale_max_tokens", 96) + 48)
        return self._max_new_tokens

    def sizing_ceiling(self, context_length: int | None = None) -> int:
        """The most prompt tokens sizing may give: the context's room after a sized answer."""
        return self._context_ceiling(self.sizing_new_tokens, context_length)

    def page_budget(self, session_id: str) -> int | None:
        """The run's page budget, else the sized prompt's room for the page: the reducer then
        keeps what the model will read, instead of a page the prompt budget cuts anyway."""
        if self.page_budget_tokens is not None or self.step_seconds is None or self.token_budget is not None:
            return super().page_budget(session_id)
        self.load()
        assert self._sized_budget is not None
        return max(MIN_PROMPT_TOKENS, self._sized_budget - PROMPT_OVERHEAD_TOKENS)

    @property
    def loaded(self) -> LoadedModel:
        self.load()
        assert self._loaded is not None
        return self._loaded

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def context_length(self) -> int:
        return self.loaded.context_length

    # -- prompts -----------------------------------------------------------------------------
    def _budget(self, new_tokens: int) -> int:
        """Prompt tokens allowed: the explicit ``token_budget``, else what the context leaves after
        the answer (``new_tokens``) and the chat template's few tokens, capped at 6000 (on CPU a
        longer prompt costs more time than it is worth to a small model)."""
        if self.token_budget is not None:
            return self.token_budget
        if self._sized_budget is not None:
            return min(self._sized_budget, self._context_ceiling(new_tokens))
        return self._context_ceiling(new_tokens)

    def _context_ceiling(self, new_tokens: int, context_length: int | None = None) -> int:
        context = self.context_length if context_length is None else context_length
        return max(MIN_PROMPT_TOKENS, min(6000, context - new_tokens - 64))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this model's own tokenizer (prompt budgets use it)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def messages_for(self, request: PolicyRequest, new_tokens: int | None = None) -> list[dict[str, str]]:
        """``request.messages``, else :func:`shop_r1.simulator.agent.prompt.build_messages` within this model's
        context, counted with this model's tokenizer."""
        if request.messages is not None:
            return request.messages
        budget = self._budget(new_tokens if new_tokens is not None else self._max_new_tokens)
        return build_messages(request.observation, request.history, request.persona, token_budget=budget,
                              count_tokens=self.count_tokens, url=request.observation.url)

    # -- Policy ------------------------------------------------------------------------------
    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """Answer all requests, ``batch_size`` at a time, one ``generate`` call per batch."""
        if self._gen_lock is None:
            self._gen_lock = asyncio.Lock()
        out: list[PolicyResponse] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = list(requests[start:start + self.batch_size])
            async with self._gen_lock:  # one generate at a time: the model is not re-entrant
                try:
                    out.extend(await asyncio.to_thread(self._act_batch, chunk))
                except Exception as exc:  # a failed batch must not sink the run
                    log.exception("transformers policy: batch of %d failed", len(chunk))
                    err = failure("internal", f"{type(exc).__name__}: {exc}")
                    out.extend(PolicyResponse(action=None, error=err) for _ in chunk)
        return out

    def act_sync(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """Blocking variant of :meth:`act` for scripts and evaluation loops without an event loop."""
        return [r for s in range(0, len(requests), self.batch_size)
                for r in self._act_batch(list(requests[s:s + self.batch_size]))]

    @property
    def _max_new_tokens(self) -> int:
        return self.settings.max_tokens or 256

    def _act_batch(self, requests: list[PolicyRequest]) -> list[PolicyResponse]:
        import torch  # optional heavy dependency: only local-model users need it

        loaded = self.loaded
        if self.num_threads:
            # Set in the worker thread that runs generate; on a CPU shared with other work,
            # fewer intra-op threads avoid OpenMP spin-wait thrashing (measured: 17x on 2 busy cores).
            torch.set_num_threads(self.num_threads)
        tok, model = loaded.tokenizer, loaded.model
        t0 = time.perf_counter()
        results: list[PolicyResponse | None] = [None] * len(requests)
        prompts: list[list[int]] = []
        live: list[int] = []
        grammars: list[Any] = []
        limit = self.context_length
        for i, req in enumerate(requests):
            try:
                new_tokens = self._max_new_tokens
                if self.constrained:
                    bounds: dict[str, Any] = dict(self.grammar_bounds)
                    if self.query_choices:
                        bounds["choices"] = {"text": search_queries(shopper_goal(req.persona))}
                    grammar = grammar_for_observation(req.observation, **bounds)
                    new_tokens = grammar.max_tokens()
                messages = self.messages_for(req, new_tokens)
                ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"]
            except Exception as exc:
                log.exception("session %s step %d: could not build the prompt", req.session_id, req.step)
                results[i] = PolicyResponse(action=None, error=failure("prompt_error", f"{type(exc).__name__}: {exc}"))
                continue
            if len(ids) + 1 >= limit:
                results[i] = PolicyResponse(action=None, prompt_tokens=len(ids), error=failure(
                    "prompt_too_long", f"{len(ids)} prompt tokens leave no room in the model's "
                    f"{limit}-token context ({self.model_dir})", prompt_tokens=len(ids), context=limit))
                continue
            prompts.append(list(ids))
            live.append(i)
            if self.constrained:
                grammars.append(grammar)
        if not live:
            return [r for r in results if r is not None]

        batch = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(loaded.device)
        prompt_len = batch["input_ids"].shape[1]
        max_new = self._max_new_tokens
        processors = None
        rows = None
        if self.constrained:
            if self._table is None:  # load() builds it for a constrained policy; close() drops it
                raise RuntimeError(f"{self.model_dir}: the policy was closed; its token table is gone")
            # The grammar bounds every answer: give generation exactly that room, so a
            # constrained answer is never cut off (and never runs longer than needed).
            max_new = max(g.max_tokens() for g in grammars)
            rows = ConstrainedRows(self._table, grammars, prompt_len=prompt_len, max_new_tokens=max_new)
            processors = [make_logits_processor(rows)]
        max_new = max(1, min(max_new, limit - prompt_len))
        s = self.settings
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
            "do_sample": bool(s.temperature),
        }
        if s.temperature:
            gen_kwargs.update(temperature=s.temperature, top_p=s.top_p or 1.0, top_k=0)
        if self.step_seconds is not None:
            # A batch that runs past the runner's step timeout is answered by nobody, and the thread
            # it runs in cannot be cancelled: it would hold the model while the next batches wait
            # and time out in turn. generate stops itself at the deadline instead (the answers are
            # then cut short and fail to parse: one lost step, not a queue of them).
            gen_kwargs["max_time"] = max(1.0, STEP_TIMEOUT_SHARE * self.step_seconds - (time.perf_counter() - t0))
        seed = _batch_seed(s.seed, [requests[i] for i in live])
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            if self.prefill_apart:
                gen_kwargs.update(prefill_apart(model, prompts, prompt_len))
            out = model.generate(**batch, logits_processor=processors, **gen_kwargs)
        latency = time.perf_counter() - t0
        new_tokens = out[:, prompt_len:].tolist()
        eos = tok.eos_token_id
        for row, i in enumerate(live):
            seq = new_tokens[row]
            stop = next((k for k, t in enumerate(seq) if t == eos), None)
            completion = seq if stop is None else seq[: stop + 1]
            text = tok.decode(completion, skip_special_tokens=True)
            results[i] = response_from_text(
                requests[i], text, finish_reason="length" if stop is None else "stop",
                prompt_tokens=len(prompts[row]), completion_tokens=len(completion), latency_s=latency,
                extra={"batch_size": len(live), "constrained": self.constrained,
                       **({"max_time_s": round(gen_kwargs["max_time"], 2)} if "max_time" in gen_kwargs else {})})
        log.debug("batch of %d: %.2f s, prompt_len %d, max_new %d", len(live), latency, prompt_len, max_new)
        return [r for r in results if r is not None]

    async def close(self) -> None:
        self._loaded = None
        self._table = None

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "policy": self.name, "model": str(self.model_dir), "device": self._loaded.device if self._loaded else self.device_spec,
            "dtype": self.dtype_spec, "constrained": self.constrained, "batch_size": self.batch_size,
            "query_choices": self.constrained and self.query_choices,
            "max_new_tokens": self._max_new_tokens, "temperature": self.settings.temperature,
            "top_p": self.settings.top_p, "seed": self.settings.seed,
        }
        if self.step_seconds is not None:
            info["step_seconds"] = self.step_seconds
        if self.speed is not None:
            info.update(speed=self.speed.to_json(), prompt_budget=self._sized_budget)
        prov = self.model_dir / PROVENANCE_FILE
        if prov.is_file():
            try:
                info["model_source"] = {k: v for k, v in json.loads(prov.read_text()).items()
                                        if k in ("upstream", "gguf_file", "package", "package_version", "license")}
            except (OSError, json.JSONDecodeError):
                pass
        return info


__all__ = ["TransformersPolicy"]
