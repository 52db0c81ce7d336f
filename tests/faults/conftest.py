"""Fixtures of the fault suite: the fault shops, and one run of the real runner against them.

A shopper here is a short script of visible link texts (``Clicker``): the runner, the browser,
the trace writer and reader are all the real ones, so each test sees what a user of
``shop-r1 simulate`` would -- outcome, end reason, the trace on disk -- for one fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shop_r1.envs.actions import Click, Terminate
from shop_r1.envs.browser import BrowserPool
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.loop.runner import RunConfig, Runner, RunResult
from shop_r1.simulator.records.trace import TraceReadResult, read_trace
from tests.faults.fault_shop import FaultShops, serve_fault_shops


class Clicker(Policy):
    """Clicks the element whose visible text is the next entry of ``script``, then terminates.

    ``before`` runs just before the step of that index is answered (e.g. to kill the shop).
    """

    name = "clicker"

    def __init__(self, script: Sequence[str], before: dict[int, Callable[[], None]] | None = None) -> None:
        self.script = list(script)
        self.before = before or {}

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        out = []
        for req in requests:
            if req.step in self.before:
                self.before[req.step]()
            if req.step >= len(self.script):
                out.append(PolicyResponse(action=Terminate(), rationale="done looking"))
                continue
            text = self.script[req.step]
            found = [el for el in req.observation.elements if el.text.strip() == text]
            assert found, f"no {text!r} on {req.observation.url}: {[e.text for e in req.observation.elements]}"
            out.append(PolicyResponse(action=Click(name=found[0].name), rationale=f"I want {text}"))
        return out


@dataclass
class Run:
    result: RunResult
    trace: TraceReadResult

    @property
    def outcome(self) -> str:
        (end,) = self.result.sessions
        return end.outcome

    @property
    def reason(self) -> str:
        (end,) = self.result.sessions
        return end.reason


RunShop = Callable[..., Run]


@pytest.fixture(scope="module")
def shops() -> Iterator[FaultShops]:
    with serve_fault_shops() as s:
        yield s


@pytest.fixture
async def pool() -> AsyncIterator[BrowserPool]:
    """A browser of the test's own (tests that share one per module override this)."""
    async with BrowserPool() as p:
        yield p


@pytest.fixture
def run_shop(tmp_path: Path) -> RunShop:
    """One shopper through the real runner: ``run_shop(start_url, script, **RunConfig fields)``."""

    def run(start_url: str, script: Sequence[str] = (), before: dict[int, Callable[[], None]] | None = None,
            **config: Any) -> Run:
        out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        cfg = RunConfig(shop_url=start_url, shoppers=1, concurrency=1, out_dir=out,
                        **{"max_steps": 6, "first_page_attempts": 1, **config})
        result = asyncio.run(Runner(cfg, Clicker(script, before), sample(1, seed=0)).run())
        trace = read_trace(out)  # strict: every line must read
        assert not trace.problems
        return Run(result, trace)

    return run
