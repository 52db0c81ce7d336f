"""Which dtype the trainers load the model in, and whether they train under bf16 autocast.

Weights stored in bf16 and updated by the optimizer in bf16 mostly do not move: an update
smaller than half a bf16 ulp of the weight (2^-8 relative) rounds back to the old value. At
the paper's RL learning rate of 1e-7, AdamW steps of ~lr leave almost every N(0, 0.02) weight
unchanged (``bench/bf16_masters.py`` measures it). transformers' ``Trainer`` keeps no fp32 master
copy on one GPU or under plain DDP, so the model must be *loaded* in fp32 there and bf16 used
only for the matmuls (``bf16=True`` in ``TrainingArguments`` with an fp32 model is autocast).
DeepSpeed (its bf16 optimizer / ZeRO keep fp32 master partitions) and FSDP (accelerate upcasts
the sharded parameters to fp32 under mixed precision) keep their own masters, so there the model
can be loaded in bf16 to halve the host memory while loading.

The decision is a pure function of four facts so that it can be tested without a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    import torch

Backend = Literal["deepspeed", "fsdp"]
LoadDtype = Literal["float32", "bfloat16"]


class Precision(BaseModel):
    """How a training run holds and computes with its weights (written into ``shop-r1-train.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    load_dtype: LoadDtype
    bf16: bool  # TrainingArguments.bf16: autocast (plain/DDP) or the backend's bf16 mixed precision
    masters: Literal["model", "deepspeed", "fsdp"]  # who holds the fp32 copy the optimizer updates

    def torch_dtype(self) -> torch.dtype:
        import torch  # heavy optional dependency, only where a model is loaded

        return getattr(torch, self.load_dtype)


def choose_precision(*, cuda: bool, bf16_supported: bool, bf16: bool | None, backend: Backend | None) -> Precision:
    """``bf16`` is the user's setting (None: bf16 on a CUDA device that supports it, fp32 elsewhere)."""
    use_bf16 = bf16 if bf16 is not None else (cuda and bf16_supported)
    if backend is not None and use_bf16:
        return Precision(load_dtype="bfloat16", bf16=True, masters=backend)
    return Precision(load_dtype="float32", bf16=use_bf16, masters=backend or "model")


def distributed_backend(env: Mapping[str, str] | None = None) -> Backend | None:
    """DeepSpeed or FSDP as ``accelerate launch`` announces them (``ACCELERATE_USE_DEEPSPEED``/``_FSDP``)."""
    env = os.environ if env is None else env
    for backend, key in (("deepspeed", "ACCELERATE_USE_DEEPSPEED"), ("fsdp", "ACCELERATE_USE_FSDP")):
        if env.get(key, "false").strip().lower() in ("1", "true", "yes", "y", "t", "on"):
            return backend  # type: ignore[return-value]
    return None


__all__ = ["Backend", "Precision", "choose_precision", "distributed_backend"]
