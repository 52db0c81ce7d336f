"""A policy built by ``shop-r1 train recipe``, measured live in the browser against its base.

Both policies shop as the SAME sampled personas (same seed) in real Chromium, on two shops:

* ``bundled``: the catalogue seed and layout the recipe trained on (v1, seed 0 by default);
* ``unseen``: a catalogue seed and layout it never trained on (``--unseen-seed``, layout v2).

Printed side by side per shop: the share of sessions that viewed a product page and that added
to cart (the content-based funnel of :mod:`shop_r1.simulator.analysis.realism`), and the executable-action
rate (steps whose answer parsed and executed, over all steps). The same personas shop with both
policies, so each shop's difference (policy minus base) is a paired comparison: the A/B
analysis's Newcombe 95 % interval and exact McNemar p-value (``shop_r1.simulator.analysis.ab.stats``).

    .venv/bin/python bench/recipe_live.py --recipe runs/recipe            # a finished recipe folder
    .venv/bin/python bench/recipe_live.py --recipe runs/recipe --train    # run the recipe first (tiny sizes)
    .venv/bin/python bench/recipe_live.py --recipe runs/recipe --json
    # any checkpoint the recipe's stages produced, e.g. bench/paper_table.py's Shop-R1 arm:
    .venv/bin/python bench/recipe_live.py --policy OUT/seed0/grpo-shop-r1 --base OUT/seed0/base-small \
        --prompt-budget 3072 --out /tmp/live

Decoding is what ``shop-r1 simulate`` does by default for a model policy: grammar-constrained
(``--free`` lifts it) and sampled at the policy's default temperature under the run's seed
(``--temperature 0`` for greedy). Greedy decoding makes every shopper on the same page write the
same most-likely rationale, which is not how the simulator is run nor how shoppers behave.
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
from shop_r1.simulator.analysis.ab.analysis import analyse  # noqa: E402
from shop_r1.simulator.agent.policies.factory import PolicySpec, open_policy  # noqa: E402
from shop_r1.simulator.analysis.realism import realism  # noqa: E402
from shop_r1.simulator.loop.runner import RunConfig, Runner  # noqa: E402
from shop_r1.simulator.records.trace import read_trace  # noqa: E402
from shop_r1.training.recipe import CATALOG_TERMS, RECIPE_RECORD_FILE, RecipeSettings, built_shape, run_recipe  # noqa: E402

log = logging.getLogger("bench.recipe_live")


def live_run(model_dir: Path, out: Path, *, shop_seed: int, layout: str, shoppers: int, max_steps: int, seed: int,
             constrained: bool, prompt_budget: int | None, temperature: float | None) -> dict[str, Any]:
    """Shoppers driven by ``model_dir`` on one shop; the funnel and executable-action rate."""
    personas = sample(shoppers, seed=seed, catalog_terms=list(CATALOG_TERMS))
    spec = PolicySpec(name="transformers", model=str(model_dir), seed=seed, constrained=constrained,
                      temperature=temperature, prompt_budget=prompt_budget, extra={"device": "cpu"})

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


#: Funnel stages compared per shop (policy minus base, paired by persona).
PAIRED_METRICS: tuple[str, ...] = ("searched", "viewed_product", "added_to_cart")


def _delta(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "-"
    lo, hi = metric["ci95"]
    return f"{100 * metric['diff']:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}] p={metric['p_value']:.3f}"


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
    ap.add_argument("--temperature", type=float, default=None,
                    help="sampling temperature (default: the simulator's for a model policy; 0 = greedy)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # A log file is not a terminal (rich would assume 80 columns and fold the table).
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 170)
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
        # A built model (tiny, small) starts from random weights: it is an untrained base, not a
        # zero-shot one; only a pretrained model (default, a folder) is a zero-shot baseline.
        base_name = "untrained base (random init)" if built_shape(str(record["settings"].get("model", ""))) \
            else "zero-shot base"
        policies = {base_name: Path(record["base_model"]), "recipe policy": Path(record["policy_dir"])}
    if args.base is not None:
        policies = {("zero-shot base" if k != "recipe policy" else k): v for k, v in policies.items()}
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
    paired: dict[str, dict[str, Any]] = {}
    for shop_name, (shop_seed, layout) in shops.items():
        for pol_name, model_dir in policies.items():
            console.print(f"[cyan]▶ {pol_name} on {shop_name}[/]")
            tag = f"live-{'base' if 'base' in pol_name else 'policy'}-shop{shop_seed}-{layout}"
            results.setdefault(shop_name, {})[pol_name] = live_run(
                model_dir, out_root / tag, shop_seed=shop_seed, layout=layout, shoppers=args.shoppers,
                max_steps=args.max_steps, seed=args.seed, constrained=not args.free,
                prompt_budget=trained["rl_token_budget"], temperature=args.temperature)
        by_policy = results[shop_name]
        base_label = next(k for k in by_policy if k != "recipe policy")
        ab = analyse(Path(by_policy[base_label]["trace"]), Path(by_policy["recipe policy"]["trace"]),
                     design="paired")
        paired[shop_name] = {k: ab.metrics[k].model_dump(mode="json") for k in PAIRED_METRICS}
    decoding = "greedy" if args.temperature == 0 else (
        f"T={args.temperature}" if args.temperature is not None else "sampled (simulator default)")
    base_label = next(k for k in policies if k != "recipe policy")
    table = Table(title=f"recipe policy vs {base_label}, live in Chromium ({args.shoppers} shoppers x "
                        f"<= {args.max_steps} steps, {'free' if args.free else 'constrained'} {decoding} decoding)")
    for col in ("shop", "policy", "viewed a product %", "Δ viewed vs base (95 % CI)", "added to cart %",
                "Δ cart vs base", "searched %", "executable actions %", "steps", "wall s"):
        table.add_column(col, justify="left" if col in ("shop", "policy") else "right")
    for shop_name, by_policy in results.items():
        for pol_name, r in by_policy.items():
            delta = paired[shop_name] if pol_name == "recipe policy" else {}
            table.add_row(shop_name, pol_name, f"{100 * r['viewed_product']:.0f}", _delta(delta.get("viewed_product")),
                          f"{100 * r['added_to_cart']:.0f}", _delta(delta.get("added_to_cart")),
                          f"{100 * r['searched']:.0f}", f"{100 * r['executable_rate']:.1f}", str(r["steps"]),
                          f"{r['wall_s']:.0f}")
    console.print(table)
    if args.json:
        print(json.dumps({"recipe": str(args.recipe), "policies": {k: str(v) for k, v in policies.items()},
                          "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                          "results": results, "paired_vs_base": paired}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
