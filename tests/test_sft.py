"""SFT on a real scripted-simulator trace with the tiny model: a few real TRL steps on CPU."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from shop_r1.envs.observation import Element, Observation


def make_trace(base: Path) -> Path:
    """A real trace: two scripted shoppers on the bundled shop in real Chromium (shared per pytest run)."""
    from filelock import FileLock

    run = base / "train-trace"
    with FileLock(str(base / "train-trace.lock")):
        if (run / "trace.jsonl").is_file() and (run / "run.json").is_file():
            return run
        from shop_r1.envs.shop.server import run_in_thread
        from shop_r1.personas.library import load_library
        from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
        from shop_r1.simulator.loop.runner import RunConfig, run_simulation

        personas = list(load_library().personas[:2])
        with run_in_thread(seed=0, port=0) as shop:
            cfg = RunConfig(shop_url=shop.url, shoppers=2, concurrency=2, max_steps=4, out_dir=run)
            asyncio.run(run_simulation(cfg, ScriptedPolicy(seed=0), personas))
    return run


def observation_from_row(row: dict) -> Observation:
    return Observation(url=row["url"], title=row["title"], simplified_html=row["simplified_html"],
                       elements=tuple(Element(name=e["name"], kind=e["kind"], text=e["text"]) for e in row["elements"]))


def act_with_checkpoint(folder: Path, row: dict):
    """Reload a checkpoint in the simulator's transformers backend and act (constrained) on a real page."""
    from shop_r1.simulator.records.exchange import PolicyRequest
    from shop_r1.simulator.agent.policies.transformers_policy import TransformersPolicy

    policy = TransformersPolicy(str(folder), device="cpu", constrained=True, temperature=0.0, batch_size=1,
                                token_budget=400)
    obs = observation_from_row(row)
    [resp] = policy.act_sync([PolicyRequest(session_id="ckpt-test", observation=obs)])
    return resp, obs


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    return make_trace(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def sft_parquet(trace_dir: Path, tmp_path_factory) -> Path:
    from shop_r1.training.data import build_sft_dataset

    ds = build_sft_dataset(trace_dir, token_budget=400, with_persona=False)  # the RL rows' prompts + answers
    assert len(ds) >= 2
    path = tmp_path_factory.mktemp("sft-data") / "sft.parquet"
    ds.to_parquet(str(path))
    return path


def test_sft_trains_on_assistant_tokens_only_and_reloads(sft_parquet: Path, trace_dir: Path, tmp_path: Path):
    import torch

    from shop_r1.training.config import SFTSettings
    from shop_r1.training.data import build_rl_dataset
    from shop_r1.training.sft import build_sft_trainer
    from shop_r1.training.trainer_common import TRAIN_RECORD_FILE, save_checkpoint

    settings = SFTSettings(model="tiny", data=str(sft_parquet), out=str(tmp_path / "ckpt"), max_steps=2,
                           max_length=1536, device="cpu")
    trainer, source, model_dir = build_sft_trainer(settings)
    tok = trainer.processing_class

    # The collator's labels: exactly the assistant answers (+ their end-of-turn token), nothing else.
    example = trainer.train_dataset[0]
    batch = trainer.data_collator([example])
    labels = batch["labels"][0]
    ids = batch["input_ids"][0]
    kept = ids[labels != -100].tolist()
    assert 0 < len(kept) < len(ids)
    expected = "".join(m["content"] + "<|im_end|>" for m in example["messages"] if m["role"] == "assistant")
    assert tok.decode(kept) == expected
    # and no system/user token is labelled
    system_text = example["messages"][0]["content"]
    assert system_text[:40] not in tok.decode(kept)

    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert trainer.state.global_step == 2 and len(losses) == 2
    assert all(math.isfinite(x) and x > 0 for x in losses)

    import time

    result = save_checkpoint(trainer, settings, stage="sft", source=source, base_model=model_dir,
                             started=time.perf_counter())
    out = Path(settings.out)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", TRAIN_RECORD_FILE):
        assert (out / name).is_file(), name
    assert result.metrics["global_step"] == 2
    import json

    record = json.loads((out / TRAIN_RECORD_FILE).read_text())
    assert record["stage"] == "sft" and record["settings"]["lr"] == 2e-5 and record["settings"]["epochs"] == 4
    cfg = json.loads((out / "config.json").read_text())
    assert cfg.get("tie_word_embeddings") is False  # untied embeddings kept (vLLM reload_weights needs them)

    # The checkpoint's weights differ from the base model's: training really happened.
    from safetensors.torch import load_file

    before, after = load_file(str(model_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # ... and the record holds ||final - initial|| of exactly these weights.
    diff = sum(float((after[k].double() - before[k].double()).square().sum()) for k in before)
    change = record["param_change"]
    assert change["l2"] > 0 and change["l2"] == pytest.approx(math.sqrt(diff), rel=1e-6)
    assert change["relative"] > 0 and change["tensors"] == len(before) and change["unmatched"] == []
    assert record["precision"] == {"load_dtype": "float32", "bf16": False, "masters": "model",
                                   "param_dtype": "float32"}

    rows = build_rl_dataset(trace_dir, token_budget=400, with_persona=False)
    resp, obs = act_with_checkpoint(out, rows[0])
    assert resp.action is not None, resp.error
    if getattr(resp.action, "name", None) is not None:
        assert resp.action.name in {e.name for e in obs.elements}


def test_answer_only_loss_equals_trls_full_loss_and_gradients(sft_parquet: Path, tmp_path: Path):
    """The answer-only LM head is a speed-up, not a new objective: same loss, same gradients as TRL's."""
    import torch
    from trl import SFTTrainer

    from shop_r1.training.config import SFTSettings
    from shop_r1.training.sft import build_sft_trainer
    from shop_r1.training.sft_loss import AnswerOnlySFTTrainer, answer_positions

    settings = SFTSettings(model="tiny", data=str(sft_parquet), out=str(tmp_path / "x"), max_steps=1,
                           max_length=1536, device="cpu")
    trainer, _, _ = build_sft_trainer(settings)
    assert isinstance(trainer, AnswerOnlySFTTrainer) and trainer._answer_only
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])  # padded to one length
    keep, targets = answer_positions(batch["labels"])
    assert keep.sum() == targets.numel() == (batch["labels"] != -100).sum()  # one position per label
    assert targets.numel() < batch["labels"].numel() // 5  # the head now sees a small share of the positions

    model = trainer.model
    model.train()
    grads = {}
    for name, compute in (("answer-only", trainer.compute_loss),
                          ("trl", lambda m, b, **kw: SFTTrainer.compute_loss(trainer, m, b, **kw))):
        model.zero_grad()
        torch.manual_seed(0)
        loss = compute(model, dict(batch), num_items_in_batch=targets.numel())
        loss.backward()
        grads[name] = (float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (ours, g_ours), (trls, g_trl) = grads["answer-only"], grads["trl"]
    assert ours == pytest.approx(trls, rel=1e-5) and ours > 0
    assert g_ours.keys() == g_trl.keys() and g_ours
    for n in g_ours:
        torch.testing.assert_close(g_ours[n], g_trl[n], rtol=1e-4, atol=1e-6, msg=n)
    assert trainer._metrics["train"]["mean_token_accuracy"]  # TRL's metrics are still logged


def test_sft_rejects_data_that_truncation_empties(sft_parquet: Path, tmp_path: Path):
    from shop_r1.training.config import SFTSettings
    from shop_r1.training.sft import build_sft_trainer
    from shop_r1.training.trainer_common import TrainingDataError

    settings = SFTSettings(model="tiny", data=str(sft_parquet), out=str(tmp_path / "x"), max_steps=1,
                           max_length=64, device="cpu")
    with pytest.raises(TrainingDataError, match="truncation at max_length 64"):
        build_sft_trainer(settings)


def test_train_data_errors_name_the_problem(tmp_path: Path):
    from shop_r1.training.trainer_common import TrainingDataError, load_training_data

    with pytest.raises(TrainingDataError, match="no such file"):
        load_training_data(tmp_path / "nope", "sft")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingDataError, match="not a dataset folder"):
        load_training_data(tmp_path / "empty", "sft")


def test_cli_help_states_paper_defaults():
    from click.testing import CliRunner

    from shop_r1.training.cli_train import train

    out = CliRunner().invoke(train, ["sft", "--help"])
    assert out.exit_code == 0, out.output
    assert "4 (paper)" in out.output and "2e-05 (paper)" in out.output


def test_wall_clock_limit_ends_training_after_its_time(sft_parquet: Path, tmp_path: Path):
    """The compute-matched control of bench/paper_table.py: epochs without end, stopped by time."""
    import time

    from shop_r1.training.config import SFTSettings
    from shop_r1.training.sft import train_sft

    settings = SFTSettings(model="tiny", data=str(sft_parquet), out=str(tmp_path / "timed"), epochs=1000.0,
                           max_seconds=4.0, max_length=1536, device="cpu")
    t0 = time.perf_counter()
    result = train_sft(settings)
    steps = int(result.metrics["global_step"])
    assert steps >= 1 and time.perf_counter() - t0 < 120  # far short of 1000 epochs
    assert (tmp_path / "timed" / "config.json").is_file()


def test_lora_sft_trains_only_the_adapter_and_saves_it_beside_the_merged_model(sft_parquet: Path, trace_dir: Path,
                                                                               tmp_path: Path):
    """``--lora-r``: the base stays frozen, the adapter is the few-MB thing to ship, and the
    checkpoint's own folder holds base + adapter merged, which every tool reads as any model."""
    import json

    import torch
    from safetensors.torch import load_file

    from shop_r1.training.config import SFTSettings
    from shop_r1.training.data import build_rl_dataset
    from shop_r1.training.lora import ADAPTER_DIR
    from shop_r1.training.sft import build_sft_trainer, train_sft
    from shop_r1.training.trainer_common import TRAIN_RECORD_FILE, resolve_base_model

    settings = SFTSettings(model="tiny", data=str(sft_parquet), out=str(tmp_path / "lora"), max_steps=3, lr=5e-3,
                           max_length=1536, device="cpu", lora_r=4)
    trainer, _, _ = build_sft_trainer(settings)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable), trainable[:5]
    assert trainer._answer_only  # the answer-only loss sees through the peft wrapper

    result = train_sft(settings)
    out = Path(settings.out)
    assert result.metrics["global_step"] == 3
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / ADAPTER_DIR / name).is_file(), name
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    record = json.loads((out / TRAIN_RECORD_FILE).read_text())
    lora = record["lora"]
    assert lora["r"] == 4 and lora["alpha"] == 8 and lora["adapter_bytes"] > 0
    assert 0 < lora["trainable_params"] < lora["total_params"] / 10
    base = load_file(str(resolve_base_model("tiny") / "model.safetensors"))
    merged = load_file(str(out / "model.safetensors"))
    assert set(merged) == set(base)  # a plain model folder: no lora_ tensors left in it
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    # Only the adapted linear layers moved; embeddings and norms are the base's, bit for bit.
    assert changed and all(k.endswith(("proj.weight",)) for k in changed), sorted(changed)[:5]
    assert record["param_change"]["l2"] > 0

    rows = build_rl_dataset(trace_dir, token_budget=400, with_persona=False)
    resp, obs = act_with_checkpoint(out, rows[0])
    assert resp.action is not None, resp.error  # the merged folder loads and acts as a policy
    if getattr(resp.action, "name", None) is not None:
        assert resp.action.name in {e.name for e in obs.elements}
