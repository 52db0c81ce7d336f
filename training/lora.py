"""LoRA adapters (peft) for both trainers: what ``--lora-r`` changes, in one place.

Why: a pretrained model is what the method has to be shown on, and full fine-tuning of even
SmolLM2-135M is hours per seed on 2 CPU cores (issue 23). Low-rank adapters train a few hundred
thousand weights on the frozen base, so the optimizer state and the backward pass shrink, and the
result ships as an adapter of a few MB.

Every tool downstream (evaluation, ``--policy transformers``, vLLM's ``reload_weights``, the
parameter-change record) reads a checkpoint as a plain model folder. So a LoRA checkpoint is saved
twice: the adapter alone under ``adapter/`` (the thing to ship: ``adapter_config.json`` +
``adapter_model.safetensors``), and the base with the adapter merged into it at the checkpoint's
top level, exactly where a full fine-tune puts its weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shop_r1.training.config import _Base

log = logging.getLogger(__name__)

#: Where a LoRA checkpoint keeps its adapter, inside the checkpoint folder.
ADAPTER_DIR = "adapter"


def lora_config(settings: _Base) -> Any | None:
    """peft's ``LoraConfig`` for these settings, or ``None`` for full fine-tuning (``lora_r`` 0)."""
    if settings.lora_r == 0:
        return None
    try:
        from peft import LoraConfig
    except ImportError as exc:  # the ml extra brings it
        raise RuntimeError("--lora-r needs peft: install the ml extra (`make setup`, or pip install "
                           "'shop-r1[ml]')") from exc
    targets = settings.lora_target_modules.strip()
    modules: str | list[str] = targets if targets == "all-linear" else [
        m.strip() for m in targets.split(",") if m.strip()]
    if not modules:
        raise ValueError("--lora-target-modules is empty: give 'all-linear' or module names like q_proj,v_proj")
    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha or 2 * settings.lora_r,
                      lora_dropout=settings.lora_dropout, target_modules=modules, bias="none",
                      task_type="CAUSAL_LM")


def is_adapted(model: Any) -> bool:
    """Whether ``model`` is a peft model (adapters on a frozen base)."""
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def base_of(model: Any) -> Any:
    """The model under a peft wrapper (itself when there is none): the one whose forward is called."""
    return model.get_base_model() if is_adapted(model) else model


def trainable_counts(model: Any) -> dict[str, int]:
    """Trainable and total parameters, for the training record."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": int(trainable), "total_params": int(total)}


def save_adapted(trainer: Any, out: Path) -> dict[str, Any]:
    """Save a LoRA run: the adapter under ``out/adapter``, the merged model at ``out``.

    The trainer's model is merged in place, so the trainer must not train again afterwards.
    Returns the record's ``lora`` block (rank, alpha, targets, parameter counts, adapter bytes).
    """
    model = trainer.accelerator.unwrap_model(trainer.model)
    counts = trainable_counts(model)
    config = model.peft_config["default"]
    adapter = out / ADAPTER_DIR
    trainer.save_model(str(adapter))  # peft models save the adapter alone
    merged = model.merge_and_unload()
    if trainer.accelerator.is_main_process:
        merged.save_pretrained(str(out), safe_serialization=True)
    size = sum(f.stat().st_size for f in adapter.glob("adapter_model.*"))
    targets = config.target_modules
    log.info("LoRA r=%d: %d of %d parameters trained; adapter %.1f MB in %s, merged model in %s", config.r,
             counts["trainable_params"], counts["total_params"], size / 1e6, adapter, out)
    return {"r": int(config.r), "alpha": float(config.lora_alpha), "dropout": float(config.lora_dropout),
            "target_modules": sorted(targets) if isinstance(targets, (set, list, tuple)) else targets,
            **counts, "adapter_dir": ADAPTER_DIR, "adapter_bytes": int(size)}


__all__ = ["ADAPTER_DIR", "base_of", "is_adapted", "lora_config", "save_adapted", "trainable_counts"]
