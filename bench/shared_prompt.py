"""Benchmark: GRPO's loss forward + backward and reference forward, TRL's padded batch vs each
prompt run once for its group (``training/shared_prompt.py``), on real RL rows.

One micro-batch shaped like a GRPO step (P prompts x G completions, shuffled as TRL shuffles them,
completions of random length up to C tokens) is scored both ways, alternating, ``--repeats``
times each; the baseline (TRL's own method) is measured in the same run. The log-probabilities of
both are compared too (max abs difference), so a speed-up that changed the numbers would show.

    .venv/bin/python bench/shared_prompt.py --data RL_DATA --model CHECKPOINT [--prompts 2] [--G 4]
        [--completion 128] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def micro_batch(trainer, rows, prompts: int, group: int, completion: int, seed: int):
    import torch

    tok = trainer.processing_class
    ids = [tok.apply_chat_template(rows[i]["prompt"], add_generation_prompt=True, tokenize=True,
                                   return_dict=True)["input_ids"] for i in range(prompts)]
    order = [p for p in range(prompts) for _ in range(group)]
    random.Random(seed).shuffle(order)
    width, pad = max(map(len, ids)), tok.pad_token_id
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(completion // 2, completion + 1, (len(order),), generator=g)
    prompt_ids = torch.tensor([[pad] * (width - len(ids[p])) + ids[p] for p in order])
    prompt_mask = torch.tensor([[0] * (width - len(ids[p])) + [1] * len(ids[p]) for p in order])
    completion_mask = (torch.arange(completion)[None, :] < lengths[:, None]).long()
    completion_ids = torch.randint(3, len(tok), (len(order), completion), generator=g)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad)
    return (torch.cat([prompt_ids, completion_ids], 1), torch.cat([prompt_mask, completion_mask], 1),
            completion_mask, [len(i) for i in ids])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a dataset folder (shop-r1 data build: holds rl/) or an RL parquet")
    ap.add_argument("--model", required=True, help="a checkpoint folder (policy and reference)")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--G", type=int, default=4)
    ap.add_argument("--completion", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch
    from trl import GRPOTrainer

    from shop_r1.training.config import GRPOSettings
    from shop_r1.training.grpo import build_grpo_trainer

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = GRPOSettings(model=args.model, data=args.data, out=tmp, max_steps=1, beta=0.001,
                                num_generations=args.G, per_device_batch_size=args.G * args.prompts,
                                global_batch_size=args.prompts, max_completion_length=args.completion,
                                device="cpu", allow_truncation=True)
        trainer, _, _ = build_grpo_trainer(settings)
    input_ids, mask, completion_mask, prompt_lengths = micro_batch(
        trainer, trainer.train_dataset, args.prompts, args.G, args.completion, seed=0)
    model, ref = trainer.model, trainer.ref_model
    model.train()
    ways = {"trl": lambda *a, **k: GRPOTrainer._get_per_token_logps_and_entropies(trainer, *a, **k),
            "shared": trainer._get_per_token_logps_and_entropies}
    seconds: dict[str, dict[str, list[float]]] = {w: {"loss": [], "ref": []} for w in ways}
    logps: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for way, fn in ways.items():
            model.zero_grad()
            t0 = time.perf_counter()
            lp, ent, _ = fn(model, input_ids, mask, args.completion, compute_entropy=True)
            ((lp * completion_mask).sum() / completion_mask.sum()).backward()
            seconds[way]["loss"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.no_grad():
                fn(ref, input_ids, mask, args.completion)
            seconds[way]["ref"].append(time.perf_counter() - t0)
            logps[way] = lp.detach()
    live = completion_mask.bool()
    diff = float((logps["trl"][live] - logps["shared"][live]).abs().max())
    med = {w: {k: statistics.median(v) for k, v in parts.items()} for w, parts in seconds.items()}
    result = {
        "model": args.model, "params": sum(p.numel() for p in model.parameters()),
        "prompt_tokens": prompt_lengths, "rows": int(input_ids.shape[0]), "completion": args.completion,
        "seconds": {w: {k: round(v, 4) for k, v in m.items()} for w, m in med.items()},
        "speedup": {k: round(med["trl"][k] / med["shared"][k], 2) for k in ("loss", "ref")},
        "max_abs_logp_diff": diff,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"GRPO micro-batch: {args.prompts} prompts x G {args.G}, prompts {prompt_lengths} tokens, "
                        f"completions <= {args.completion}")
    for col in ("", "loss fwd+bwd s", "reference fwd s"):
        table.add_column(col, justify="right")
    for way in ways:
        table.add_row(way, f"{med[way]['loss']:.3f}", f"{med[way]['ref']:.3f}")
    table.add_row("speed-up", f"{result['speedup']['loss']:.2f}x", f"{result['speedup']['ref']:.2f}x")
    Console().print(table)
    Console().print(f"max |log p| difference on completion tokens: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
