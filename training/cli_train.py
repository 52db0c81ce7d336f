"""``shop-r1 train sft|grpo``: the two training stages from the command line.

Defaults are the paper's (see :mod:`shop_r1.training.config`) and every one is overridable by a flag or
a ``--config`` JSON/YAML file (flags win). Torch/TRL are imported only once a command runs, so
``--help`` stays instant. Multi-GPU: ``accelerate launch --config_file
training/configs/accelerate/<cfg>.yaml -m shop_r1.training.cli_train grpo ...`` (docs/training.md).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from shop_r1.envs.text import log_to_terminal
from shop_r1.training import config as C

log = logging.getLogger(__name__)


def _common(f: Any) -> Any:
    options = [
        click.option("--data", required=False, help="Dataset folder (shop-r1 data build), a .parquet file, or a trace."),
        click.option("--model", default=None, help="'default' (SmolLM2-135M-Instruct), 'tiny', or a model folder. [default: default]"),
        click.option("--out", required=False, type=click.Path(file_okay=False), help="Checkpoint folder to write."),
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                     help="JSON/YAML file of settings (keys as the long flags, '-' or '_'); flags override it."),
        click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps. [default: sft: all epochs; grpo: 500 (paper)]"),
        click.option("--batch-size", "per_device_batch_size", type=int, default=None, help="Sequences per device per pass (sft: chats, grpo: completions). [default: sft 1, grpo 8]"),
        click.option("--global-batch-size", type=int, default=None,
                     help="Examples per optimizer step over all devices (sft: chats; grpo: prompts, each with "
                          "its group of --num-generations completions); sets gradient accumulation. "
                          "[default: sft: none (one batch per step); grpo: 64 prompts (paper)]"),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="[default: auto]"),
        click.option("--seed", type=int, default=None, help="[default: 0]"),
        click.option("--split", default=None, help="Split of a dataset folder to train on. [default: train]"),
        click.option("--report-to", default=None, help="none, tensorboard, wandb ... [default: none]"),
        click.option("--save-steps", type=int, default=None, help="Also save every N steps."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


def _summary(stage: str, result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"shop-r1 train {stage}: {result.out_dir}", show_header=False)
    for key in ("global_step", "final_loss", "train_runtime", "train_loss"):
        if key in result.metrics:
            value = result.metrics[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    last = next((h for h in reversed(result.history) if any(k.startswith("rewards/") for k in h)), None)
    for key, value in (last or {}).items():
        if key.startswith("rewards/") and key.endswith("/mean") or key in ("reward", "kl"):
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("record", str(result.record_path))
    Console(stderr=True).print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def train() -> None:
    """Train shopper policies: SFT on sessions, then GRPO with the Shop-R1 rewards."""


@train.command()
@_common
@click.option("--epochs", type=float, default=None, help=f"[default: {C.PAPER_SFT_EPOCHS} (paper)]")
@click.option("--lr", type=float, default=None, help=f"Learning rate. [default: {C.PAPER_SFT_LR} (paper)]")
@click.option("--max-length", type=int, default=None,
              help="Tokens per chat (truncated beyond). [default: the model's window, at most the paper's 32k]")
@click.option("--chat-template", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A .jinja chat template with {% generation %} markers, for models whose template lacks them.")
def sft(config_file: str | None, **flags: Any) -> None:
    """Cold-start SFT on whole sessions (assistant-only loss). Paper defaults: 4 epochs, lr 2e-5."""
    from shop_r1.training.sft import train_sft

    try:
        settings = C.load_settings(C.SFTSettings, config_file, **flags)
        result = train_sft(settings)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    _summary("sft", result)


@train.command()
@_common
@click.option("--reward", type=click.Choice(["hierarchical", "binary"]), default=None,
              help="Action reward: Table 1's hierarchical reward or the exact-match baseline. [default: hierarchical]")
@click.option("--alpha", type=float, default=None,
              help=f"Self-certainty (rationale reward) weight; 0 = no rationale reward. [default: {C.PAPER_ALPHA} (paper)]")
@click.option("--beta", type=float, default=None, help=f"KL weight. [default: {C.PAPER_BETA} (paper)]")
@click.option("--num-generations", type=int, default=None,
              help=f"Group size G (completions per prompt). [default: {C.DEFAULT_NUM_GENERATIONS}]")
@click.option("--temperature", type=float, default=None, help=f"Sampling temperature. [default: {C.PAPER_TEMPERATURE} (paper)]")
@click.option("--lr", type=float, default=None, help=f"Learning rate. [default: {C.PAPER_GRPO_LR} (paper)]")
@click.option("--dars", type=float, default=None, help=f"Difficulty-aware reward scaling. [default: {C.PAPER_DARS:g} (paper)]")
@click.option("--threshold", type=float, default=None, help=f"ROUGE-L threshold of the value terms. [default: {C.PAPER_THRESHOLD} (paper)]")
@click.option("--no-format-reward", "format_reward", flag_value=False, default=None,
              help="Ablation: the format term (+0.5) is 0.")
@click.option("--max-completion-length", type=int, default=None,
              help="Tokens per answer; refused when shorter than most reference answers. "
                   "[default: 1.25 x the longest reference answer]")
@click.option("--allow-truncation", is_flag=True, default=None,
              help="Train even when --max-completion-length cuts most reference answers (smoke runs).")
@click.option("--max-prompt-tokens", type=int, default=None, help="Drop prompts longer than this (tokens).")
@click.option("--self-certainty-mode", type=click.Choice(["auto", "generation", "forward"]), default=None,
              help="generation: reuse the sampling logits; forward: one extra policy pass. [default: auto]")
@click.option("--self-certainty", "self_certainty", type=click.Choice(["kl", "literal"]), default=None,
              help="Rationale reward form: kl = mean per-token KL(p||U) in nats; literal = Eq. 3 as printed "
                   "(KL/|V|, vanishes at real vocabularies). [default: kl] (docs/training.md)")
@click.option("--lenient", "lenient_format", is_flag=True, default=None,
              help="Reward fenced/embedded JSON answers too (strict by default); evaluate with "
                   "`shop-r1 evaluate --lenient` to score by the same rule.")
@click.option("--scale-rewards", type=click.Choice(["group", "batch", "none"]), default=None,
              help="Divide the centred summed reward by its group's std (GRPO's and TRL's default; alpha cancels "
                   "where action rewards tie), the whole batch's std (alpha stays a weight) or nothing (Dr. GRPO). "
                   "[default: group] (docs/training.md)")
@click.option("--filter-zero-spread/--no-filter-zero-spread", "filter_zero_spread", default=None,
              help="Drop groups whose rewards all tie from the loss (DAPO's filter, no re-sampling); needs "
                   "--batch-size = prompts x G. [default: off]")
@click.option("--use-vllm", is_flag=True, default=None, help="Generate with vLLM (TRL use_vllm; needs vllm installed).")
@click.option("--vllm-mode", type=click.Choice(["colocate", "server"]), default=None, help="[default: colocate]")
@click.option("--log-completions", is_flag=True, default=None, help="Print sampled completions with their rewards.")
def grpo(config_file: str | None, **flags: Any) -> None:
    """GRPO with the Shop-R1 rewards: v(a) + alpha*s(r) - beta*KL.

    Paper defaults: lr 1e-7, 500 steps, temperature 0.6, global batch 64 prompts (x G
    completions each), alpha 0.005, beta 0.001, DARS 1000, threshold 0.75.
    """
    from shop_r1.training.grpo import train_grpo

    try:
        settings = C.load_settings(C.GRPOSettings, config_file, **flags)
        result = train_grpo(settings)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    _summary("grpo", result)


@train.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for everything; the policy is OUT/policy.")
@click.option("--model", default=None, help="tiny[:SEED] / small[:SEED] (built here, tokenizer from the train split) | default | a model "
                   "folder. [default: tiny]")
@click.option("--shoppers", type=int, default=None, help="Scripted shopper sessions. [default: 24]")
@click.option("--max-steps", type=int, default=None, help="Steps per scripted session. [default: 8]")
@click.option("--shop-seed", type=int, default=None, help="Catalogue seed of the bundled shop. [default: 0]")
@click.option("--seed", type=int, default=None, help="[default: 0]")
@click.option("--sft-epochs", type=float, default=None, help="[default: 4]")
@click.option("--sft-lr", type=float, default=None, help="[default: 2e-3, for the tiny model from scratch]")
@click.option("--grpo-steps", type=int, default=None, help="[default: 8]")
@click.option("--grpo-lr", type=float, default=None, help="[default: 1e-4]")
@click.option("--num-generations", type=int, default=None, help="Group size G. [default: 4]")
@click.option("--grpo-prompts-per-step", type=int, default=None, help="Prompts per GRPO step. [default: 2]")
@click.option("--max-completion-length", type=int, default=None,
              help="Tokens per GRPO rollout. [default: 1.25 x the longest train reference answer]")
@click.option("--reward", type=click.Choice(["hierarchical", "binary"]), default=None, help="[default: hierarchical]")
@click.option("--rl-token-budget", type=int, default=None, help="Prompt tokens of an RL/eval row. [default: 3584]")
@click.option("--sft-max-tokens", type=int, default=None, help="[default: 3840]")
@click.option("--sft-max-page-tokens", type=int, default=None, help="Page tokens of an SFT row. [default: 2816]")
@click.option("--persona/--no-persona", "with_persona", default=None, help="Persona and goal in the prompts. [default: on]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="[default: auto]")
def recipe(**flags: Any) -> None:
    """The whole loop from nothing: scripted shoppers -> template rationales -> dataset -> SFT -> GRPO.

    Leaves OUT/policy, a checkpoint that `shop-r1 simulate --policy transformers --model OUT/policy`
    and `shop-r1 serve --model OUT/policy` load. The defaults are small (24 sessions, 4 SFT epochs, 8 GRPO
    steps of 2 prompts x 4); on a 2-core machine at load ~27 the SFT stage alone ran ~10 s per step.
    """
    from pydantic import ValidationError

    from shop_r1.training.recipe import RecipeSettings, run_recipe

    try:
        settings = RecipeSettings.model_validate({k: v for k, v in flags.items() if v is not None})
        result = run_recipe(settings)
    except (ValidationError, ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    click.echo(str(result.policy_dir))
    log.info("recipe done: %s", result.model_dump(mode="json"))


if __name__ == "__main__":  # `accelerate launch -m shop_r1.training.cli_train grpo ...`
    log_to_terminal(logging.INFO)
    sys.exit(train())
