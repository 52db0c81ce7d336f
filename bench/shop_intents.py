"""Scripted shoppers with intents drawn from each test shop's own catalogue: do they find things?

For each test layout (the bundled shop in layouts v1 and v2, and the third-party fixture shop
with other markup), crawls the shop (``shop_r1.envs.storefront``), samples N personas with
shop-derived intents, runs them as scripted shoppers in real Chromium and prints how many reached
a product page (by content, the shared classifier) and how many had a cart (as the shop itself
records it). The issue's bar: a product page in >= 5 of 6 sessions, a cart in >= 2 of 6.

    .venv/bin/python bench/shop_intents.py            # 6 shoppers, 20 steps, seed 3
    .venv/bin/python bench/shop_intents.py --shoppers 12 --seed 7 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the third-party fixture shop lives with the tests

from fixtures.third_party_shop import ThirdPartyShop  # noqa: E402
from shop_r1.envs.pagetype import classify  # noqa: E402
from shop_r1.envs.shop.server import run_in_thread  # noqa: E402
from shop_r1.personas.sampler import sample  # noqa: E402
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy  # noqa: E402
from shop_r1.simulator.loop.runner import RunConfig, Runner  # noqa: E402
from shop_r1.envs.storefront import CrawlLimits, crawl
from shop_r1.personas.intents import intent_source  # noqa: E402
from shop_r1.simulator.records.trace import observation_from_step, read_trace  # noqa: E402

# shop name -> a context manager yielding (start URL, a function returning how many carts are non-empty)
Shop = Callable[[], Any]


@contextmanager
def _bundled(layout: str) -> Iterator[tuple[str, Callable[[], int]]]:
    with run_in_thread(seed=0, port=0, layout=layout) as shop:
        yield shop.url, lambda: sum(1 for items in shop.state()["carts"].values() if items)


@contextmanager
def _third_party() -> Iterator[tuple[str, Callable[[], int]]]:
    with ThirdPartyShop() as shop:
        yield shop.url, lambda: sum(1 for bag in shop.bags.values() if bag)


SHOPS: dict[str, Shop] = {"bundled-v1": lambda: _bundled("v1"), "bundled-v2": lambda: _bundled("v2"),
                          "third-party": _third_party}


def measure(name: str, shoppers: int, max_steps: int, seed: int, out: Path) -> dict[str, Any]:
    with SHOPS[name]() as (url, carts):
        t0 = time.perf_counter()
        catalogue = crawl(url, CrawlLimits(delay_s=0.0))
        crawl_s = time.perf_counter() - t0
        personas = sample(shoppers, seed=seed, intent_source=intent_source(catalogue))
        cfg = RunConfig(shop_url=url, shoppers=shoppers, concurrency=min(shoppers, 3), max_steps=max_steps,
                        seed=seed, out_dir=out)
        result = asyncio.run(Runner(cfg, ScriptedPolicy(seed=seed), personas).run())
        carted = carts()
    trace = read_trace(out)
    product = sum(any(classify(observation_from_step(s)).type == "product" for s in steps)
                  for steps in trace.sessions.values())
    return {"shop": name, "sessions": len(trace.sessions), "product": product, "cart": carted,
            "crawl": {"pages": catalogue.stats.pages_fetched, "seconds": round(crawl_s, 2),
                      "categories": len(catalogue.categories), "products": len(catalogue.products),
                      "listed": len(catalogue.listed)},
            "intents": [p.intent for p in personas], "outcomes": dict(result.outcomes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoppers", type=int, default=6)
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--shops", nargs="*", default=list(SHOPS), choices=list(SHOPS))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.shops:
            rows.append(measure(name, args.shoppers, args.max_steps, args.seed, Path(tmp) / name))
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    need_p, need_c = 5 / 6, 2 / 6
    for r in rows:
        n = r["sessions"]
        ok = r["product"] >= need_p * n - 1e-9 and r["cart"] >= need_c * n - 1e-9
        print(f"{r['shop']:12s} product page {r['product']}/{n}  cart {r['cart']}/{n}  "
              f"{'meets' if ok else 'MISSES'} the bar (>= 5/6, >= 2/6)   crawl: {r['crawl']}")
        for intent in r["intents"]:
            print(f"    {intent}")
        print(f"    outcomes: {r['outcomes']}")


if __name__ == "__main__":
    main()
