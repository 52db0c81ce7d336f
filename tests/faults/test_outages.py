"""Outages are not behaviour: a shop that answers 500, drops the connection, hangs, is killed
mid-run or was never there ends the session as ``shop_error`` / ``shop_unreachable`` with a
reason naming the URL; the error page is never recorded as a page a shopper saw, every step
before it is kept, and ``data build`` leaves error pages out and says so. A page whose script
loops after load is stopped instead of holding the session until its time budget runs out.

Real Chromium, the real runner and trace, the fault shops on 127.0.0.1 (trap on 127.0.0.2).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.actions import Click
from shop_r1.envs.browser import BrowserPool, SessionOptions
from shop_r1.envs.outages import ResetError
from shop_r1.simulator.records.exchange import PolicyResponse
from shop_r1.simulator.records.trace import TraceWriter, read_trace, step_record
from shop_r1.simulator.records.trace.views import FAILED_OUTCOMES
from shop_r1.training.cli import data as data_cli
from shop_r1.training.data import build_dataset_dir
from tests.faults.conftest import RunShop
from tests.faults.fault_shop import FaultShops, serve_fault_shops


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shop_answering_500_at_the_start(shops: FaultShops, run_shop: RunShop) -> None:
    shops.counts.status_500 = True
    try:
        run = run_shop(f"{shops.url}/")
    finally:
        shops.counts.status_500 = False
    assert run.outcome == "shop_error" and run.outcome in FAILED_OUTCOMES
    assert "HTTP 500" in run.reason and f"{shops.url}/" in run.reason
    assert run.trace.steps == []  # no page was seen, so no step
    (end,) = run.trace.events
    assert end.event == "session_end" and end.outcome == "shop_error" and "HTTP 500" in (end.end_reason or "")


@pytest.mark.parametrize(("link", "why"), [("Sale", "HTTP 500"), ("Clearance", "net::ERR_EMPTY_RESPONSE")])
def test_outage_mid_session_ends_it_as_shop_error(shops: FaultShops, run_shop: RunShop, link: str, why: str) -> None:
    run = run_shop(f"{shops.url}/outages", [link])
    assert run.outcome == "shop_error", run.reason
    assert why in run.reason and ("/status/500" in run.reason or "/drop" in run.reason)
    (step,) = run.trace.steps  # the click is kept, on the page where it was made; the error page is not a step
    assert step.url == f"{shops.url}/outages" and step.http_status == 200 and not step.error_page
    assert step.done and step.outcome == "shop_error" and why in (step.end_reason or "")
    assert shops.counts.trap_hits == []


def test_a_404_page_is_a_page_not_an_outage(shops: FaultShops, run_shop: RunShop) -> None:
    run = run_shop(f"{shops.url}/outages", ["Old deals"])
    assert run.outcome == "abandoned"
    assert [s.http_status for s in run.trace.steps] == [200, 404]
    assert not any(s.error_page for s in run.trace.steps)


def test_shop_killed_mid_run_is_unreachable(run_shop: RunShop) -> None:
    with serve_fault_shops() as own:  # its own shop: this test stops it
        run = run_shop(f"{own.url}/links", ["Trail shoe", "Add to cart"], before={1: own.stop_shop})
    assert run.outcome == "shop_unreachable", run.reason
    assert "could not be reached" in run.reason and "net::ERR_CONNECTION_REFUSED" in run.reason
    assert f"{own.url}/cart/add" in run.reason
    steps = run.trace.steps
    assert [s.url for s in steps] == [f"{own.url}/links", f"{own.url}/product"]
    assert steps[-1].outcome == "shop_unreachable" and not any(s.error_page for s in steps)


def test_nothing_listening_is_unreachable_not_abandoned(run_shop: RunShop) -> None:
    url = f"http://127.0.0.1:{_free_port()}/"
    run = run_shop(url)
    assert run.outcome == "shop_unreachable" and "net::ERR_CONNECTION_REFUSED" in run.reason
    assert run.result.outcomes == {"shop_unreachable": 1}


def test_hanging_start_page_is_a_shop_error(shops: FaultShops, run_shop: RunShop) -> None:
    t0 = time.monotonic()
    run = run_shop(f"{shops.url}/hang")
    assert run.outcome == "shop_error" and "no answer within" in run.reason and "/hang" in run.reason
    assert time.monotonic() - t0 < 30


def test_script_looping_after_load_is_stopped_and_the_session_goes_on(shops: FaultShops, run_shop: RunShop) -> None:
    t0 = time.monotonic()
    run = run_shop(f"{shops.url}/loop", ["Trail shoe"], session_timeout_s=120)
    assert time.monotonic() - t0 < 60  # far below the session timeout: the guard, not the timeout, ended it
    assert run.outcome == "abandoned", run.reason
    first, second, *_ = run.trace.steps
    assert first.url == f"{shops.url}/loop" and first.scripts_stopped  # recorded, not silent
    assert second.url == f"{shops.url}/product" and not second.scripts_stopped


def test_script_looping_from_load_on_is_stopped_while_reading(shops: FaultShops, run_shop: RunShop) -> None:
    run = run_shop(f"{shops.url}/loop?after=0", ["Trail shoe"], session_timeout_s=120)
    assert run.outcome == "abandoned", run.reason
    first, second, *_ = run.trace.steps
    assert first.scripts_stopped and first.exec_error is None
    assert second.url == f"{shops.url}/product"


def test_script_looping_after_the_read_is_stopped_before_acting(shops: FaultShops) -> None:
    """Without the check before acting, the click's element lookup waits forever."""

    async def go() -> None:
        async with BrowserPool() as pool:
            session = await pool.new_session("late")
            page = await session.reset(f"{shops.url}/loop?after=600000")
            await session.page.evaluate("setTimeout(() => { while (true) {} }, 0)")
            shoe = next(e for e in page.elements if e.text == "Trail shoe")
            result = await asyncio.wait_for(session.step(Click(name=shoe.name)), 60)
            assert result.error is None and result.scripts_stopped
            assert result.observation is not None and result.observation.url == f"{shops.url}/product"

    asyncio.run(go())


def test_click_that_freezes_the_page_is_named_and_the_session_goes_on(shops: FaultShops, run_shop: RunShop) -> None:
    run = run_shop(f"{shops.url}/loop?after=600000", ["Spin", "Trail shoe"], session_timeout_s=120)
    assert run.outcome == "abandoned", run.reason
    spin, after, shoe, *_ = run.trace.steps
    assert spin.exec_error is not None and spin.exec_error.code == "page_unresponsive"
    assert "'spin' set off a script that kept the page busy" in spin.exec_error.message
    assert spin.scripts_stopped and not after.scripts_stopped and after.url == spin.url
    assert shoe.url == f"{shops.url}/product"


def test_reset_away_from_a_frozen_page(shops: FaultShops) -> None:
    async def go() -> None:
        async with BrowserPool() as pool:
            session = await pool.new_session("frozen")
            await session.reset(f"{shops.url}/loop?after=600000")
            await session.page.evaluate("setTimeout(() => { while (true) {} }, 0)")
            observation = await session.reset(f"{shops.url}/product")
            assert observation.url == f"{shops.url}/product" and observation.fault is None

    asyncio.run(go())


def test_page_that_never_stops_looping_is_a_reset_error(shops: FaultShops) -> None:
    async def go() -> None:
        async with BrowserPool() as pool:
            session = await pool.new_session("busy", options=SessionOptions(observe_timeout_ms=1500))
            with pytest.raises(ResetError, match="busy") as info:
                await session.reset(f"{shops.url}/loop-forever")
            assert info.value.fault == "unresponsive"

    asyncio.run(go())


def test_data_build_leaves_error_pages_out_and_says_so(tmp_path: Path) -> None:
    """Traces written before outages ended sessions hold error pages as steps: the real pages
    (a 200, a 500, the browser's chrome-error page after the shop died), built into a dataset."""

    async def pages() -> list:
        with serve_fault_shops() as own:
            async with BrowserPool() as pool:
                session = await pool.new_session("old")
                good = await session.reset(f"{own.url}/outages")
                sale = next(e for e in good.elements if e.text == "Sale")
                error_500 = (await session.step({"type": "click", "name": sale.name})).observation
                await session.reset(f"{own.url}/links")
                own.stop_shop()
                shoe = next(e for e in session.last_observation.elements if e.text == "Trail shoe")
                dead = (await session.step({"type": "click", "name": shoe.name})).observation
        return [good, error_500, dead]

    good, error_500, dead = asyncio.run(pages())
    assert (good.fault, error_500.fault, dead.fault) == (None, "http_error", "unreachable")
    assert dead.url.startswith("chrome-error://")
    run_dir = tmp_path / "old-run"
    with TraceWriter(run_dir, run_id="old", config={}, seed=0, personas=[]) as writer:
        for i, obs in enumerate((good, error_500, dead)):
            name = obs.elements[0].name if obs.elements else "reload"  # the error page has no controls
            response = PolicyResponse(action=Click(name=name), rationale="I look around")
            writer.write_step(step_record(run_id="old", session_id="s1", step=i, observation=obs, response=response))
        writer.finish({})
    steps = read_trace(run_dir).steps
    assert [s.error_page for s in steps] == [False, True, True]

    result = build_dataset_dir([run_dir], tmp_path / "ds", val=0.0, test=0.0)
    assert result.manifest["rl"]["skipped"]["error_page"] == 2
    assert result.manifest["rl"]["rows"] == 1 and result.manifest["sft"]["skipped"]["error_page"] == 2

    out = CliRunner().invoke(data_cli, ["build", str(run_dir), "--out", str(tmp_path / "ds2"), "--val", "0",
                                        "--test", "0"])
    assert out.exit_code == 0, out.output
    assert "2 step(s) on error pages" in out.output
    manifest = json.loads((tmp_path / "ds2" / "manifest.json").read_text())
    assert manifest["counts"]["rl"]["train"] == 1
