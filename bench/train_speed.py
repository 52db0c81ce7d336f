"""Benchmark: seconds per SFT and GRPO step of the project's own trainers, by model size and device.

Builds a randomly initialised model of a chosen architecture (the speed of a step does not
depend on the weights' values, and no real 0.5B checkpoint can be fetched offline), runs a few
SFT steps on the given dataset folder, then a few GRPO steps (hierarchical reward +
self-certainty) from that SFT checkpoint, and prints s/step side by side. The ``tiny`` row is the
baseline measured in the same run.

    .venv/bin/python bench/train_speed.py --data DATA_DIR [--arch tiny,smollm2-135m,qwen2.5-0.5b,smollm2]
        [--tokenizer DIR] [--sft-steps 4] [--grpo-steps 3] [--lora-r 0,16] [--device auto|cpu|cuda] [--json]

``smollm2`` is the real pretrained SmolLM2-135M-Instruct (the embedded default model, converted
offline), the others random weights. ``--lora-r`` runs every architecture once per rank (0: full
fine-tuning, the baseline of the same run; > 0: LoRA adapters, :mod:`shop_r1.training.lora`).

``--tokenizer`` (a model folder with tokenizer files and a chat template, e.g. the converted
default model) is needed for the non-tiny architectures; tiny uses its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Public architecture shapes (config values only; weights are random).
ARCHS: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"family": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
                     "num_key_value_heads": 3, "intermediate_size": 1536},
    "qwen2.5-0.5b": {"family": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                     "num_key_value_heads": 2, "intermediate_size": 4864},
}


def build_random(arch: str, tokenizer_dir: Path, out: Path) -> tuple[Path, int]:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = dict(ARCHS[arch])
    family = spec.pop("family")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    common = dict(vocab_size=len(tok), max_position_embeddings=8192, tie_word_embeddings=False,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                  torch_dtype="float32", **spec)
    torch.manual_seed(0)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, sum(p.numel() for p in model.parameters())


def _record(result: Any) -> dict[str, Any]:
    return json.loads(result.record_path.read_text(encoding="utf-8"))


def _per_step(result: Any, steps: int) -> float:
    runtime = result.metrics.get("train_runtime") if isinstance(result.metrics, dict) else None
    return float(runtime if runtime else result.seconds) / max(1, steps)


def run_arch(arch: str, args: argparse.Namespace, work: Path, console: Console, lora_r: int = 0) -> dict[str, Any]:
    import torch

    from shop_r1.simulator.agent.llm.tiny_model import build_tiny_model

    base = work / arch / "base"
    if arch == "smollm2":  # the real pretrained model, not a random one of its shape
        from transformers import AutoModelForCausalLM

        from shop_r1.simulator.agent.llm.models import resolve_model

        base = Path(resolve_model("default"))
        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(base).parameters())
    elif arch == "tiny":
        # Train the tiny tokenizer on the data's own text so prompts fit its 4k positions.
        from shop_r1.training.data import load_split

        rows = load_split(args.data, "sft", "train")
        corpus = [m["content"] for row in rows for m in row["messages"]]
        build_tiny_model(base, corpus=corpus)
        from transformers import AutoModelForCausalLM

        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(base).parameters())
    else:
        if not args.tokenizer:
            raise SystemExit(f"--arch {arch} needs --tokenizer DIR")
        base, params = build_random(arch, Path(args.tokenizer), base)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    console.print(f"[bold]{arch}[/] ({params / 1e6:.0f}M params, LoRA r={lora_r})")
    with contextlib.redirect_stdout(sys.stderr):  # TRL prints its logs on stdout
        sft, grpo = _train(arch, args, work / f"r{lora_r}", base, console, lora_r)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    lora = _record(sft).get("lora") or {}
    return {"arch": arch, "lora_r": lora_r, "trainable_m": lora.get("trainable_params", params) / 1e6,
            "adapter_mb": (lora["adapter_bytes"] / 1e6) if lora else None, "params_m": params / 1e6, "device": "cuda" if torch.cuda.is_available() and
            args.device != "cpu" else "cpu", "sft_s_per_step": _per_step(sft, args.sft_steps),
            "grpo_s_per_step": _per_step(grpo, args.grpo_steps), "peak_gpu_gib": peak,
            # fp32 masters: on a bf16 GPU the weights must still move at lr 1e-7 (issue 9)
            "precision": _record(grpo).get("precision"),
            "param_change": {stage: {k: (_record(r).get("param_change") or {}).get(k)
                                     for k in ("relative", "frac_changed")}
                             for stage, r in (("sft", sft), ("grpo", grpo))},
            "grpo_last": {k: v for k, v in (grpo.history[-1] if grpo.history else {}).items()
                          if isinstance(v, (int, float))}}


def _train(arch: str, args: argparse.Namespace, work: Path, base: Path, console: Console,
           lora_r: int) -> tuple[Any, Any]:
    from shop_r1.training.config import GRPOSettings, SFTSettings
    from shop_r1.training.grpo import train_grpo
    from shop_r1.training.sft import train_sft

    console.print(f"[bold]{arch}[/]: SFT {args.sft_steps} steps")
    sft = train_sft(SFTSettings(model=str(base), data=args.data, out=str(work / arch / "sft"),
                                max_steps=args.sft_steps, max_length=args.max_length, device=args.device,
                                lr=2e-4 if lora_r else 2e-5, save_steps=None, lora_r=lora_r))
    console.print(f"[bold]{arch}[/]: GRPO {args.grpo_steps} steps, G={args.num_generations}")
    grpo = train_grpo(GRPOSettings(model=str(work / arch / "sft"), data=args.data, out=str(work / arch / "grpo"),
                                   max_steps=args.grpo_steps, num_generations=args.num_generations,
                                   per_device_batch_size=args.num_generations, global_batch_size=None,
                                   max_completion_length=args.max_completion_length, device=args.device,
                                   allow_truncation=True, lora_r=lora_r))
    return sft, grpo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset folder from `shop-r1 data build`")
    ap.add_argument("--arch", default="tiny", help="comma-separated: tiny, " + ", ".join(ARCHS))
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--sft-steps", type=int, default=4)
    ap.add_argument("--grpo-steps", type=int, default=3)
    ap.add_argument("--num-generations", type=int, default=8)
    ap.add_argument("--max-completion-length", type=int, default=128)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--lora-r", default="0", help="comma-separated LoRA ranks, each a row (0: full fine-tuning)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--out", default=None, help="keep checkpoints here (default: a temp folder)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    console = Console(stderr=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out) if args.out else Path(tmp)
        for arch in args.arch.split(","):
            for rank in (int(r) for r in args.lora_r.split(",")):
                t0 = time.perf_counter()
                row = run_arch(arch.strip(), args, work, console, rank)
                row["wall_s"] = time.perf_counter() - t0
                rows.append(row)
    table = Table(title="Shop-R1 trainers: seconds per optimizer step (smollm2: pretrained; others: random init)")
    for col in ("arch", "params", "LoRA r", "trained", "device", "SFT s/step", "GRPO s/step", "× GRPO vs first",
                "peak GPU GiB"):
        table.add_column(col, justify="right")
    base = rows[0]["grpo_s_per_step"]
    for r in rows:
        table.add_row(r["arch"], f"{r['params_m']:.0f}M", str(r["lora_r"] or "full"), f"{r['trainable_m']:.2f}M",
                      r["device"], f"{r['sft_s_per_step']:.2f}",
                      f"{r['grpo_s_per_step']:.2f}", f"{r['grpo_s_per_step'] / base:.1f}",
                      "–" if r["peak_gpu_gib"] is None else f"{r['peak_gpu_gib']:.1f}")
    Console(stderr=args.json).print(table)  # stdout is the JSON's alone
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
