"""What waiting for a page to settle before each observation costs, and what it buys.

The observer waits (``SessionOptions.observe_quiet_ms`` / ``observe_settle_max_ms``, see
``envs/settle.py``) until network, DOM and animations have been quiet, so a client-rendered page
is read after its products arrive. This measures, in one run and one Chromium:

* cost: the same shopper path on the bundled (server-rendered) shop -- open the home page,
  search, open a product, add to cart -- with the wait on and off (0), sessions alternating;
  per step the wall time of ``reset``/``step`` and the wait itself (``observe_settle_ms``);
* gain: first observations of the client-rendered test shop (``tests/fixtures/wild_shops.py``)
  that show its products, with the wait on and off.

    .venv/bin/python bench/settle.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from shop_r1.envs.browser import BrowserPool, SessionOptions
from shop_r1.envs.observation import Observation
from shop_r1.envs.shop.server import run_in_thread

ROOT = Path(__file__).resolve().parents[1]


def _first(obs: Observation, *, ends: str = "", contains: str = "", kind: str = "clickable") -> str:
    for el in obs.elements:
        if el.kind == kind and el.name.endswith(ends) and contains in el.name:
            return el.name
    raise LookupError(f"no {kind} element ending {ends!r} containing {contains!r}")


async def _path(pool: BrowserPool, url: str, options: SessionOptions, sid: str) -> list[tuple[str, float, float]]:
    """(step, wall ms, settle-wait ms) for home -> search -> product -> add to cart."""
    session = await pool.new_session(sid, options=options)
    out: list[tuple[str, float, float]] = []
    try:
        t = time.perf_counter()
        obs = await session.reset(url)
        out.append(("open home", (time.perf_counter() - t) * 1000, obs.timings.get("observe_settle_ms", 0.0)))
        steps = [
            ("search", lambda o: {"type": "type_and_submit", "name": _first(o, contains="search", kind="input"),
                                  "text": "headphones"}),
            ("open product", lambda o: {"type": "click", "name": _first(o, ends="view_product")}),
            ("add to cart", lambda o: {"type": "click", "name": _first(o, contains="add_to_cart")}),
        ]
        for label, make in steps:
            t = time.perf_counter()
            result = await session.step(make(obs))
            wall = (time.perf_counter() - t) * 1000
            if result.observation is None:
                break
            obs = result.observation
            out.append((label, wall, obs.timings.get("observe_settle_ms", 0.0)))
    finally:
        await session.close()
    return out


async def main(rounds: int) -> None:
    on = SessionOptions()
    off = SessionOptions(observe_settle_max_ms=0)
    walls: dict[tuple[str, str], list[float]] = {}
    waits: dict[str, list[float]] = {}
    async with BrowserPool() as pool:
        with run_in_thread(seed=0, port=0) as shop:
            for r in range(rounds):
                for mode, options in (("on", on), ("off", off)) if r % 2 == 0 else (("off", off), ("on", on)):
                    for label, wall, wait in await _path(pool, shop.url, options, f"{mode}{r}"):
                        walls.setdefault((label, mode), []).append(wall)
                        if mode == "on":
                            waits.setdefault(label, []).append(wait)
        print(f"bundled shop (server-rendered), median of {rounds} rounds, ms per step:")
        print(f"  {'step':14s} {'wait on':>8s} {'wait off':>9s} {'diff':>7s} {'settle wait':>12s}")
        for label in waits:
            a, b = statistics.median(walls[(label, "on")]), statistics.median(walls[(label, "off")])
            print(f"  {label:14s} {a:8.0f} {b:9.0f} {a - b:+7.0f} {statistics.median(waits[label]):12.1f}")

        sys.path.insert(0, str(ROOT / "tests"))
        from fixtures.wild_shops import CLIENT_ITEMS, ClientShop  # noqa: PLC0415 - a test fixture, here only

        shown = {"on": 0, "off": 0}
        first_ms: dict[str, list[float]] = {"on": [], "off": []}
        with ClientShop(api_delay_s=0.4) as client:
            for r in range(rounds):
                for mode, options in (("on", on), ("off", off)):
                    session = await pool.new_session(f"c{mode}{r}", options=options)
                    t = time.perf_counter()
                    obs = await session.reset(client.url + "/")
                    first_ms[mode].append((time.perf_counter() - t) * 1000)
                    shown[mode] += f"{len(CLIENT_ITEMS)} Product(s) found" in obs.simplified_html
                    await session.close()
        print(f"client-rendered shop (API answers after 400 ms): first observation shows the products in")
        for mode in ("on", "off"):
            print(f"  wait {mode:3s}: {shown[mode]}/{rounds} sessions, median reset {statistics.median(first_ms[mode]):.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
