"""Scripted shoppers on storefronts as they are (issue 24): per test shop, how many of N sessions
reached a product (or a product card) and added to cart, with the repeated-action rate and the
first queries' ROUGE-L; then first-query ROUGE-L over the 2,000 WebShop goals people wrote.

Shops are those of ``tests/fixtures/wild_shops.py`` (a consent wall and a delayed newsletter modal
over a server-rendered shop in English with ARIA and in German and French without; a
client-rendered one-page shop of product cards). Intents come from each shop's crawled catalogue
in the default mission mix (``personas.missions``); "added to cart" is read from the shop's own
server-side carts, "reached" from the pages the shoppers saw.

    .venv/bin/python bench/wild_shoppers.py --shoppers 6 --seed 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.wild_shops import CLIENT_ITEMS, ClientShop, ConsentShop  # noqa: E402

from shop_r1.personas.library import load_intents  # noqa: E402
from shop_r1.personas.missions import split_mission  # noqa: E402
from shop_r1.personas.sampler import sample  # noqa: E402
from shop_r1.personas.intent_words import query_from_intent  # noqa: E402
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy  # noqa: E402
from shop_r1.simulator.analysis.realism import realism_of_run  # noqa: E402
from shop_r1.simulator.loop.runner import RunConfig, Runner  # noqa: E402
from shop_r1.simulator.scoring.similarity import rouge_l  # noqa: E402
from shop_r1.envs.storefront import crawl
from shop_r1.personas.intents import intent_source  # noqa: E402
from shop_r1.simulator.records.trace import read_trace  # noqa: E402


def run_shop(name: str, shoppers: int, seed: int, max_steps: int, out: Path) -> dict:
    shop_cm = ClientShop() if name == "client" else ConsentShop(name)
    titles = [i.title.lower() for i in CLIENT_ITEMS]
    with shop_cm as shop:
        url = shop.url + "/"
        t0 = time.perf_counter()
        personas = sample(shoppers, seed=seed, intent_source=intent_source(crawl(url)))
        cfg = RunConfig(shop_url=url, shoppers=shoppers, concurrency=min(3, shoppers), max_steps=max_steps,
                        seed=seed, out_dir=out)
        result = asyncio.run(Runner(cfg, ScriptedPolicy(seed=seed), personas).run())
        carts = shop.carts if name == "client" else shop.baskets
        added = sum(1 for lines in carts.values() if lines)
        wall = time.perf_counter() - t0
    trace = read_trace(out)
    if name == "client":
        reached = sum(any(any(t in s.simplified_html.lower() for t in titles) for s in steps)
                      for steps in trace.sessions.values())
    else:
        reached = sum(any("/p/" in s.url for s in steps) for steps in trace.sessions.values())
    block = realism_of_run(out)
    items = {i["name"]: i for i in block["items"]}
    return {"shop": name, "sessions": len(trace.sessions), "reached": reached, "added": added,
            "buyers": sum(split_mission(p.intent or "")[0] == "buy" for p in personas),
            "outcomes": dict(result.outcomes), "repeated": block["repeated_actions"],
            "rouge": {k: items[f"first_query_rouge_{k}"]["value"]["mean"] for k in ("own", "goal")
                      if f"first_query_rouge_{k}" in items}, "wall_s": round(wall, 1),
            "intents": [p.intent for p in personas]}


def corpus_rouge(seed: int) -> dict[str, float]:
    """First queries the scripted shopper forms for the 2,000 WebShop goals, against each goal."""
    goals = list(load_intents("webshop"))
    rng = random.Random(seed)
    out = {}
    for label, typo in (("careful (no slips)", 0.0), ("typical (6 % slips)", 0.06)):
        queries = [query_from_intent(g, rng, typo_rate=typo, partial_rate=typo) for g in goals]
        out[label] = round(statistics.fmean(rouge_l(g, q) for g, q in zip(goals, queries)), 4)
    out["median words"] = statistics.median(len(query_from_intent(g, rng).split()) for g in goals)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoppers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=15)
    ap.add_argument("--shops", default="en,de,fr,client")
    ap.add_argument("--verbose", action="store_true", help="print each shopper's intent")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.shops.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_shop(name, args.shoppers, args.seed, args.max_steps, Path(tmp) / "run")
        rates = ", ".join(f"{k} {v['rate']:.1%} ({int(v['repeats'])}/{int(v['pairs'])})" for k, v in r["repeated"].items())
        print(f"{r['shop']:<7} reached product {r['reached']}/{r['sessions']}, added to cart {r['added']}/{r['sessions']} "
              f"({r['buyers']} came to buy); repeated-action rate {rates}; first-query ROUGE-L {r['rouge']}; "
              f"outcomes {r['outcomes']}; {r['wall_s']} s")
        if args.verbose:
            for intent in r["intents"]:
                print(f"          {intent}")
    print("first-query ROUGE-L against the WebShop goals people wrote (2,000):", corpus_rouge(args.seed))


if __name__ == "__main__":
    main()
