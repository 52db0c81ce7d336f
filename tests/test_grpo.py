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
    # The paper's global batch is 64 prompts, each with its group of G completions.
    assert g.completions_per_step() == 64 * g.num_generations
    assert g.gradient_accumulation_steps() == 64 * g.num_generations // (g.per_device_batch_size
                                                                         * g.resolved_world_size())
    assert GRPOSettings(data="d", out="o", global_batch_size=3, num_generations=4,
                        per_device_batch_size=4, world_size=1).gradient_accumulation_steps() == 3
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
    with pytest.raises(ConfigError, match="40 completions is not a multiple of per_device_batch_size 16"):
        load_settings(GRPOSettings, None, data="d", out="o", global_batch_size=10, num_generations=4,
                      per_device_batch_size=16, world_size=1)
    with pytest.raises(ValueError, match="multiple of num_generations"):  # no global batch: one pass per step
        GRPOSettings(data="d", out="o", global_batch_size=None, num_generations=4, per_device_batch_size=6,
                     world_size=1)


def test_precision_keeps_fp32_masters_unless_the_backend_holds_them():
    """bf16 weights without fp32 masters barely move (issue 9): plain GPU and DDP runs load fp32 and autocast."""
    from shop_r1.training.precision import choose_precision, distributed_backend

    gpu = choose_precision(cuda=True, bf16_supported=True, bf16=None, backend=None)
    assert (gpu.load_dtype, gpu.bf16, gpu.masters) == ("float32", True, "model")
    old_gpu = choose_precision(cuda=True, bf16_supported=False, bf16=None, backend=None)
    assert (old_gpu.load_dtype, old_gpu.bf16) == ("float32", False)
    cpu = choose_precision(cuda=False, bf16_supported=False, bf16=None, backend=None)
    assert (cpu.load_dtype, cpu.bf16) == ("float32", False)
    cpu_autocast = choose_precision(cuda=False, bf16_supported=False, bf16=True, backend=None)
    assert (cpu_autocast.load_dtype, cpu_autocast.bf16) == ("float32", True)
    for backend in ("deepspeed", "fsdp"):
        p = choose_precision(cuda=True, bf16_supported=True, bf16=None, backend=backend)
        assert (p.load_dtype, p.bf16, p.masters) == ("bfloat16", True, backend)
        off = choose_precision(cuda=True, bf16_supported=True, bf16=False, backend=backend)
        assert (off.load_dtype, off.bf16) == ("float32", False)
    assert distributed_backend({"ACCELERATE_USE_DEEPSPEED": "true"}) == "deepspeed"
    assert distributed_backend({"ACCELERATE_USE_FSDP": "True"}) == "fsdp"
    assert distributed_backend({"ACCELERATE_USE_DEEPSPEED": "false"}) is None and distributed_backend({}) is None


def test_model_loaded_for_a_cuda_config_holds_fp32_parameters():
    import torch

    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir
    from shop_r1.training.precision import choose_precision
    from shop_r1.training.trainer_common import load_model

    d = tiny_model_dir()
    model = load_model(d, choose_precision(cuda=True, bf16_supported=True, bf16=None, backend=None))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    sharded = load_model(d, choose_precision(cuda=True, bf16_supported=True, bf16=None, backend="deepspeed"))
    assert {p.dtype for p in sharded.parameters()} == {torch.bfloat16}


def test_component_rewards_sum_to_the_action_reward(rl_rows):
    from shop_r1.simulator.agent.prompt import format_answer
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

    from shop_r1.simulator.agent.prompt import format_answer
    from shop_r1.simulator.scoring import rationale_token_mask_for_text, self_certainty
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir
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


def weight_distance(initial: Path, final: Path) -> tuple[float, float]:
    """||final - initial|| and ||initial|| computed directly from the two folders' weights."""
    import torch
    from safetensors.torch import load_file

    a, b = load_file(str(initial / "model.safetensors")), load_file(str(final / "model.safetensors"))
    assert set(a) == set(b)
    diff = sum(float((b[k].double() - a[k].double()).square().sum()) for k in a)
    norm = sum(float(a[k].double().square().sum()) for k in a)
    return math.sqrt(diff), math.sqrt(norm)


def _history(folder: Path) -> dict:
    from shop_r1.training.trainer_common import TRAIN_RECORD_FILE

    return json.loads((folder / TRAIN_RECORD_FILE).read_text())


def test_grpo_hierarchical_with_self_certainty_runs_and_reloads(rl_parquet: Path, rl_rows, tmp_path: Path):
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo

    out = tmp_path / "grpo"
    settings = GRPOSettings(model="tiny", data=str(rl_parquet), out=str(out), max_steps=2, num_generations=2,
                            per_device_batch_size=2, global_batch_size=1, max_completion_length=32, device="cpu",
                            allow_truncation=True)  # random weights: speed, not answers
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
    # The record says how far the weights moved, computed from the two folders. (The random tiny model never
    # writes a rationale, so every reward is 0, every advantage 0 and the distance 0: the record shows it;
    # test_grpo_moves_the_weights_at_the_papers_lr starts from a policy that does.)
    assert record["precision"]["param_dtype"] == "float32" and record["precision"]["masters"] == "model"
    change = record["param_change"]
    l2, initial = weight_distance(Path(record["base_model"]), out)
    assert change["l2"] == pytest.approx(l2, rel=1e-6, abs=1e-12) and change["initial_l2"] == pytest.approx(initial)
    if all(h["frac_reward_zero_std"] == 1 and h["grad_norm"] == 0 for h in steps):
        assert change["l2"] == 0
    resp, obs = act_with_checkpoint(out, rl_rows[0])
    assert resp.action is not None, resp.error


@pytest.fixture(scope="module")
def warm_policy(trace_dir: Path, tmp_path_factory) -> Path:
    """The tiny model after a short real SFT: it starts its answers with a rationale, so its rewards vary."""
    from shop_r1.training.config import SFTSettings
    from shop_r1.training.data import build_sft_dataset
    from shop_r1.training.sft import train_sft

    base = tmp_path_factory.mktemp("warm")
    build_sft_dataset(trace_dir, token_budget=400, with_persona=False).to_parquet(
        str(base / "sft.parquet"))
    # 300 steps: at 120 the samples were JSON-shaped but none parsed (0 of 16 measured), and since
    # self-certainty is paid only to answers that parse every reward was 0 (22 of 24 parse at 300).
    result = train_sft(SFTSettings(model="tiny", data=str(base / "sft.parquet"), out=str(base / "sft"), max_steps=300,
                                   lr=3e-3, device="cpu", logging_steps=10))
    assert result.metrics["final_loss"] < 0.5, result.metrics  # it learnt the answers
    return result.out_dir


def test_grpo_moves_the_weights_at_the_papers_lr(warm_policy: Path, rl_parquet: Path, tmp_path: Path):
    """Issue 9: GRPO at lr 1e-7 changes (almost) every weight with fp32 masters; bf16 weights would not move."""
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo

    out = tmp_path / "grpo-warm"
    # temperature 1 (the policy's own distribution): the 300-step SFT policy is so sure of its answers (entropy
    # ~0.002 nats a token at 0.6) that at the paper's 0.6 its four samples were identical, every group tied and
    # nothing moved; at 1.5 (entropy ~2.5) no sample parsed and again every group tied.
    settings = GRPOSettings(model=str(warm_policy), data=str(rl_parquet), out=str(out), max_steps=3,
                            num_generations=4, per_device_batch_size=4, global_batch_size=1, device="cpu",
                            temperature=1.0)
    assert settings.lr == 1e-7
    train_grpo(settings)
    record = _history(out)
    steps = [h for h in record["history"] if "reward" in h]
    assert any(h["rewards/self_certainty/mean"] > 0 for h in steps), steps  # answers that parse were written
    change = record["param_change"]
    l2, initial = weight_distance(warm_policy, out)
    assert change["l2"] > 0 and change["l2"] == pytest.approx(l2, rel=1e-6)
    assert change["relative"] == pytest.approx(l2 / initial, rel=1e-6) and change["relative"] > 0
    # AdamW moves each weight with a gradient by ~lr; bf16 weights without masters: ~0.1 % would change
    # (bench/bf16_masters.py)
    assert change["frac_changed"] > 0.5, change
    assert change["max_abs"] < 1e-5  # ... and by about the learning rate, not more
    # Issue 9 fix 4: each term's share of the group advantage, per step and summed over the run
    names = record["reward_functions"]
    assert set(record["advantage_share"]) == set(names) == set(record["advantage_abs_sum"])
    assert record["self_certainty"]["form"] == "kl"
    for h in steps:
        logged = [h[f"advantage_share/{n}"] for n in names]
        assert all(0.0 <= v <= 1.0 for v in logged)
        assert sum(logged) == pytest.approx(1.0 if h["frac_reward_zero_std"] < 1 else 0.0, abs=1e-6)
    assert sum(record["advantage_share"].values()) == pytest.approx(1.0)


def test_lora_grpo_moves_only_the_adapter(warm_policy: Path, rl_parquet: Path, tmp_path: Path):
    """``--lora-r`` on the RL stage: the reference is the base with the adapter switched off (no
    second model), only the adapted layers move, and the adapter is saved beside the merged model."""
    import torch
    from safetensors.torch import load_file

    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo
    from shop_r1.training.lora import ADAPTER_DIR

    out = tmp_path / "grpo-lora"
    train_grpo(GRPOSettings(model=str(warm_policy), data=str(rl_parquet), out=str(out), max_steps=3,
                            num_generations=4, per_device_batch_size=4, global_batch_size=1, device="cpu",
                            temperature=1.0, lr=1e-3, lora_r=4))
    record = _history(out)
    assert record["lora"]["r"] == 4 and 0 < record["lora"]["trainable_params"] < record["lora"]["total_params"]
    assert (out / ADAPTER_DIR / "adapter_model.safetensors").is_file()
    steps = [h for h in record["history"] if "reward" in h]
    assert len(steps) == 3 and all(math.isfinite(h["loss"]) for h in steps), steps
    before, after = load_file(str(warm_policy / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert set(before) == set(after)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith("proj.weight") for k in changed), sorted(changed)[:5]
    assert record["param_change"]["l2"] > 0


def test_grpo_binary_one_step(rl_parquet: Path, tmp_path: Path):
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo

    out = tmp_path / "grpo-binary"
    train_grpo(GRPOSettings(model="tiny", data=str(rl_parquet), out=str(out), max_steps=1, reward="binary",
                            alpha=0, num_generations=2, per_device_batch_size=2, global_batch_size=1,
                            max_completion_length=16, device="cpu", allow_truncation=True))
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


# ------------------------------------------------------------------ self-certainty forms and advantage shares


def test_literal_self_certainty_vanishes_and_kl_does_not():
    """Issue 9 fix 4: Eq. 3 as printed is KL / |V|: <= 1.1e-6 after alpha at |V| = 49,152."""
    import torch

    from shop_r1.simulator.scoring import PAPER_ALPHA, self_certainty

    vocab = 49_152
    torch.manual_seed(0)
    logits = torch.randn(2, 6, vocab) * 4.0  # a confident-ish model
    logits[1, :, 3] = 60.0  # one-hot: the largest value any form can take
    mask = torch.ones(2, 6, dtype=torch.bool)
    kl = self_certainty(logits, mask, form="kl")
    literal = self_certainty(logits, mask, form="literal")
    assert torch.allclose(literal * vocab, kl, rtol=1e-5)
    assert float(kl[1]) == pytest.approx(math.log(vocab), rel=1e-4)  # 10.8 nats
    assert 1.0 < float(kl[0]) < float(kl[1])
    assert PAPER_ALPHA * float(literal.max()) <= 1.1e-6
    # next to an action reward of ~1000, float32 cannot even represent the literal term
    assert torch.tensor(1001.0) + PAPER_ALPHA * literal.max() == torch.tensor(1001.0)
    assert torch.tensor(1001.0) + PAPER_ALPHA * kl.max() > torch.tensor(1001.0)
    with pytest.raises(ValueError, match="self-certainty form"):
        self_certainty(logits, mask, form="nats")


def test_advantage_shares_are_the_exact_decomposition():
    import torch

    from shop_r1.training.advantage_share import STD_EPS, advantage_contributions, shares

    # two groups of 4; columns: value (weight 1), self-certainty (weight alpha)
    table = torch.tensor([[1000.0, 3.0], [0.0, 2.0], [0.0, 5.0], [1000.0, 4.0],   # actions differ
                          [0.8, 3.0], [0.8, 1.0], [0.8, 6.0], [0.8, 2.0]])        # actions tie
    weights = [1.0, 0.005]
    contrib = advantage_contributions(table, weights, 4)
    # the per-term contributions add up to TRL's advantage, |.| summed
    r = (table.double() * torch.tensor(weights, dtype=torch.float64)).sum(-1).view(2, 4)
    adv = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + STD_EPS)
    per_term = (table.double().view(2, 4, 2) - table.double().view(2, 4, 2).mean(1, keepdim=True)) \
        * torch.tensor(weights, dtype=torch.float64) / (r.std(1, keepdim=True).unsqueeze(-1) + STD_EPS)
    assert torch.allclose(per_term.sum(-1), adv)
    assert contrib.tolist() == pytest.approx(per_term.abs().sum(dim=(0, 1)).tolist())
    share = shares(contrib)
    assert sum(share) == pytest.approx(1.0)
    # in the tied group self-certainty alone decides the advantage: that group's |A| is all its own
    tied = advantage_contributions(table[4:], weights, 4)
    assert shares(tied) == pytest.approx([0.0, 1.0])
    # the literal form (KL / |V|) has no share when action rewards differ
    literal = table.clone()
    literal[:, 1] /= 49_152
    assert shares(advantage_contributions(literal[:4], weights, 4))[1] < 1e-7
    assert shares([0.0, 0.0]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="groups of 3"):
        advantage_contributions(table, weights, 3)


def test_grpo_settings_carry_the_form_and_the_format_rule():
    from shop_r1.training.config import GRPOSettings

    s = GRPOSettings(data="d", out="o")
    assert s.self_certainty == "kl" and s.lenient_format is False and s.reward_config().strict_format is True
    lenient = GRPOSettings(data="d", out="o", lenient_format=True, self_certainty="literal")
    assert lenient.reward_config().strict_format is False


def test_a_completion_budget_that_cuts_the_answers_is_refused_before_training(rl_parquet: Path, tmp_path: Path):
    """Issue 9: a 64-token budget against ~100-token answers made every rollout unparseable and every
    group's advantage 0; GRPO now refuses it, naming the budget, the lengths and the fix."""
    from shop_r1.training.answer_length import CompletionBudgetError
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import train_grpo

    out = tmp_path / "refused"
    with pytest.raises(CompletionBudgetError, match=r"--max-completion-length 16 is shorter than \d+ of \d+ "
                                                    r"reference answers.*raise it to at least \d+"):
        train_grpo(GRPOSettings(model="tiny", data=str(rl_parquet), out=str(out), max_steps=1, num_generations=2,
                                per_device_batch_size=2, global_batch_size=1, max_completion_length=16,
                                device="cpu"))
    assert not out.exists()  # refused before anything was written


def test_no_completion_budget_given_means_one_that_holds_every_reference(rl_parquet: Path, tmp_path: Path):
    """The default is measured, not a fixed 256: the trainer's rollouts hold the longest answer."""
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import build_grpo_trainer

    trainer, _, _ = build_grpo_trainer(GRPOSettings(
        model="tiny", data=str(rl_parquet), out=str(tmp_path / "auto"), max_steps=1, num_generations=2,
        per_device_batch_size=2, global_batch_size=1, device="cpu"))
    budget = trainer.completion_budget
    assert budget["truncated"] == 0 and budget["max"] < budget["budget"]
    assert trainer.args.max_completion_length == budget["budget"]
    # The references are whole answers (rationale + action), as the policy must write them.
    from datasets import load_dataset

    from shop_r1.simulator.agent.prompt import format_answer
    rows = load_dataset("parquet", data_files=str(rl_parquet), split="train")
    assert any(r["rationale"] for r in rows)
    tok = trainer.processing_class
    longest = max(len(tok(format_answer(r["rationale"], json.loads(r["label"])), add_special_tokens=False)["input_ids"])
                  for r in rows if r["rationale"])
    assert budget["max"] >= longest


def test_shared_prompt_forward_equals_trls_padded_one(rl_rows, rl_parquet: Path, tmp_path: Path):
    """Each prompt run once for its group is a speed-up, not a new objective: TRL's log-probs,
    entropies and gradients on a shuffled micro-batch of two prompts of different lengths with
    right-padded completions, for the policy and the (no-grad) reference model."""
    import torch
    from trl import GRPOTrainer

    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import build_grpo_trainer
    from shop_r1.training.shared_prompt import shared_prompt_logps

    settings = GRPOSettings(model="tiny", data=str(rl_parquet), out=str(tmp_path / "x"), max_steps=1, beta=0.04,
                            num_generations=3, per_device_batch_size=6, global_batch_size=2,
                            max_completion_length=16, temperature=0.7, device="cpu", allow_truncation=True)
    trainer, _, _ = build_grpo_trainer(settings)
    tok = trainer.processing_class
    prompts = [tok.apply_chat_template(rl_rows[i]["prompt"], add_generation_prompt=True, tokenize=True,
                                       return_dict=True)["input_ids"] for i in (0, 1)]
    prompts[1] = prompts[1][: len(prompts[0]) - 37]  # different lengths: the shorter one is left-padded
    pad, width = tok.pad_token_id, max(map(len, prompts))
    g = torch.Generator().manual_seed(0)
    rows, lengths = [0, 1, 0, 1, 1, 0], [16, 9, 12, 16, 3, 7]  # shuffled groups, completions of any length
    prompt_ids = torch.tensor([[pad] * (width - len(prompts[p])) + prompts[p] for p in rows])
    prompt_mask = torch.tensor([[0] * (width - len(prompts[p])) + [1] * len(prompts[p]) for p in rows])
    completion_ids = torch.randint(0, len(tok), (len(rows), 16), generator=g)
    completion_mask = (torch.arange(16)[None, :] < torch.tensor(lengths)[:, None]).long()
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad)
    input_ids, mask = torch.cat([prompt_ids, completion_ids], 1), torch.cat([prompt_mask, completion_mask], 1)

    model = trainer.model
    model.train()
    results = {}
    for name, fn in (("shared", trainer._get_per_token_logps_and_entropies),
                     ("trl", lambda *a, **k: GRPOTrainer._get_per_token_logps_and_entropies(trainer, *a, **k))):
        model.zero_grad()
        logps, entropy, _ = fn(model, input_ids, mask, 16, compute_entropy=True)
        loss = (logps * completion_mask).sum() / completion_mask.sum() + 0.1 * (entropy * completion_mask).sum()
        loss.backward()
        with torch.no_grad():
            ref, _, _ = fn(trainer.ref_model, input_ids, mask, 16)
        results[name] = (logps.detach(), entropy.detach(), ref,
                         {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert shared_prompt_logps(model, input_ids, mask, 16) is not None  # the shared path is the one compared
    (lp, ent, ref, grads), (lp_t, ent_t, ref_t, grads_t) = results["shared"], results["trl"]
    assert lp.shape == lp_t.shape == (6, 16)
    live = completion_mask.bool()
    torch.testing.assert_close(lp[live], lp_t[live], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ent[live], ent_t[live], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ref[live], ref_t[live], rtol=1e-4, atol=1e-5)
    assert not lp[~live].any()  # padding scores 0, as TRL's fused head leaves it
    assert grads.keys() == grads_t.keys() and grads
    for n in grads:
        torch.testing.assert_close(grads[n], grads_t[n], rtol=1e-3, atol=1e-6, msg=n)


# ------------------------------------------------------------------ issue 23: the advantage under each normalisation


# Two groups of G = 4; columns: value term (weight 1), self-certainty (weight alpha).
_DIFFER = [[1000.0, 3.0], [0.0, 2.0], [0.0, 5.0], [1000.0, 4.0]]  # one completion hits a DARS-scaled value
_TIED = [[0.8, 3.0], [0.8, 1.0], [0.8, 6.0], [0.8, 2.0]]  # every action reward ties


def test_advantage_formula_by_hand():
    """The three normalisations on numbers worked out by hand (eps = 1e-4, unbiased std)."""
    import torch

    from shop_r1.training.advantage_share import advantages

    table = torch.tensor(_DIFFER + _TIED)
    w = [1.0, 0.005]
    # tied group: R - mean R = 0.005 * (s - 3) = 0.005 * [0, -2, 3, -1]; std_g R = 0.005 * sqrt(14 / 3)
    std_s = math.sqrt(14 / 3)
    group = advantages(table, w, 4, "group")
    assert group[4:].tolist() == pytest.approx([0.0, -0.01 / (0.005 * std_s + 1e-4), 0.015 / (0.005 * std_s + 1e-4),
                                                -0.005 / (0.005 * std_s + 1e-4)], rel=1e-9)
    # the differing group: R = [1000.015, 0.01, 0.025, 1000.02], mean 500.0175
    r = [1000.015, 0.01, 0.025, 1000.02]
    mean = sum(r) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    assert group[:4].tolist() == pytest.approx([(x - mean) / (std + 1e-4) for x in r], rel=1e-9)
    # batch: one std over all 8 summed rewards
    all_r = r + [0.8 + 0.005 * s for s in (3.0, 1.0, 6.0, 2.0)]
    m8 = sum(all_r) / 8
    std8 = math.sqrt(sum((x - m8) ** 2 for x in all_r) / 7)
    batch = advantages(table, w, 4, "batch")
    assert batch[4:].tolist() == pytest.approx([0.0, -0.01 / (std8 + 1e-4), 0.015 / (std8 + 1e-4),
                                                -0.005 / (std8 + 1e-4)], rel=1e-9)
    assert batch[:4].tolist() == pytest.approx([(x - mean) / (std8 + 1e-4) for x in r], rel=1e-9)
    # none: centred only
    assert advantages(table, w, 4, "none").tolist() == pytest.approx(
        [x - mean for x in r] + [0.0, -0.01, 0.015, -0.005], rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="scale_rewards must be one of"):
        advantages(table, w, 4, "std")


def test_where_alpha_cancels_and_where_it_is_a_weight():
    """docs/training.md's table: in a tied group alpha cancels under group std (the advantage is the z-score of
    s), is a weight under batch std and an absolute weight under none."""
    import torch

    from shop_r1.training.advantage_share import advantage_contributions, advantages, shares

    table = torch.tensor(_DIFFER + _TIED)
    s = torch.tensor([3.0, 1.0, 6.0, 2.0], dtype=torch.float64)
    z = (s - s.mean()) / s.std()
    small, large = (advantages(table, [1.0, a], 4, "group")[4:] for a in (0.005, 0.5))
    assert small.tolist() == pytest.approx(z.tolist(), rel=0.01)  # only eps / alpha keeps it off z exactly
    assert large.tolist() == pytest.approx(z.tolist(), rel=1e-3)
    assert float(small.abs().max()) > 1.3  # full strength, whatever alpha
    # batch std is set by the group with the DARS hit: alpha scales the tied group's advantage linearly
    b_small, b_large = (advantages(table, [1.0, a], 4, "batch")[4:] for a in (0.005, 0.01))
    assert b_large.tolist() == pytest.approx((2 * b_small).tolist(), rel=1e-4)
    assert float(b_small.abs().max()) < 1e-4
    n_small = advantages(table, [1.0, 0.005], 4, "none")[4:]
    assert n_small.tolist() == pytest.approx((0.005 * (s - s.mean())).tolist(), rel=1e-9, abs=1e-15)
    # ... and the shares say the same: the tied group's advantage is all self-certainty under every scale, but
    # next to a DARS hit the term is ~1e-3 of the batch's |A| under group std
    for scale in ("group", "batch", "none"):
        assert shares(advantage_contributions(table[4:], [1.0, 0.005], 4, scale)) == pytest.approx([0.0, 1.0])
    assert shares(advantage_contributions(table[:4], [1.0, 0.005], 4, "group"))[1] < 1e-4
    assert shares(advantage_contributions(table, [1.0, 0.005], 4, "batch"))[1] < 1e-4
    assert shares(advantage_contributions(table, [1.0, 0.005], 4, "group"))[1] > 0.4


def test_zero_spread_groups():
    import torch

    from shop_r1.training.advantage_share import zero_spread_groups

    table = torch.tensor(_DIFFER + _TIED + [[0.8, 2.0]] * 4)
    assert zero_spread_groups(table, [1.0, 0.005], 4).tolist() == [False, False, True]
    # with alpha = 0 the tied group's self-certainty no longer makes it vary
    assert zero_spread_groups(table, [1.0, 0.0], 4).tolist() == [False, True, True]


def test_grpo_config_carries_the_normalisation():
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import grpo_config

    assert GRPOSettings(data="d", out="o").scale_rewards == "group"
    for scale in ("group", "batch", "none"):
        settings = GRPOSettings(data="d", out="o", scale_rewards=scale, device="cpu")
        assert grpo_config(settings, [1.0], 32).scale_rewards == scale
    with pytest.raises(ValueError, match="scale_rewards"):
        GRPOSettings(data="d", out="o", scale_rewards="std")
    with pytest.raises(ValueError, match="filter_zero_spread"):  # TRL would split the filtered batch unevenly
        GRPOSettings(data="d", out="o", filter_zero_spread=True, num_generations=4, per_device_batch_size=4,
                     global_batch_size=2)
    GRPOSettings(data="d", out="o", filter_zero_spread=True, num_generations=4, per_device_batch_size=8,
                 global_batch_size=2)


def test_cli_offers_the_normalisation_with_its_default():
    from click.testing import CliRunner

    from shop_r1.training.cli_train import train

    out = CliRunner().invoke(train, ["grpo", "--help"]).output
    assert "--scale-rewards [group|batch|none]" in out and "[default: group]" in out
    assert "--filter-zero-spread" in out


def test_self_certainty_is_paid_only_to_answers_that_parse(rl_rows):
    """Issue 23: an unparseable completion was paid for its confidence; it now gets 0, by the action reward's
    format rule (strict, or lenient where the reward is lenient)."""
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir
    from shop_r1.simulator.agent.prompt import format_answer
    from shop_r1.training.self_certainty import SelfCertaintyReward

    d = tiny_model_dir()
    tok, model = AutoTokenizer.from_pretrained(d), AutoModelForCausalLM.from_pretrained(d).eval()
    good = format_answer("I want to compare prices first.", json.loads(rl_rows[0]["label"]))
    cut = good[:-12]  # cut inside the action: the rationale is whole, the JSON is not
    fenced = "```json\n" + good + "\n```"
    answers = [good, cut, fenced]
    ids = [tok(a, add_special_tokens=False)["input_ids"] for a in answers]
    prompts = [rl_rows[0]["prompt"]] * 3
    completions = [[{"role": "assistant", "content": a}] for a in answers]
    trainer = SimpleNamespace(model=model, accelerator=Accelerator(cpu=True), args=None)
    strict = SelfCertaintyReward(tok, mode="forward").bind(trainer)
    values = strict(prompts=prompts, completions=completions, completion_ids=ids)
    assert values[0] > 0 and values[1:] == [0.0, 0.0]
    assert (strict.scored, strict.unparsed) == (3, 2)
    lenient = SelfCertaintyReward(tok, mode="forward", strict_format=False).bind(trainer)
    values = lenient(prompts=prompts, completions=completions, completion_ids=ids)
    assert values[0] > 0 and values[1] == 0.0 and values[2] > 0


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_trls_advantages_are_the_documented_formula(scale: str, warm_policy: Path, rl_parquet: Path, tmp_path: Path):
    """One real GRPO step per normalisation (2 prompts x G = 4): the advantages TRL trained on equal
    :func:`advantages` of the rewards it logged -- the formula docs/training.md states is the one that runs."""
    import torch

    from shop_r1.training.advantage_share import advantages
    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import build_grpo_trainer

    settings = GRPOSettings(model=str(warm_policy), data=str(rl_parquet), out=str(tmp_path / scale), max_steps=1,
                            num_generations=4, per_device_batch_size=8, global_batch_size=2, lr=1e-6,
                            device="cpu", scale_rewards=scale, alpha=0.05, temperature=1.0)
    trainer, _, _ = build_grpo_trainer(settings)
    trainer.train()
    names = list(trainer.reward_func_names)
    table = torch.tensor([list(row) for row in zip(*(trainer._logs["rewards"][n] for n in names))])
    logged = torch.tensor(list(trainer._logs["advantages"]), dtype=torch.float64)
    assert table.shape == (8, len(names)) and logged.shape == (8,)
    assert float(table.abs().sum()) > 0, "the warm policy earned no reward at all: nothing is compared"
    ours = advantages(table, trainer.reward_weights.tolist(), 4, scale)
    assert ours.tolist() == pytest.approx(logged.tolist(), rel=1e-3, abs=1e-4)


def test_zero_spread_filter_drops_tied_groups_from_the_loss(warm_policy: Path, rl_parquet: Path, tmp_path: Path):
    """The filter keeps the rows of groups whose rewards vary, and the token count the dapo-style losses divide
    by is recounted over them; when every group ties, nothing is trained on."""
    import torch

    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import build_grpo_trainer

    settings = GRPOSettings(model=str(warm_policy), data=str(rl_parquet), out=str(tmp_path / "f"), max_steps=2,
                            num_generations=4, per_device_batch_size=8, global_batch_size=2, lr=1e-6,
                            device="cpu", filter_zero_spread=True, temperature=1.0)
    trainer, _, _ = build_grpo_trainer(settings)
    mask = torch.ones(8, 5, dtype=torch.long)
    mask[0, 3:] = 0
    batch = {"prompt_ids": torch.arange(8).unsqueeze(1), "completion_ids": torch.arange(40).view(8, 5),
             "completion_mask": mask, "advantages": torch.linspace(-1, 1, 8), "num_items_in_batch": mask.sum(),
             "tags": list("abcdefgh")}
    kept = trainer._drop_groups(dict(batch), torch.tensor([False, True]))  # the second group tied
    assert kept["completion_ids"].tolist() == batch["completion_ids"][:4].tolist()
    assert kept["tags"] == list("abcd") and kept["advantages"].tolist() == batch["advantages"][:4].tolist()
    assert int(kept["num_items_in_batch"]) == 4 * 5 - 2
    none = trainer._drop_groups(dict(batch), torch.tensor([True, True]))
    assert int(none["completion_mask"].sum()) == 0 and int(none["num_items_in_batch"]) == 0
    trainer.train()
    totals = trainer.filter_totals
    assert totals["groups"] > 2 and (totals["groups"] - 2) % 2 == 0  # whole generations of 2 groups
    # every group TRL itself counted as tied was dropped; the filter may drop more (seen: 1 of 2 kept where TRL
    # counted none tied; unverified cause: TRL's nanstd of four equal
    # float32 sums near 1000 can round to ~1e-5 (> its isclose tolerance) where the advantage is still ~0
    steps = [h for h in trainer.state.log_history if "frac_reward_zero_std" in h]
    assert len(steps) == 2
    for h in steps:
        assert 0.0 <= h["filter/groups_kept"] <= 1.0 - h["frac_reward_zero_std"] + 1e-9
