"""GRPO with the Shop-R1 rewards (the paper's second stage).

Objective (Eq. 4): maximise E[v(a) + alpha * s(r) - beta * KL(pi || pi_ref)] with group-normalised
advantages. How that maps onto TRL's ``GRPOTrainer``:

* v(a), the hierarchical action reward of Table 1, is given as four reward functions --
  ``format``, ``type``, ``attribute``, ``value`` -- each returning its component of
  :func:`shop_r1.simulator.scoring.action_reward` against the row's recorded ``label``. Their sum (weights
  1) is v(a) exactly, and TRL logs each one's mean (``rewards/format/mean`` ...), which is how a
  person sees *what* the policy is learning (e.g. format saturates first, value last). The
  ``binary`` variant is one function, :func:`shop_r1.simulator.scoring.binary_reward`.
* s(r), the self-certainty of the rationale, is one more reward function with weight alpha
  (:class:`shop_r1.training.self_certainty.SelfCertaintyReward`), in the form ``settings.self_certainty``
  (``kl`` by default, ``literal`` = Eq. 3 as printed; docs/training.md says why). alpha = 0 (the
  no-rationale-reward ablation) drops it, and with it its cost.
* Each term's share of the group advantage (:mod:`shop_r1.training.advantage_share`) is logged per
  step (``advantage_share/<name>``) and summed over the run into ``shop-r1-train.json``
  (``advantage_share``), so a run shows whether a term steers the policy at all.
* Self-certainty is paid only to completions that pass the format rule (0 otherwise), so a group
  of unparsed answers ties instead of being ranked by confidence in non-answers.
* The advantage's normalisation is ``settings.scale_rewards`` (TRL's ``scale_rewards``: group std by
  default, batch std, none); under group std alpha cancels in a group whose action rewards tie
  (:mod:`shop_r1.training.advantage_share` writes the three formulas out; docs/training.md).
* ``settings.filter_zero_spread`` drops groups whose summed rewards tie from the loss (DAPO's
  filter without its re-sampling; :meth:`ShopR1GRPOTrainer._generate_and_score_completions`).
* beta is TRL's ``beta`` (KL to the reference model inside the loss).
* Ablations: ``--no-format-reward`` (format term 0), ``--alpha 0``, ``--reward binary``.
* The format rule (``--lenient``) is the evaluation's too: one ``RewardConfig.strict_format``.

The trainer subclass exists for three reasons: to let the self-certainty reward read the
distributions the policy sampled from during generation instead of running the policy again
(see :mod:`shop_r1.training.self_certainty` for the two modes and their measured costs), to
log the advantage shares from TRL's reward table, and to run each prompt once per group, not G
times, in rollouts and in the loss (:mod:`shop_r1.simulator.agent.llm.prefill`,
:mod:`shop_r1.training.shared_prompt`; the same tokens and gradients, tests say so).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from shop_r1.simulator.scoring import RewardConfig, action_reward, binary_reward
from shop_r1.training.advantage_share import advantage_contributions, shares, zero_spread_groups
from shop_r1.training.answer_length import check_budget, reference_lengths, suggested_budget
from shop_r1.training.config import GRPOSettings
from shop_r1.training.lora import lora_config
from shop_r1.training.self_certainty import GenerationCertaintyRecorder, SelfCertaintyReward
from shop_r1.training.trainer_common import (
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

#: Columns the trainer keeps from an RL dataset (the rest -- page HTML, elements -- is evaluation's).
RL_COLUMNS: tuple[str, ...] = ("prompt", "label", "label_type", "names", "session_id", "step")


# --------------------------------------------------------------------------------------------
# Reward functions
# --------------------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """The answer text of a TRL completion (a string, or a list of chat messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"unexpected completion type {type(completion).__name__}: {completion!r:.80}")


@lru_cache(maxsize=4096)
def _breakdown(text: str, label: str, config: RewardConfig) -> Any:
    # The four component functions score the same (answer, label) pairs; compute each once.
    return action_reward(text, label, config)


class ActionComponentReward:
    """One component of the hierarchical action reward, as a TRL reward function."""

    def __init__(self, component: str, config: RewardConfig) -> None:
        if component not in ("format", "type", "attribute", "value"):
            raise ValueError(f"unknown reward component {component!r}")
        self.component = component
        self.config = config
        self.__name__ = component

    def __call__(self, completions: Sequence[Any], label: Sequence[str], **_: Any) -> list[float]:
        return [float(getattr(_breakdown(completion_text(c), lab, self.config), self.component))
                for c, lab in zip(completions, label, strict=True)]


class BinaryActionReward:
    """1 if the answer's action matches the recorded one exactly, else 0 (the paper's baseline)."""

    __name__ = "binary"

    def __init__(self, config: RewardConfig) -> None:
        self.config = config

    def __call__(self, completions: Sequence[Any], label: Sequence[str], **_: Any) -> list[float]:
        return [binary_reward(completion_text(c), lab, self.config) for c, lab in zip(completions, label, strict=True)]


def build_reward_funcs(settings: GRPOSettings, tokenizer: Any) -> tuple[list[Any], list[float], SelfCertaintyReward | None]:
    """The reward functions, their weights, and the self-certainty function (None when alpha = 0)."""
    config = settings.reward_config()
    funcs: list[Any]
    if settings.reward == "binary":
        funcs = [BinaryActionReward(config)]
    else:
        funcs = [ActionComponentReward(c, config) for c in ("format", "type", "attribute", "value")]
    weights = [1.0] * len(funcs)
    sc: SelfCertaintyReward | None = None
    if settings.alpha > 0:
        mode = settings.self_certainty_mode
        if mode == "auto":
            mode = "forward" if settings.use_vllm else "generation"
        if mode == "generation" and settings.use_vllm:
            raise ValueError("self_certainty_mode 'generation' needs transformers generation; vLLM returns only the "
                             "sampled tokens' logprobs. Use 'forward' (or 'auto') with --use-vllm")
        sc = SelfCertaintyReward(tokenizer, mode=mode, form=settings.self_certainty,
                                 strict_format=not settings.lenient_format)
        funcs.append(sc)
        weights.append(settings.alpha)
    return funcs, weights, sc


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


def _grpo_trainer_class() -> type:
    """``ShopR1GRPOTrainer``, built on first use so importing this module does not import TRL."""
    from transformers import LogitsProcessorList
    from trl import GRPOTrainer

    from shop_r1.simulator.agent.llm.prefill import prefilled
    from shop_r1.training.shared_prompt import shared_prompt_logps

    class ShopR1GRPOTrainer(GRPOTrainer):
        """``GRPOTrainer`` that lends its generation's logits to the self-certainty reward and, on a
        CPU, prefills each rollout prompt once and unpadded.

        With transformers generation, each ``generate`` call gets a
        :class:`GenerationCertaintyRecorder` as logits processor; the self-certainty reward
        (mode ``generation``) then reads the recorded per-token values instead of running the
        policy again. With vLLM nothing is patched (the reward runs its own forward pass).
        """

        self_certainty_reward: SelfCertaintyReward | None = None

        @contextlib.contextmanager
        def _rollout_hooks(self) -> Iterator[None]:
            """For one rollout: the certainty recorder as logits processor (see the class doc), and
            on a CPU each distinct prompt prefilled once, without the padding mask
            (:mod:`shop_r1.simulator.agent.llm.prefill`; the same tokens, G x fewer prefills)."""
            if self.use_vllm:
                yield
                return
            sc = self.self_certainty_reward
            recorder = None
            if sc is not None and sc.mode == "generation":
                recorder = sc.recorder or GenerationCertaintyRecorder(form=sc.form)
                sc.recorder = recorder
                recorder.reset()
            target = self.accelerator.unwrap_model(self.model)
            original = target.generate

            def generate(*args: Any, **kwargs: Any) -> Any:
                if recorder is not None:
                    processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
                    processors.append(recorder)
                    kwargs["logits_processor"] = processors
                if not args and "input_ids" in kwargs:
                    kwargs.update(prefilled(target, kwargs["input_ids"], kwargs.get("attention_mask")))
                return original(*args, **kwargs)

            target.generate = generate  # instance attribute shadows the method for this call only
            try:
                yield
            finally:
                del target.generate

        def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
            with self._rollout_hooks():
                return super()._generate_single_turn(*args, **kwargs)

        def _get_per_token_logps_and_entropies(self, model: Any, input_ids: Any, attention_mask: Any,
                                               logits_to_keep: int, batch_size: int | None = None,
                                               compute_entropy: bool = False, compute_aux_loss: bool = False,
                                               **extra: Any) -> Any:
            """TRL's, with each prompt of the micro-batch run once for all its completions
            (:mod:`shop_r1.training.shared_prompt`) where the batch is plain text."""
            if not compute_aux_loss and all(v is None for v in extra.values()):
                with self.accelerator.autocast():
                    shared = shared_prompt_logps(model, input_ids, attention_mask, logits_to_keep, compute_entropy)
                if shared is not None:
                    return shared[0], shared[1], None
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)

        def _calculate_rewards(self, *args: Any, **kwargs: Any) -> Any:
            """TRL's reward table, plus each term's share of this batch's group advantage: logged
            per step as ``advantage_share/<name>`` and summed over the run for the summary."""
            rewards_per_func = super()._calculate_rewards(*args, **kwargs)
            mode = "train" if self.model is not None and self.model.training else "eval"
            # TRL's own fallback for an unset num_generations_eval; both are optional in its config.
            groups = self.num_generations if mode == "train" else (self.num_generations_eval or self.num_generations)
            if groups is None:
                raise ValueError("GRPOConfig.num_generations is unset: rewards cannot be grouped")
            contrib = advantage_contributions(rewards_per_func, self.reward_weights, groups,
                                              scale=self.scale_rewards)
            if mode == "train":  # read by _generate_and_score_completions when it filters
                self._zero_spread = zero_spread_groups(rewards_per_func, self.reward_weights, groups)
            totals = self.__dict__.setdefault("advantage_totals", [0.0] * len(self.reward_func_names))
            for i, (name, share) in enumerate(zip(self.reward_func_names, shares(contrib), strict=True)):
                self._metrics[mode][f"advantage_share/{name}"].append(share)
                if mode == "train":
                    totals[i] += float(contrib[i])
            return rewards_per_func

        #: Set by build_grpo_trainer from GRPOSettings.filter_zero_spread.
        filter_zero_spread: bool = False

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            """TRL's batch; with ``filter_zero_spread`` without the groups whose summed rewards tie
            (DAPO's filter; their advantage is 0, so they only dilute the loss's mean and add KL).
            When every group ties the batch is kept with its loss mask zeroed: no gradient, as
            before. ``filter/groups_kept`` logs the kept fraction; the totals go to the record."""
            output = super()._generate_and_score_completions(inputs)
            zero = self.__dict__.pop("_zero_spread", None)
            if not self.filter_zero_spread or self.model is None or not self.model.training or zero is None:
                return output
            return self._drop_groups(output, zero)

        def _drop_groups(self, output: dict[str, Any], zero: Any) -> dict[str, Any]:
            import torch

            g = self.num_generations
            keep_all = (~zero.to(torch.bool)).repeat_interleave(g)
            local = output["completion_ids"].shape[0]
            start = self.accelerator.process_index * local
            keep = keep_all[start:start + local].to(output["completion_ids"].device)
            stats = self.__dict__.setdefault("filter_totals", {"groups": 0, "kept": 0})
            stats["groups"] += int(zero.numel())
            stats["kept"] += int((~zero).sum())
            self._metrics["train"]["filter/groups_kept"].append(float((~zero).float().mean()))
            if bool(keep.all()):
                return output
            if not bool(keep.any()):
                output["completion_mask"] = torch.zeros_like(output["completion_mask"])
                if "tool_mask" in output and output["tool_mask"] is not None:
                    output["tool_mask"] = torch.zeros_like(output["tool_mask"])
                output["num_items_in_batch"] = output["num_items_in_batch"] * 0
                return output
            rows = keep.nonzero().squeeze(-1)
            dropped: dict[str, Any] = {}
            for key, value in output.items():
                if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == local:
                    dropped[key] = value[rows]
                elif isinstance(value, list) and len(value) == local:
                    dropped[key] = [value[i] for i in rows.tolist()]
                else:
                    dropped[key] = value
            mask = dropped["completion_mask"]
            if dropped.get("tool_mask") is not None:
                mask = mask * dropped["tool_mask"]
            dropped["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
            return dropped

    return ShopR1GRPOTrainer


def grpo_config(settings: GRPOSettings, weights: list[float], max_completion_length: int) -> Any:
    from trl import GRPOConfig

    return GRPOConfig(
        **common_training_args(settings),
        learning_rate=settings.lr,
        num_generations=settings.num_generations,
        temperature=settings.temperature,
        top_p=1.0,
        top_k=0,
        max_completion_length=max_completion_length,
        beta=settings.beta,
        loss_type=settings.loss_type,
        reward_weights=weights,
        remove_unused_columns=False,
        scale_rewards=settings.scale_rewards,
        use_vllm=settings.use_vllm,
        vllm_mode=settings.vllm_mode,
        log_completions=settings.log_completions,
        shuffle_dataset=True,
    )


def build_grpo_trainer(settings: GRPOSettings) -> tuple[Any, dict[str, Any], Any]:
    """The configured trainer (not yet trained), the data source and the base model folder."""
    from transformers import AutoTokenizer

    model_dir = resolve_base_model(settings.model)
    dataset, source = load_training_data(settings.data, "rl", settings.split)
    missing = [c for c in ("prompt", "label") if c not in dataset.column_names]
    if missing:
        raise ValueError(f"--data {settings.data}: RL rows need columns prompt and label (missing {missing})")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Measured before the trainer's columns are selected: a reference answer is rationale + action,
    # and the rationale column is not one the trainer reads (labels alone measured ~half as long).
    lengths = reference_lengths(dataset, lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"]))
    dataset = dataset.select_columns([c for c in RL_COLUMNS if c in dataset.column_names])
    if settings.max_prompt_tokens is not None:
        def prompt_tokens(messages: Any) -> int:
            encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)
            if not isinstance(encoded, Mapping):  # return_dict=True gives a BatchEncoding
                raise TypeError(f"apply_chat_template(return_dict=True) gave a {type(encoded).__name__}")
            return len(encoded["input_ids"])

        too_long = [i for i, row in enumerate(dataset["prompt"]) if prompt_tokens(row) > settings.max_prompt_tokens]
        if too_long:
            log.warning("dropping %d of %d prompts longer than %d tokens", len(too_long), len(dataset),
                        settings.max_prompt_tokens)
            keep = sorted(set(range(len(dataset))) - set(too_long))
            dataset = dataset.select(keep)
            source["rows_trained"] = len(dataset)
    # Before the model loads: a budget that cuts the answers is a set-up error (answer_length).
    completion = settings.max_completion_length or suggested_budget(lengths)
    budget = check_budget(lengths, completion, what="--max-completion-length", refuse=not settings.allow_truncation)
    model = load_model(model_dir, training_precision(settings))
    funcs, weights, sc = build_reward_funcs(settings, tokenizer)
    trainer_cls = _grpo_trainer_class()
    trainer = trainer_cls(model=model, reward_funcs=funcs, args=grpo_config(settings, weights, completion),
                          train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config(settings))
    if sc is not None:
        sc.bind(trainer)
        trainer.self_certainty_reward = sc
    trainer.completion_budget = budget
    trainer.filter_zero_spread = settings.filter_zero_spread
    if settings.max_seconds is not None:
        trainer.add_callback(wall_clock_stop(settings.max_seconds))
    return trainer, source, model_dir


def train_grpo(settings: GRPOSettings) -> TrainResult:
    """Run GRPO and save the checkpoint (model, tokenizer, ``shop-r1-train.json``) to ``settings.out``."""
    started = time.perf_counter()
    trainer, source, model_dir = build_grpo_trainer(settings)
    log.info("GRPO (%s reward, variant %s) on %d steps from %s, %d step(s)", settings.reward, settings.ablation(),
             len(trainer.train_dataset), settings.data, settings.max_steps)
    trainer.train()
    sc = trainer.self_certainty_reward
    extra = {"variant": settings.ablation(),
             "reward_functions": list(trainer.reward_func_names),
             "reward_weights": [float(w) for w in trainer.reward_weights],
             "completion_budget": trainer.completion_budget,
             "scale_rewards": settings.scale_rewards}
    filt = getattr(trainer, "filter_totals", None)
    if settings.filter_zero_spread:
        extra["zero_spread_filter"] = {"groups": filt["groups"] if filt else 0, "kept": filt["kept"] if filt else 0}
    totals = getattr(trainer, "advantage_totals", None) or [0.0] * len(trainer.reward_func_names)
    extra["advantage_share"] = dict(zip(trainer.reward_func_names, shares(totals), strict=True))
    extra["advantage_abs_sum"] = dict(zip(trainer.reward_func_names, (round(t, 6) for t in totals), strict=True))
    if sc is not None:
        extra["self_certainty"] = {"form": sc.form, "mode": sc.mode, "calls": sc.calls, "fallbacks": sc.fallbacks,
                                   "completions": sc.scored, "unparsed_paid_0": sc.unparsed,
                                   "reward_seconds": round(sc.seconds, 4),
                                   "recorder_seconds": round(sc.recorder.seconds, 4) if sc.recorder else 0.0}
    return save_checkpoint(trainer, settings, stage="grpo", source=source, base_model=model_dir,
                           started=started, extra=extra)


__all__ = ["ActionComponentReward", "BinaryActionReward", "RL_COLUMNS", "build_grpo_trainer", "build_reward_funcs",
           "completion_text", "grpo_config", "train_grpo"]
