"""What the SFT and GRPO trainers share: finding the data, the device arguments, the checkpoint.

Kept apart from :mod:`shop_r1.training.sft` and :mod:`shop_r1.training.grpo` so that both trainers resolve a
``--data`` argument, pick CPU/GPU precision and write their checkpoint folder the same way -- a
checkpoint of either loads into ``TransformersPolicy`` and the vLLM server alike.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shop_r1.simulator.agent.llm.models import resolve_model
from shop_r1.training.data import build_rl_dataset, build_sft_dataset, load_split
from shop_r1.training.lora import is_adapted, save_adapted
from shop_r1.training.param_change import param_change
from shop_r1.training.precision import Precision, choose_precision, distributed_backend
from shop_r1.training.splits import SPLITS, SplitName

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from shop_r1.training.config import _Base

log = logging.getLogger(__name__)

#: Written next to the weights: the settings, the metrics and where the data came from.
TRAIN_RECORD_FILE = "shop-r1-train.json"
TRAIN_RECORD_SCHEMA = "shop-r1.train/1"


class TrainingDataError(ValueError):
    """``--data`` names nothing usable; the message says what was found and what to pass."""


def _split_name(split: str) -> SplitName:
    """``--split`` as one of the dataset's split names (the settings hold it as free text)."""
    for name in SPLITS:
        if split == name:
            return name
    raise TrainingDataError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")


def load_training_data(spec: str | os.PathLike[str], kind: Literal["sft", "rl"], split: str = "train",
                       **build_kwargs: Any) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The training rows for ``kind`` and a description of their source.

    ``spec`` is a dataset folder written by ``shop-r1 data build`` (its ``kind/split.parquet`` is
    read), a ``.parquet`` file, or a trace (run folder with ``trace.jsonl``, or a ``.jsonl``) that
    is turned into rows on the fly with :mod:`shop_r1.training.data` (``build_kwargs`` go to the builder).
    """
    path = Path(spec).expanduser()
    if not path.exists():
        raise TrainingDataError(f"--data {spec}: no such file or folder")
    source: dict[str, Any]
    if path.is_file() and path.suffix == ".parquet":
        _require_rows(path, kind)
        ds, source = load_split(path, kind, _split_name(split)), {"parquet": str(path.resolve())}
    elif path.is_dir() and (path / kind).is_dir():
        _require_rows(path / kind / f"{split}.parquet", kind)
        ds, source = load_split(path, kind, _split_name(split)), {"dataset": str(path.resolve()), "split": split}
    elif (path.is_dir() and (path / "trace.jsonl").is_file()) or (path.is_file() and path.suffix == ".jsonl"):
        builder = build_sft_dataset if kind == "sft" else build_rl_dataset
        ds, source = builder(path, **build_kwargs), {"trace": str(path.resolve())}
    else:
        raise TrainingDataError(
            f"--data {spec}: not a dataset folder (no {kind}/ inside), a .parquet file or a trace "
            "(a run folder with trace.jsonl, or a .jsonl file); build a dataset with `shop-r1 data build`"
        )
    if len(ds) == 0:
        raise TrainingDataError(f"--data {spec}: the {kind} rows of {split!r} are empty; nothing to train on")
    source["rows"] = len(ds)
    return ds, source


def _require_rows(file: Path, kind: str) -> None:
    """An empty Parquet file makes ``datasets`` fail with a riddle; say what is wrong instead."""
    if not file.is_file():
        return  # load_split names the missing file and how to build it
    import pyarrow.parquet as pq  # datasets' storage layer; loaded with it, only when data is read

    if pq.ParquetFile(str(file)).metadata.num_rows == 0:
        raise TrainingDataError(f"{file}: the {kind} split has no rows; nothing to train on")


def use_cuda(device: str) -> bool:
    import torch

    if device == "cpu":
        return False
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return torch.cuda.is_available()


def _checkpointing_field() -> str:
    """transformers renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (5.2x);
    use whichever the installed TrainingArguments has, so GPU images with an older release work."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def training_precision(settings: _Base) -> Precision:
    """The load dtype and bf16 switch for this machine and launcher (see :mod:`shop_r1.training.precision`)."""
    import torch

    cuda = use_cuda(settings.device)
    return choose_precision(cuda=cuda, bf16_supported=bool(cuda and torch.cuda.is_bf16_supported()),
                            bf16=settings.bf16, backend=distributed_backend())


def load_model(model_dir: Path, precision: Precision) -> Any:
    """The policy to train, in the dtype ``precision`` says (fp32 unless DeepSpeed/FSDP hold the masters)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=precision.torch_dtype())
    log.info("model %s loaded in %s (bf16 compute: %s, fp32 masters: %s)", model_dir, precision.load_dtype,
             precision.bf16, precision.masters)
    return model


def common_training_args(settings: _Base) -> dict[str, Any]:
    """Keyword arguments shared by ``SFTConfig`` and ``GRPOConfig``.

    On CPU: ``use_cpu=True, bf16=False`` (TRL's configs default to bf16, which CPUs run slowly or
    not at all). On a CUDA GPU bf16 where supported, unless the settings say otherwise -- as
    autocast over the fp32 model :func:`load_model` loads, never as bf16 weights without masters.
    """
    cuda = use_cuda(settings.device)
    precision = training_precision(settings)
    return {
        "output_dir": str(settings.out),
        "use_cpu": not cuda,
        "bf16": precision.bf16,
        "fp16": False,
        _checkpointing_field(): settings.gradient_checkpointing,
        "per_device_train_batch_size": settings.per_device_batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps(),
        "max_steps": settings.max_steps,
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps" if settings.save_steps else "no",
        "save_steps": settings.save_steps or 500,
        "seed": settings.seed,
        "report_to": settings.report_to,
        "disable_tqdm": True,
    }


@dataclass
class TrainResult:
    """What a training run produced: the checkpoint folder and the logged history."""

    out_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def record_path(self) -> Path:
        return self.out_dir / TRAIN_RECORD_FILE


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def save_checkpoint(trainer: Any, settings: _Base, *, stage: str, source: Mapping[str, Any],
                    base_model: Path, started: float, extra: Mapping[str, Any] | None = None) -> TrainResult:
    """Save model + tokenizer as a standard HF folder and ``shop-r1-train.json`` beside them.

    A LoRA run saves its adapter under ``adapter/`` and the merged model here (:mod:`shop_r1.training.lora`).

    ``trainer.save_model`` writes the weights as they are (untied embeddings stay untied, which
    vLLM's in-place ``reload_weights`` needs). Only the main process writes.
    """
    from importlib.metadata import PackageNotFoundError, version

    out = Path(settings.out)
    model = trainer.accelerator.unwrap_model(trainer.model)
    param_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    lora = None
    if is_adapted(model):
        lora = save_adapted(trainer, out)  # the adapter under adapter/, the merged model here
    else:
        trainer.save_model(str(out))
    history = [{k: _finite(v) for k, v in row.items()} for row in trainer.state.log_history]
    train_rows = [h for h in history if "train_runtime" in h]
    metrics = dict(train_rows[-1]) if train_rows else {}
    losses = [h["loss"] for h in history if isinstance(h.get("loss"), (int, float))]
    if losses:
        metrics["final_loss"] = losses[-1]
    metrics["global_step"] = trainer.state.global_step
    seconds = time.perf_counter() - started
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(out))
        versions: dict[str, str | None] = {}
        for pkg in ("torch", "transformers", "trl", "accelerate", "datasets"):
            try:
                versions[pkg] = version(pkg)
            except PackageNotFoundError:
                versions[pkg] = None
        record = {
            "schema": TRAIN_RECORD_SCHEMA,
            "stage": stage,
            "base_model": str(base_model),
            "settings": settings.model_dump(mode="json"),
            "data": dict(source),
            "metrics": metrics,
            "history": history,
            "seconds": round(seconds, 2),
            "precision": {**training_precision(settings).model_dump(), "param_dtype": param_dtype},
            "param_change": _param_change_record(base_model, out),
            "lora": lora,
            "world_size": trainer.accelerator.num_processes,
            "device": str(trainer.accelerator.device),
            "python": platform.python_version(),
            "versions": versions,
            **(dict(extra) if extra else {}),
        }
        (out / TRAIN_RECORD_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        log.info("checkpoint written to %s (%d steps, %.1f s)", out, trainer.state.global_step, seconds)
    return TrainResult(out_dir=out, metrics=metrics, history=history, seconds=seconds)


def _param_change_record(base_model: Path, out: Path) -> dict[str, Any] | None:
    """The run's ||final - initial|| (None, with a warning, when a folder holds no comparable weights)."""
    try:
        change = param_change(base_model, out)
    except (FileNotFoundError, ValueError) as exc:
        log.warning("parameter change not recorded: %s", exc)
        return None
    log.info("parameter change: ||final - initial|| = %.4g (relative %.3g, %.1f %% of elements changed)",
             change.l2, change.relative, 100 * change.frac_changed)
    return change.model_dump()


def resolve_base_model(spec: str) -> Path:
    """``--model``: ``default``, ``tiny[:SEED]`` or a folder (see :func:`shop_r1.simulator.models.resolve_model`)."""
    return resolve_model(spec, show_status=True)


__all__ = ["TRAIN_RECORD_FILE", "TrainResult", "TrainingDataError", "common_training_args", "load_model",
           "load_training_data", "resolve_base_model", "save_checkpoint", "training_precision", "use_cuda"]


def wall_clock_stop(seconds: float) -> Any:
    """A ``TrainerCallback`` that ends training once it has run ``seconds`` (checked after each
    optimizer step, so the last step finishes). Training time, not set-up: a compute-matched
    control gets at least the other arm's time in updates."""
    from transformers import TrainerCallback  # optional heavy dependency

    class WallClockStop(TrainerCallback):
        def __init__(self) -> None:
            self.started: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.started is not None and time.perf_counter() - self.started >= seconds:
                log.info("wall-clock limit of %.0f s reached after %d step(s)", seconds, state.global_step)
                control.should_training_stop = True

    return WallClockStop()
