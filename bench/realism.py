"""Realism of the scripted shopper on the bundled shop, per layout, against human reference data.

Runs N scripted shoppers (personas and intents from the library, seeded) through the real runner
in real Chromium on each layout, then prints the realism block's figures: action-type mix next to
OPeRA's, session lengths, first-query length per intent kind next to people's, and the funnel.

    .venv/bin/python bench/realism.py --shoppers 16 --max-steps 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
from pathlib import Path

from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.analysis.realism import realism_of_run
from shop_r1.simulator.loop.runner import RunConfig, Runner

TERMS = ["headphones", "shirt", "kitchen", "shoes", "toys", "coffee", "laptop"]


def measure(layout: str, shoppers: int, max_steps: int, seed: int, out: Path) -> dict:
    personas = sample(shoppers, seed=seed, catalog_terms=TERMS)
    with run_in_thread(seed=0, port=0, layout=layout) as shop:
        cfg = RunConfig(shop_url=shop.url, shoppers=shoppers, concurrency=min(shoppers, 4), max_steps=max_steps,
                        seed=seed, out_dir=out)
        result = asyncio.run(Runner(cfg, ScriptedPolicy(seed=seed), personas).run())
    block = realism_of_run(out)
    block["outcomes"] = dict(result.outcomes)
    return block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoppers", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--layouts", default="v1,v2")
    ap.add_argument("--json", type=Path, default=None, help="also write the blocks here")
    ap.add_argument("--keep", type=Path, default=None, help="keep each layout's run directory under this folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    blocks = {}
    for layout in args.layouts.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = (args.keep / layout) if args.keep else Path(tmp) / "run"
            blocks[layout] = b = measure(layout, args.shoppers, args.max_steps, args.seed, out)
        print(f"== layout {layout}: {b['sessions']} sessions, {b['actions']} actions, outcomes {b['outcomes']}")
        for item in b["items"]:
            met = "" if item["met"] is None else ("  target met" if item["met"] else "  target MISSED")
            print(f"  {item['name']:<24} run={json.dumps(item['value'])}  people={json.dumps(item['reference'])}"
                  f"  distance={item['distance']}{met}")
    if args.json:
        args.json.write_text(json.dumps(blocks, indent=1))


if __name__ == "__main__":
    main()
