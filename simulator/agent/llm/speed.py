"""What a local model costs on this machine, and the prompt that fits a step's time.

A prompt budget written down once is right on one machine for one model: 6,000 tokens of page
take SmolLM2-135M a few seconds on a GPU and a minute or more on two busy CPU cores, where half
the steps of a real storefront then hit the step timeout and produce no action at all. So the
policy measures the model where it runs -- a prefill of a sample prompt (tokens per second) and a
few decoding steps of a full batch (seconds per token) -- and sizes the prompt so that a full
batch of decisions fits the time a step may take (:func:`prompt_budget_for`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from shop_r1.simulator.agent.llm.prefill import cache_argument

log = logging.getLogger(__name__)

#: The prompt length prefilled to measure speed: long enough that per-call overhead does not
#: dominate, short enough to cost well under a second on a CPU for a small model.
SAMPLE_PROMPT_TOKENS = 512
#: Decoding steps timed for a full batch.
SAMPLE_DECODE_STEPS = 8
#: Fewer prompt tokens than this leave a model no page to read: sizing never goes below it
#: (callers add what their prompt's instructions and history take, see ``floor``).
MIN_PROMPT_TOKENS = 256


@dataclass(frozen=True)
class ModelSpeed:
    """Measured on this machine for one model, device and thread count."""

    prefill_tokens_per_s: float
    decode_s_per_step: float  # one decoding step of a whole batch
    batch: int
    measured_s: float

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure_speed(model: Any, *, batch: int, vocab_size: int, device: Any) -> ModelSpeed:
    """Time one prefill of :data:`SAMPLE_PROMPT_TOKENS` tokens and :data:`SAMPLE_DECODE_STEPS`
    decoding steps of ``batch`` rows (random token ids: the cost does not depend on the words)."""
    import torch  # optional heavy dependency: only local-model users get here
    from transformers import DynamicCache

    t0 = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, max(11, vocab_size - 1), (1, SAMPLE_PROMPT_TOKENS), generator=generator).to(device)
    with torch.inference_mode():
        model(input_ids=ids[:, :32])  # warm-up: first calls allocate
        t1 = time.perf_counter()
        model(input_ids=ids, logits_to_keep=1)
        prefill_s = time.perf_counter() - t1
        rows = ids[:, :64].repeat(batch, 1)
        cache = {cache_argument(model): DynamicCache(config=model.config)}  # updated in place by each call
        out = model(input_ids=rows, use_cache=True, logits_to_keep=1, **cache)
        step = out.logits[:, -1:].argmax(-1)
        t2 = time.perf_counter()
        for _ in range(SAMPLE_DECODE_STEPS):
            out = model(input_ids=step, use_cache=True, logits_to_keep=1, **cache)
            step = out.logits[:, -1:].argmax(-1)
        decode_s = (time.perf_counter() - t2) / SAMPLE_DECODE_STEPS
    speed = ModelSpeed(prefill_tokens_per_s=SAMPLE_PROMPT_TOKENS / max(prefill_s, 1e-6), decode_s_per_step=decode_s,
                       batch=batch, measured_s=time.perf_counter() - t0)
    log.info("model speed here: prefill %.0f tokens/s, decoding %.3f s per step of %d rows (measured in %.1f s)",
             speed.prefill_tokens_per_s, speed.decode_s_per_step, batch, speed.measured_s)
    return speed


def prompt_budget_for(speed: ModelSpeed, *, seconds: float, batch: int, new_tokens: int, ceiling: int,
                      floor: int = MIN_PROMPT_TOKENS) -> int:
    """Prompt tokens per decision so that ``batch`` prompts (each prefilled alone) and
    ``new_tokens`` decoding steps of the batch fit in ``seconds``; within [``floor``, ``ceiling``]
    (the instructions plus a minimal page; the context's room, or a cap). Prefill grows a little
    faster than linearly with length, so the linear estimate is taken at 80 %. When even the floor
    does not fit, the floor is returned and a warning says what a step will cost here."""
    floor = min(floor, ceiling)
    decode_s = new_tokens * speed.decode_s_per_step * max(1.0, batch / max(1, speed.batch))
    fits = int(0.8 * max(0.0, seconds - decode_s) * speed.prefill_tokens_per_s / max(1, batch))
    if fits < floor:
        expected = decode_s + batch * floor / speed.prefill_tokens_per_s
        log.warning("this machine runs the model too slowly for %.0f s per batch of %d: even a %d-token prompt "
                    "takes ~%.0f s (prefill %.0f tokens/s, decoding %.2f s per step); expect step timeouts, or "
                    "give --step-timeout more time or the shoppers fewer at once", seconds, batch, floor, expected,
                    speed.prefill_tokens_per_s, speed.decode_s_per_step)
        return floor
    return min(ceiling, fits)


__all__ = ["MIN_PROMPT_TOKENS", "ModelSpeed", "measure_speed", "prompt_budget_for"]
