"""Benchmark: how many weights move when AdamW updates bf16 weights directly vs through fp32 masters.

Why the trainers load fp32 and train with bf16 autocast (issue 9, fix 1): an AdamW step changes a
weight by about ``lr``; a bf16 weight of magnitude |w| only changes when the step exceeds half its
ulp, ~|w| * 2^-9. For N(0, 0.02) weights at the paper's RL lr of 1e-7 that almost never happens,
so a pure-bf16 run on one GPU (the Trainer keeps no fp32 masters there) trains nothing. With fp32
masters the small steps accumulate and the bf16 copy used for compute follows them.

Runs on CPU (bf16 tensors work there). Each setting: a bf16 matrix drawn from N(0, 0.02), the same
random N(0, 1) gradient sequence, ``--steps`` AdamW steps (weight decay 0, as the Trainer's default).

    .venv/bin/python bench/bf16_masters.py [--size 1024] [--steps 5] [--lrs 1e-7,2e-6,2e-5] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch
from rich.console import Console
from rich.table import Table


def fraction_changed(lr: float, *, size: int, steps: int, masters: bool, seed: int = 0) -> dict[str, float]:
    """Fractions of elements that differ from the start: in the bf16 weights (and, with masters, in fp32)."""
    gen = torch.Generator().manual_seed(seed)
    start = (torch.randn(size, size, generator=gen) * 0.02).to(torch.bfloat16)
    param = torch.nn.Parameter(start.float() if masters else start.clone())
    opt = torch.optim.AdamW([param], lr=lr, weight_decay=0.0)
    for _ in range(steps):
        grad = torch.randn(size, size, generator=gen)
        param.grad = grad.to(param.dtype)
        opt.step()
    with torch.no_grad():
        out = {"bf16_weights": float((param.to(torch.bfloat16) != start).float().mean())}
        if masters:
            out["fp32_masters"] = float((param != start.float()).float().mean())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024, help="the matrix is size x size")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lrs", default="1e-7,2e-6,2e-5", help="comma-separated learning rates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    args = ap.parse_args(argv)
    rows = []
    for lr in (float(x) for x in args.lrs.split(",")):
        pure = fraction_changed(lr, size=args.size, steps=args.steps, masters=False, seed=args.seed)
        mixed = fraction_changed(lr, size=args.size, steps=args.steps, masters=True, seed=args.seed)
        rows.append({"lr": lr, "pure_bf16": pure["bf16_weights"], "fp32_masters": mixed["fp32_masters"],
                     "fp32_masters_bf16_copy": mixed["bf16_weights"]})
    if args.json:
        print(json.dumps({"size": args.size, "steps": args.steps, "rows": rows}, indent=2))
        return 0
    table = Table(title=f"weights changed after {args.steps} AdamW steps, {args.size}x{args.size} N(0, 0.02)")
    for col in ("lr", "pure bf16 weights", "fp32 masters", "bf16 copy of the masters"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['lr']:g}", f"{100 * r['pure_bf16']:.2f} %", f"{100 * r['fp32_masters']:.2f} %",
                      f"{100 * r['fp32_masters_bf16_copy']:.2f} %")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
