"""The allow-list on every hop: redirects, meta refresh, script navigation, popups, iframes,
WebSocket, EventSource, fetch and service workers, on the fault shop with the trap origin
(127.0.0.2) counting every request that reaches it. Real Chromium, real servers.

Each test says what the shopper (or user) is told -- the step's ``blocked_origin`` error, the
blocked URLs in the observation and the trace -- and that the trap saw nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from shop_r1.envs.browser import BrowserPool, ShopperSession
from shop_r1.envs.outages import ResetError
from shop_r1.envs.observation import Element, Observation
from tests.faults.conftest import RunShop
from tests.faults.fault_shop import FaultShops

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # one browser for the module's async tests


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[BrowserPool]:
    async with BrowserPool() as p:
        yield p


@pytest_asyncio.fixture(loop_scope="module")
async def session(pool: BrowserPool, shops: FaultShops, request: pytest.FixtureRequest) -> AsyncIterator[ShopperSession]:
    s = await pool.new_session(request.node.name, allowed_origins=[shops.url])
    yield s
    await s.close()


@pytest.fixture(autouse=True)
def no_trap_hits(shops: FaultShops) -> Iterator[None]:
    """Every test here ends with the trap untouched (checked after a moment for late requests)."""
    yield
    time.sleep(0.3)
    assert shops.counts.trap_hits == [], f"requests reached the other origin: {shops.counts.trap_hits}"


def by_text(obs: Observation, text: str) -> Element:
    found = [el for el in obs.elements if el.text.strip() == text]
    assert found, f"no {text!r} on {obs.url}: {[e.text for e in obs.elements]}"
    return found[0]


@in_module_loop
async def test_same_origin_link_that_redirects_off_origin_is_stopped(session: ShopperSession, shops: FaultShops) -> None:
    obs = await session.reset(f"{shops.url}/links")
    result = await session.step({"type": "click", "name": by_text(obs, "Deals").name})
    assert result.error is not None and result.error.code == "blocked_origin"
    assert f"{shops.trap}/redirected" in result.error.message
    assert result.observation is not None and result.observation.url == f"{shops.url}/links"  # stayed put
    assert f"{shops.trap}/redirected" in result.observation.blocked_urls


@in_module_loop
async def test_same_origin_redirect_still_works(session: ShopperSession, shops: FaultShops) -> None:
    obs = await session.reset(f"{shops.url}/outages")
    result = await session.step({"type": "click", "name": by_text(obs, "Trail shoe").name})
    assert result.error is None
    assert result.observation is not None and result.observation.url == f"{shops.url}/product"
    assert result.observation.http_status == 200 and result.observation.fault is None


@in_module_loop
async def test_start_url_that_redirects_off_origin_is_a_clear_reset_error(session: ShopperSession,
                                                                          shops: FaultShops) -> None:
    with pytest.raises(ResetError, match="outside the allowed origins") as info:
        await session.reset(f"{shops.url}/redirect-off")
    assert info.value.fault == "blocked" and f"{shops.trap}/redirected" in str(info.value)


@in_module_loop
@pytest.mark.parametrize(("path", "target"), [("/meta-off", "/meta"), ("/js-off", "/js")])
async def test_meta_refresh_and_script_navigation_stay_on_the_page(session: ShopperSession, shops: FaultShops,
                                                                   path: str, target: str) -> None:
    t0 = time.monotonic()
    obs = await session.reset(f"{shops.url}{path}")
    await asyncio.sleep(0.3)  # a refresh with delay 0 may come after the first read
    later = await session.observe()
    assert time.monotonic() - t0 < 8, "a blocked navigation must not cost the whole action timeout"
    assert later.url == obs.url == f"{shops.url}{path}"
    assert f"{shops.trap}{target}" in obs.blocked_urls + later.blocked_urls


@in_module_loop
async def test_popups_open_nowhere_and_say_where_they_would_have_gone(session: ShopperSession, shops: FaultShops,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    obs = await session.reset(f"{shops.url}/popup")
    for text, target in (("Open deals", "/popup"), ("New tab deals", "/blank")):  # window.open, target=_blank
        result = await session.step({"type": "click", "name": by_text(obs, text).name})
        assert result.error is not None and result.error.code == "blocked_origin", (text, result.error)
        assert result.observation is not None and f"{shops.trap}{target}" in result.observation.blocked_urls
        assert result.observation.url == f"{shops.url}/popup"
    await asyncio.sleep(0.3)
    assert len(session.context.pages) == 1
    assert not [r for r in caplog.records if "event listener" in r.getMessage()], "a Playwright listener failed"


@in_module_loop
async def test_iframe_websocket_eventsource_fetch_and_service_worker_are_blocked(session: ShopperSession,
                                                                                 shops: FaultShops) -> None:
    obs = await session.reset(f"{shops.url}/subresources")
    await asyncio.sleep(0.5)
    blocked = set(obs.blocked_urls) | set((await session.observe()).blocked_urls)
    trap_ws = shops.trap.replace("http", "ws")
    assert {f"{shops.trap}/iframe", f"{trap_ws}/ws", f"{shops.trap}/sse", f"{shops.trap}/fetch"} <= blocked
    assert shops.counts.paths["/sw.js"] == 0  # service workers are off: not even registered


@in_module_loop
async def test_same_origin_websocket_still_talks(session: ShopperSession, shops: FaultShops) -> None:
    await session.reset(f"{shops.url}/ws-page")
    await session.page.wait_for_function("document.title === 'echo hi'", timeout=5000)
    assert (await session.observe()).blocked_requests == 0


def test_blocked_hops_are_in_the_trace(shops: FaultShops, run_shop: RunShop) -> None:
    run = run_shop(f"{shops.url}/links", ["Deals", "Trail shoe"])
    assert run.outcome == "abandoned"  # the shopper's own choice: blocking is not an outage
    steps = run.trace.steps
    assert [s.step for s in steps] == [0, 1, 2]
    assert steps[0].exec_error is not None and steps[0].exec_error.code == "blocked_origin"
    assert steps[1].url == f"{shops.url}/links" and f"{shops.trap}/redirected" in steps[1].blocked_urls
    assert steps[1].blocked_requests == 1 and steps[2].url == f"{shops.url}/product"
    assert all(s.http_status == 200 for s in steps)
