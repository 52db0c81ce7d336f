"""Small-scale reproduction of the Shop-R1 paper's main table (issue 9's acceptance experiment).

Designed so that an effect *can* show, and reported as it comes out:

* data: >= 128 scripted-shopper sessions on the bundled shop (real Chromium), rationales by the
  ``template`` teacher, split by session (train / validation / test), one split for every seed,
  so the settings are compared on the same held-out steps (paired);
* prompts: an RL/eval token budget that keeps most test labels visible; ``labels_visible`` is the
  fraction of test labels whose element is still in the budgeted prompt (the ceiling of exact);
* model: ``tiny`` is a small Qwen2 built offline whose BPE is trained on the *train* split only
  (:mod:`shop_r1.training.recipe`), small enough for >= 100 GRPO updates of several prompts x G
  on 2 cores; ``default`` (SmolLM2-135M-Instruct) is the real path;
* SFT is trained in rounds and the round that scores best on *validation* (type accuracy +
  macro-F1) is THE SFT checkpoint, chosen before any RL;
* both RL arms start from it and differ only in the reward (binary exact match, alpha 0 vs
  Table 1's hierarchical reward + self-certainty alpha); a third arm continues SFT from the same
  checkpoint for the mean wall time of the two RL arms (does RL beat just training longer?);
* 2-3 training seeds (model init + training); greedy *free* decoding as in the paper (the
  grammar-constrained decoding of the simulator as a secondary table);
* every difference to SFT with a paired bootstrap 95 % CI over test steps (seeds averaged inside
  each resample), and the ordering judged on type accuracy and macro-F1, exact secondary.

    .venv/bin/python bench/paper_table.py --fast                 # ~8 min on 2 cores: the designed data, tiny4k
    .venv/bin/python bench/paper_table.py --model tiny4k         # the designed run, three seeds (~37 min)
    .venv/bin/python bench/paper_table.py --model small          # a built model that learns the format
    .venv/bin/python bench/paper_table.py --model default --device cuda   # SmolLM2-135M-Instruct: a GPU's
                                                                 # run (~7 h on 2 CPU cores, measured)
    .venv/bin/python bench/paper_table.py --out runs/paper --json

Progress goes to stderr; with ``--json`` stdout holds only the results JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from shop_r1.envs.actions import ACTION_TYPES, Action  # noqa: E402
from shop_r1.simulator.policies.transformers_policy import TransformersPolicy  # noqa: E402
from shop_r1.simulator.scoring import is_exact  # noqa: E402
from shop_r1.training import recipe as R  # noqa: E402
from shop_r1.training.data import load_split  # noqa: E402
from shop_r1.training.evaluate import aevaluate  # noqa: E402
from shop_r1.training.trainer_common import use_cuda  # noqa: E402

log = logging.getLogger("bench.paper_table")

#: The settings, in the paper's order, plus the control.
SETTINGS: tuple[str, ...] = ("zero-shot", "SFT", "SFT-continued", "SFT+RL(binary)", "Shop-R1")
RL_ARMS: tuple[str, ...] = ("SFT+RL(binary)", "Shop-R1")
METRICS: tuple[str, ...] = ("exact", "type_acc", "type_f1")

#: Published figures (arXiv 2507.17842 v2, Qwen2.5-3B-Instruct; exact / type acc / type macro-F1, %).
PAPER_3B: dict[str, tuple[float, float, float]] = {
    "zero-shot": (0.32, 15.33, 16.15),
    "SFT": (16.76, 22.25, 24.52),
    "SFT+RL(binary)": (16.55, 23.74, 28.07),
    "Shop-R1": (27.72, 36.40, 31.28),
}

_ACTION = TypeAdapter(Action)
_TYPE_INDEX = {t: i for i, t in enumerate(ACTION_TYPES)}


@dataclass
class BenchConfig:
    """Everything that shapes a run; written verbatim into ``results.json``.

    Learning rates and step counts are NOT the paper's (4 SFT epochs at 2e-5, 500 GRPO steps at
    1e-7 with 64 prompts): at this scale those would leave the models where they started. They
    are the same for both RL arms.
    """

    model: str = "tiny"
    shoppers: int = 128
    max_steps: int = 6
    data_seed: int = 0
    seeds: tuple[int, ...] = (0, 1)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    sft_rounds: int = 3
    sft_epochs_per_round: float = 1.0
    sft_lr: float = 2e-3
    grpo_steps: int = 100
    grpo_lr: float = 5e-5
    num_generations: int = 4
    grpo_prompts_per_step: int = 2
    max_completion_length: int = 0  # 0: 1.25 x the longest train reference answer (training/answer_length.py)
    rl_token_budget: int = 3584  # tiny BPE (800 symbols): ~94 % of labels visible, persona on
    sft_max_tokens: int = 3840  # + 256 = the tiny model's 4096-token window
    sft_max_page_tokens: int = 2816
    with_persona: bool = True
    eval_max_new_tokens: int = 0  # 0: as max_completion_length
    eval_batch_size: int = 16
    constrained_too: bool = True
    alpha: float = 0.005
    beta: float = 0.001
    bootstrap: int = 2000
    shop_port: int = 8642  # fixed: the URL is in every prompt (0 or a taken port: any free one)
    device: str = "auto"  # training and evaluation: auto (CUDA when torch sees one), cpu or cuda
    out: str | None = None

    def validate(self) -> None:
        problems = []
        if self.shoppers < 4:
            problems.append(f"--shoppers must be >= 4 (train, validation and test sessions), got {self.shoppers}")
        if self.num_generations < 2:
            problems.append(f"--num-generations must be >= 2 (GRPO compares a group), got {self.num_generations}")
        if self.sft_rounds < 1 or self.grpo_steps < 1:
            problems.append("--sft-rounds and --grpo-steps must be >= 1")
        if not self.seeds:
            problems.append("--seeds needs at least one seed")
        if not 0 < self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            problems.append("--val-fraction and --test-fraction must lie in (0, 1): SFT is chosen on validation")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"--device must be auto, cpu or cuda, got {self.device!r}")
        else:
            try:  # the trainers' own check, made before an hour's run starts rather than at SFT
                use_cuda(self.device)
            except RuntimeError as exc:
                problems.append(str(exc))
        if problems:
            raise SystemExit("bench/paper_table.py: " + "; ".join(problems))


#: Per-model defaults. ``tiny`` is the dataclass defaults (the designed run: ~40 min on 2 idle
#: cores); ``--fast`` lays :data:`FAST` over any preset.
#: ``default``: SmolLM2-135M-Instruct, the real path, meant for a GPU. Measured on 2 idle CPU
#: cores (2026-12-03, ~2.5k-token prompts): an SFT step takes 12 s and a GRPO step of 2 prompts
#: x 4 completions takes 96 s (sampling 128-token answers), so this preset needs ~7 h there,
#: not 60 min (docs/reproduction.md, "The real path on 2 cores").
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    # ``small`` (4 layers x 256, 4,096-symbol BPE): the smallest shape measured to learn the answer
    # format under free decoding. One GRPO step of 2 prompts x 4 completions of a 3k-token prompt
    # costs ~22 s on 2 cores, so ~60 min holds one seed with 24 GRPO steps per arm -- fewer than
    # the design's 100 (a deviation, stated in docs/reproduction.md).
    "small": {
        "seeds": (0,), "sft_rounds": 2, "sft_epochs_per_round": 1.0, "sft_lr": 1e-3, "grpo_steps": 24,
        "grpo_lr": 5e-5, "rl_token_budget": 3072, "sft_max_tokens": 3328, "sft_max_page_tokens": 2304,
        "constrained_too": False,
    },
    # ``tiny4k``: the tiny network with the small shape's 4,096-symbol BPE (see tiny_model.TINY4K).
    # Three seeds: ~33 min on 2 idle cores since the GRPO loss runs each prompt once per group.
    "tiny4k": {"seeds": (0, 1, 2), "rl_token_budget": 2816, "sft_max_tokens": 3072, "sft_max_page_tokens": 2048},
    "default": {
        "shoppers": 128, "max_steps": 5, "seeds": (0,), "sft_rounds": 2, "sft_epochs_per_round": 0.5,
        "sft_lr": 5e-5, "grpo_steps": 100, "grpo_lr": 2e-6, "num_generations": 4, "grpo_prompts_per_step": 2,
        "rl_token_budget": 2560, "sft_max_tokens": 3072, "sft_max_page_tokens": 2048,
        "eval_batch_size": 8, "constrained_too": False,
    },
}


#: The 10-minute path: the designed data (128 shoppers, >= 150 test steps, the same budgets), one
#: seed, one SFT round and a few GRPO steps, free decoding only. It shows whether the pipeline and
#: the data hold on this machine; the step counts are too small to show an ordering.
FAST: dict[str, Any] = {"seeds": (0,), "sft_rounds": 1, "grpo_steps": 8, "constrained_too": False}


# --------------------------------------------------------------------------------------------
# Per-step scoring and the paired bootstrap
# --------------------------------------------------------------------------------------------


@dataclass
class StepScores:
    """One evaluation, step by step (rows in the evaluation's (session, step) order)."""

    keys: list[tuple[str, int]]
    label_type: np.ndarray  # index into ACTION_TYPES
    pred_type: np.ndarray  # index, -1 when the answer did not parse
    exact: np.ndarray  # bool
    report: dict[str, Any] = field(default_factory=dict)


def step_scores(evaluation: Any) -> StepScores:
    keys, lt, pt, ex = [], [], [], []
    for p in evaluation.predictions:
        label = _ACTION.validate_python(p["label"])
        pred = _ACTION.validate_python(p["prediction"]) if p["prediction"] is not None else None
        keys.append((p["session_id"], p["step"]))
        lt.append(_TYPE_INDEX[label.type])
        pt.append(_TYPE_INDEX[pred.type] if pred is not None else -1)
        ex.append(is_exact(pred, label))
    scores = StepScores(keys, np.array(lt), np.array(pt), np.array(ex, dtype=bool), evaluation.to_json())
    got = macro_f1(scores.pred_type[None, :], scores.label_type[None, :])[0]
    if abs(got - scores.report["type_macro_f1"]) > 1e-9:  # the bootstrap must score what evaluate scores
        raise AssertionError(f"bootstrap macro-F1 {got} != evaluation's {scores.report['type_macro_f1']}")
    return scores


def macro_f1(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Type macro-F1 per row of (B, n) arrays, over the types present among labels or
    predictions (scikit-learn's convention, as :class:`MetricsReport`)."""
    total = np.zeros(pred.shape[0])
    present = np.zeros(pred.shape[0])
    for c in range(len(ACTION_TYPES)):
        tp = ((pred == c) & (label == c)).sum(1)
        denom = (pred == c).sum(1) + (label == c).sum(1)
        total += np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        present += denom > 0
    return np.where(present > 0, total / np.maximum(present, 1), 0.0)


def metric_matrix(runs: list[StepScores], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric for each resample (rows of ``idx``), averaged over the seeds' runs."""
    out = {m: np.zeros(idx.shape[0]) for m in METRICS}
    for r in runs:
        out["exact"] += r.exact[idx].mean(1)
        out["type_acc"] += (r.pred_type[idx] == r.label_type[idx]).mean(1)
        out["type_f1"] += macro_f1(r.pred_type[idx], r.label_type[idx])
    return {m: v / len(runs) for m, v in out.items()}


def summarise(scores: dict[str, list[StepScores]], n_boot: int, seed: int = 12345) -> dict[str, dict[str, Any]]:
    """Point estimates per setting and paired bootstrap 95 % CIs of each difference to SFT."""
    n = len(scores["SFT"][0].keys)
    full = np.arange(n)[None, :]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    sft_boot = metric_matrix(scores["SFT"], idx)
    sft_point = metric_matrix(scores["SFT"], full)
    table: dict[str, dict[str, Any]] = {}
    for name, runs in scores.items():
        if any(r.keys != scores["SFT"][0].keys for r in runs):
            raise AssertionError(f"{name} was scored on other steps than SFT: the comparison would not be paired")
        point = metric_matrix(runs, full)
        row: dict[str, Any] = {m: float(point[m][0]) for m in METRICS}
        names = (("exact", "exact_accuracy"), ("type_acc", "type_accuracy"), ("type_f1", "type_macro_f1"))
        row["per_seed"] = [{m: r.report[k] for m, k in names} | {"unparsed": r.report["n_unparsed"]} for r in runs]
        row["n_test"] = n
        if name != "SFT":
            boot = metric_matrix(runs, idx)
            for m in METRICS:
                diff = boot[m] - sft_boot[m]
                row[f"{m}_vs_sft"] = {"diff": float(point[m][0] - sft_point[m][0]),
                                      "ci95": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))]}
        table[name] = row
    return table


def ordering(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The paper's ordering SFT < SFT+RL(binary) < Shop-R1, judged on type accuracy and macro-F1
    (exact secondary); a difference counts as shown only when its 95 % CI excludes 0."""
    verdict: dict[str, Any] = {}
    for m in METRICS:
        b, s = table["SFT+RL(binary)"], table["Shop-R1"]
        verdict[m] = {"sft_lt_binary": b[m] > table["SFT"][m], "binary_lt_shop_r1": s[m] > b[m],
                      "shop_r1_vs_sft_ci_excludes_0": s[f"{m}_vs_sft"]["ci95"][0] > 0
                      or s[f"{m}_vs_sft"]["ci95"][1] < 0,
                      "shop_r1_vs_continued": s[m] - table["SFT-continued"][m]}
    primary = [verdict[m]["sft_lt_binary"] and verdict[m]["binary_lt_shop_r1"] for m in ("type_acc", "type_f1")]
    verdict["holds_on_primary"] = all(primary)
    return verdict


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


def label_visibility(data_dir: Path) -> dict[str, Any]:
    """Fraction of test labels a model could get exactly right at all: a click/type target whose
    element was cut out of the prompt by the token budget cannot be named."""
    rows = load_split(data_dir, "rl", "test")
    visible = 0
    for row in rows:
        label = json.loads(row["label"])
        name = label.get("name")
        page = row["prompt"][-1]["content"]
        if name is None or f'"{name}"' in page or f"={name}" in page:
            visible += 1
    return {"test_steps": len(rows), "label_visible": visible, "labels_visible": visible / len(rows) if rows else 0.0}


def evaluate(cfg: BenchConfig, model_dir: Path, data_dir: Path, split: str, *, constrained: bool,
             seed: int) -> StepScores:
    """Greedy decoding, the same for every setting. Free (the paper's): scored on what the model
    writes. Constrained: the simulator's answer grammar, so only the choice of action is scored."""
    rows = load_split(data_dir, "rl", split)
    # No browser shares the CPU here, so every core decodes (the policy's default leaves one for
    # Chromium): 1.3x faster on 2 cores.
    policy = TransformersPolicy(str(model_dir), device=cfg.device, constrained=constrained, temperature=0.0,
                                max_new_tokens=cfg.eval_max_new_tokens, batch_size=cfg.eval_batch_size, seed=seed,
                                num_threads=os.cpu_count() or 1)
    return step_scores(asyncio.run(aevaluate(policy, rows, batch_size=cfg.eval_batch_size)))


def _val_score(s: StepScores) -> float:
    return s.report["type_accuracy"] + s.report["type_macro_f1"]


def train_seed(cfg: BenchConfig, seed: int, trace: Path, base: Path, data_dir: Path, out: Path,
               timer: dict[str, float], console: Console) -> dict[str, Any]:
    """Every setting for one training seed; returns checkpoints, training facts and SFT selection."""
    sd = out / f"seed{seed}"
    ckpts: dict[str, Path] = {"zero-shot": base}
    facts: dict[str, Any] = {"sft_rounds": []}
    start = base
    best: tuple[float, Path] | None = None  # (validation score, folder)
    for k in range(1, cfg.sft_rounds + 1):
        console.print(f"[cyan]▶ seed {seed}: SFT round {k}/{cfg.sft_rounds}[/]")
        with R.stage(f"seed{seed} SFT round {k}", timer):
            res = R.run_sft(start, data_dir, sd / f"sft-r{k}", epochs=cfg.sft_epochs_per_round, lr=cfg.sft_lr,
                            max_length=cfg.sft_max_tokens + 256, seed=seed, device=cfg.device)
        record: dict[str, Any] = {"round": k, "steps": res.metrics.get("global_step"), "seconds": round(res.seconds, 1),
                                  "steps_per_second": res.metrics.get("train_steps_per_second")}
        if cfg.sft_rounds > 1:
            # With one round there is nothing to choose between: validating it would only cost
            # a full evaluation (~35 s of the fast path).
            with R.stage(f"seed{seed} validate SFT round {k}", timer):
                val = evaluate(cfg, res.out_dir, data_dir, "validation", constrained=False, seed=seed)
            record.update(val_type_acc=val.report["type_accuracy"], val_type_f1=val.report["type_macro_f1"],
                          val_exact=val.report["exact_accuracy"])
            if best is None or _val_score(val) > best[0]:
                best = (_val_score(val), res.out_dir)
        else:
            best = (0.0, res.out_dir)
        facts["sft_rounds"].append(record)
        start = res.out_dir
    assert best is not None
    ckpts["SFT"] = sft = best[1]
    facts["sft_chosen"] = str(sft)
    rl_seconds = []
    for name, reward, alpha, folder in (("SFT+RL(binary)", "binary", 0.0, "grpo-binary"),
                                        ("Shop-R1", "hierarchical", cfg.alpha, "grpo-shop-r1")):
        console.print(f"[cyan]▶ seed {seed}: {name}[/]")
        with R.stage(f"seed{seed} {name}", timer):
            res = R.run_grpo(sft, data_dir, sd / folder, steps=cfg.grpo_steps, lr=cfg.grpo_lr,
                             num_generations=cfg.num_generations, prompts_per_step=cfg.grpo_prompts_per_step,
                             max_completion_length=cfg.max_completion_length, reward=reward, alpha=alpha,
                             beta=cfg.beta, seed=seed, device=cfg.device)
        ckpts[name] = res.out_dir
        rl_seconds.append(res.seconds)
        facts[name] = {"seconds": round(res.seconds, 1), "steps": res.metrics.get("global_step"),
                       **R.grpo_diagnostics(res.out_dir)}
    wall = sum(rl_seconds) / len(rl_seconds)
    # The control gets the RL arms' mean wall time as a step count at the SFT rounds' own rate
    # (their training loop only: loading and saving excluded), so that its learning rate decays
    # to 0 over that budget as every SFT round's does. A wall-clock stop at a constant rate left
    # the control at full learning rate when it stopped: 2026-12-03, 3 seeds, it fell 21 points
    # of type accuracy below the checkpoint it started from.
    rates = sorted(r["steps_per_second"] for r in facts["sft_rounds"] if r.get("steps_per_second"))
    rate = rates[len(rates) // 2]
    steps = max(1, round(wall * rate))
    console.print(f"[cyan]▶ seed {seed}: SFT continued for {steps} steps ≈ {wall:.0f} s of training "
                  f"(the RL arms' mean, at SFT's {rate:.2f} steps/s)[/]")
    with R.stage(f"seed{seed} SFT-continued", timer):
        res = R.run_sft(sft, data_dir, sd / "sft-continued", epochs=cfg.sft_epochs_per_round, lr=cfg.sft_lr,
                        max_length=cfg.sft_max_tokens + 256, seed=seed, device=cfg.device, max_steps=steps)
    ckpts["SFT-continued"] = res.out_dir
    facts["SFT-continued"] = {"seconds": round(res.seconds, 1), "steps": res.metrics.get("global_step"),
                              "target_seconds": round(wall, 1), "steps_per_second": rate}
    return {"ckpts": ckpts, "facts": facts}


def run_benchmark(cfg: BenchConfig, out: Path, console: Console) -> dict[str, Any]:
    """Run every stage into ``out`` and return the results (also written to ``out/results.json``)."""
    cfg.validate()
    out.mkdir(parents=True, exist_ok=True)
    import torch  # optional heavy dependency: only to report and fix the thread count

    timer: dict[str, float] = {}
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "paper_table", "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(cfg),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg(),
                    "gpu": torch.cuda.get_device_name(0) if use_cuda(cfg.device) else None},
        "paper_3b": {k: dict(zip(METRICS, v)) for k, v in PAPER_3B.items()},
        "timings": timer,
    }
    console.print("[cyan]▶ simulate scripted shoppers[/]")
    with R.stage("simulate", timer):
        simulate = functools.partial(R.simulate_scripted, out, shoppers=cfg.shoppers, max_steps=cfg.max_steps,
                                     seed=cfg.data_seed, run_id="paper-table")
        try:
            scripted = simulate(port=cfg.shop_port)
        except OSError as exc:  # the port is taken: the run goes on, its prompts differ from another run's
            log.warning("%s; serving the shop on a free port instead", exc)
            scripted = simulate(port=0)
    with R.stage("template rationales", timer):
        trace, _ = R.template_rationales(scripted, out, seed=cfg.data_seed)
    split = {"seed": cfg.data_seed, "val": cfg.val_fraction, "test": cfg.test_fraction}
    bases = {}
    per_seed: dict[int, dict[str, Any]] = {}
    scores: dict[str, dict[str, list[StepScores]]] = {"free": {s: [] for s in SETTINGS},
                                                      "constrained": {s: [] for s in SETTINGS}}
    data_dir: Path | None = None
    for seed in cfg.seeds:
        # tiny: one base per seed (initialisation is part of what a seed varies; the tokenizer and
        # so the dataset are the same, trained on the train split); a pretrained model is one base.
        spec = f"{cfg.model}:{seed}" if R.built_shape(cfg.model) == cfg.model else cfg.model
        with R.stage(f"seed{seed} base model", timer):
            bases[seed] = R.base_model(spec, trace, out / f"seed{seed}", seed=cfg.data_seed,
                                       val=split["val"], test=split["test"])
        first = bases[cfg.seeds[0]]
        if (first / "tokenizer.json").read_bytes() != (bases[seed] / "tokenizer.json").read_bytes():
            raise AssertionError(f"seed {seed}'s tokenizer differs from seed {cfg.seeds[0]}'s: one dataset "
                                 "cannot serve both")
        if data_dir is None:
            with R.stage("datasets", timer):
                data_dir, manifest = R.build_data(trace, bases[seed], out, seed=cfg.data_seed, val=split["val"],
                                                  test=split["test"], rl_token_budget=cfg.rl_token_budget,
                                                  sft_max_tokens=cfg.sft_max_tokens,
                                                  sft_max_page_tokens=cfg.sft_max_page_tokens,
                                                  with_persona=cfg.with_persona)
            counts = manifest["counts"]
            results["data"] = {"trace": str(trace), "dataset": str(data_dir), "counts": counts,
                               "skipped": {"rl": manifest["rl"]["skipped"], "sft": manifest["sft"]["skipped"]},
                               **label_visibility(data_dir)}
            # Answers cut by the budget never close their JSON: size it from the references.
            budget, results["data"]["completion_budget"] = R.completion_budget(data_dir, bases[seed])
            cfg.max_completion_length = cfg.max_completion_length or budget
            cfg.eval_max_new_tokens = cfg.eval_max_new_tokens or cfg.max_completion_length
            results["config"] = asdict(cfg)
            console.print(f"[dim]  data: {counts}; labels visible {100 * results['data']['labels_visible']:.1f} %; "
                          f"completion budget {cfg.max_completion_length} tokens "
                          f"(longest train answer {results['data']['completion_budget']['max']})[/]")
            if min(counts["rl"]["test"], counts["rl"]["validation"], counts["sft"]["train"]) == 0:
                raise SystemExit(f"bench/paper_table.py: too little data for a table ({counts}); raise --shoppers")
        per_seed[seed] = train_seed(cfg, seed, trace, bases[seed], data_dir, out, timer, console)
        for name in SETTINGS:
            for mode in ("free", "constrained") if cfg.constrained_too else ("free",):
                with R.stage(f"seed{seed} evaluate {name} {mode}", timer):
                    scores[mode][name].append(evaluate(cfg, per_seed[seed]["ckpts"][name], data_dir, "test",
                                                       constrained=mode == "constrained", seed=seed))
    assert data_dir is not None
    results["training"] = {str(s): v["facts"] for s, v in per_seed.items()}
    results["tables"] = {}
    for mode in ("free", "constrained") if cfg.constrained_too else ("free",):
        table = summarise(scores[mode], cfg.bootstrap)
        for name in table:
            table[name]["labels_visible"] = results["data"]["labels_visible"]
        for arm in RL_ARMS:
            facts = [per_seed[s]["facts"][arm] for s in cfg.seeds]
            norms = [f["param_change_norm"] for f in facts if f["param_change_norm"] is not None]
            zero = [f["frac_reward_zero_std"] for f in facts if f["frac_reward_zero_std"] is not None]
            table[arm]["param_change_norm"] = sum(norms) / len(norms) if norms else None
            table[arm]["frac_reward_zero_std"] = sum(zero) / len(zero) if zero else None
        results["tables"][mode] = {"settings": table, "ordering": ordering(table)}
    results["settings"] = results["tables"]["free"]["settings"]
    results["ordering"] = results["tables"]["free"]["ordering"]
    timer["total"] = round(time.perf_counter() - t0, 2)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return results


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _ci(row: dict[str, Any], m: str) -> str:
    d = row.get(f"{m}_vs_sft")
    if d is None:
        return "–"
    lo, hi = d["ci95"]
    return f"{100 * d['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def render(results: dict[str, Any], console: Console) -> None:
    for mode, block in results["tables"].items():
        settings = block["settings"]
        n = settings["SFT"]["n_test"]
        table = Table(title=f"Shop-R1 small-scale reproduction ({mode} greedy decoding): {n} held-out test steps, "
                            f"model {results['config']['model']}, seeds {list(results['config']['seeds'])}")
        for col in ("setting", "exact %", "type acc %", "type F1 %", "Δ exact vs SFT [95% CI]",
                    "Δ type acc vs SFT [95% CI]", "Δ type F1 vs SFT [95% CI]", "paper 3B exact / type / F1 %"):
            table.add_column(col, justify="left" if col in ("setting", "paper 3B exact / type / F1 %") else "right")
        for name in SETTINGS:
            r = settings[name]
            paper = " / ".join(f"{v:.2f}" for v in PAPER_3B[name]) if name in PAPER_3B else "–"
            table.add_row(name, *(f"{100 * r[m]:.2f}" for m in METRICS), *(_ci(r, m) for m in METRICS), paper)
        console.print(table)
        for arm in RL_ARMS:
            r = settings[arm]
            console.print(f"[dim]{arm}: ||Δθ|| = {r['param_change_norm']}, mean frac_reward_zero_std = "
                          f"{r['frac_reward_zero_std']}[/]")
        o = block["ordering"]
        console.print(f"Paper ordering SFT < SFT+RL(binary) < Shop-R1 on type acc and type F1 ({mode}): "
                      f"{'[green]holds[/]' if o['holds_on_primary'] else '[yellow]does not hold[/]'}; "
                      + "; ".join(f"{m}: SFT<binary {o[m]['sft_lt_binary']}, "
                                  f"binary<Shop-R1 {o[m]['binary_lt_shop_r1']}, "
                                  f"Shop-R1 vs SFT CI excludes 0 {o[m]['shop_r1_vs_sft_ci_excludes_0']}" for m in METRICS))
    d = results["data"]
    console.print(f"[dim]Labels visible in the test prompts (ceiling of exact): {d['label_visible']}/"
                  f"{d['test_steps']} = {100 * d['labels_visible']:.1f} %. Paper: Qwen2.5-3B on real logs, 32k "
                  "contexts -- orientation only.[/]")


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[BenchConfig, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="tiny | tiny4k | small (built offline from the train split) | "
                    "default (SmolLM2-135M-Instruct) | a model folder (default: tiny; tiny4k with --fast)")
    opt = {f.name: f for f in fields(BenchConfig)}
    for name in ("shoppers", "max_steps", "data_seed", "sft_rounds", "sft_epochs_per_round", "sft_lr", "grpo_steps",
                 "grpo_lr", "num_generations", "grpo_prompts_per_step", "max_completion_length", "rl_token_budget",
                 "sft_max_tokens", "sft_max_page_tokens", "eval_max_new_tokens", "eval_batch_size", "bootstrap",
                 "val_fraction", "test_fraction", "shop_port", "device"):
        ap.add_argument("--" + name.replace("_", "-"), type=type(opt[name].default), default=None,
                        help=f"default: the model's preset (tiny: {opt[name].default})")
    ap.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                    help="training seeds, comma-separated (tiny: 0,1; tiny4k: 0,1,2)")
    ap.add_argument("--no-constrained", dest="constrained_too", action="store_false", default=None,
                    help="skip the secondary, grammar-constrained table")
    ap.add_argument("--persona", dest="with_persona", action="store_true", default=None)
    ap.add_argument("--no-persona", dest="with_persona", action="store_false")
    ap.add_argument("--fast", action="store_true",
                    help="the short path: the designed data, the tiny4k model, one seed, one SFT round, "
                    "%d GRPO steps, free decoding only (flags given still win)" % FAST["grpo_steps"])
    ap.add_argument("--out", default=None, help="keep datasets, checkpoints and results.json here (default: a "
                    "temporary folder, removed at the end)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    ap.add_argument("-v", "--verbose", action="store_true", help="log the trainers' progress")
    args = ap.parse_args(argv)
    # tiny4k on the fast path: its BPE keeps >= 90 % of test labels in a shorter prompt (the
    # design's rule, which the 800-symbol BPE misses at 3,584 tokens) and halves each evaluation.
    args.model = args.model or ("tiny4k" if args.fast else "tiny")
    preset = PRESETS[R.built_shape(args.model) or "default"]
    values: dict[str, Any] = {**preset, **(FAST if args.fast else {}), "model": args.model, "out": args.out}
    for name in opt:
        got = getattr(args, name, None)
        if got is not None and name not in ("model", "out"):
            values[name] = got
    return BenchConfig(**values), args


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    console = Console(stderr=True)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        # Budget cuts are expected at these sizes; the manifest counts them (results.json "skipped").
        for noisy in ("transformers", "trl", "accelerate", "datasets", "shop_r1.simulator.prompt",
                      "shop_r1.training.data"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        import datasets  # optional heavy dependency: only to silence its progress bars

        datasets.disable_progress_bars()
    tmp = None
    out = Path(cfg.out) if cfg.out else Path(tmp := tempfile.mkdtemp(prefix="shop-r1-paper-table-"))
    try:
        results = run_benchmark(cfg, out, console)
        render(results, console)
        console.print(f"[dim]total {results['timings']['total']:.0f} s; "
                      f"{'results in ' + str(out / 'results.json') if cfg.out else 'temporary files removed'}[/]")
        if args.json:
            print(json.dumps(results, indent=2, default=str))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
