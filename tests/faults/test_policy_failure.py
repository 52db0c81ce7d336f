"""A policy that raises: each session records the failure and ends ``policy_error``; none is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import read_trace

from tests.faults.fault_shop import serve_fault_shops


class Exploding(Policy):
    name = "exploding"

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        raise RuntimeError("the model server fell over")


def test_raising_policy_ends_sessions_as_policy_error(tmp_path: Path) -> None:
    with serve_fault_shops() as shops:
        config = RunConfig(shop_url=shops.url, shoppers=2, concurrency=2, max_steps=5, out_dir=tmp_path / "run",
                           max_policy_errors=2)
        result = asyncio.run(Runner(config, Exploding(), sample(2, seed=4)).run())
    assert result.outcomes == {"policy_error": 2}, result.outcomes
    trace = read_trace(tmp_path / "run")
    assert len(trace.steps) == 4 and not trace.problems
    for step in trace.steps:
        assert step.parse_error is not None and step.parse_error.code == "generation_failed"
        assert "the model server fell over" in step.parse_error.message
