"""Loading a local causal LM for generation: the one loader policies and rationale teachers share.

The choices that matter are made once here: the device (``auto``: CUDA, then MPS, then CPU), the
dtype (``auto``: bf16 where the GPU supports it, float32 on CPU, where bf16 matmuls are slow and
fp16 is unsupported), left padding (decoder-only: new tokens must follow every prompt in a batch)
and a pad token when the tokenizer has none.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode on ``device`` with its tokenizer, ready for ``generate``."""

    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    seconds: float  # load time

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", None) or 4096)

    @property
    def vocab_size(self) -> int:
        """Rows of the output layer (may exceed the tokenizer's vocabulary: padding rows)."""
        return int(self.model.get_output_embeddings().weight.shape[0])


def resolve_device(device: str | None = "auto") -> str:
    import torch  # optional heavy dependency: only local-model users need it

    if device not in (None, "auto"):
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch  # optional heavy dependency, as above

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return value


def load_for_generation(model_dir: str | os.PathLike[str], *, device: str | None = "auto", dtype: str = "auto",
                        require_chat_template: bool = True) -> LoadedModel:
    """Load model and tokenizer from a local folder (blocking: call it from a worker thread)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # optional heavy dependency, as above

    folder = Path(model_dir)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if require_chat_template and tokenizer.chat_template is None:
        raise ValueError(f"{folder}: the tokenizer has no chat template; a chat model needs one")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # .to is declared through functools.wraps(nn.Module.to) (unbound signature: mypy reads `dev` as self).
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype).to(dev)  # type: ignore[arg-type]
    model.eval()
    seconds = time.perf_counter() - t0
    log.info("loaded %s on %s (%s) in %.2f s", folder, dev, torch_dtype, seconds)
    return LoadedModel(model=model, tokenizer=tokenizer, device=dev, dtype=torch_dtype, seconds=seconds)


__all__ = ["LoadedModel", "load_for_generation", "resolve_device", "resolve_dtype"]
