"""Smoke test of the paper-table benchmark's fast path: the whole pipeline with tiny settings.

Real components throughout: scripted shoppers in real Chromium on the bundled shop, the template
teacher, the dataset builder, a tiny model built offline from the train split, real TRL SFT and
GRPO steps on CPU and the real evaluation. Only the sizes are tiny; the figures themselves are
not asserted (a model trained for seconds is not expected to be good), only that the table is
whole, paired and consistent, and that the experiment's design rules hold.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shop_r1.envs.actions import ACTION_TYPES, Click, Terminate, TypeAndSubmit
from shop_r1.simulator.scoring import compute_metrics

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("zero-shot", "SFT", "SFT-continued", "SFT+RL(binary)", "Shop-R1")
METRICS = ("exact", "type_acc", "type_f1")


def _bench():
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "bench" / "paper_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("paper-table")
    cmd = [sys.executable, str(ROOT / "bench" / "paper_table.py"), "--model", "tiny", "--shoppers", "6",
           "--max-steps", "3", "--seeds", "0", "--sft-rounds", "2", "--sft-epochs-per-round", "0.5",
           "--grpo-steps", "1", "--num-generations", "2", "--grpo-prompts-per-step", "1",
           "--rl-token-budget", "1280", "--sft-max-tokens", "2048", "--sft-max-page-tokens", "512", "--no-persona",
           "--bootstrap", "200",
           "--out", str(out), "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout), out, proc


def test_tables_have_every_setting_with_paired_cis(run):
    results, _, _ = run
    n = results["data"]["test_steps"]
    assert n >= 1 and n == results["data"]["counts"]["rl"]["test"]
    assert 0.0 <= results["data"]["labels_visible"] <= 1.0
    # Budgets sized from the train references, so no answer is cut before its JSON closes.
    budget = results["data"]["completion_budget"]
    assert budget["truncated"] == 0 and budget["max"] > 0
    assert results["config"]["max_completion_length"] == results["config"]["eval_max_new_tokens"] == budget["budget"]
    for mode in ("free", "constrained"):
        table = results["tables"][mode]["settings"]
        assert tuple(table) == SETTINGS
        for name, row in table.items():
            assert row["n_test"] == n and row["labels_visible"] == results["data"]["labels_visible"]
            for m in METRICS:
                assert 0.0 <= row[m] <= 1.0, (mode, name, m)
            assert row["exact"] <= row["type_acc"]  # an exact action has the right type
            if name == "SFT":
                continue
            for m in METRICS:
                d = row[f"{m}_vs_sft"]
                lo, hi = d["ci95"]
                assert -1.0 <= lo <= hi <= 1.0
                assert d["diff"] == pytest.approx(row[m] - table["SFT"][m])
        for arm in ("SFT+RL(binary)", "Shop-R1"):
            assert table[arm]["param_change_norm"] >= 0  # recorded by the trainer (0 when no group varied)
            assert 0.0 <= table[arm]["frac_reward_zero_std"] <= 1.0
        assert isinstance(results["tables"][mode]["ordering"]["holds_on_primary"], bool)
    assert results["settings"] == results["tables"]["free"]["settings"]


def test_sft_is_chosen_on_validation_and_every_arm_starts_from_it(run):
    results, out, _ = run
    assert json.loads((out / "results.json").read_text()) == results
    facts = results["training"]["0"]
    rounds = facts["sft_rounds"]
    assert len(rounds) == 2
    best = max(rounds, key=lambda r: (r["val_type_acc"] + r["val_type_f1"], -r["round"]))
    chosen = Path(facts["sft_chosen"])
    assert chosen == out / "seed0" / f"sft-r{best['round']}"
    for name in ("grpo-binary", "grpo-shop-r1", "sft-continued"):
        record = json.loads((out / "seed0" / name / "shop-r1-train.json").read_text())
        assert Path(record["base_model"]) == chosen.resolve(), name
        assert Path(record["data"]["dataset"]) == (out / "data").resolve()
    binary = json.loads((out / "seed0" / "grpo-binary" / "shop-r1-train.json").read_text())
    shop = json.loads((out / "seed0" / "grpo-shop-r1" / "shop-r1-train.json").read_text())
    assert binary["reward_functions"] == ["binary"]
    assert shop["reward_functions"][:4] == ["format", "type", "attribute", "value"]
    same = {k for k in binary["settings"] if binary["settings"][k] == shop["settings"][k]}
    assert set(binary["settings"]) - same <= {"reward", "alpha", "out"}  # arms differ only in the reward
    # The control's learning-rate schedule runs to its end (decays to 0 like every SFT round's)
    # instead of being cut at full rate by a wall-clock stop.
    control = json.loads((out / "seed0" / "sft-continued" / "shop-r1-train.json").read_text())
    assert facts["SFT-continued"]["steps"] >= 1
    assert control["settings"]["max_steps"] == control["metrics"]["global_step"] == facts["SFT-continued"]["steps"]
    assert control["settings"]["max_seconds"] is None


def test_table_is_printed_for_a_person(run):
    _, _, proc = run
    assert "Shop-R1 small-scale reproduction (free greedy decoding)" in proc.stderr
    assert "constrained greedy decoding" in proc.stderr
    assert "Paper ordering SFT < SFT+RL(binary) < Shop-R1" in proc.stderr and "Labels visible" in proc.stderr
    assert "||Δθ||" in proc.stderr  # each RL arm's parameter change


def test_bootstrap_macro_f1_is_the_evaluations_macro_f1():
    bench = _bench()
    rng = random.Random(3)
    make = {"click": lambda: Click(name="a"), "type_and_submit": lambda: TypeAndSubmit(name="q", text="x"),
            "terminate": lambda: Terminate()}
    for _ in range(20):
        labels = [make[rng.choice(ACTION_TYPES)]() for _ in range(rng.randint(1, 30))]
        preds = [None if rng.random() < 0.2 else make[rng.choice(ACTION_TYPES)]() for _ in labels]
        ref = compute_metrics(preds, labels).type_macro_f1
        idx = {t: i for i, t in enumerate(ACTION_TYPES)}
        p = np.array([[idx[x.type] if x is not None else -1 for x in preds]])
        lab = np.array([[idx[x.type] for x in labels]])
        assert bench.macro_f1(p, lab)[0] == pytest.approx(ref)


def test_fast_path_keeps_the_designed_data_and_lets_flags_win():
    bench = _bench()
    fast, _ = bench.parse_args(["--fast"])
    designed, _ = bench.parse_args([])
    assert fast.seeds == (0,) and fast.sft_rounds == 1 and fast.constrained_too is False
    assert fast.grpo_steps < designed.grpo_steps
    # The data rules of the experiment are not relaxed for speed.
    for name in ("shoppers", "max_steps", "test_fraction", "with_persona"):
        assert getattr(fast, name) == getattr(designed, name), name
    # The fast model is tiny4k with its own preset's prompt budget (its BPE keeps the labels in view).
    tiny4k, _ = bench.parse_args(["--model", "tiny4k"])
    assert fast.model == "tiny4k" and designed.model == "tiny"
    assert fast.rl_token_budget == tiny4k.rl_token_budget < designed.rl_token_budget
    assert bench.parse_args(["--fast", "--grpo-steps", "3", "--seeds", "0,1"])[0].grpo_steps == 3
    assert bench.parse_args(["--fast", "--model", "small"])[0].sft_lr == bench.PRESETS["small"]["sft_lr"]


def test_device_is_checked_before_the_run_starts():
    """A wrong --device fails at once, naming the flag, not after the shoppers have been simulated."""
    import torch

    bench = _bench()
    assert bench.parse_args([])[0].device == "auto"
    with pytest.raises(SystemExit, match="--device must be auto, cpu or cuda, got 'gpu'"):
        bench.parse_args(["--device", "gpu"])[0].validate()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda was asked for but torch sees no CUDA device"):
            bench.parse_args(["--device", "cuda"])[0].validate()
    else:
        bench.parse_args(["--device", "cuda"])[0].validate()
