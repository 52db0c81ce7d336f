"""GRPO with the Shop-R1 rewards on a real scripted trace and the tiny model: real TRL steps on CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from test_sft import act_with_checkpoint, make_trace


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    return make_trace(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def rl_rows(trace_dir: Path):
    from shop_r1.training.data import build_rl_dataset

    ds = build_rl_dataset(trace_dir, token_budget=400, with_persona=False)
    assert len(ds) >= 2
    return ds


@pytest.fixture(scope="module")
def rl_parquet(rl_rows, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rl-data") / "rl.parquet"
    rl_rows.to_parquet(str(path))
    return path


def test_config_defaults_are_the_papers():
    from shop_r1.simulator.scoring import RewardConfig
    from shop_r1.training.config import GRPOSettings, SFTSettings

    sft = SFTSettings(data="d", out="o")
    assert (sft.epochs, sft.lr) == (4, 2e-5)
    g = GRPOSettings(data="d", out="o")
    assert (g.lr, g.max_steps, g.temperature, g.global_batch_size) == (1e-7, 500, 0.6, 64)
    assert (g.alpha, g.beta, g.dars, g.threshold, g.reward, g.format_reward) == (0.005, 0.001, 1000, 0.75,
                                                                                 "hierarchical", True)
    assert g.reward_config() == RewardConfig()  # the reward module's own paper defaults
    assert g.gradient_accumulation_steps() == 64 // (g.per_device_batch_size * g.resolved_world_size())
    assert g.ablation() == "full"
    assert GRPOSettings(data="d", out="o", alpha=0, format_reward=False).ablation() == "no_format+no_rationale"


def test_config_file_and_flags(tmp_path: Path):
    from shop_r1.training.config import ConfigError, GRPOSettings, load_settings

    f = tmp_path / "g.yaml"
    f.write_text("data: d\nout: o\nnum-generations: 4\nlr: 3.0e-7\n")
    s = load_settings(GRPOSettings, f, lr=5e-7, alpha=None)
    assert (s.num_generations, s.lr, s.alpha) == (4, 5e-7, 0.005)
    (tmp_path / "bad.json").write_text('{"data": "d", "out": "o", "alpah": 0.1}')
    with pytest.raises(ConfigError, match="alpah"):
        load_settings(GRPOSettings, tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        load_settings(GRPOSettings, None, data="d", out="o", global_batch_size=10, num_generations=4)


def test_component_rewards_sum_to_the_action_reward(rl_rows):
    from shop_r1.simulator.prompt import format_answer
    from shop_r1.simulator.scoring import action_reward
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import build_reward_funcs

    settings = GRPOSettings(data="d", out="o", alpha=0)
    funcs, weights, sc = build_reward_funcs(settings, tokenizer=None)
    assert [f.__name__ for f in funcs] == ["format", "type", "attribute", "value"] and sc is None
    label = rl_rows[0]["label"]
    good = [[{"role": "assistant", "content": format_answer("I pick this.", json.loads(label))}]]
    bad = [[{"role": "assistant", "content": "not json"}]]
    term = [[{"role": "assistant", "content": format_answer("I leave.", {"type": "terminate"})}]]
    for completion in (good, bad, term):
        parts = [f(completions=completion, label=[label])[0] for f in funcs]
        assert sum(parts) == pytest.approx(action_reward(completion[0][0]["content"], label).total)
    assert [f(completions=good, label=[label])[0] for f in funcs][:2] == [0.5, 0.3]
    assert sum(f(completions=bad, label=[label])[0] for f in funcs) == 0.0
    binary, _, _ = build_reward_funcs(GRPOSettings(data="d", out="o", reward="binary", alpha=0), None)
    assert binary[0](completions=good + bad, label=[label, label]) == [1.0, 0.0]


def test_self_certainty_generation_record_equals_forward_pass(rl_rows):
    """The recorder (the policy's logits before the temperature warper) and an extra forward pass agree, and both
    equal Eq. 3 computed directly over the rationale tokens."""
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from shop_r1.simulator.prompt import format_answer
    from shop_r1.simulator.scoring import rationale_token_mask_for_text, self_certainty
    from shop_r1.simulator.llm.tiny_model import tiny_model_dir
    from shop_r1.simulator.scoring import completion_offsets
    from shop_r1.training.self_certainty import GenerationCertaintyRecorder, SelfCertaintyReward

    d = tiny_model_dir()
    tok, model = AutoTokenizer.from_pretrained(d), AutoModelForCausalLM.from_pretrained(d).eval()
    prompts = [rl_rows[0]["prompt"], rl_rows[1]["prompt"]]
    answers = [format_answer("I want to compare prices first.", json.loads(rl_rows[0]["label"])),
               format_answer("Nothing fits, so I stop.", {"type": "terminate"})]
    targets = [tok(a, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
               for a in answers]
    p_ids = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
             for p in prompts]
    tok.padding_side = "left"
    batch = tok.pad({"input_ids": p_ids}, return_tensors="pt")
    width = max(map(len, targets))

    class Force:  # runs after the recorder: makes the sampler emit the target answers
        def __call__(self, input_ids, scores):
            k = input_ids.shape[1] - batch["input_ids"].shape[1]
            forced = torch.full_like(scores, -math.inf)
            for r, t in enumerate(targets):
                forced[r, t[k] if k < len(t) else tok.pad_token_id] = 0.0
            return forced

    recorder = GenerationCertaintyRecorder()
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=0.6, top_k=0, top_p=1.0, max_new_tokens=width,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                             logits_processor=LogitsProcessorList([recorder, Force()]))
    completion_ids = [out[r, batch["input_ids"].shape[1]:].tolist()[:len(t)] for r, t in enumerate(targets)]
    assert completion_ids == targets

    trainer = SimpleNamespace(model=model, accelerator=Accelerator(cpu=True), args=None)
    gen = SelfCertaintyReward(tok, mode="generation").bind(trainer)
    gen.recorder = recorder
    fwd = SelfCertaintyReward(tok, mode="forward").bind(trainer)
    completions = [[{"role": "assistant", "content": a}] for a in answers]
    s_gen = gen(prompts=prompts, completions=completions, completion_ids=completion_ids)
    s_fwd = fwd(prompts=prompts, completions=completions, completion_ids=completion_ids)
    assert gen.fallbacks == 0
    assert s_gen == pytest.approx(s_fwd, rel=1e-3, abs=1e-7)
    assert all(v > 0 for v in s_gen)

    # Directly: one prompt, no padding, Eq. 3 over the rationale tokens only.
    ids = torch.tensor([p_ids[0] + targets[0]])
    with torch.no_grad():
        logits = model(ids).logits[:, len(p_ids[0]) - 1:-1]
    text, offsets = completion_offsets(tok, targets[0])
    mask = torch.tensor([rationale_token_mask_for_text(text, offsets)])
    assert 0 < int(mask.sum()) < len(targets[0])  # the action's tokens are not in it
    assert float(self_certainty(logits, mask)[0]) == pytest.approx(s_fwd[0], rel=1e-3)


def _history(folder: Path) -> dict:
    from shop_r1.training.trainer_common import TRAIN_RECORD_FILE

    return json.loads((folder / TRAIN_RECORD_FILE).read_text())


def test_grpo_hierarchical_with_self_certainty_runs_and_reloads(rl_parquet: Path, rl_rows, tmp_path: Path):
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo

    out = tmp_path / "grpo"
    settings = GRPOSettings(model="tiny", data=str(rl_parquet), out=str(out), max_steps=2, num_generations=2,
                            per_device_batch_size=2, global_batch_size=2, max_completion_length=32, device="cpu")
    result = train_grpo(settings)
    assert result.metrics["global_step"] == 2
    record = _history(out)
    steps = [h for h in record["history"] if "reward" in h]
    assert len(steps) == 2
    for h in steps:
        for name in ("format", "type", "attribute", "value", "self_certainty"):
            assert math.isfinite(h[f"rewards/{name}/mean"])
        assert math.isfinite(h["loss"]) and "kl" in h
    assert record["reward_functions"] == ["format", "type", "attribute", "value", "self_certainty"]
    assert record["reward_weights"] == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.005])
    assert record["self_certainty"]["mode"] == "generation" and record["self_certainty"]["fallbacks"] == 0
    assert record["self_certainty"]["calls"] == 2
    resp, obs = act_with_checkpoint(out, rl_rows[0])
    assert resp.action is not None, resp.error


def test_grpo_binary_one_step(rl_parquet: Path, tmp_path: Path):
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo

    out = tmp_path / "grpo-binary"
    train_grpo(GRPOSettings(model="tiny", data=str(rl_parquet), out=str(out), max_steps=1, reward="binary",
                            alpha=0, num_generations=2, per_device_batch_size=2, global_batch_size=2,
                            max_completion_length=16, device="cpu"))
    record = _history(out)
    assert record["reward_functions"] == ["binary"] and record["variant"] == "binary"
    [step] = [h for h in record["history"] if "reward" in h]
    assert step["rewards/binary/mean"] in (0.0, 0.5, 1.0)
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("name", ["single_gpu", "deepspeed_zero2", "deepspeed_zero3", "fsdp"])
def test_accelerate_configs_parse(name: str):
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(__file__).resolve().parents[1] / "training" / "configs" / "accelerate" / f"{name}.yaml"
    cfg = load_config_from_file(str(path))
    assert cfg.num_processes >= 1 and cfg.mixed_precision == "bf16"
