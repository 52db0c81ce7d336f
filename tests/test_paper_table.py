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
SETTINGS = ("zero-shot", "SFT", "SFT-continued", "SFT+RL(binary)", "SFT+RL(hierarchical)", "Shop-R1")
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
    results, out, _ = run
    n = results["data"]["test_steps"]
    assert n >= 1 and n == results["data"]["counts"]["rl"]["test"]
    # label visibility is recounted from the dataset on disk (page part only) and must agree
    bench = _bench()
    assert {k: results["data"][k] for k in bench.label_visibility(out / "data")} == bench.label_visibility(out / "data")
    assert results["data"]["with_target"] + results["data"]["terminates"] == n
    # the split is by persona: no test shopper was trained on
    assert results["data"]["split"]["by"] == "persona" and results["data"]["split"]["test_personas_in_train"] == 0
    # Budgets sized from the train references, so no answer is cut before its JSON closes.
    budget = results["data"]["completion_budget"]
    assert budget["truncated"] == 0 and budget["max"] > 0
    assert results["config"]["max_completion_length"] == results["config"]["eval_max_new_tokens"] == budget["budget"]
    assert tuple(results["tables"]) == ("free", "constrained", "sampled")
    for mode in ("free", "constrained", "sampled"):
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
                assert d["diff"] == pytest.approx(row[m] - table["SFT"][m])
                # the per-seed differences are the per-seed values' differences
                assert d["per_seed"] == pytest.approx([a[m] - b[m] for a, b in zip(row["per_seed"],
                                                                                     table["SFT"]["per_seed"])])
                assert d["n_seeds"] == 1 and "seeds drawn with replacement" in d["method"]
        for arm in ("SFT+RL(binary)", "SFT+RL(hierarchical)", "Shop-R1"):
            # the summary is the mean of what each seed's trainer recorded beside its checkpoint
            folder = {"SFT+RL(binary)": "grpo-binary", "SFT+RL(hierarchical)": "grpo-hierarchical",
                      "Shop-R1": "grpo-shop-r1"}[arm]
            record = json.loads((out / "seed0" / folder / "shop-r1-train.json").read_text())
            assert table[arm]["param_change_norm"] == pytest.approx(record["param_change"]["l2"])
            assert record["settings"]["filter_zero_spread"] is True and record["settings"]["scale_rewards"] == "group"
        # the verdict is read from the intervals
        o = results["tables"][mode]["ordering"]
        for name, v in o["vs_sft"].items():
            for m in METRICS:
                lo, hi = table[name][f"{m}_vs_sft"]["ci95"]
                assert v[m] == ("better" if lo > 0 else "worse" if hi < 0 else "not shown")
        assert set(results["tables"][mode]["one_thing"]) >= {"hierarchical_vs_binary", "self_certainty",
                                                              "rl_vs_continued"}
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
    for name in ("grpo-binary", "grpo-hierarchical", "grpo-shop-r1", "sft-continued"):
        record = json.loads((out / "seed0" / name / "shop-r1-train.json").read_text())
        assert Path(record["base_model"]) == chosen.resolve(), name
        assert Path(record["data"]["dataset"]) == (out / "data").resolve()
    def record(name):
        return json.loads((out / "seed0" / name / "shop-r1-train.json").read_text())

    binary, hier, shop = record("grpo-binary"), record("grpo-hierarchical"), record("grpo-shop-r1")
    assert binary["reward_functions"] == ["binary"]
    assert hier["reward_functions"] == ["format", "type", "attribute", "value"]
    assert shop["reward_functions"] == ["format", "type", "attribute", "value", "self_certainty"]

    def differing(a, b):
        return {k for k in a["settings"] if a["settings"][k] != b["settings"][k]} - {"out"}

    # each arm differs from the one before it in one thing
    assert differing(binary, hier) == {"reward"}
    assert differing(hier, shop) == {"alpha"}
    # The control's learning-rate schedule runs to its end (decays to 0 like every SFT round's)
    # instead of being cut at full rate by a wall-clock stop.
    control = json.loads((out / "seed0" / "sft-continued" / "shop-r1-train.json").read_text())
    assert facts["SFT-continued"]["steps"] >= 1
    assert control["settings"]["max_steps"] == control["metrics"]["global_step"] == facts["SFT-continued"]["steps"]
    assert control["settings"]["max_seconds"] is None


def test_table_is_printed_for_a_person(run):
    _, _, proc = run
    assert "Shop-R1 small-scale reproduction (free greedy decoding)" in proc.stderr
    assert "constrained greedy decoding" in proc.stderr and "sampled as the rollouts" in proc.stderr
    assert "One training seed" in proc.stderr  # a one-seed run says its intervals cannot hold seed variance
    text = " ".join(proc.stderr.split())  # rich wraps long lines at the console width
    assert "Paper ordering SFT < SFT+RL(binary) < Shop-R1" in text and "named on the page part" in text
    assert "Split by persona: test personas also in train: 0" in text
    # each one-thing comparison, with what differs and its verdict
    assert "Shop-R1 − SFT+RL(hierarchical) (alpha (self-certainty) only)" in text
    assert "SFT+RL(hierarchical) − SFT+RL(binary) (action reward" in text
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


# ------------------------------------------------------------------ issue 23: seeds as the unit, pages only


def _scores(bench, correct: np.ndarray, labels: np.ndarray, sessions: list[str]):
    """A StepScores whose predictions are right (type and exact) where ``correct`` says so."""
    pred = np.where(correct, labels, (labels + 1) % 3)
    keys = [(sid, i) for i, sid in enumerate(sessions)]
    acc = float(correct.mean())
    f1 = float(bench.macro_f1(pred[None, :], labels[None, :])[0])
    report = {"exact_accuracy": acc, "type_accuracy": acc, "type_macro_f1": f1, "n_unparsed": 0}
    return bench.StepScores(keys, labels, pred, correct.copy(), report)


def _design(n_sessions: int = 30, per_session: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    sessions = [f"s{j:02d}" for j in range(n_sessions) for _ in range(per_session)]
    labels = rng.integers(0, 3, size=len(sessions))
    return rng, sessions, labels


def test_summarise_interval_holds_the_seeds_disagreement():
    """Five seeds whose Shop-R1 - SFT differences disagree (+30, -30, +30, -30, +10 points on 150 steps):
    an interval over steps alone (seeds averaged inside each resample) is ~0.1 wide and excludes 0 at times;
    the seed-level interval must be as wide as the seeds' spread says and contain 0."""
    bench = _bench()
    rng, sessions, labels = _design()
    deltas = [0.3, -0.3, 0.3, -0.3, 0.1]
    scores = {"SFT": [], "Shop-R1": []}
    for d in deltas:
        scores["SFT"].append(_scores(bench, rng.random(len(labels)) < 0.5, labels, sessions))
        scores["Shop-R1"].append(_scores(bench, rng.random(len(labels)) < 0.5 + d, labels, sessions))
    table = bench.summarise(scores, n_boot=2000)
    d = table["Shop-R1"]["type_acc_vs_sft"]
    per_seed = [a.exact.mean() - b.exact.mean() for a, b in zip(scores["Shop-R1"], scores["SFT"])]
    assert d["per_seed"] == pytest.approx(per_seed)
    assert d["diff"] == pytest.approx(np.mean(per_seed))
    lo, hi = d["ci95"]
    assert lo < 0 < hi
    # a percentile bootstrap of a mean of 5 values: half-width ~ 1.96 * sqrt(4/5) * sd / sqrt(5)
    expected = 2 * 1.96 * np.sqrt(4 / 5) * np.std(per_seed, ddof=1) / np.sqrt(5)
    assert hi - lo > 0.7 * expected and expected > 0.3
    assert bench.ordering(table | {"SFT+RL(binary)": table["Shop-R1"]})["vs_sft"]["Shop-R1"]["type_acc"] == "not shown"


def test_summarise_interval_holds_the_sessions_clustering():
    """One model per seed, seeds in full agreement, but whole sessions right or wrong together: the interval
    is that of ~30 sessions, not of 300 independent steps."""
    bench = _bench()
    rng, sessions, labels = _design(n_sessions=30, per_session=10)
    session_of = np.array([int(s[1:]) for s in sessions])
    sft_sessions = rng.random(30) < 0.5
    arm_sessions = rng.random(30) < 0.6
    sft = _scores(bench, sft_sessions[session_of], labels, sessions)
    arm = _scores(bench, arm_sessions[session_of], labels, sessions)
    table = bench.summarise({"SFT": [sft] * 5, "Shop-R1": [arm] * 5}, n_boot=2000)
    lo, hi = table["Shop-R1"]["exact_vs_sft"]["ci95"]
    per_session = arm_sessions.astype(float) - sft_sessions.astype(float)
    expected = 2 * 1.96 * np.std(per_session, ddof=1) / np.sqrt(30)
    assert hi - lo > 0.8 * expected
    assert table["Shop-R1"]["exact_vs_sft"]["per_seed"] == pytest.approx([per_session.mean()] * 5)


def test_summarise_shows_a_clear_effect():
    """The intervals are not just wide: five seeds that agree on +40 points give an interval that excludes 0,
    and the verdict says so."""
    bench = _bench()
    rng, sessions, labels = _design()
    scores = {"SFT": [], "SFT+RL(binary)": []}
    for _ in range(5):
        scores["SFT"].append(_scores(bench, rng.random(len(labels)) < 0.3, labels, sessions))
        scores["SFT+RL(binary)"].append(_scores(bench, rng.random(len(labels)) < 0.7, labels, sessions))
    table = bench.summarise(scores, n_boot=1000)
    for m in METRICS:
        assert table["SFT+RL(binary)"][f"{m}_vs_sft"]["ci95"][0] > 0.2, m
    assert bench.ordering(table | {"Shop-R1": table["SFT+RL(binary)"]})["vs_sft"]["SFT+RL(binary)"] == {
        m: "better" for m in METRICS}


def test_summarise_refuses_unpaired_steps():
    bench = _bench()
    _, sessions, labels = _design()
    a = _scores(bench, np.ones(len(labels), bool), labels, sessions)
    b = _scores(bench, np.ones(len(labels), bool), labels, sessions)
    b.keys = list(reversed(b.keys))
    with pytest.raises(AssertionError, match="not be paired"):
        bench.summarise({"SFT": [a], "Shop-R1": [b]}, n_boot=10)


def test_weighted_macro_f1_is_the_macro_f1_of_the_repeated_steps():
    bench = _bench()
    rng = np.random.default_rng(4)
    pred, label = rng.integers(-1, 3, size=40), rng.integers(0, 3, size=40)
    w = rng.integers(0, 4, size=(6, 40)).astype(float)
    for row in range(6):
        rep_p, rep_l = np.repeat(pred, w[row].astype(int)), np.repeat(label, w[row].astype(int))
        assert bench.macro_f1(pred, label, w)[row] == pytest.approx(bench.macro_f1(rep_p[None], rep_l[None])[0])


def _visibility_dir(tmp_path: Path) -> Path:
    from datasets import Dataset

    from shop_r1.envs.observation import Observation
    from shop_r1.simulator.records.exchange import HistoryItem
    from shop_r1.simulator.agent.prompt.render import build_messages

    earlier = HistoryItem(url="http://shop/s?k=x", simplified_html='<button name="old_page.buy">Buy</button>',
                          action={"type": "click", "name": "old_page.buy"}, rationale='I click "in_history.only".')
    page = Observation(url="http://shop/p/1", title="p",
                       simplified_html='<a name="here.view_product">A</a><input name=search_input>',
                       elements=())
    rows = []
    for label in ({"type": "click", "name": "old_page.buy"},  # only in a history page: not visible
                  {"type": "click", "name": "in_history.only"},  # only quoted in a history rationale
                  {"type": "click", "name": "here.view_product"},  # on the page
                  {"type": "type_and_submit", "name": "search_input", "text": "x"},  # on the page, unquoted
                  {"type": "terminate"}):
        rows.append({"prompt": build_messages(page, [earlier], intent="a here.view_product lookalike goal"),
                     "label": json.dumps(label), "label_type": label["type"],
                     "names": ["here.view_product", "search_input"], "session_id": "s", "step": 1})
    (tmp_path / "rl").mkdir()
    Dataset.from_list(rows).to_parquet(str(tmp_path / "rl" / "test.parquet"))
    return tmp_path


def test_label_visibility_counts_the_page_part_only(tmp_path: Path):
    """Issue 23: names in the history lines counted as visible, and every terminate did."""
    bench = _bench()
    got = bench.label_visibility(_visibility_dir(tmp_path))
    assert got == {"test_steps": 5, "with_target": 4, "label_visible": 2, "terminates": 1,
                   "labels_visible": 0.5, "exact_ceiling": 3 / 5}


def test_page_part_is_the_current_page_between_header_and_reminders():
    from shop_r1.envs.observation import Observation
    from shop_r1.simulator.records.exchange import HistoryItem
    from shop_r1.simulator.agent.prompt.render import build_messages

    bench = _bench()
    earlier = HistoryItem(url="u0", simplified_html="<p name=old>old</p>", action={"type": "terminate"})
    page = Observation(url="u1", title="t", simplified_html="<p name=new>new</p>", elements=())
    user = build_messages(page, [earlier], intent="find new things")[-1]["content"]
    assert bench.page_part(user).strip() == "<p name=new>new</p>"
    with pytest.raises(ValueError, match="current-page header"):
        bench.page_part("no page here")
