"""Trainer-side plumbing of the self-certainty rationale reward (Eq. 3).

The math -- s(r) = mean over rationale tokens of KL(p_j || uniform), in nats (``kl``) or divided
by |V| as Eq. 3 prints it (``literal``) -- and which tokens
are the rationale's live in :mod:`shop_r1.simulator.scoring.self_certainty` (replay and training
share them). This module gets the policy's token distributions to them. TRL reward functions receive texts
and token ids, never logits, so there are two ways (both implemented, chosen by ``mode``):

``generation`` (default with transformers generation)
    A logits processor records, at every decoding step, the self-certainty of the distribution
    the policy just sampled from. That is the trainer's own forward pass of the policy (the one
    that produced the completion), so the reward costs one softmax per step and no extra pass.
    In transformers 5 custom processors run *before* the sampling warpers (temperature, top-k,
    top-p), so the recorder sees the policy's own distribution -- the paper's p_ij -- not the
    tempered one; ``tests/test_grpo.py`` checks that the record equals an extra forward pass.

``forward``
    One extra no-grad forward pass of the current policy over prompt + completion inside the
    reward function (a closure over the trainer's model). Needed when generation happens
    elsewhere (vLLM: it returns sampled-token logprobs only), costs a forward of every prompt.

Measured on the tiny test model (see ``docs/training.md``) the generation recorder is close to
free and the extra pass is not; on real prompts (thousands of tokens of HTML) the pass grows
with the prompt length while the recorder does not, hence the default.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from shop_r1.simulator.scoring.self_certainty import (
    DEFAULT_SELF_CERTAINTY_FORM,
    SelfCertaintyForm,
    check_form,
    mean_over_mask,
    rationale_mask,
    rationale_parses,
    self_certainty,
    token_self_certainty,
)

log = logging.getLogger(__name__)

Mode = Literal["generation", "forward"]


# --------------------------------------------------------------------------------------------
# Mode "generation": record the sampling distributions
# --------------------------------------------------------------------------------------------


class GenerationCertaintyRecorder:
    """A ``transformers`` logits processor that records each step's per-token self-certainty.

    It returns the scores unchanged. It must run before temperature/top-k/top-p warpers (where
    transformers 5 puts custom processors), so that it measures the untempered distribution.
    """

    #: Steps buffered before one vectorised self-certainty call: per-step calls on small tensors
    #: are dominated by op dispatch (measured ~20x slower per step at |V| = 800).
    FLUSH_STEPS = 16
    FLUSH_BYTES = 64 << 20

    def __init__(self, form: SelfCertaintyForm = DEFAULT_SELF_CERTAINTY_FORM) -> None:
        self.form = check_form(form)
        self._done: list[Any] = []  # (batch, k) per-token values
        self._pending: list[Any] = []  # raw (batch, V) logits not yet measured
        self.seconds = 0.0

    def reset(self) -> None:
        self._done, self._pending = [], []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        t0 = time.perf_counter()
        self._pending.append(scores.detach().float())
        if len(self._pending) >= self.FLUSH_STEPS or \
                len(self._pending) * scores.numel() * 4 >= self.FLUSH_BYTES:
            self._flush()
        self.seconds += time.perf_counter() - t0
        return scores

    def _flush(self) -> None:
        import torch  # optional heavy dependency (the ml extra)

        if not self._pending:
            return
        with torch.no_grad():
            logits = torch.stack(self._pending, dim=1)  # (batch, k, V)
            self._done.append(token_self_certainty(logits, self.form).cpu())
        self._pending = []

    def table(self) -> Any | None:
        """``(batch, steps)`` per-token self-certainty of the last generation, or None."""
        import torch  # optional heavy dependency (the ml extra)

        t0 = time.perf_counter()
        self._flush()
        self.seconds += time.perf_counter() - t0
        return torch.cat(self._done, dim=1) if self._done else None


# --------------------------------------------------------------------------------------------
# The reward function
# --------------------------------------------------------------------------------------------


def _text_of(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"unexpected completion type {type(completion).__name__}")


class SelfCertaintyReward:
    """TRL reward function: the self-certainty s(r) of each completion's rationale (Eq. 3).

    Its weight in the total is alpha (``GRPOConfig.reward_weights``), so TRL logs the raw s
    under ``rewards/self_certainty/mean`` and adds alpha * s to the action reward. A completion
    that fails the format rule (``strict_format``, the action reward's) gets 0
    (:func:`~shop_r1.simulator.scoring.self_certainty.rationale_parses` says why); ``unparsed``
    counts them. Call
    :meth:`bind` with the trainer before training; ``recorder`` is set by the trainer when it
    generates with transformers (mode ``generation``).
    """

    __name__ = "self_certainty"

    def __init__(self, tokenizer: Any, mode: Mode = "generation", chunk_size: int = 8,
                 form: SelfCertaintyForm = DEFAULT_SELF_CERTAINTY_FORM, strict_format: bool = True) -> None:
        if mode not in ("generation", "forward"):
            raise ValueError(f"self-certainty mode must be 'generation' or 'forward', got {mode!r}")
        self.form = check_form(form)
        self.tokenizer = tokenizer
        self.mode: Mode = mode
        self.chunk_size = chunk_size
        self.trainer: Any = None
        self.recorder: GenerationCertaintyRecorder | None = None
        self.seconds = 0.0  # time spent computing the reward (forward passes or table look-ups)
        self.calls = 0
        self.fallbacks = 0
        self.strict_format = strict_format
        self.scored = 0  # completions seen
        self.unparsed = 0  # of which paid 0 because they fail the format rule

    def bind(self, trainer: Any) -> SelfCertaintyReward:
        self.trainer = trainer
        return self

    # -- TRL entry point -----------------------------------------------------------------
    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]],
                 **_: Any) -> list[float]:
        t0 = time.perf_counter()
        masks = [rationale_mask(self.tokenizer, ids) for ids in completion_ids]
        values: list[float] | None = None
        if self.mode == "generation":
            values = self._from_recorder(completion_ids, masks)
            if values is None:
                self.fallbacks += 1
        if values is None:
            values = self._from_forward(prompts, completion_ids, masks)
        parses = [rationale_parses(_text_of(c), strict=self.strict_format) for c in completions]
        values = [v if ok else 0.0 for v, ok in zip(values, parses, strict=True)]
        self.scored += len(parses)
        self.unparsed += parses.count(False)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return values

    def _from_recorder(self, completion_ids: Sequence[Sequence[int]], masks: list[list[bool]]) -> list[float] | None:
        if self.recorder is not None and self.recorder.form != self.form:
            raise RuntimeError(f"self-certainty recorder measures form {self.recorder.form!r}, the reward is "
                               f"{self.form!r}")
        table = self.recorder.table() if self.recorder is not None else None
        if table is None or table.shape[0] != len(completion_ids) or any(
                len(ids) > table.shape[1] for ids in completion_ids):
            log.warning("self-certainty: no matching generation record (%s rows for %d completions); "
                        "using a forward pass", None if table is None else tuple(table.shape), len(completion_ids))
            return None
        return [mean_over_mask(table[row].tolist(), mask) for row, mask in enumerate(masks)]

    def _prompt_ids(self, prompt: Any) -> list[int]:
        tok = self.tokenizer
        if isinstance(prompt, str):
            return list(tok(prompt, add_special_tokens=False)["input_ids"])
        kwargs = dict(getattr(getattr(self.trainer, "args", None), "chat_template_kwargs", None) or {})
        return list(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True,
                                            **kwargs)["input_ids"])

    def _from_forward(self, prompts: Sequence[Any], completion_ids: Sequence[Sequence[int]],
                      masks: list[list[bool]]) -> list[float]:
        import torch  # optional heavy dependency (the ml extra)

        if self.trainer is None:
            raise RuntimeError("SelfCertaintyReward.bind(trainer) must be called before a forward-mode reward")
        model = self.trainer.model
        device = self.trainer.accelerator.device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out: list[float] = []
        with torch.no_grad():
            for start in range(0, len(completion_ids), self.chunk_size):
                rows = range(start, min(start + self.chunk_size, len(completion_ids)))
                p_ids = [self._prompt_ids(prompts[i]) for i in rows]
                c_ids = [list(completion_ids[i]) for i in rows]
                pl, cl = max(map(len, p_ids)), max(1, max(map(len, c_ids)))
                ids = torch.full((len(p_ids), pl + cl), pad, dtype=torch.long)
                att = torch.zeros_like(ids)
                mask = torch.zeros((len(p_ids), cl), dtype=torch.bool)
                for r, (p, c, i) in enumerate(zip(p_ids, c_ids, rows)):
                    ids[r, pl - len(p):pl] = torch.tensor(p)  # prompt left-padded, completion right-padded
                    att[r, pl - len(p):pl] = 1
                    if c:
                        ids[r, pl:pl + len(c)] = torch.tensor(c)
                        att[r, pl:pl + len(c)] = 1
                        mask[r, :len(c)] = torch.tensor(masks[i], dtype=torch.bool)
                # Positions count real tokens only, as in generate(): left padding must not shift them.
                pos = (att.cumsum(-1) - 1).clamp(min=0)
                with self.trainer.accelerator.autocast():
                    logits = model(input_ids=ids.to(device), attention_mask=att.to(device),
                                   position_ids=pos.to(device), logits_to_keep=cl + 1).logits[:, :-1, :]
                out.extend(float(v) for v in self_certainty(logits, mask.to(logits.device), self.form).cpu())
        return out


__all__ = ["GenerationCertaintyRecorder", "SelfCertaintyReward"]
