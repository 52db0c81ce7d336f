"""docs/reproduction.md opens with the current result, rendered from the committed docs/results.json
by bench/results_md.py: the page and the numbers cannot drift apart."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _results_md():
    spec = importlib.util.spec_from_file_location("results_md", ROOT / "bench" / "results_md.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(doc: str, md) -> str:
    start, end = doc.index(md.BEGIN), doc.index(md.END)
    return doc[start:end + len(md.END)]


def test_the_current_result_comes_first_and_matches_results_json() -> None:
    md = _results_md()
    doc = (ROOT / "docs" / "reproduction.md").read_text(encoding="utf-8")
    first_section = doc.index("\n## ")
    assert doc[first_section:].startswith("\n## Current result"), "the current result must be the page's first section"
    results = ROOT / "docs" / "results.json"
    if results.is_file():
        assert _section(doc, md) == md.markdown(json.loads(results.read_text(encoding="utf-8"))), (
            "docs/reproduction.md's result differs from docs/results.json: run "
            "`.venv/bin/python bench/results_md.py docs/results.json --write`")
    else:
        assert "No run of the current design is committed yet" in _section(doc, md)


def test_the_rendering_names_every_setting_and_its_interval() -> None:
    md = _results_md()
    ci = {"diff": 0.041, "ci95": [0.024, 0.06], "per_seed": [0.05, 0.03]}
    per_type = {"click": {"n": 100, "exact": 0.1, "type_recall": 0.9},
                "terminate": {"n": 56, "exact": 0.7, "type_recall": 0.7},
                "predicted_terminate_rate": {"rate": 0.3, "label_rate": 0.36}}
    settings = {name: {"exact": 0.05, "type_acc": 0.8, "type_f1": 0.6, "n_test": 156, "per_type": per_type,
                       **({} if name == "SFT" else {"exact_vs_sft": ci, "type_acc_vs_sft": ci, "type_f1_vs_sft": ci})}
                for name in ("zero-shot", "SFT", "Shop-R1")}
    results = {"config": {"model": "tiny4k", "seeds": [0, 1], "grpo_steps": 100, "grpo_prompts_per_step": 4,
                          "num_generations": 4, "rollout_temperature": 0.6},
               "data": {"split": {"by": "persona", "test_personas_in_train": 0}, "labels_visible": 0.95,
                        "exact_ceiling": 0.97},
               "tables": {"free": {"settings": settings, "one_thing": {}, "ordering": {"holds_on_primary": False}}},
               "timings": {"total": 3600}, "machine": {"cpus": 2, "load_avg_start": [0.5, 0.4, 0.3]}}
    text = md.markdown(results)
    assert text.startswith(md.BEGIN) and text.endswith(md.END)
    assert "| Shop-R1 | 5.0 | 80.0 | 60.0 | +4.1 [+2.4, +6.0] (+5.0 +3.0)" in text
    assert "| SFT | 5.0 | 80.0 | 60.0 | – | – | – |" in text
    # tiny4k is built here with random weights: its base is not called zero-shot
    assert "| untrained base (random init) | 5.0 |" in text and "zero-shot" not in text
    assert "**not shown**" in text and "seeds [0, 1]" in text
    assert "| setting | click (n 100) | terminate (n 56) | predicted terminate |" in text
    assert "| Shop-R1 | 10.0 / 90.0 | 70.0 / 70.0 | 30.0 (labels 36.0) |" in text
    with pytest.raises(ValueError):
        md.replace_section("no markers here", text)
