"""How well the default model shops on the bundled shop: executable-action, product-reached and
added-to-cart rates over N shoppers x K steps.

Issue 12 asks for these three figures before and after changes to the prompt and the decoding
grammar, so they are measured the same way every time: real Chromium, the bundled shop on
127.0.0.1, the embedded default model (SmolLM2-135M-Instruct, constrained decoding unless
``--no-constrained``), personas sampled as ``shop-r1 demo`` samples them. Funnel stages come from
``simulator.realism`` (pages classified by content), so "reached a product" means a product page
was seen, whatever its URL.

    .venv/bin/python bench/demo_policy.py --shoppers 4 --steps 6 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from shop_r1.envs.actions import TypeAndSubmit
from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.sampler import sample
from shop_r1.personas.shoppers import catalog_terms
from shop_r1.simulator.agent.policies.factory import PolicySpec, open_policy
from shop_r1.simulator.analysis.realism import realism
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import read_trace

log = logging.getLogger("bench.demo_policy")


def rates(trace_dir: Path) -> dict[str, Any]:
    """The three rates of one run directory, and what the shoppers typed and chose."""
    trace = read_trace(trace_dir)
    steps = trace.steps
    executable = sum(1 for s in steps if s.action is not None and s.exec_error is None)
    block = realism(trace)
    kinds = Counter(s.action.type if s.action is not None else "none" for s in steps)
    typed = [s.action.text for s in steps if isinstance(s.action, TypeAndSubmit)]
    return {
        "sessions": block.sessions,
        "steps": len(steps),
        "executable_action_rate": round(executable / len(steps), 3) if steps else 0.0,
        "product_reached_rate": block.funnel.get("product", 0.0),
        "added_to_cart_rate": block.funnel.get("added_to_cart", 0.0),
        "action_types": dict(kinds),
        "typed_texts": typed[:12],
        "rationales": [s.rationale for s in steps[:6]],
    }


async def run(shoppers: int, steps: int, seed: int, constrained: bool, out_dir: Path,
              page_budget: int, prompt_budget: int) -> float:
    with run_in_thread(seed=0, port=0) as shop:
        personas = sample(shoppers, seed=seed, catalog_terms=catalog_terms(shop.url))
        spec = PolicySpec(name="transformers", model="default", seed=seed, constrained=constrained,
                          max_concurrency=shoppers, prompt_budget=prompt_budget)
        config = RunConfig(shop_url=shop.url, shoppers=shoppers, concurrency=shoppers, max_steps=steps, seed=seed,
                           out_dir=out_dir, policy="transformers", model="default", step_timeout_s=900.0,
                           session_timeout_s=7200.0, page_token_budget=page_budget)
        t0 = time.perf_counter()
        async with open_policy(spec) as policy:
            await Runner(config, policy, personas).run()
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoppers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-constrained", dest="constrained", action="store_false")
    ap.add_argument("--page-budget", type=int, default=1200, help="as shop-r1 demo")
    ap.add_argument("--prompt-budget", type=int, default=1800, help="as shop-r1 demo")
    ap.add_argument("--out", type=Path, default=None, help="run directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="demo_policy_") as tmp:
        out = args.out or Path(tmp) / "run"
        wall = asyncio.run(run(args.shoppers, args.steps, args.seed, args.constrained, out,
                               args.page_budget, args.prompt_budget))
        figures = {"shoppers": args.shoppers, "max_steps": args.steps, "seed": args.seed,
                   "constrained": args.constrained, "wall_s": round(wall, 1),
                   "load_avg_1m": round(os.getloadavg()[0], 1), **rates(out)}
    if args.json:
        print(json.dumps(figures))
    else:
        for key in ("executable_action_rate", "product_reached_rate", "added_to_cart_rate"):
            print(f"{key:24s} {figures[key]:.3f}")
        print(json.dumps({k: v for k, v in figures.items() if not k.endswith("_rate")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
