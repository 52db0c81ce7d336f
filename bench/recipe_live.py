"""A policy built by ``shop-r1 train recipe``, measured live in the browser against its base.

Both policies shop as the SAME sampled personas (same seed) in real Chromium, on two shops:

* ``bundled``: the catalogue seed and layout the recipe trained on (v1, seed 0 by default);
* ``unseen``: a catalogue seed and layout it never trained on (``--unseen-seed``, layout v2).

Printed side by side per shop: the share of sessions that viewed a product page and that added
to cart (the content-based funnel of :mod:`shop_r1.simulator.realism`), and the executable-action
rate (steps whose answer parsed and executed, over all steps).

    .venv/bin/python bench/recipe_live.py --recipe runs/recipe            # a finished recipe folder
    .venv/bin/python bench/recipe_live.py --recipe runs/recipe --train    # run the recipe first (tiny sizes)
    .venv/bin/python bench/recipe_live.py --recipe runs/recipe --json
    # any checkpoint the recipe's stages produced, e.g. bench/paper_table.py's Shop-R1 arm:
    .venv/bin/python bench/recipe_live.py --policy OUT/seed0/grpo-shop-r1 --base OUT/seed0/base-small \
        --prompt-budget 3072 --out /tmp/live

Decoding is the simulator's default for a model policy (grammar-constrained) unless ``--free``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from shop_r1.envs.shop.server import run_in_thread  # noqa: E402
from shop_r1.personas.sampler import sample  # noqa: E402
from shop_r1.simulator.policies.factory import PolicySpec, open_policy  # noqa: E402
from shop_r1.simulator.realism import realism  # noqa: E402
from shop_r1.simulator.runner import RunConfig, Runner  # noqa: E402
from shop_r1.simulator.trace import read_trace  # noqa: E402
from shop_r1.training.recipe import CATALOG_TERMS, RECIPE_RECORD_FILE, RecipeSettings, run_recipe  # noqa: E402

log = logging.getLogger("bench.recipe_live")


def live_run(model_dir: Path, out: Path, *, shop_seed: int, layout: str, shoppers: int, max_steps: int, seed: int,
             constrained: bool, prompt_budget: int | None) -> dict[str, Any]:
    """Shoppers driven by ``model_dir`` on one shop; the funnel and executable-action rate."""
    personas = sample(shoppers, seed=seed, catalog_terms=list(CATALOG_TERMS))
    spec = PolicySpec(name="transformers", model=str(model_dir), seed=seed, constrained=constrained,
                      temperature=0.0, prompt_budget=prompt_budget, extra={"device": "cpu"})

    async def go() -> Any:
        with run_in_thread(seed=shop_seed, port=0, layout=layout) as shop:
            cfg = RunConfig(shop_url=shop.url, shoppers=shoppers, concurrency=min(4, shoppers), max_steps=max_steps,
                            seed=seed, out_dir=out, policy="transformers", model=str(model_dir))
            async with open_policy(spec) as policy:
                return await Runner(cfg, policy, personas, run_id=out.name).run()

    t0 = time.perf_counter()
    result = asyncio.run(go())
    trace = read_trace(out)
    steps = [s for s in trace.steps]
    executable = sum(1 for s in steps if s.action is not None and s.parse_error is None and s.exec_error is None)
    block = realism(trace)
    return {"sessions": len(result.sessions), "steps": len(steps), "outcomes": dict(result.outcomes),
            "viewed_product": block.funnel.get("product", 0.0), "added_to_cart": block.funnel.get("added_to_cart", 0.0),
            "searched": block.funnel.get("searched", 0.0),
            "executable_rate": executable / len(steps) if steps else 0.0, "wall_s": round(time.perf_counter() - t0, 1),
            "trace": str(out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", type=Path, help="a `shop-r1 train recipe --out` folder")
    ap.add_argument("--train", action="store_true", help="run the recipe into --recipe first (its default sizes)")
    ap.add_argument("--policy", type=Path, help="a trained checkpoint (instead of the recipe's OUT/policy)")
    ap.add_argument("--base", type=Path, help="its zero-shot base (instead of the recipe's base model)")
    ap.add_argument("--prompt-budget", type=int, help="prompt tokens (default: the recipe's rl_token_budget)")
    ap.add_argument("--out", type=Path, help="where the live traces go (default: the recipe folder)")
    ap.add_argument("--shoppers", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=100, help="persona seed (the recipe trained on seed 0's personas)")
    ap.add_argument("--trained-shop-seed", type=int, default=0, help="catalogue seed trained on (without --recipe)")
    ap.add_argument("--unseen-seed", type=int, default=7, help="catalogue seed of the unseen shop (layout v2)")
    ap.add_argument("--free", action="store_true", help="free decoding instead of the simulator's grammar")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)
    if args.recipe is None and (args.policy is None or args.base is None or args.prompt_budget is None):
        raise SystemExit("bench/recipe_live.py: pass --recipe DIR, or --policy, --base and --prompt-budget")
    trained = {"shop_seed": args.trained_shop_seed, "layout": "v1", "rl_token_budget": args.prompt_budget}
    policies: dict[str, Path] = {}
    if args.recipe is not None:
        if args.train:
            run_recipe(RecipeSettings(out=args.recipe, device="cpu"))
        record_file = args.recipe / RECIPE_RECORD_FILE
        if not record_file.is_file():
            raise SystemExit(f"bench/recipe_live.py: {record_file} not found; run `shop-r1 train recipe --out "
                             f"{args.recipe}` first (or pass --train)")
        record = json.loads(record_file.read_text(encoding="utf-8"))
        trained = record["settings"] | ({"rl_token_budget": args.prompt_budget} if args.prompt_budget else {})
        policies = {"zero-shot base": Path(record["base_model"]), "recipe policy": Path(record["policy_dir"])}
    if args.base is not None:
        policies["zero-shot base"] = args.base
    if args.policy is not None:
        policies["recipe policy"] = args.policy
    for name, folder in policies.items():
        if not (folder / "config.json").is_file():
            raise SystemExit(f"bench/recipe_live.py: {name} {folder} is not a model folder (no config.json)")
    out_root = args.out or args.recipe
    shops = {"bundled (trained on)": (trained["shop_seed"], trained["layout"]),
             f"unseen (seed {args.unseen_seed}, v2)": (args.unseen_seed, "v2")}
    results: dict[str, dict[str, Any]] = {}
    for shop_name, (shop_seed, layout) in shops.items():
        for pol_name, model_dir in policies.items():
            console.print(f"[cyan]▶ {pol_name} on {shop_name}[/]")
            tag = f"live-{'base' if 'base' in pol_name else 'policy'}-shop{shop_seed}-{layout}"
            results.setdefault(shop_name, {})[pol_name] = live_run(
                model_dir, out_root / tag, shop_seed=shop_seed, layout=layout, shoppers=args.shoppers,
                max_steps=args.max_steps, seed=args.seed, constrained=not args.free,
                prompt_budget=trained["rl_token_budget"])
    table = Table(title=f"recipe policy vs zero-shot base, live in Chromium ({args.shoppers} shoppers x "
                        f"<= {args.max_steps} steps, {'free' if args.free else 'constrained'} greedy decoding)")
    for col in ("shop", "policy", "viewed a product %", "added to cart %", "searched %", "executable actions %",
                "steps", "wall s"):
        table.add_column(col, justify="left" if col in ("shop", "policy") else "right")
    for shop_name, by_policy in results.items():
        for pol_name, r in by_policy.items():
            table.add_row(shop_name, pol_name, f"{100 * r['viewed_product']:.0f}", f"{100 * r['added_to_cart']:.0f}",
                          f"{100 * r['searched']:.0f}", f"{100 * r['executable_rate']:.1f}", str(r["steps"]),
                          f"{r['wall_s']:.0f}")
    console.print(table)
    if args.json:
        print(json.dumps({"recipe": str(args.recipe), "policies": {k: str(v) for k, v in policies.items()},
                          "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                          "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
