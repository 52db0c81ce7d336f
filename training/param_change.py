"""How far a training run moved the weights: ||theta_final - theta_initial|| read from the two folders.

A run whose loss curve looks fine can still leave the weights where they were (bf16 weights under
a tiny learning rate, GRPO groups whose rewards are all equal so every advantage is 0). The loss
does not show it; the distance between the checkpoint and the model it started from does. It is
computed from the saved safetensors files, tensor by tensor, so it works the same under DeepSpeed
or FSDP (``save_model`` gathers the full weights) and never holds a second copy of the model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from safetensors import safe_open

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


class ParamChange(BaseModel):
    """The change of the weights between two checkpoints of the same architecture."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    l2: float  # ||theta_final - theta_initial||_2 over all tensors both folders hold
    initial_l2: float  # ||theta_initial||_2 over the same tensors
    relative: float  # l2 / initial_l2
    frac_changed: float  # fraction of elements whose value differs at all (bf16 rounding shows here)
    max_abs: float  # the largest single element change
    tensors: int  # tensors compared
    elements: int
    unmatched: list[str]  # tensor names only one folder holds (e.g. a tied head saved untied)


def _tensor_files(folder: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it (one file, or a sharded index)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        raise FileNotFoundError(f"{folder}: no model.safetensors or model.safetensors.index.json")
    with safe_open(str(single), framework="pt") as f:
        return {name: single for name in f.keys()}


def param_change(initial: str | Path, final: str | Path) -> ParamChange:
    """Compare the weights in ``initial`` and ``final`` (model folders), in float64 sums of float32 values."""
    import torch  # heavy optional dependency

    a_files, b_files = _tensor_files(Path(initial)), _tensor_files(Path(final))
    shared = sorted(set(a_files) & set(b_files))
    unmatched = sorted(set(a_files) ^ set(b_files))
    diff_sq = init_sq = 0.0
    changed = elements = 0
    max_abs = 0.0
    with contextlib.ExitStack() as stack:
        opened: dict[Path, Any] = {}

        def tensor(path: Path, name: str) -> torch.Tensor:
            if path not in opened:
                opened[path] = stack.enter_context(safe_open(str(path), framework="pt"))
            return opened[path].get_tensor(name).to(torch.float32)

        for name in shared:
            before, after = tensor(a_files[name], name), tensor(b_files[name], name)
            if before.shape != after.shape:
                raise ValueError(f"{initial} vs {final}: tensor {name} has shape {tuple(before.shape)} vs "
                                 f"{tuple(after.shape)}; not the same architecture")
            delta = (after - before).double()
            diff_sq += float(delta.square().sum())
            init_sq += float(before.double().square().sum())
            changed += int((after != before).sum())
            elements += before.numel()
            if delta.numel():
                max_abs = max(max_abs, float(delta.abs().max()))
    if not shared:
        raise ValueError(f"{initial} vs {final}: no tensor name in common")
    l2, init_l2 = math.sqrt(diff_sq), math.sqrt(init_sq)
    if unmatched:
        log.warning("parameter change: %d tensor(s) only in one folder, not compared: %s", len(unmatched),
                    ", ".join(unmatched[:5]))
    return ParamChange(l2=l2, initial_l2=init_l2, relative=l2 / init_l2 if init_l2 else math.inf,
                       frac_changed=changed / elements if elements else 0.0, max_abs=max_abs,
                       tensors=len(shared), elements=elements, unmatched=unmatched)


__all__ = ["ParamChange", "param_change"]
