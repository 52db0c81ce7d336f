"""Trainer configurations with the Shop-R1 paper's defaults (arXiv 2507.17842 v2).

Every constant the paper reports is a field here with the paper's value as its default, so a
run that sets nothing reproduces the published set-up and every deviation is explicit (it is
written into ``shop-r1-train.json`` next to the checkpoint). Values come from three layers, later
ones winning: the defaults below, a JSON/YAML config file (``--config``), then command-line flags.

Every field has a ``description``: it is the help text of the field's ``shop-r1 train`` option, which
:mod:`shop_r1.training.cli_train` generates from the field (so a knob is declared here, once).

Validation is strict (``extra="forbid"``): a misspelt key in a config file is an error that names
the key and the file, not a silently ignored setting.

``global_batch_size`` counts training examples per optimizer step, as the paper does: chats for
SFT, *prompts* for GRPO, each prompt with its group of ``num_generations`` completions (the paper's
global batch of 64 is 64 prompts, 512 completions with G = 8). ``per_device_batch_size`` is in
TRL's unit (sequences per device per pass: chats, completions). The gradient-accumulation steps
are derived from the global batch, the per-device batch and the world size, so the same config
gives the same optimisation on 1 CPU or 8 GPUs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shop_r1.simulator.scoring import RewardConfig
from shop_r1.simulator.scoring.constants import PAPER_ALPHA, PAPER_BETA, PAPER_DARS, PAPER_THRESHOLD

RewardKind = Literal["hierarchical", "binary"]
SelfCertaintyMode = Literal["auto", "generation", "forward"]
SelfCertaintyForm = Literal["kl", "literal"]
ScaleRewards = Literal["group", "batch", "none"]

#: The paper's trainer values, one place (the fields' defaults; their descriptions say "paper: <value>", which
#: ``--help`` marks as "(paper)" while the default still equals it);
#: the reward's constants (alpha, beta, DARS, threshold) are scoring's, imported above.
PAPER_SFT_EPOCHS = 4
PAPER_SFT_LR = 2e-5
PAPER_GRPO_LR = 1e-7
PAPER_GRPO_STEPS = 500
PAPER_TEMPERATURE = 0.6
PAPER_GLOBAL_BATCH = 64
#: Not given by the paper; 8 is the usual GRPO group size and divides the global batch of 64.
DEFAULT_NUM_GENERATIONS = 8


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the key."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field("default", description="'default' (SmolLM2-135M-Instruct), 'tiny', or a model folder")
    data: str = Field(..., description="dataset folder (shop-r1 data build), a .parquet file, or a trace")
    out: str = Field(..., description="output folder of the checkpoint")
    max_steps: int = Field(-1, ge=-1, description="-1: run the epochs; otherwise stop after this many optimizer steps")
    max_seconds: float | None = Field(None, gt=0, description="stop once training has run this long (wall clock, "
                                      "from the first step): a control trained for the same time as another arm")
    per_device_batch_size: int = Field(1, ge=1, description="sequences per device per pass (TRL's unit); memory, "
                                       "not method")
    global_batch_size: int | None = Field(
        None, ge=1, description="training examples per optimizer step over all devices, sets the gradient "
        "accumulation; None: one per-device batch per step")
    world_size: int | None = Field(None, ge=1, description="processes; None: read WORLD_SIZE (accelerate sets it)")
    seed: int = Field(0, description="the trainer's seed (TRL seed: data order, sampling)")
    logging_steps: int = Field(1, ge=1, description="log the metrics every N optimizer steps")
    save_steps: int | None = Field(None, ge=1, description="intermediate checkpoints every N steps (None: only the final one)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where to train; auto: a CUDA GPU when "
                                                   "torch sees one, else the CPU")
    bf16: bool | None = Field(None, description="None: bf16 on a CUDA GPU that supports it, fp32 elsewhere")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward pass: less "
                                         "memory, more compute (transformers' gradient checkpointing)")
    split: str = Field("train", description="which split of a dataset folder to train on")
    lora_r: int = Field(0, ge=0, description="LoRA rank (peft): train low-rank adapters on the frozen base "
                        "instead of every weight; 0 = full fine-tuning (the paper's). The checkpoint holds the "
                        "merged model, so every tool reads it as before, and the adapter alone under adapter/")
    lora_alpha: int | None = Field(None, ge=1, description="LoRA scaling alpha; None: 2 x lora_r")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path (peft's default 0)")
    lora_target_modules: str = Field(
        "all-linear", description="modules given adapters: 'all-linear' (every linear layer but the output "
        "head) or a comma-separated list of module names (q_proj,v_proj)")
    report_to: str = Field("none", description="TRL/transformers report_to (none, tensorboard, wandb, ...)")

    def resolved_world_size(self) -> int:
        if self.world_size is not None:
            return self.world_size
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))

    def gradient_accumulation_steps(self) -> int:
        """Global batch / (per-device batch x world size); must divide exactly."""
        if self.global_batch_size is None:
            return 1
        per_step = self.per_device_batch_size * self.resolved_world_size()
        if self.global_batch_size % per_step:
            raise ConfigError(
                f"global_batch_size {self.global_batch_size} is not a multiple of per_device_batch_size "
                f"{self.per_device_batch_size} x world_size {self.resolved_world_size()} = {per_step}"
            )
        return self.global_batch_size // per_step


class SFTSettings(_Base):
    """Cold-start SFT: whole sessions as chats, loss on the assistant turns only."""

    epochs: float = Field(PAPER_SFT_EPOCHS, gt=0, description="passes over the training chats; paper: 4")
    lr: float = Field(PAPER_SFT_LR, gt=0, description="learning rate; paper: 2e-5")
    per_device_batch_size: int = Field(1, ge=1, description="chats per device per pass; memory, not method")
    global_batch_size: int | None = Field(
        None, ge=1, description="chats (whole sessions) per optimizer step over all devices; None: one per-device "
        "batch per step (1 chat on one device). Not given by the paper (deviation: none to follow); 1 gives the "
        "most updates on the few hundred sessions a CPU run trains on, set 16-64 on GPUs")
    max_length: int | None = Field(
        None, ge=16, description="tokens per chat, longer chats are truncated; None: the base model's context "
        "window up to the paper's 32k (SmolLM2-135M: 8192, the tiny models: 4096; the chats themselves are "
        "limited when the dataset is built, `shop-r1 data build --sft-max-tokens`, 4096 by default)")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="not given by the paper; 0 = none (TRL's default)")
    chat_template: str | None = Field(
        None, description="a .jinja file with {% generation %} markers, for a model whose template lacks them"
    )


class GRPOSettings(_Base):
    """GRPO with the Shop-R1 rewards (Eq. 4: v(a) + alpha * s(r) - beta * KL)."""

    lr: float = Field(PAPER_GRPO_LR, gt=0, description="learning rate; paper: 1e-7")
    max_steps: int = Field(PAPER_GRPO_STEPS, ge=1, description="optimizer steps; paper: 500")
    global_batch_size: int | None = Field(
        PAPER_GLOBAL_BATCH, ge=1, description="prompts per optimizer step over all devices (paper: 64). Each "
        "prompt brings its group of num_generations completions, so a step trains on global_batch_size x "
        "num_generations completions (TRL's per-device batch x gradient accumulation x world size). None: one "
        "per-device batch of completions per step")
    per_device_batch_size: int = Field(
        DEFAULT_NUM_GENERATIONS, ge=1, description="completions per device per pass; memory, not method")
    num_generations: int = Field(DEFAULT_NUM_GENERATIONS, ge=2,
                                 description="group size G (completions per prompt); not given by the paper")
    temperature: float = Field(PAPER_TEMPERATURE, gt=0, description="sampling temperature; paper: 0.6")
    max_completion_length: int | None = Field(
        None, ge=8, description="tokens per answer; not given by the paper (an answer is ~40-120 tokens). "
        "None: 1.25 x the longest reference answer of the data, in the model's tokens. A set budget is "
        "checked against those answers: one shorter than most of them is refused (truncated JSON earns 0, "
        "the group advantage vanishes)")
    allow_truncation: bool = Field(
        False, description="train even when max_completion_length cuts most reference answers (smoke runs)")
    max_prompt_tokens: int | None = Field(
        None, ge=16, description="drop longer prompts; None: keep all (their length is set when the dataset is "
        "built, `--token-budget`, 6000 tokens by default vs the paper's 32k context)")
    reward: RewardKind = Field("hierarchical", description="action reward: hierarchical = the paper's Table 1, "
                               "binary = the exact-match baseline (the paper's ablation)")
    alpha: float = Field(PAPER_ALPHA, ge=0, description="self-certainty (rationale reward) weight; 0 = no "
                         "rationale reward; paper: 0.005")
    beta: float = Field(PAPER_BETA, ge=0, description="KL weight; paper: 0.001")
    dars: float = Field(PAPER_DARS, ge=0, description="difficulty-aware reward scaling of the value terms; "
                        "paper: 1000")
    threshold: float = Field(PAPER_THRESHOLD, ge=0, le=1, description="ROUGE-L threshold of the value terms; "
                             "paper: 0.75")
    format_reward: bool = Field(True, description="the format term (+0.5); off: the no-format-reward ablation")
    self_certainty_mode: SelfCertaintyMode = Field(
        "auto", description="generation: reuse the sampling logits; forward: one extra policy pass; auto: "
        "generation when generating with transformers, forward with vLLM")
    self_certainty: SelfCertaintyForm = Field(
        "kl", description="rationale reward form: kl = mean per-token KL(p || U) in nats (ours; O(1-10)); "
        "literal = Eq. 3 as printed, KL / |V| (<= 1.1e-6 x alpha at |V| = 49,152: no effect)")
    lenient_format: bool = Field(False, description="accept fenced/embedded JSON answers (reward and evaluation "
                                 "share the rule: evaluate with `shop-r1 evaluate --lenient`); default strict, the "
                                 "paper's 'valid JSON' answer")
    loss_type: str = Field("grpo", description="TRL loss_type (the paper uses GRPO)")
    scale_rewards: ScaleRewards = Field(
        "group", description="what the centred summed reward is divided by (TRL scale_rewards): group = its "
        "group's std (default: GRPO's and TRL's; in a group whose action rewards tie alpha cancels and the "
        "advantage is the z-score of self-certainty), batch = the std over the whole batch (alpha stays a "
        "weight), none = nothing (Dr. GRPO; alpha is an absolute weight). docs/training.md, 'How alpha enters "
        "the advantage'")
    filter_zero_spread: bool = Field(
        False, description="drop the groups whose summed rewards do not vary from the loss (DAPO's filter, "
        "without its re-sampling): their advantage is 0 under every scale_rewards, so they only dilute the "
        "mean over sequences and add KL. Needs one generation per optimizer step (gradient accumulation 1)")
    use_vllm: bool = Field(False, description="generate with vLLM (TRL use_vllm; needs vllm installed)")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="TRL vllm_mode: colocate = vLLM inside the training processes, server = a "
        "running `trl vllm-serve` (GPU machines)")
    log_completions: bool = Field(False, description="print sampled completions with their rewards")

    @model_validator(mode="after")
    def _groups_fit(self) -> GRPOSettings:
        problem = self._batch_problem()
        if problem:
            raise ValueError(problem)
        return self

    def completions_per_step(self) -> int:
        """Completions one optimizer step trains on: prompts x G, or one per-device batch on each device."""
        if self.global_batch_size is None:
            return self.per_device_batch_size * self.resolved_world_size()
        return self.global_batch_size * self.num_generations

    def _batch_problem(self) -> str | None:
        per_pass = self.per_device_batch_size * self.resolved_world_size()
        total = self.completions_per_step()
        if self.filter_zero_spread and total != per_pass:
            return (f"filter_zero_spread drops groups from one generation batch, which TRL then splits into "
                    f"{total // per_pass if total % per_pass == 0 else 'uneven'} accumulation steps of equal size: "
                    f"set per_device_batch_size to the {total} completions of a step (global_batch_size "
                    f"{self.global_batch_size} x num_generations {self.num_generations}) or turn the filter off")
        if total % per_pass:
            return (f"global_batch_size {self.global_batch_size} prompts x num_generations {self.num_generations} = "
                    f"{total} completions is not a multiple of per_device_batch_size {self.per_device_batch_size} "
                    f"x world_size {self.resolved_world_size()} = {per_pass}")
        if total % self.num_generations:
            return (f"per_device_batch_size {self.per_device_batch_size} x world_size {self.resolved_world_size()} "
                    f"= {total} completions per step must be a multiple of num_generations {self.num_generations} "
                    "(each prompt's group of completions sits in one step)")
        return None

    def gradient_accumulation_steps(self) -> int:
        """Completions per step / (per-device batch x world size): prompts count, not completions."""
        problem = self._batch_problem()
        if problem:
            raise ConfigError(problem)
        return self.completions_per_step() // (self.per_device_batch_size * self.resolved_world_size())

    def reward_config(self) -> RewardConfig:
        """The :class:`shop_r1.simulator.scoring.RewardConfig` these settings describe."""
        return RewardConfig(dars=float(self.dars), similarity_threshold=float(self.threshold),
                            alpha=float(self.alpha), beta=float(self.beta), use_format=self.format_reward,
                            strict_format=not self.lenient_format)

    def ablation(self) -> str:
        """A short name of the variant, for logs and ``shop-r1-train.json``."""
        if self.reward == "binary":
            return "binary"
        parts = [p for p, on in (("no_format", not self.format_reward), ("no_rationale", self.alpha == 0)) if on]
        return "+".join(parts) or "full"


class RecipeSettings(BaseModel):
    """Sizes of one recipe run: small defaults for the tiny model on CPU, NOT the paper's training
    sizes (see docs/training.md for those)."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(..., description="folder for everything; the policy is OUT/policy")
    model: str = Field("tiny", description="tiny[:SEED] / small[:SEED] (built from the train split) | default | a model folder")
    shoppers: int = Field(24, ge=3, description="scripted shopper sessions that make the data")
    max_steps: int = Field(8, ge=2, description="steps per scripted session")
    shop_seed: int = Field(0, description="catalogue seed of the bundled shop the data is recorded on")
    layout: Literal["v1", "v2"] = Field("v1", description="layout of the bundled shop the data is recorded on")
    seed: int = Field(0, description="seed of the split, the built model and training")
    val: float = Field(0.1, ge=0, lt=1, description="validation share of the sessions")
    test: float = Field(0.2, ge=0, lt=1, description="test share of the sessions")
    sft_epochs: float = Field(4.0, gt=0, description="SFT epochs (paper: 4)")
    sft_lr: float = Field(2e-3, gt=0, description="SFT learning rate, for the tiny model from scratch (paper: 2e-5 for a pretrained 3B)")
    grpo_steps: int = Field(8, ge=1, description="GRPO optimizer steps")
    grpo_lr: float = Field(1e-4, gt=0, description="GRPO learning rate")
    num_generations: int = Field(4, ge=2, description="group size G: completions per prompt")
    grpo_prompts_per_step: int = Field(2, ge=1, description="prompts per GRPO step")
    max_completion_length: int | None = Field(
        None, ge=8, description="tokens per GRPO rollout; None: 1.25 x the longest train reference answer in the "
        "base model's tokens (training/answer_length.py)")
    reward: RewardKind = Field("hierarchical", description="action reward: Table 1's hierarchical one, or binary exact match")
    alpha: float = Field(0.005, ge=0, description="self-certainty weight; 0 = no rationale reward (paper: 0.005)")
    beta: float = Field(0.001, ge=0, description="KL weight (paper: 0.001)")
    rl_token_budget: int = Field(3584, ge=128, description="prompt tokens of an RL row (and of the live policy); "
                                 "3584 keeps ~94 % of click targets in the tiny model's prompts")
    sft_max_tokens: int = Field(3840, ge=128, description="tokens of an SFT row (+ 256 = the tiny model's 4096-token window)")
    sft_max_page_tokens: int = Field(2816, ge=64, description="page tokens of an SFT row")
    with_persona: bool = Field(True, description="the persona and goal in the prompt: without them a live "
                               "shopper cannot know what to search for")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where to train: auto takes CUDA when torch sees one")


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON or YAML mapping from ``path`` (by extension; ``.yml``/``.yaml`` need PyYAML)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
            raise ConfigError(f"{where}: invalid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config file must hold a mapping of settings, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_settings(cls: type[BaseModel], config_file: str | os.PathLike[str] | None = None,
                  **overrides: Any) -> Any:
    """Defaults < ``config_file`` < ``overrides`` (``None`` overrides are ignored: flag not given)."""
    values: dict[str, Any] = read_config_file(config_file) if config_file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        where = f" (config file {config_file})" if config_file else ""
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid {cls.__name__}{where}: {problems}") from exc


__all__ = [
    "ConfigError", "DEFAULT_NUM_GENERATIONS", "GRPOSettings", "PAPER_ALPHA", "PAPER_BETA", "PAPER_DARS",
    "PAPER_GLOBAL_BATCH", "PAPER_GRPO_LR", "PAPER_GRPO_STEPS", "PAPER_SFT_EPOCHS", "PAPER_SFT_LR",
    "PAPER_TEMPERATURE", "PAPER_THRESHOLD", "RecipeSettings", "RewardKind", "SFTSettings", "ScaleRewards", "SelfCertaintyMode", "load_settings",
    "read_config_file",
]
