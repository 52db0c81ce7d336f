"""A policy run in-process with ``transformers``: a local model folder, CPU or GPU, batched.

The runner hands over the shoppers that are waiting for a decision; they are decoded together
(left padding, one ``generate`` call per batch), which is what makes a local model affordable
for many concurrent shoppers. The blocking torch work runs in a worker thread so the event loop
that drives the browsers keeps going meanwhile.

With ``constrained=True`` (the default for the embedded default model) decoding follows the
answer grammar of :mod:`shop_r1.simulator.policies.constrained`, so even a 135M model always answers
with valid JSON naming a real element of the page. Prompts come from
:func:`shop_r1.simulator.prompt.build_messages` (or ``request.messages``) rendered by the model's own
chat template; answers are parsed by :func:`shop_r1.simulator.prompt.parse_output`, the same parser every
backend uses, so a constrained answer is checked exactly like a free one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_r1.simulator.policies.base import Policy, PolicyRequest, PolicyResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings. ``temperature`` 0 means greedy decoding."""

    max_new_tokens: int = 256
    temperature: float = 0.6  # the paper's sampling temperature
    top_p: float = 0.95
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def _batch_seed(base: int | None, requests: Sequence[PolicyRequest]) -> int | None:
    """One seed per batch from the run seed and who is in it: reruns repeat, batches differ."""
    if base is None:
        return None
    key = f"{base}:" + "|".join(f"{r.session_id}:{r.step}" for r in requests)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


def _resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32  # CPU: bf16 matmuls are slow on most CPUs and fp16 is unsupported
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return value


class TransformersPolicy(Policy):
    """A shopper policy decoded locally with ``transformers``.

    ``model``: a spec for :func:`shop_r1.simulator.models.resolve_model` (``None``/``"default"`` for the
    embedded SmolLM2-135M-Instruct, ``"tiny"``, or a local folder). ``constrained``: ``None``
    means on for the default model and off otherwise (a fine-tuned model is evaluated on what it
    writes). The model loads on first use (or :meth:`load`), in the worker thread.
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
    ) -> None:
        from shop_r1.simulator.models import resolve_model

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        is_default = model is None or str(model).strip().lower() in ("", "default")
        self.model_dir: Path = resolve_model(model, show_status=show_status)
        self.constrained = is_default if constrained is None else constrained
        self.settings = GenerationSettings(max_new_tokens, temperature, top_p, seed)
        self.batch_size = batch_size
        self.device_spec = device
        self.dtype_spec = dtype
        self.token_budget = token_budget
        self.grammar_bounds = dict(grammar_bounds or {})
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        # Default: leave one core to Chromium and the shop. Torch's OpenMP threads spin-wait, so
        # on a CPU shared with browsers all-cores torch is many times slower, not faster.
        self.num_threads = num_threads if num_threads is not None else max(1, (os.cpu_count() or 1) - 1)
        self._model: Any = None
        self._tokenizer: Any = None
        self._table: Any = None
        self._device: str | None = None
        self._load_lock = threading.Lock()
        self._gen_lock: asyncio.Lock | None = None
        self.load_seconds: float | None = None

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        """Load model and tokenizer (blocking; idempotent, thread-safe)."""
        with self._load_lock:
            if self._model is not None:
                return
            import torch  # noqa: F401  (fail early with a clear error if torch is missing)
            from transformers import AutoModelForCausalLM, AutoTokenizer

            t0 = time.perf_counter()
            device = _resolve_device(self.device_spec)
            dtype = _resolve_dtype(self.dtype_spec, device)
            tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            if tokenizer.chat_template is None:
                raise ValueError(f"{self.model_dir}: the tokenizer has no chat template; a policy needs one")
            tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype).to(device)
            model.eval()
            if self.constrained:
                from shop_r1.simulator.policies.constrained import TokenTable

                self._table = TokenTable(tokenizer, vocab_size=model.get_output_embeddings().weight.shape[0])
            self._tokenizer, self._model, self._device = tokenizer, model, device
            self.load_seconds = time.perf_counter() - t0
            log.info("loaded %s on %s (%s) in %.2f s", self.model_dir, device, dtype, self.load_seconds)

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def context_length(self) -> int:
        self.load()
        cfg = self._model.config
        return int(getattr(cfg, "max_position_embeddings", None) or 4096)

    # -- prompts -----------------------------------------------------------------------------
    def _budget(self, new_tokens: int) -> int:
        """Prompt tokens allowed: the explicit ``token_budget``, else what the context leaves after
        the answer (``new_tokens``) and the chat template's few tokens, capped at 6000 (on CPU a
        longer prompt costs more time than it is worth to a small model)."""
        if self.token_budget is not None:
            return self.token_budget
        return max(256, min(6000, self.context_length - new_tokens - 64))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this model's own tokenizer (prompt budgets use it)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def messages_for(self, request: PolicyRequest, new_tokens: int | None = None) -> list[dict[str, str]]:
        """``request.messages``, else :func:`shop_r1.simulator.prompt.build_messages` within this model's
        context, counted with this model's tokenizer."""
        if request.messages is not None:
            return request.messages
        from shop_r1.simulator.prompt import build_messages  # lazy: the prompt owner sits beside us

        budget = self._budget(new_tokens if new_tokens is not None else self.settings.max_new_tokens)
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
                    out.extend(PolicyResponse(action=None, error=f"internal: {type(exc).__name__}: {exc}",
                                              extra={"error_code": "internal"}) for _ in chunk)
        return out

    def act_sync(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """Blocking variant of :meth:`act` for scripts and evaluation loops without an event loop."""
        return [r for s in range(0, len(requests), self.batch_size)
                for r in self._act_batch(list(requests[s:s + self.batch_size]))]

    def _act_batch(self, requests: list[PolicyRequest]) -> list[PolicyResponse]:
        import torch

        self.load()
        if self.num_threads:
            # Set in the worker thread that runs generate; on a CPU shared with other work,
            # fewer intra-op threads avoid OpenMP spin-wait thrashing (measured: 17x on 2 busy cores).
            torch.set_num_threads(self.num_threads)
        tok, model = self._tokenizer, self._model
        t0 = time.perf_counter()
        results: list[PolicyResponse | None] = [None] * len(requests)
        prompts: list[list[int]] = []
        live: list[int] = []
        grammars: list[Any] = []
        limit = self.context_length
        for i, req in enumerate(requests):
            try:
                new_tokens = self.settings.max_new_tokens
                if self.constrained:
                    from shop_r1.simulator.policies.constrained import grammar_for_observation

                    grammar = grammar_for_observation(req.observation, **self.grammar_bounds)
                    new_tokens = grammar.max_tokens()
                messages = self.messages_for(req, new_tokens)
                ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"]
            except Exception as exc:
                log.exception("session %s step %d: could not build the prompt", req.session_id, req.step)
                results[i] = PolicyResponse(action=None, error=f"prompt_error: {type(exc).__name__}: {exc}",
                                            extra={"error_code": "prompt_error"})
                continue
            if len(ids) + 1 >= limit:
                results[i] = PolicyResponse(
                    action=None, prompt_tokens=len(ids), extra={"error_code": "prompt_too_long"},
                    error=f"prompt_too_long: {len(ids)} prompt tokens leave no room in the model's "
                          f"{limit}-token context ({self.model_dir})")
                continue
            prompts.append(list(ids))
            live.append(i)
            if self.constrained:
                grammars.append(grammar)
        if not live:
            return [r for r in results if r is not None]

        batch = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self._device)
        prompt_len = batch["input_ids"].shape[1]
        max_new = self.settings.max_new_tokens
        processors = None
        rows = None
        if self.constrained:
            from shop_r1.simulator.policies.constrained import ConstrainedRows, make_logits_processor

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
            "do_sample": s.temperature > 0,
        }
        if s.temperature > 0:
            gen_kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=0)
        seed = _batch_seed(s.seed, [requests[i] for i in live])
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(**batch, logits_processor=processors, **gen_kwargs)
        latency = time.perf_counter() - t0
        new_tokens = out[:, prompt_len:].tolist()
        eos = tok.eos_token_id
        for row, i in enumerate(live):
            seq = new_tokens[row]
            stop = next((k for k, t in enumerate(seq) if t == eos), None)
            completion = seq if stop is None else seq[: stop + 1]
            text = tok.decode(completion, skip_special_tokens=True)
            results[i] = self._parse(requests[i], text, prompt_tokens=len(prompts[row]),
                                     completion_tokens=len(completion), latency=latency,
                                     finish="length" if stop is None else "stop", batch=len(live))
        log.debug("batch of %d: %.2f s, prompt_len %d, max_new %d", len(live), latency, prompt_len, max_new)
        return [r for r in results if r is not None]

    def _parse(self, request: PolicyRequest, text: str, *, prompt_tokens: int, completion_tokens: int,
               latency: float, finish: str, batch: int) -> PolicyResponse:
        from shop_r1.simulator.prompt import parse_output  # lazy, as above

        kinds = {el.name: el.kind for el in request.observation.elements}
        extra: dict[str, Any] = {"finish_reason": finish, "batch_size": batch, "constrained": self.constrained}
        try:
            parsed = parse_output(text, list(kinds), kinds)
        except Exception as exc:  # parse_output promises not to raise; guard anyway
            log.exception("parse_output raised on session %s step %d", request.session_id, request.step)
            return PolicyResponse(action=None, raw_text=text, error=f"internal: parse_output raised {exc!r}",
                                  prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                  latency_s=latency, extra={**extra, "error_code": "internal"})
        error = None
        if parsed.action is None:
            error = f"{parsed.error_code}: {parsed.error}"
            extra["error_code"] = parsed.error_code
            if finish == "length":
                error += " (output cut at max_new_tokens)"
        extra["strict_json"] = getattr(parsed, "strict", None)
        return PolicyResponse(action=parsed.action, rationale=parsed.rationale or "", raw_text=text, error=error,
                              prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                              latency_s=latency, extra=extra)

    async def close(self) -> None:
        self._model = None
        self._tokenizer = None
        self._table = None

    def describe(self) -> dict[str, Any]:
        from shop_r1.simulator.models import PROVENANCE_FILE

        info: dict[str, Any] = {
            "policy": self.name, "model": str(self.model_dir), "device": self._device or self.device_spec,
            "dtype": self.dtype_spec, "constrained": self.constrained, "batch_size": self.batch_size,
            "max_new_tokens": self.settings.max_new_tokens, "temperature": self.settings.temperature,
            "top_p": self.settings.top_p, "seed": self.settings.seed,
        }
        prov = self.model_dir / PROVENANCE_FILE
        if prov.is_file():
            try:
                info["model_source"] = {k: v for k, v in json.loads(prov.read_text()).items()
                                        if k in ("upstream", "gguf_file", "package", "package_version", "license")}
            except (OSError, json.JSONDecodeError):
                pass
        return info


__all__ = ["GenerationSettings", "TransformersPolicy"]
