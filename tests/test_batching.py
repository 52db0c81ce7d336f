"""The policy batcher: concurrent shoppers share model calls, a failing call fails only its own
batch, and a hung model server does not hold the run's exit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shop_r1.envs.actions import Terminate
from shop_r1.envs.observation import Observation
from shop_r1.simulator.loop.batching import PolicyBatcher
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse


def _request(i: int) -> PolicyRequest:
    return PolicyRequest(session_id=f"s{i}", observation=Observation("http://127.0.0.1/", "t", "<html/>", ()))


class _Echo(Policy):
    def __init__(self, fail_on: str | None = None, hang: bool = False):
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.hang = hang

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        ids = [r.session_id for r in requests]
        self.calls.append(ids)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_on in ids:
            raise ConnectionError("model server went away")
        return [PolicyResponse(action=Terminate(), rationale=r.session_id) for r in requests]


def test_concurrent_requests_share_one_call_and_get_their_own_answer():
    policy = _Echo()

    async def main():
        async with PolicyBatcher(policy, max_batch=8, max_wait_s=0.2) as batcher:
            return await asyncio.gather(*(batcher.submit(_request(i)) for i in range(5)))

    answers = asyncio.run(main())
    assert [a.rationale for a in answers] == [f"s{i}" for i in range(5)]
    assert len(policy.calls) == 1 and sorted(policy.calls[0]) == [f"s{i}" for i in range(5)]


def test_a_failed_call_becomes_an_error_for_its_batch_only():
    policy = _Echo(fail_on="s0")

    async def main():
        async with PolicyBatcher(policy, max_batch=1) as batcher:
            return await asyncio.gather(*(batcher.submit(_request(i)) for i in range(3)))

    first, *rest = asyncio.run(main())
    assert first.action is None and first.error is not None
    assert first.error.detail["reason"] == "policy_error" and "went away" in first.error.message
    assert all(r.action == Terminate() and r.error is None for r in rest)


def test_a_hung_model_does_not_hold_the_exit_of_a_stopped_run():
    policy = _Echo(hang=True)

    async def main():
        async with PolicyBatcher(policy, max_batch=2) as batcher:
            waiting = asyncio.create_task(batcher.submit(_request(0)))
            while not policy.calls:
                await asyncio.sleep(0.01)
            waiting.cancel()  # the run was stopped: the session is gone, its call still hangs
        return waiting.cancelled()

    assert asyncio.run(asyncio.wait_for(main(), timeout=10))
