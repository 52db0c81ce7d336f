"""Cold-start SFT (the paper's first stage): whole sessions as chats, loss on assistant turns only.

Each row is a session rendered by :mod:`shop_r1.simulator.agent.prompt` (system, then page / answer turns), so
the model learns exactly the prompt it will read when it shops. The loss covers only the
assistant answers (TRL's ``assistant_only_loss``): learning to predict the pages would spend the
model's capacity on HTML it never has to write. That needs ``{% generation %}`` markers in the
chat template; the project's models (SmolLM2 converted by :mod:`shop_r1.simulator.models`, the tiny test
models) have them, and for any other model a template file can be given (``chat_template``) or
TRL patches a template it knows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sized
from pathlib import Path
from typing import Any

from shop_r1.training.config import SFTSettings
from shop_r1.training.lora import lora_config
from shop_r1.training.trainer_common import (
    TrainingDataError,
    TrainResult,
    common_training_args,
    load_model,
    load_training_data,
    resolve_base_model,
    save_checkpoint,
    training_precision,
    wall_clock_stop,
)

log = logging.getLogger(__name__)

#: The paper's context ("up to 32k tokens"); a chat is never longer than this nor than the model's window.
PAPER_CONTEXT_TOKENS = 32_768


class ChatTemplateError(ValueError):
    """The tokenizer's chat template cannot mark assistant tokens; says how to fix it."""


def _has_markers(template: Any) -> bool:
    from trl.chat_template_utils import has_generation_markers

    return template is not None and has_generation_markers(template)


def prepare_tokenizer(tokenizer: Any, settings: SFTSettings, model_dir: Path) -> Any:
    """Give the tokenizer a chat template with generation markers (and a pad token).

    An explicit ``settings.chat_template`` file wins; a template that already has markers is
    kept; otherwise TRL's own training templates are tried, and failing that the error says which
    file to pass.
    """
    if settings.chat_template:
        path = Path(settings.chat_template)
        if not path.is_file():
            raise ChatTemplateError(f"--chat-template {path}: no such file")
        template = path.read_text(encoding="utf-8")
        if not _has_markers(template):
            raise ChatTemplateError(f"{path}: the template has no {{% generation %}} ... {{% endgeneration %}} markers "
                                    "around the assistant content, which the assistant-only loss needs")
        tokenizer.chat_template = template
    elif tokenizer.chat_template is None:
        raise ChatTemplateError(f"{model_dir}: the tokenizer has no chat template; pass --chat-template FILE.jinja")
    elif not _has_markers(tokenizer.chat_template):
        from trl.chat_template_utils import get_training_chat_template

        try:
            patched = get_training_chat_template(tokenizer)
        except Exception as exc:  # TRL raises for templates it does not know
            raise ChatTemplateError(
                f"{model_dir}: the chat template has no {{% generation %}} markers and TRL has no training "
                f"variant for it ({exc}); pass --chat-template FILE.jinja with the markers around the "
                "assistant content (see simulator/models.py SMOLLM2_CHAT_TEMPLATE for an example)"
            ) from exc
        if patched is not None:
            log.info("%s: using TRL's training variant of the chat template (generation markers)", model_dir)
            tokenizer.chat_template = patched
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_window(model_config: Any) -> int:
    """The default ``max_length``: the model's window, capped at the paper's 32k (what the base model can read)."""
    window = getattr(model_config, "max_position_embeddings", None)
    return min(PAPER_CONTEXT_TOKENS, int(window)) if window else PAPER_CONTEXT_TOKENS


def build_sft_trainer(settings: SFTSettings) -> tuple[Any, dict[str, Any], Path]:
    """The configured ``SFTTrainer`` (not yet trained), the data source and the base model folder.

    Split from :func:`train_sft` so tests and callers can inspect the collator's label mask.
    """
    from transformers import AutoTokenizer
    from trl import SFTConfig

    from shop_r1.training.sft_loss import AnswerOnlySFTTrainer

    model_dir = resolve_base_model(settings.model)
    dataset, source = load_training_data(settings.data, "sft", settings.split)
    dataset = dataset.select_columns(["messages"])
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(model_dir), settings, model_dir)
    model = load_model(model_dir, training_precision(settings))
    max_length = settings.max_length or context_window(model.config)
    args = SFTConfig(
        **common_training_args(settings),
        learning_rate=settings.lr,
        num_train_epochs=settings.epochs,
        warmup_steps=settings.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the steps
        max_length=max_length,
        assistant_only_loss=True,
        packing=False,
        dataset_num_proc=None,
    )
    trainer = AnswerOnlySFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                   peft_config=lora_config(settings))
    if settings.max_seconds is not None:
        trainer.add_callback(wall_clock_stop(settings.max_seconds))
    train_rows = trainer.train_dataset
    if not isinstance(train_rows, Sized):  # a datasets.Dataset went in; TRL hands back the tokenized one
        raise TypeError(f"SFT needs a sized training set, got {type(train_rows).__name__}")
    kept = len(train_rows)
    if kept == 0:
        raise TrainingDataError(
            f"--data {settings.data}: all {source['rows']} chats lost every assistant token to truncation at "
            f"max_length {max_length} (the answers come last); raise --max-length or build the dataset "
            "with a smaller SFT budget (`shop-r1 data build --sft-max-tokens ...`)"
        )
    if kept < source["rows"]:
        log.warning("%d of %d chats had no assistant token left within max_length %s and were dropped",
                    source["rows"] - kept, source["rows"], max_length)
    source["rows_trained"] = kept
    source["max_length"] = max_length
    return trainer, source, model_dir


def train_sft(settings: SFTSettings) -> TrainResult:
    """Run SFT and save the checkpoint (model, tokenizer, ``shop-r1-train.json``) to ``settings.out``."""
    started = time.perf_counter()
    trainer, source, model_dir = build_sft_trainer(settings)
    log.info("SFT on %d chats from %s: %d step(s) per epoch x %s epoch(s)", source["rows"], settings.data,
             len(trainer.get_train_dataloader()) // max(1, trainer.args.gradient_accumulation_steps),
             settings.epochs)
    trainer.train()
    return save_checkpoint(trainer, settings, stage="sft", source=source, base_model=model_dir, started=started)


__all__ = ["ChatTemplateError", "PAPER_CONTEXT_TOKENS", "build_sft_trainer", "context_window", "prepare_tokenizer",
           "train_sft"]
