"""Smoke test of the paper-table benchmark's fast path: the whole pipeline with tiny settings.

Real components throughout: scripted shoppers in real Chromium on the bundled shop, the template
teacher, the dataset builder, a tiny model built offline, real TRL SFT and GRPO steps on CPU and
the real evaluation. Only the sizes are tiny; the figures themselves are not asserted (a model
trained for seconds is not expected to be good), only that the table is whole and well-formed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("zero-shot", "SFT", "SFT+RL(binary)", "Shop-R1")
TYPES = ("click", "type_and_submit", "terminate")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("paper-table")
    cmd = [sys.executable, str(ROOT / "bench" / "paper_table.py"), "--model", "tiny", "--shoppers", "4",
           "--max-steps", "4", "--sft-epochs", "1", "--grpo-steps", "1", "--num-generations", "2",
           "--rl-token-budget", "1024", "--sft-max-tokens", "1280", "--sft-max-page-tokens", "384",
           "--max-completion-length", "24", "--eval-max-new-tokens", "24", "--out", str(out), "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout), out, proc


def test_table_has_every_setting_with_metrics_in_range(run):
    results, _, _ = run
    assert tuple(results["settings"]) == SETTINGS
    n = results["data"]["test_steps"]
    assert n >= 1 and n == results["data"]["counts"]["rl"]["test"]
    for name in SETTINGS:
        r = results["settings"][name]
        assert r["n_steps"] == n, name  # every setting scored on the same held-out steps
        for key in ("exact_accuracy", "type_accuracy", "type_macro_f1"):
            assert 0.0 <= r[key] <= 1.0, (name, key, r[key])
        assert r["exact_accuracy"] <= r["type_accuracy"]  # an exact action has the right type
        assert set(r["per_type"]) == set(TYPES)
        assert sum(r["per_type"][t]["support"] for t in TYPES) == n
        for t in TYPES:
            assert 0.0 <= r["per_type"][t]["exact_accuracy"] <= 1.0
    assert 0.0 <= results["data"]["exact_ceiling"] <= 1.0
    assert set(results["paper_3b"]["overall"]) == set(SETTINGS)
    assert results["ordering"]["checked"] is True
    assert isinstance(results["ordering"]["holds"], bool)


def test_settings_share_data_seed_and_the_sft_start(run):
    results, out, _ = run
    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "data" / "rl" / "test.parquet").is_file() and (out / "data" / "sft" / "train.parquet").is_file()
    sft = out / "ckpt-sft"
    for name in ("ckpt-grpo-binary", "ckpt-grpo-shop-r1"):
        record = json.loads((out / name / "shop-r1-train.json").read_text())
        assert record["stage"] == "grpo"
        assert Path(record["base_model"]) == sft.resolve()  # both GRPO arms start from the same SFT checkpoint
        assert record["settings"]["seed"] == results["config"]["seed"]
        assert Path(record["data"]["dataset"]) == (out / "data").resolve()
    binary = json.loads((out / "ckpt-grpo-binary" / "shop-r1-train.json").read_text())
    shop = json.loads((out / "ckpt-grpo-shop-r1" / "shop-r1-train.json").read_text())
    assert binary["reward_functions"] == ["binary"]
    assert shop["reward_functions"] == ["format", "type", "attribute", "value", "self_certainty"]
    assert shop["settings"]["alpha"] == 0.005 and shop["settings"]["beta"] == 0.001


def test_table_is_printed_for_a_person(run):
    _, _, proc = run
    assert "Shop-R1 small-scale reproduction" in proc.stderr
    assert "paper 3B" in proc.stderr
    assert "Exact accuracy per action type" in proc.stderr
    assert "Paper ordering" in proc.stderr
