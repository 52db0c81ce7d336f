"""The runner end to end: scripted shoppers in real Chromium against the real bundled shop."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path


from shop_r1.envs.actions import Click, ParseError, Terminate, TypeAndSubmit
from shop_r1.personas.missions import BUYERS_ONLY
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
TERMS = ["headphones", "shirt", "kitchen", "shoes", "toys", "coffee", "laptop"]


def _config(shop_url: str, out: Path, **kw) -> RunConfig:
    base = dict(shop_url=shop_url, shoppers=4, concurrency=4, max_steps=12, seed=3, out_dir=out)
    base.update(kw)
    return RunConfig(**base)


def test_scripted_run_records_trace_and_shop_state(fresh_shop, tmp_path):
    personas = sample(6, seed=3, catalog_terms=TERMS, missions=BUYERS_ONLY)  # buyers: carts are checked below
    cfg = _config(fresh_shop.url, tmp_path / "run", shoppers=6, concurrency=6)
    result = asyncio.run(Runner(cfg, ScriptedPolicy(seed=3), personas).run())

    assert len(result.sessions) == 6
    trace = read_trace(tmp_path / "run")
    assert not trace.problems
    assert set(trace.sessions) == {s.session_id for s in result.sessions}
    for sid, steps in trace.sessions.items():
        assert [s.step for s in steps] == list(range(len(steps)))
        assert steps[-1].done and steps[-1].outcome, sid
        assert steps[0].action is not None and steps[0].action.type == "type_and_submit"  # searched first
        assert all(s.simplified_html and s.elements for s in steps)
    # What shoppers did is what the shop saw: carts exist exactly for sessions that added to cart.
    state = fresh_shop.state()
    for end in result.sessions:
        cart = state["carts"].get(end.session_id, [])
        if end.outcome == "added_to_cart":
            assert cart, f"{end.session_id} says added_to_cart but the shop has no cart"
    assert any(end.outcome == "added_to_cart" for end in result.sessions)
    assert state["orders"] == []  # no purchase without --allow-purchase
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["summary"]["sessions"] == 6 and run["ended_at"]


def test_scripted_run_is_deterministic(fresh_shop, tmp_path):
    personas = sample(2, seed=5, catalog_terms=TERMS)

    def actions(out: Path) -> list:
        asyncio.run(Runner(_config(fresh_shop.url, out, shoppers=2, concurrency=2, max_steps=6),
                           ScriptedPolicy(seed=5), personas, run_id="same").run())
        return sorted((s.session_id, s.step, json.dumps(s.action.to_json() if s.action else None, sort_keys=True)) for s in read_trace(out).steps)

    assert actions(tmp_path / "a") == actions(tmp_path / "b")


class _Plan(Policy):
    """Plays a fixed list of actions per session (a test double for a model policy only)."""

    name = "plan"

    def __init__(self, plan, fail_sessions=()):
        self.plan = plan
        self.fail = set(fail_sessions)

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        out = []
        for req in requests:
            if any(req.session_id.endswith(f) for f in self.fail):
                out.append(PolicyResponse(action=None, error=ParseError(code="invalid_json", message="model said nonsense")))
                continue
            action = self.plan(req)
            out.append(PolicyResponse(action=action, rationale="planned step", raw_text="{}"))
        return out


def _checkout_plan(req: PolicyRequest):
    """Search, open the first result, pick options, add to cart, check out, fill, place order."""
    from shop_r1.envs.page_signals import read_signals

    obs = req.observation
    sig = read_signals(obs)
    done = {h.action["name"] for h in req.history if h.action and "name" in h.action}
    if sig.place_order is not None:
        for el in sig.form_inputs:
            if el.name not in done:
                value = "alex@example.com" if "mail" in el.name else "12345" if "zip" in el.name else "Alex Doe"
                return TypeAndSubmit(name=el.name, text=value)
        return Click(name=sig.place_order.name)
    if sig.checkout is not None and any("add_to_cart" in n for n in done):
        return Click(name=sig.checkout.name)
    if sig.add_to_cart is not None:
        for group, options in sig.option_groups.items():
            if not any(n.startswith(group + ".") for n in done):
                return Click(name=options[0].name)
        return Click(name=sig.add_to_cart.name)
    if req.step == 0:
        return TypeAndSubmit(name=sig.search_input.name, text="wireless headphones")
    if sig.products:
        return Click(name=sig.products[0].name)
    return Terminate()


def test_purchase_guard_redaction_and_failing_shopper(fresh_shop, tmp_path):
    personas = sample(3, seed=1)
    cfg = _config(fresh_shop.url, tmp_path / "run", shoppers=3, concurrency=3, max_steps=16, max_policy_errors=2)
    result = asyncio.run(Runner(cfg, _Plan(_checkout_plan, fail_sessions=("0002",)), personas).run())
    ends = {e.session_id[-4:]: e for e in result.sessions}
    assert ends["0002"].outcome == "policy_error"  # the failing shopper ends alone ...
    assert ends["0000"].steps > 4 and ends["0001"].steps > 4  # ... the others go on
    trace = read_trace(tmp_path / "run")
    steps = [s for s in trace.steps if not s.session_id.endswith("0002")]
    blocked = [s for s in steps if s.exec_error and s.exec_error.code == "purchase_blocked"]
    assert blocked, "place-order clicks must be refused without --allow-purchase"
    assert fresh_shop.state()["orders"] == []
    typed = [s.action for s in steps if isinstance(s.action, TypeAndSubmit) and "mail" in s.action.name]
    assert typed and all(a.text == "[REDACTED]" for a in typed)


def test_allow_purchase_places_orders(fresh_shop, tmp_path):
    cfg = _config(fresh_shop.url, tmp_path / "run", shoppers=1, concurrency=1, max_steps=16, allow_purchase=True)
    result = asyncio.run(Runner(cfg, _Plan(_checkout_plan), sample(1, seed=2)).run())
    orders = fresh_shop.state()["orders"]
    assert len(orders) == 1 and orders[0]["sid"] == result.sessions[0].session_id


class _Stall(Policy):
    """Answers like the scripted shopper for ``calls`` calls, then hangs the way a stuck model
    server does, so the interrupt lands mid-run however fast the machine is."""

    name = "stall"

    def __init__(self, calls: int):
        self.inner = ScriptedPolicy(seed=1)
        self.calls = calls
        self.stalled = asyncio.Event()

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        self.calls -= 1
        if self.calls < 0:
            self.stalled.set()
            await asyncio.Event().wait()
        return await self.inner.act(requests)


def test_interrupt_keeps_everything_recorded(fresh_shop, tmp_path):
    cfg = _config(fresh_shop.url, tmp_path / "run", shoppers=3, concurrency=3, max_steps=40)

    async def main():
        policy = _Stall(calls=4)
        task = asyncio.create_task(Runner(cfg, policy, sample(3, seed=1)).run())
        await asyncio.wait_for(policy.stalled.wait(), timeout=120)
        task.cancel()
        return await task

    result = asyncio.run(main())
    assert result.interrupted
    trace = read_trace(tmp_path / "run")
    assert not trace.problems and trace.steps
    assert {trace.outcome(sid) for sid in trace.session_ids} <= {"interrupted", "added_to_cart", "abandoned", "purchased"}
    assert "interrupted" in {trace.outcome(sid) for sid in trace.session_ids}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["summary"]["interrupted"] is True


def test_simulate_cli_writes_trace_and_report(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "shop-r1"), "simulate", "-n", "2", "-c", "2", "--max-steps", "5",
         "--seed", "4", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "trace.jsonl").stat().st_size > 0
    html = (out / "report.html").read_text()
    assert "Funnel" in html and "<svg" in html or "data:image/svg" in html
    assert "Searched" in proc.stdout


def test_simulate_cli_rejects_bad_input(tmp_path):
    from click.testing import CliRunner

    from shop_r1.simulator.cli.main import main

    res = CliRunner().invoke(main, ["simulate", "--shop", "ftp://nope", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "http" in res.output
    res = CliRunner().invoke(main, ["simulate", "--policy", "openai", "--out", str(tmp_path / "y")])
    assert res.exit_code != 0 and "--model" in res.output
