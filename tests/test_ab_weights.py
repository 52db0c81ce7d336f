"""Cohort weights for `shop-r1 ab --weights`: raking reaches the mix's marginals on real library
personas, weighted metrics (statsmodels DescrStatsW / CompareMeans) equal the plain ones under
equal weights and follow an up-weighted cohort, and an experiment on the bundled shop with
scripted shoppers in real Chromium writes the weighted and the unweighted metrics to ab.json."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shop_r1.personas.sampler import DemographicMix, sample
from shop_r1.simulator.analysis.ab import weights as W
from shop_r1.simulator.analysis.ab.analysis import ABResult, analyse
from shop_r1.simulator.cli.ab import ab
from shop_r1.simulator.analysis.ab.design import Arm
from shop_r1.simulator.analysis.ab.experiment import Experiment, run_experiment
from shop_r1.simulator.analysis.ab.stats import paired_mean, paired_rate, unpaired_mean, unpaired_rate
from shop_r1.simulator.agent.policies.factory import PolicySpec
from shop_r1.simulator.analysis.report import persona_field

TWO_FIELDS = {"age_band": {"18-24": 30, "25-34": 50, "35-44": 20}, "gender": {"female": 40, "male": 60}}


def _shares(personas: list[dict], w: np.ndarray, field: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for p, x in zip(personas, w):
        out[persona_field(p, field)] += float(x)
    return {k: v / float(w.sum()) for k, v in out.items()}


# ---- raking ------------------------------------------------------------------------------------


def test_raking_reaches_the_mix_on_library_personas() -> None:
    people = [p.model_dump(mode="json") for p in sample(52, seed=3)]
    mix = DemographicMix.from_mapping(TWO_FIELDS, "two.json")
    raked = W.rake(people, mix)
    assert raked.weights.mean() == pytest.approx(1.0, abs=1e-12)
    for field, dist in TWO_FIELDS.items():
        shares = _shares(people, raked.weights, field)
        for value, pct in dist.items():
            assert shares[value] == pytest.approx(pct / 100, abs=1e-6), (field, value)
        # personas without the field ('unknown') are outside the mix's population
        assert shares.get("unknown", 0.0) == 0.0
    unknown = sum(1 for p in people if "unknown" in (persona_field(p, "age_band"), persona_field(p, "gender")))
    assert unknown > 0 and raked.zero_weight == unknown
    assert 1 < raked.effective_n < 52 - unknown  # uneven weights cost precision
    # A mix the sample already has gives equal weights.
    counts = defaultdict(int)
    for p in people:
        counts[persona_field(p, "gender")] += 1
    own = {"gender": {v: 100 * c / len(people) for v, c in counts.items()}}
    same = W.rake(people, DemographicMix.from_mapping(own))
    assert np.allclose(same.weights, 1.0) and same.sweeps <= 1


def test_raking_names_a_value_no_shopper_has_and_zeroes_a_zero_share() -> None:
    people = [p.model_dump(mode="json") for p in sample(52, seed=3)]
    with pytest.raises(W.WeightsError, match=r"old\.json: no shopper in the sample has age_band=65\+; "
                                             r"the weights cannot reach the mix's 12 %"):
        W.rake(people, DemographicMix.from_mapping({"age_band": {"25-34": 88, "65+": 12}}, "old.json"))
    raked = W.rake(people, DemographicMix.from_mapping({"age_band": {"18-24": 0, "25-34": 100}}))
    for p, w in zip(people, raked.weights):
        assert (w > 0) == (persona_field(p, "age_band") == "25-34")


# ---- weighted metrics ----------------------------------------------------------------------------


def test_equal_weights_give_the_plain_estimates() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(30) < 0.5
    b = rng.random(30) < 0.35
    ones = np.ones(30)
    wr, pr = W.paired("rate", a.astype(float), b.astype(float), ones), paired_rate(list(a), list(b))
    assert abs(wr.diff - pr.diff) < 1e-12 and wr.a == pytest.approx(pr.a) and wr.b == pytest.approx(pr.b)
    assert wr.effective_n == pytest.approx(30) and wr.n == 30 and wr.method.startswith("weighted:")
    xa, xb = rng.normal(10, 2, 30), rng.normal(11, 2, 30)
    wm, pm = W.paired("mean", xa, xb, ones), paired_mean(list(xa), list(xb))
    assert abs(wm.diff - pm.diff) < 1e-12
    assert wm.ci95 == pytest.approx(pm.ci95, abs=1e-9) and wm.p_value == pytest.approx(pm.p_value, abs=1e-9)
    bm, um = W.between("mean", xa, ones, xb[:25], ones[:25]), unpaired_mean(list(xa), list(xb[:25]))
    assert abs(bm.diff - um.diff) < 1e-12  # Welch t either way
    assert bm.ci95 == pytest.approx(um.ci95, abs=1e-6) and bm.p_value == pytest.approx(um.p_value, abs=1e-6)
    br, ur = W.between("rate", a.astype(float), ones, b.astype(float), ones), unpaired_rate(list(a), list(b))
    assert abs(br.diff - ur.diff) < 1e-12


def test_weighted_diff_moves_toward_the_up_weighted_cohort() -> None:
    # Cohort 18-24 (4 pairs) always converts on B only; cohort 25-34 (6 pairs) never differs.
    people = [{"age_band": "18-24"}] * 4 + [{"age_band": "25-34"}] * 6
    a = [0.0] * 4 + [1.0, 0.0] * 3
    b = [1.0] * 4 + [1.0, 0.0] * 3
    plain = W.paired("rate", a, b, np.ones(10))
    assert plain.diff == pytest.approx(0.4)
    raked = W.rake(people, DemographicMix.from_mapping({"age_band": {"18-24": 70, "25-34": 30}}))
    weighted = W.paired("rate", a, b, raked.weights)
    assert weighted.diff == pytest.approx(0.7, abs=1e-9) and weighted.diff > plain.diff
    assert weighted.b - weighted.a == pytest.approx(weighted.diff)
    assert weighted.effective_n < 10  # the few young pairs count more: less information than 10 equal pairs
    lo, hi = weighted.ci95
    assert -1 <= lo <= weighted.diff <= hi <= 1
    # Between design, the same cohorts in independent arms.
    wb = W.between("rate", a, raked.weights, b, raked.weights)
    assert wb.diff == pytest.approx(0.7, abs=1e-9)


# ---- CLI and an experiment --------------------------------------------------------------------------


def test_ab_cli_refuses_a_broken_weights_file_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps({"age_band": {"18-24": 60, "25-34": 30}}))
    res = CliRunner().invoke(ab, ["--a", "bundled:control", "--b", "bundled:recolor", "--weights", str(bad),
                                  "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert str(bad) in res.output and "'age_band'" in res.output and "sum to 90" in res.output
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ABResult, Path, Path]:
    root = tmp_path_factory.mktemp("abw")
    mix = root / "mix.json"  # quota: 3 + 3 per age band and per gender
    mix.write_text(json.dumps({"age_band": {"18-24": 50, "25-34": 50}, "gender": {"female": 50, "male": 50}}))
    weights = root / "weights.json"
    weights.write_text(json.dumps({"age_band": {"18-24": 80, "25-34": 20}, "gender": {"female": 50, "male": 50}}))
    out = root / "exp"
    exp = Experiment(a=Arm(label="a", target="bundled:control"), b=Arm(label="b", target="bundled:hidden-add-to-cart"),
                     out_dir=out, shoppers=6, seed=11, mix=mix, weights=weights, run_id="ab-test-weights",
                     tasks=["electric kettle", "yoga mat", "portable ssd"], run={"max_steps": 4, "concurrency": 6})
    return out, run_experiment(exp, PolicySpec(name="scripted", seed=11)), mix, weights


def test_experiment_writes_weighted_and_unweighted_metrics(weighted_run) -> None:
    out, result, mix, weights = weighted_run
    data = json.loads((out / "ab.json").read_text())
    assert data["weights"]["fields"] == ["age_band", "gender"] and data["weights"]["source"] == str(weights)
    assert 1 < data["weights"]["effective_n"] < data["shoppers"] == 6
    assert data["weights"]["min"] < 1 < data["weights"]["max"]
    assert set(data["metrics_unweighted"]) == set(data["metrics"])
    for name, m in data["metrics"].items():
        assert m["method"].startswith("weighted:") and m["mde"] is None, name
        assert not data["metrics_unweighted"][name]["method"].startswith("weighted:")
    assert any("metrics weighted to the cohort shares" in n for n in data["notes"])
    # ab.json still reads back (new fields optional) and the report says the metrics are weighted
    again = ABResult.model_validate(data)
    assert again.weights is not None and again.metrics_unweighted is not None
    assert "metrics weighted</b> to the cohort shares" in (out / "ab.html").read_text(encoding="utf-8")
    # The plain analysis has no weights; the quota mix itself as weights changes nothing.
    plain = analyse(out / "a", out / "b", design="paired")
    assert plain.weights is None and plain.metrics_unweighted is None
    assert json.loads(plain.model_dump_json())["metrics"] == data["metrics_unweighted"]
    same = analyse(out / "a", out / "b", design="paired", weights=DemographicMix.from_file(mix))
    assert same.weights is not None and same.weights.effective_n == pytest.approx(6, abs=1e-6)
    for name, m in same.metrics.items():
        assert abs(m.diff - plain.metrics[name].diff) < 1e-9, name
    # Between design on the same directories: each arm weighted to the mix on its own.
    between = analyse(out / "a", out / "b", design="between", weights=DemographicMix.from_file(weights))
    assert between.weights is not None and set(between.weights.effective_n_by_arm or {}) == {"a", "b"}
    assert between.metrics["added_to_cart"].method.startswith("weighted:")
