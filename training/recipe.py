"""``shop-r1 train recipe``: the whole Shop-R1 loop from nothing, on this machine.

scripted shoppers on the bundled shop (real Chromium) -> rationales by the ``template`` teacher ->
datasets split by session -> SFT -> GRPO -> a policy folder. The folder is a standard Hugging Face
checkpoint (weights, tokenizer, chat template), so ``shop-r1 simulate --policy transformers
--model DIR`` and ``shop-r1 serve --model DIR`` load it like any hub model.

Why the stages are functions here rather than in ``bench/``: the acceptance experiment
(``bench/paper_table.py``) and the live comparison (``bench/recipe_live.py``) must run exactly
the pipeline a user runs, so they import these stages instead of re-wiring the components.

Why the tiny model's tokenizer is trained on the *train* split only: a tokenizer whose merges
were learnt from test pages would leak test vocabulary (element names, queries) into the model's
units, which flatters held-out scores. The split plan is computed before the model is built with
the same :func:`shop_r1.training.splits.assign_groups` call the dataset builder makes, so the two
agree by construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.llm.models import resolve_model
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.training.config import GRPOSettings, RecipeSettings, RewardKind, SFTSettings
from shop_r1.training.data import build_dataset_dir, load_split, load_trace
from shop_r1.training.rationales import TemplateTeacher, synthesize
from shop_r1.training.splits import SplitBy, assign_groups, group_key
from shop_r1.training.trainer_common import TRAIN_RECORD_FILE, TrainResult

log = logging.getLogger(__name__)

RECIPE_RECORD_FILE = "shop-r1-recipe.json"
#: Words the sampled intents are matched against (the bundled shop's departments).
CATALOG_TERMS: tuple[str, ...] = ("headphones", "shirt", "kitchen", "shoes", "toys", "laptop", "bag")


# --------------------------------------------------------------------------------------------
# Stages (also used by bench/paper_table.py and bench/recipe_live.py)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def stage(name: str, seconds: dict[str, float]) -> Iterator[None]:
    """Log a stage and record its wall seconds in ``seconds``."""
    log.info("recipe stage: %s", name)
    t0 = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - t0, 2)
    log.info("recipe stage %s: %.1f s", name, seconds[name])


def simulate_scripted(out: Path, *, shoppers: int, max_steps: int, seed: int, shop_seed: int = 0,
                      layout: str = "v1", run_id: str = "recipe", port: int = 0) -> Path:
    """Scripted shoppers with sampled personas on the bundled shop, in real Chromium.

    ``port`` 0 takes a free one; the URL is in every prompt, so a fixed port is what makes two
    runs' datasets the same bytes. A taken port raises ``OSError`` before anything is recorded.
    """
    run_dir = out / "trace-scripted"
    personas = sample(shoppers, seed=seed, catalog_terms=list(CATALOG_TERMS))
    with run_in_thread(seed=shop_seed, port=port, layout=layout) as shop:
        cfg = RunConfig(shop_url=shop.url, shoppers=shoppers, concurrency=min(8, shoppers), max_steps=max_steps,
                        seed=seed, out_dir=run_dir, max_batch=8)
        result = asyncio.run(Runner(cfg, ScriptedPolicy(seed=seed), personas, run_id=f"{run_id}-s{seed}").run())
    log.info("simulated %d steps in %d sessions: %s", result.steps, len(result.sessions), dict(result.outcomes))
    return run_dir


def template_rationales(trace: Path, out: Path, *, seed: int) -> tuple[Path, dict[str, Any]]:
    """The template teacher's rationales in place of the scripted shopper's own (synthesised
    rationales, as the paper's were)."""
    target = out / "trace-template"
    report = asyncio.run(synthesize(trace, target, TemplateTeacher(seed=seed), overwrite=True))
    if report.failures:
        raise RuntimeError(f"template teacher failed on {len(report.failures)} step(s): {report.failures[0]}")
    return target, report.to_json()


def train_corpus(trace: Path, *, seed: int, val: float, test: float, by: SplitBy = "session") -> list[str]:
    """Personas, pages, rationales and actions of the sessions the split plan puts in *train* (module doc);
    ``by`` as the dataset's split (the same plan: :func:`shop_r1.training.data.build_dataset_dir`'s keys)."""
    loaded = load_trace(trace)
    sessions = loaded.result.sessions

    def key(sid: str, steps: Any) -> str:
        return group_key({"session_id": sid, "persona_id": steps[0].persona_id if steps else None}, by)

    plan = assign_groups([key(sid, steps) for sid, steps in sessions.items()], val=val, test=test, seed=seed)
    texts: list[str] = []
    for sid, steps in sessions.items():
        if plan[key(sid, steps)] != "train":
            continue
        persona = loaded.personas.get(steps[0].persona_id) if steps and steps[0].persona_id else None
        if persona is not None and hasattr(persona, "model_dump_json"):
            texts.append(persona.model_dump_json())  # the persona block's vocabulary
        for step in steps:
            texts.append(step.simplified_html)
            if step.rationale:
                texts.append(step.rationale)
            if step.action is not None:
                texts.append(step.action.model_dump_json())
    if not texts:
        raise ValueError(f"{trace}: no train-split session to build a tokenizer from; raise --shoppers")
    return texts


def built_shape(spec: str) -> str | None:
    """``tiny`` / ``small`` when ``spec`` (``NAME[:SEED]``) names a model built here, else None."""
    from shop_r1.simulator.agent.llm.tiny_model import SHAPES  # light: torch loads only when a model is built

    name = spec.split(":", 1)[0]
    return name if name in SHAPES else None


def base_model(spec: str, trace: Path, out: Path, *, seed: int, val: float, test: float,
               by: SplitBy = "session") -> Path:
    """The base model: ``tiny[:SEED]`` / ``small[:SEED]`` is built offline with its BPE trained on
    the train split; anything else is :func:`shop_r1.simulator.models.resolve_model`
    (``default``, a folder)."""
    shape = built_shape(spec)
    if shape is not None:
        # optional heavy dependency (torch/transformers) behind the tiny builder
        from shop_r1.simulator.agent.llm.tiny_model import SHAPES, build_tiny_model

        model_seed = int(spec.split(":", 1)[1]) if ":" in spec else seed
        return build_tiny_model(out / f"base-{shape}", seed=model_seed, shape=SHAPES[shape],
                                corpus=train_corpus(trace, seed=seed, val=val, test=test, by=by))
    return resolve_model(spec, show_status=True)


def token_counter(model_dir: Path) -> Callable[[str], int]:
    """Budgets are counted in the tokens of the model that reads them."""
    from tokenizers import Tokenizer  # optional heavy dependency: only once a model exists

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


def build_data(trace: Path, model_dir: Path, out: Path, *, seed: int, val: float, test: float,
               rl_token_budget: int, sft_max_tokens: int, sft_max_page_tokens: int,
               with_persona: bool, by: SplitBy = "session") -> tuple[Path, dict[str, Any]]:
    result = build_dataset_dir([trace], out / "data", by=by, seed=seed, val=val, test=test,
                               token_budget=rl_token_budget, sft_max_tokens=sft_max_tokens,
                               sft_max_page_tokens=sft_max_page_tokens, with_persona=with_persona,
                               count_tokens=token_counter(model_dir))
    return result.out_dir, result.manifest


def completion_budget(data_dir: Path, model_dir: Path) -> tuple[int, dict[str, Any]]:
    """A rollout/answer budget that holds every train reference answer, in the model's tokens."""
    from shop_r1.training.answer_length import budget_report, reference_lengths, suggested_budget

    lengths = reference_lengths(load_split(data_dir, "rl", "train"), token_counter(model_dir))
    budget = suggested_budget(lengths)
    return budget, budget_report(lengths, budget)


def run_sft(model_dir: Path, data_dir: Path, out_dir: Path, *, epochs: float, lr: float, max_length: int,
            seed: int, device: str, max_steps: int = -1, max_seconds: float | None = None) -> TrainResult:
    from shop_r1.training.sft import train_sft  # optional heavy dependency: torch/TRL

    settings = SFTSettings(model=str(model_dir), data=str(data_dir), out=str(out_dir), epochs=epochs, lr=lr,
                           max_length=max_length, seed=seed, device=device, logging_steps=10, max_steps=max_steps,
                           max_seconds=max_seconds)
    with contextlib.redirect_stdout(sys.stderr):  # TRL prints its logs; stdout is for --json
        return train_sft(settings)


def run_grpo(model_dir: Path, data_dir: Path, out_dir: Path, *, steps: int, lr: float, num_generations: int,
             prompts_per_step: int, max_completion_length: int | None, reward: RewardKind, alpha: float, beta: float,
             seed: int, device: str, **extra: Any) -> TrainResult:
    """One GRPO run; ``extra`` are further :class:`GRPOSettings` fields (``scale_rewards``,
    ``filter_zero_spread``, ``temperature`` ...)."""
    from shop_r1.training.grpo import train_grpo  # optional heavy dependency: torch/TRL

    g = num_generations
    # The whole step in one pass: every prompt's group then sits in one micro-batch, so the loss
    # forward runs each prompt once (training/shared_prompt.py), not once per micro-batch it was
    # shuffled into. With TRL's "grpo" loss (a mean over sequences) the gradient is the same.
    settings = GRPOSettings(model=str(model_dir), data=str(data_dir), out=str(out_dir), max_steps=steps, lr=lr,
                            num_generations=g, per_device_batch_size=g * prompts_per_step,
                            global_batch_size=prompts_per_step,
                            max_completion_length=max_completion_length, reward=reward, alpha=alpha, beta=beta,
                            seed=seed, device=device, logging_steps=1, **extra)
    with contextlib.redirect_stdout(sys.stderr):
        return train_grpo(settings)


def train_record(ckpt: Path) -> dict[str, Any]:
    """The ``shop-r1-train.json`` a trainer wrote beside its checkpoint."""
    return json.loads((ckpt / TRAIN_RECORD_FILE).read_text(encoding="utf-8"))


def grpo_diagnostics(ckpt: Path) -> dict[str, Any]:
    """What says whether a GRPO run learnt anything: ||final - initial|| and the mean share of
    groups whose rewards were all equal (zero advantage, so zero gradient), as TRL logged it."""
    record = train_record(ckpt)
    zero = [h["frac_reward_zero_std"] for h in record["history"]
            if isinstance(h.get("frac_reward_zero_std"), (int, float))]
    change = record.get("param_change") or {}
    return {"param_change_norm": change.get("l2"), "param_change_relative": change.get("relative"),
            "frac_reward_zero_std": sum(zero) / len(zero) if zero else None,
            "advantage_share": record.get("advantage_share"), "completion_budget": record.get("completion_budget"),
            "zero_spread_filter": record.get("zero_spread_filter"), "scale_rewards": record.get("scale_rewards"),
            "self_certainty_unparsed": (record.get("self_certainty") or {}).get("unparsed_paid_0")}


# --------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------


class RecipeResult(BaseModel):
    """Where a recipe run left its policy, and what each stage did."""

    policy_dir: Path
    sft_dir: Path
    data_dir: Path
    trace: Path
    counts: dict[str, Any]
    grpo: dict[str, Any]
    seconds: dict[str, float]


def run_recipe(settings: RecipeSettings) -> RecipeResult:
    """Run every stage into ``settings.out``; the GRPO checkpoint ``OUT/policy`` is the policy."""
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    s = settings
    seconds: dict[str, float] = {}
    with stage("simulate scripted shoppers", seconds):
        scripted = simulate_scripted(out, shoppers=s.shoppers, max_steps=s.max_steps, seed=s.seed,
                                     shop_seed=s.shop_seed, layout=s.layout)
    with stage("template rationales", seconds):
        trace, _ = template_rationales(scripted, out, seed=s.seed)
    with stage("base model", seconds):
        model_dir = base_model(s.model, trace, out, seed=s.seed, val=s.val, test=s.test)
    with stage("datasets", seconds):
        data_dir, manifest = build_data(trace, model_dir, out, seed=s.seed, val=s.val, test=s.test,
                                        rl_token_budget=s.rl_token_budget, sft_max_tokens=s.sft_max_tokens,
                                        sft_max_page_tokens=s.sft_max_page_tokens, with_persona=s.with_persona)
    counts = manifest["counts"]
    if counts["sft"]["train"] == 0 or counts["rl"]["train"] == 0:
        raise ValueError(f"too little training data ({counts}); raise --shoppers or the token budgets")
    with stage("SFT", seconds):
        sft = run_sft(model_dir, data_dir, out / "sft", epochs=s.sft_epochs, lr=s.sft_lr,
                      max_length=s.sft_max_tokens + 256, seed=s.seed, device=s.device)
    with stage("GRPO", seconds):
        grpo = run_grpo(sft.out_dir, data_dir, out / "policy", steps=s.grpo_steps, lr=s.grpo_lr,
                        num_generations=s.num_generations, prompts_per_step=s.grpo_prompts_per_step,
                        max_completion_length=s.max_completion_length, reward=s.reward, alpha=s.alpha,
                        beta=s.beta, seed=s.seed, device=s.device)
    result = RecipeResult(policy_dir=grpo.out_dir, sft_dir=sft.out_dir, data_dir=data_dir, trace=trace,
                          counts=counts, grpo=grpo_diagnostics(grpo.out_dir), seconds=seconds)
    record = {"settings": settings.model_dump(mode="json"), "base_model": str(model_dir),
              **result.model_dump(mode="json")}
    (out / RECIPE_RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return result


__all__ = ["CATALOG_TERMS", "RECIPE_RECORD_FILE", "RecipeResult", "RecipeSettings", "base_model", "build_data", "built_shape", "completion_budget",
           "grpo_diagnostics", "run_grpo", "run_recipe", "run_sft", "simulate_scripted", "stage",
           "template_rationales", "token_counter", "train_corpus", "train_record"]
