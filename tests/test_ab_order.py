"""A/B pairs start in an order drawn per pair: the drawn arm opens its first page first, the other
waits for it (holding no concurrency slot), and the draw is balanced and repeatable. Real runner,
two real bundled shops, scripted shoppers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fixtures.pair_order_log import LoggedOrder

from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.sampler import sample
from shop_r1.simulator.analysis.ab.run import PairOrder, run_arms
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.loop.runner import RunConfig
from shop_r1.simulator.records.trace import read_trace


def test_draw_is_balanced_and_repeatable() -> None:
    a, b = PairOrder("ab", 400, seed=3), PairOrder("ab", 400, seed=3)
    assert a.first == b.first and a.first != PairOrder("ab", 400, seed=4).first
    assert 160 < a.counts()["a"] < 240


def test_the_drawn_arm_opens_first_and_the_other_waits(tmp_path: Path) -> None:
    pairs = 6
    order = LoggedOrder(PairOrder(["a", "b"], pairs, seed=7))
    assert set(order.order.first) == {"a", "b"}  # both orders occur at this seed
    people = sample(pairs, seed=7)
    with run_in_thread(seed=0, port=0) as shop_a, run_in_thread(seed=0, port=0, variant="recolor") as shop_b:
        configs = {k: RunConfig(shop_url=url, shoppers=pairs, concurrency=2, max_steps=3, seed=7, out_dir=tmp_path / k)
                   for k, url in (("a", shop_a.url), ("b", shop_b.url))}
        asyncio.run(run_arms(configs, ScriptedPolicy(seed=7), {"a": people, "b": people},
                             {"a": "o-a", "b": "o-b"}, order=order))  # type: ignore[arg-type]
    assert order.violations() == []
    for k in ("a", "b"):
        assert len(read_trace(tmp_path / k).session_ids) == pairs
