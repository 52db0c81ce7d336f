"""The runner writes its records through the trace builder: a real run (scripted shoppers, real
Chromium, the bundled shop) whose every step equals what ``step_record`` builds from the same
live objects."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from shop_r1.envs.actions import ParseError
from shop_r1.envs.observation import ActionError, StepResult
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import read_trace, step_record

NONSENSE = ParseError(code="invalid_json", message="model said nonsense", detail={"pos": 3})


class _Recording(Policy):
    """The scripted shopper, with every request and answer kept; step 1 of each session fails to
    parse once (so the error path is recorded too)."""

    name = "recording"

    def __init__(self) -> None:
        self.inner = ScriptedPolicy(seed=2)
        self.seen: dict[tuple[str, int], tuple[PolicyRequest, PolicyResponse]] = {}
        self.failed: set[str] = set()

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        answers = await self.inner.act(requests)
        out = []
        for req, resp in zip(requests, answers):
            if req.step == 1 and req.session_id not in self.failed:
                self.failed.add(req.session_id)
                resp = PolicyResponse(action=None, raw_text="I would click", error=NONSENSE)
            self.seen[(req.session_id, req.step)] = (req, resp)
            out.append(resp)
        return out


def test_runner_records_equal_the_builders_output(fresh_shop, tmp_path: Path) -> None:
    personas = sample(2, seed=2)
    policy = _Recording()
    cfg = RunConfig(shop_url=fresh_shop.url, shoppers=2, concurrency=2, max_steps=5, seed=2, out_dir=tmp_path)
    asyncio.run(Runner(cfg, policy, personas, run_id="rec").run())

    trace = read_trace(tmp_path)
    assert trace.steps and not trace.problems
    by_persona = {p.persona_id: p for p in personas}
    errors = 0
    for rec in trace.steps:
        req, resp = policy.seen[(rec.session_id, rec.step)]
        result = None
        if resp.action is not None:
            error = ActionError(**rec.exec_error.model_dump()) if rec.exec_error else None
            result = StepResult(observation=None, error=error)
        built = step_record(
            run_id="rec", session_id=rec.session_id, step=rec.step, observation=req.observation, response=resp,
            result=result, persona_id=by_persona[rec.persona_id].persona_id,
            timings={"policy_s": rec.timings["policy_s"], "step_ms": rec.timings["step_ms"]},
            outcome=rec.outcome, end_reason=rec.end_reason,
        )
        assert rec.model_dump(exclude={"ts"}) == built.model_dump(exclude={"ts"})
        assert len(rec.elements) == len(req.observation.elements)
        if rec.action is None:
            errors += 1
            assert rec.parse_error.model_dump() == NONSENSE.model_dump()  # the parser's object, whole
    assert errors == 2
