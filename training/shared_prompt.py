"""GRPO's per-token log-probabilities with each prompt run once for its whole group.

TRL scores a micro-batch of prompt + completion rows in one padded forward, so a group of G
completions runs its prompt G times. Shopper prompts are a page (~3k tokens) and answers ~100, so
that forward is almost all the same prompt again; on a CPU it is also the slow, masked kind (a
padded batch cannot use the fused causal kernel), and TRL's fused LM head, which scores only the
labelled positions on Triton devices, scores every position elsewhere (``trl.trainer.utils
.add_fused_lm_head``: ``compact`` is off without Triton).

Here each distinct prompt but its last token runs once, alone and unmasked, into a key/value cache
that keeps its autograd graph; its rows then continue from that cache (expanded to the group's
size) over ``[last prompt token] + completion``, through the trainer's own fused head, which now
sees only the completion positions. The loss of G continuations of one shared cache has the same
gradient as G separate prompt passes -- backpropagation through the expanded cache sums the G
contributions -- so log-probabilities, entropies and gradients are TRL's (tests/test_grpo.py
compares all three on a padded micro-batch), at 1/G of the prompt compute. Rotary positions count
from each prompt's first real token here and from the padded column in TRL's forward; rotary
attention depends on position differences only, so the two agree.

Used on a CPU only: on a GPU TRL's padded batch runs in one call with kernels that take masks
well and a head that scores only the labelled positions, while this runs one call per distinct
prompt (a paper-sized step has 64), a trade not measured there. Anything else that does not fit
this shape -- images, MoE auxiliary losses, gradient checkpointing
(it drops caches), a wrapped or adapter model, a padding pattern other than left-padded prompts
and right-padded completions -- returns ``None`` and TRL's own forward runs.
"""

from __future__ import annotations

import logging
from typing import Any

from shop_r1.simulator.agent.llm.prefill import cache_argument
from shop_r1.training.lora import is_adapted

log = logging.getLogger(__name__)


def _runs(mask: Any) -> bool:
    """Every row of ``mask`` is one block of ones followed only by zeros (right padding)."""
    m = mask.int()
    return not bool((m[:, 1:] - m[:, :-1] > 0).any())


def _applicable(model: Any) -> bool:
    from transformers import PreTrainedModel

    # transformers 5.2x renamed the flag (the old name warns).
    flag = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") \
        else "is_gradient_checkpointing"
    checkpointing = bool(getattr(model, flag, False))
    return (isinstance(model, PreTrainedModel) and not checkpointing
            and not is_adapted(model)
            and hasattr(model, "base_model") and model.base_model is not model)


def shared_prompt_logps(model: Any, input_ids: Any, attention_mask: Any, logits_to_keep: int,
                        compute_entropy: bool = False) -> tuple[Any, Any] | None:
    """``(log_probs, entropies or None)`` of the last ``logits_to_keep`` columns, shaped like TRL's
    (zeros where the completion mask is 0); ``None`` where this shape of forward does not apply.

    ``model`` must carry TRL's fused LM head (``fused_lm_head=True`` in its forward), which the
    GRPO trainer adds to the policy and the reference model.
    """
    import torch
    from transformers import DynamicCache

    if input_ids.device.type != "cpu" or not _applicable(model) or input_ids.dim() != 2 or logits_to_keep < 1:
        return None
    split = input_ids.shape[1] - logits_to_keep
    prompt_ids, prompt_mask = input_ids[:, :split], attention_mask[:, :split].bool()
    completion_ids, completion_mask = input_ids[:, split:], attention_mask[:, split:].bool()
    # Left-padded prompts (real tokens end at the last prompt column), right-padded completions.
    if split < 2 or not bool(prompt_mask[:, -1].all()) or not _runs(~prompt_mask) or not _runs(completion_mask):
        return None
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, (ids, real) in enumerate(zip(prompt_ids, prompt_mask, strict=True)):
        groups.setdefault(tuple(ids[real].tolist()), []).append(row)
    if any(len(prompt) < 2 for prompt in groups):
        return None
    backbone = model.base_model
    key = cache_argument(backbone)
    labels = completion_ids.masked_fill(~completion_mask, -100)
    parts, part_entropy, order = [], [], []
    for prompt, rows in groups.items():
        cache = DynamicCache(config=model.config)
        backbone(input_ids=torch.tensor([prompt[:-1]], device=input_ids.device), use_cache=True, **{key: cache})
        layers = getattr(cache, "layers", None)
        if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
            log.debug("%s: cache without per-layer keys/values; TRL's padded forward", type(model).__name__)
            return None
        shared = DynamicCache(config=model.config)
        for index, layer in enumerate(layers):
            shared.update(layer.keys.expand(len(rows), -1, -1, -1), layer.values.expand(len(rows), -1, -1, -1), index)
        index_rows = torch.tensor(rows, device=input_ids.device)
        last = torch.full((len(rows), 1), prompt[-1], dtype=input_ids.dtype, device=input_ids.device)
        tail = torch.cat([last, completion_ids[index_rows]], dim=1)
        tail_labels = torch.cat([torch.full_like(last, -100), labels[index_rows]], dim=1)
        out = model(input_ids=tail, labels=tail_labels, fused_lm_head=True, **{key: shared})
        parts.append(out.log_probs)
        if compute_entropy:
            if out.entropy is None:
                return None
            part_entropy.append(out.entropy)
        order.extend(rows)
    inverse = torch.argsort(torch.tensor(order, device=input_ids.device))
    logps = torch.cat(parts)[inverse]
    entropy = torch.cat(part_entropy)[inverse] if compute_entropy else None
    return logps, entropy


__all__ = ["shared_prompt_logps"]
