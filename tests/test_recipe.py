"""``shop-r1 train recipe`` on a tiny budget leaves a policy folder the simulator loads.

Real components throughout: scripted shoppers in real Chromium on the bundled shop, the template
teacher, the dataset builder, a tiny Qwen2 built offline, real TRL SFT and GRPO steps on CPU, and
the transformers policy backend answering a recorded page of the run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.observation import Element, Observation
from shop_r1.simulator.records.exchange import PolicyRequest
from shop_r1.simulator.agent.policies.transformers_policy import TransformersPolicy
from shop_r1.training.cli_train import train
from shop_r1.training.data import load_split, load_trace
from shop_r1.training.recipe import RECIPE_RECORD_FILE, train_corpus

TINY = ["--model", "tiny", "--shoppers", "4", "--max-steps", "3", "--sft-epochs", "1", "--grpo-steps", "1",
        "--num-generations", "2", "--grpo-prompts-per-step", "1",
        "--rl-token-budget", "1280", "--sft-max-tokens", "2048", "--no-persona", "--device", "cpu"]


@pytest.fixture(scope="module")
def recipe_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recipe")
    result = CliRunner().invoke(train, ["recipe", "--out", str(out), *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip().splitlines()[-1]) == out / "policy"
    return out


def test_policy_folder_is_a_loadable_checkpoint_that_answers(recipe_out: Path) -> None:
    policy_dir = recipe_out / "policy"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (policy_dir / name).is_file(), name
    record = json.loads((policy_dir / "shop-r1-train.json").read_text())
    assert record["stage"] == "grpo" and Path(record["base_model"]) == (recipe_out / "sft").resolve()
    zero_std = [h["frac_reward_zero_std"] for h in record["history"] if "frac_reward_zero_std" in h]
    assert zero_std, "TRL's frac_reward_zero_std was not logged"
    # all-equal rewards in every group -> zero advantage -> weights unchanged; otherwise they move
    assert (record["param_change"]["l2"] > 0) == (min(zero_std) < 1), (zero_std, record["param_change"])
    row = load_split(recipe_out / "data", "rl", "train")[0]
    elements = tuple(Element(name=e["name"], kind=e["kind"], text=e.get("text") or "") for e in row["elements"])
    obs = Observation(url=row["url"], title=row["title"], simplified_html=row["simplified_html"], elements=elements)
    policy = TransformersPolicy(str(policy_dir), device="cpu", constrained=True, temperature=0.0,
                                max_new_tokens=48, batch_size=1)
    [resp] = asyncio.run(policy.act([PolicyRequest(session_id="s0", observation=obs, step=0)]))
    assert resp.error is None, (resp.error, resp.raw_text)
    assert resp.action is not None
    if resp.action.type != "terminate":
        assert resp.action.name in {e.name for e in elements}


def test_recipe_record_and_tokenizer_corpus_exclude_held_out_sessions(recipe_out: Path) -> None:
    record = json.loads((recipe_out / RECIPE_RECORD_FILE).read_text())
    assert record["settings"]["shoppers"] == 4 and record["grpo"]["param_change_norm"] >= 0
    assert 0 <= record["grpo"]["frac_reward_zero_std"] <= 1
    # No --max-completion-length: the rollouts hold every train reference answer.
    budget = record["grpo"]["completion_budget"]
    assert budget["truncated"] == 0 and budget["budget"] >= budget["max"] > 0
    assert set(record["seconds"]) == {"simulate scripted shoppers", "template rationales", "base model", "datasets",
                                      "SFT", "GRPO"}
    trace = recipe_out / "trace-template"
    corpus = set(train_corpus(trace, seed=0, val=0.1, test=0.2))
    loaded = load_trace(trace)
    sessions = loaded.result.sessions

    def texts(sids: set[str]) -> set[str]:
        pages = {t for sid in sids for st in sessions[sid]
                 for t in (st.simplified_html, st.rationale, st.action.model_dump_json() if st.action else "") if t}
        personas = {loaded.personas[sessions[sid][0].persona_id].model_dump_json() for sid in sids
                    if sessions[sid][0].persona_id in loaded.personas}
        return pages | personas

    data = recipe_out / "data"
    train_sids = {r["session_id"] for kind in ("rl", "sft") for r in load_split(data, kind, "train")}
    held_out = {r["session_id"] for split in ("test", "validation") for r in load_split(data, "rl", split)}
    assert held_out and not held_out & train_sids
    assert corpus <= texts(train_sids)  # the tokenizer saw train sessions only
    assert texts(held_out) - texts(train_sids)  # ... and the held-out sessions had text of their own
