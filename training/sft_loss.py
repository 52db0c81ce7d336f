"""The SFT loss scored only where it is defined: the assistant tokens' next-token positions.

TRL's ``SFTTrainer`` projects the hidden states through the LM head in tiles; on a device without
Triton (a CPU, where this project's reproduction runs) it scores *every* position and zeroes the
prompt's afterwards. A shopper's row is a ~3k-token page and a ~50-token answer, so almost all of
that projection is thrown away: measured on the tiny4k model (2 x 128, 4k vocabulary) at ~2.9k
tokens, a step costs 0.40 s that way and 0.12 s with the head on the answer positions alone.

The positions go to the model as a boolean ``logits_to_keep`` mask (the transformers API for
"project only these"), so the forward still runs through whatever wraps the model (DDP, FSDP)
and the loss, ``num_items_in_batch`` normalisation and TRL's logged metrics stay the ones TRL
computes. Models whose forward has no ``logits_to_keep`` fall back to TRL's own loss.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from trl import SFTTrainer

from shop_r1.training.lora import base_of

IGNORE_INDEX = -100


def accepts_logits_to_keep(model: Any) -> bool:
    """Whether the causal LM can project a chosen set of positions (Llama/Qwen2-style models can)."""
    # A peft wrapper's forward takes **kwargs and hands them to the model under it.
    model = base_of(model)
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def answer_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions whose next token is a label, and those labels (in the same row-major order)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep, labels[:, 1:][keep[:, :-1]]


class AnswerOnlySFTTrainer(SFTTrainer):
    """``SFTTrainer`` whose loss projects only the answer positions through the LM head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answer_only = accepts_logits_to_keep(self.model) and not self.aux_loss_enabled

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self._answer_only or return_outputs or self.label_smoother is not None \
                or self.compute_loss_func is not None or self.args.loss_type != "nll" or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        labels = inputs["labels"]
        keep, targets = answer_positions(labels)
        forward = {k: v for k, v in inputs.items() if k != "labels"}
        logits = model(**forward, use_cache=False, logits_to_keep=keep).logits.float()  # (n_answer, vocab)
        log_probs = torch.log_softmax(logits, dim=-1)
        token_log_probs = log_probs.gather(-1, targets[:, None]).squeeze(-1)
        num_tokens = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = -token_log_probs.sum() / torch.as_tensor(num_tokens).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._log_answer_metrics(mode, inputs, log_probs.detach(), logits.detach(), targets)
        return loss

    def _log_answer_metrics(self, mode: str, inputs: dict[str, Any], log_probs: torch.Tensor,
                            logits: torch.Tensor, targets: torch.Tensor) -> None:
        """The metrics TRL logs for SFT (entropy, token accuracy, tokens seen), from the answer positions."""
        gather = self.accelerator.gather_for_metrics
        num_valid = gather(torch.tensor(targets.numel(), device=targets.device)).sum()
        entropy_sum = gather(-(log_probs.exp() * log_probs).sum()).sum()
        num_correct = gather((logits.argmax(-1) == targets).sum()).sum()
        valid = num_valid.item() > 0
        self._metrics[mode]["entropy"].append((entropy_sum / num_valid).item() if valid else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((num_correct / num_valid).item() if valid else 0.0)
        if mode == "train" and "attention_mask" in inputs:
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


__all__ = ["AnswerOnlySFTTrainer", "accepts_logits_to_keep", "answer_positions"]
