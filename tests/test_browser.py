"""Browser sessions: real Chromium, the real page reducer, real HTTP servers on 127.0.0.1.

Two servers on two ports are two origins, which is all the allow-list needs to be tested
without any outside network.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from shop_r1.envs.browser import BrowserPool, SessionCrashed, SessionOptions
from shop_r1.envs.hops import origin_of
from shop_r1.envs.chromium import LAUNCH_ARGS, BrowserError, launch_options
from shop_r1.envs.observation import Element, Observation, option_name

PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


@dataclass
class Server:
    url: str
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _ in self.hits]


Pages = dict[str, Callable[["Server"], str]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Pages], Awaitable[Server]]]:
    """Start HTTP servers on 127.0.0.1 (each on its own port: its own origin)."""
    runners: list[web.AppRunner] = []

    async def start(pages: Pages) -> Server:
        server = Server("")

        async def handle(request: web.Request) -> web.StreamResponse:
            server.hits.append((request.path_qs, dict(request.headers)))
            if request.path.endswith(".gif"):
                return web.Response(body=PIXEL, content_type="image/gif")
            if request.path.endswith(".js"):
                return web.Response(text="window.tracked = true;", content_type="application/javascript")
            if request.path == "/whoami":
                sid = request.headers.get("X-Shop-R1-Session", "-")
                seen = request.cookies.get("seen", "")
                resp = web.Response(text=f"<html><head><title>{sid}|{seen}</title></head><body>"
                                         f"<a href='/whoami'>Again</a></body></html>", content_type="text/html")
                resp.set_cookie("seen", (seen + "." if seen else "") + sid)
                return resp
            builder = pages.get(request.path)
            if builder is None:
                return web.Response(text=f"<html><head><title>{request.path}</title></head><body>"
                                         f"<p>{request.method} {request.path_qs}</p></body></html>",
                                    content_type="text/html")
            return web.Response(text=builder(server), content_type="text/html")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def pool() -> AsyncIterator[BrowserPool]:
    async with BrowserPool() as p:
        yield p


def by_text(obs: Observation, text: str) -> Element:
    """The element whose visible text is ``text`` (names are the reducer's business)."""
    for el in obs.elements:
        if el.text.strip().lower() == text.lower():
            return el
    raise AssertionError(f"no element with text {text!r} among {[(e.name, e.text) for e in obs.elements]}")


def simple_page(links: str = "") -> Callable[[Server], str]:
    return lambda _s: (f"<html><head><title>Start</title></head><body><h1>Start</h1>{links}"
                       "<form action='/search'><input type='search' name='q' aria-label='Search'>"
                       "<button>Go</button></form></body></html>")


async def test_reset_and_step_reduce_real_pages(serve, pool: BrowserPool) -> None:
    site = await serve({"/": simple_page("<a href='/next'>Next page</a>")})
    session = await pool.new_session("s1", options=SessionOptions(screenshot=True, keep_raw_html=True))
    obs = await session.reset(site.url + "/")
    assert obs.title == "Start" and obs.url == site.url + "/"
    assert obs.screenshot is not None and obs.screenshot.startswith(b"\x89PNG")
    assert obs.raw_html is not None and "<h1>Start</h1>" in obs.raw_html
    assert "reduce_ms" in obs.timings and obs.stats.simplified_bytes > 0
    link = by_text(obs, "Next page")
    assert f'name="{link.name}"' in obs.simplified_html

    result = await session.step({"type": "click", "name": link.name})
    assert result.error is None and not result.done
    assert result.observation is not None and result.observation.url == site.url + "/next"
    assert {"action_ms", "settle_ms", "reduce_ms"} <= set(result.observation.timings)

    search = next(el for el in result.observation.elements if el.kind == "input") if any(
        el.kind == "input" for el in result.observation.elements) else None
    assert search is None  # /next has no form: the table follows the page

    result = await session.step({"type": "terminate"})
    assert result.done and result.error is None and result.observation is not None
    await session.close()
    assert "s1" not in pool.sessions


async def test_observation_carries_the_steps_timings_and_raw_html_only_when_asked(serve, pool: BrowserPool) -> None:
    # One conversion (ReducedPage.to_observation): the step's timings, not the reducer's breakdown.
    site = await serve({"/": simple_page()})
    session = await pool.new_session("plain")
    obs = await session.reset(site.url + "/")
    assert obs.raw_html is None and obs.screenshot is None
    assert "reduce_ms" in obs.timings and not {"js_ms", "evaluate_ms", "budget_ms"} & set(obs.timings)
    assert obs.elements and all(el.selector or el.tag == "option" for el in obs.elements)


async def test_a_chromium_that_will_not_start_names_its_path() -> None:
    pool = BrowserPool(browser_path="/bin/true")  # executable, but no browser
    with pytest.raises(BrowserError, match="could not launch Chromium at /bin/true"):
        await pool.start()
    await pool.close()
    assert launch_options()["args"] == list(LAUNCH_ARGS) == list(pool.launch_args)


async def test_type_and_submit_and_invalid_actions_are_results(serve, pool: BrowserPool) -> None:
    site = await serve({"/": simple_page()})
    session = await pool.new_session("s1")
    obs = await session.reset(site.url + "/")
    box = next(el for el in obs.elements if el.kind == "input")
    result = await session.step({"type": "type_and_submit", "name": box.name, "text": "wool socks"})
    assert result.error is None
    assert result.observation is not None and result.observation.url == site.url + "/search?q=wool+socks"

    result = await session.step({"type": "click", "name": ""})  # schema violation: not an exception
    assert result.error is not None and result.error.code == "invalid_action" and not result.done
    result = await session.step({"type": "scroll"})
    assert result.error is not None and result.error.code == "invalid_action"
    assert result.observation is not None and result.observation.url == site.url + "/search?q=wool+socks"

    result = await session.step({"type": "click", "name": "nextt_page"})
    assert result.error is not None and result.error.code == "unknown_name"


async def test_third_party_requests_are_blocked_and_counted(serve, pool: BrowserPool) -> None:
    other = await serve({})
    page = (lambda _s: f"<html><head><title>Tracked</title><script src='{other.url}/track.js'></script></head>"
                       f"<body><img src='{other.url}/pixel.gif' alt=''><img src='/own.gif' alt=''>"
                       f"<a href='{other.url}/elsewhere'>Leave the shop</a><a href='/x'>Stay</a></body></html>")
    site = await serve({"/": page})
    session = await pool.new_session("s1", extra_headers={"X-Shop-R1-Session": "s1"})
    obs = await session.reset(site.url + "/")
    assert other.hits == []  # nothing reached the other origin
    assert obs.blocked_requests == 2
    assert set(obs.blocked_urls) == {f"{other.url}/track.js", f"{other.url}/pixel.gif"}
    own = [headers for path, headers in site.hits if path == "/own.gif"]
    assert own and own[0].get("X-Shop-R1-Session") == "s1"  # allowed origin gets the header

    again = await session.observe()
    assert again.blocked_requests == 0 and again.blocked_urls == ()  # counted since the last observation

    # A navigation of the main frame to a blocked origin: error, and the page stays where it was.
    result = await session.step({"type": "click", "name": by_text(obs, "Leave the shop").name})
    assert result.error is not None and result.error.code == "blocked_origin"
    assert other.url in result.error.message
    assert result.observation is not None and result.observation.url == site.url + "/"
    assert result.observation.title == "Tracked"
    assert result.observation.blocked_requests == 1
    assert other.hits == []


async def test_explicit_allow_list_lets_a_second_origin_through(serve, pool: BrowserPool) -> None:
    cdn = await serve({})
    site = await serve({"/": lambda _s: f"<html><body><img src='{cdn.url}/logo.gif' alt=''>"
                                        f"<script src='{cdn.url}/app.js'></script><p>hi</p></body></html>"})
    session = await pool.new_session("s1", allowed_origins=[site.url, cdn.url + "/"],
                                     extra_headers={"X-Shop-R1-Session": "s1"})
    obs = await session.reset(site.url + "/")
    assert obs.blocked_requests == 0
    assert sorted(cdn.paths()) == ["/app.js", "/logo.gif"]
    assert all(h.get("X-Shop-R1-Session") == "s1" for _, h in cdn.hits)
    with pytest.raises(Exception, match="outside the allowed origins"):
        other = await serve({})
        await session.reset(other.url + "/")


async def test_purchase_guard_blocks_order_buttons(serve, pool: BrowserPool) -> None:
    checkout = (lambda _s: "<html><head><title>Checkout</title></head><body>"
                           "<form method='post' action='/order'><button>Place your order</button></form>"
                           "<form method='post' action='/order2' data-purchase='true'><button>Continue</button></form>"
                           "<a href='/cart'>Back to cart</a></body></html>")
    site = await serve({"/": checkout})
    guarded = await pool.new_session("guarded")
    obs = await guarded.reset(site.url + "/")
    for text in ("Place your order", "Continue"):
        result = await guarded.step({"type": "click", "name": by_text(obs, text).name})
        assert result.error is not None and result.error.code == "purchase_blocked", text
        assert result.observation is not None and result.observation.title == "Checkout"
    assert not any(path.startswith("/order") for path in site.paths())

    allowed = await pool.new_session("allowed", options=SessionOptions(allow_purchase=True))
    obs = await allowed.reset(site.url + "/")
    result = await allowed.step({"type": "click", "name": by_text(obs, "Place your order").name})
    assert result.error is None
    assert "/order" in site.paths()


def _chromium_pids() -> list[int]:
    """Pids of the browser processes started by this test process (our Playwright driver's children)."""
    def children(pid: int) -> list[int]:
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
        return out

    found = []
    for driver in children(os.getpid()):
        for child in children(driver):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"chrom" in cmdline and b"--type=" not in cmdline:
                found.append(child)
    return found


async def test_crashed_page_ends_only_its_session(serve, pool: BrowserPool) -> None:
    site = await serve({"/": simple_page("<a href='/next'>Next page</a>")})
    victim = await pool.new_session("victim")
    closed = await pool.new_session("closed")
    survivor = await pool.new_session("survivor")
    for s in (victim, closed, survivor):
        await s.reset(site.url + "/")

    # Kill the victim's renderer (the CDP call itself never answers: its target is gone).
    cdp = await victim.context.new_cdp_session(victim.page)
    crash = asyncio.ensure_future(cdp.send("Page.crash"))
    for _ in range(200):
        if victim.crashed:
            break
        await asyncio.sleep(0.05)
    crash.cancel()
    assert victim.crashed
    result = await victim.step({"type": "click", "name": "anything"})
    assert result.error is not None and result.error.code == "page_crashed" and result.done
    assert result.observation is None
    with pytest.raises(SessionCrashed):
        await victim.observe()

    await closed.page.close()
    result = await closed.step({"type": "terminate"})
    assert result.error is not None and result.error.code == "page_crashed" and result.done

    obs = survivor.last_observation
    assert obs is not None
    result = await survivor.step({"type": "click", "name": by_text(obs, "Next page").name})
    assert result.error is None and result.observation is not None
    assert result.observation.url == site.url + "/next"
    fresh = await pool.new_session("fresh")
    assert (await fresh.reset(site.url + "/")).title == "Start"
    await victim.close()  # closing a dead session is fine


async def test_dead_browser_is_reported_and_relaunched(serve, pool: BrowserPool) -> None:
    site = await serve({"/": simple_page()})
    session = await pool.new_session("s1")
    await session.reset(site.url + "/")
    pids = _chromium_pids()
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    for _ in range(100):
        if not pool.alive:
            break
        await asyncio.sleep(0.05)
    assert not pool.alive and pool.crashes == 1
    result = await session.step({"type": "terminate"})
    assert result.error is not None and result.error.code == "page_crashed"
    assert "browser process died" in result.error.message

    again = await pool.new_session("s2")
    assert pool.alive and pool.launches == 2
    assert (await again.reset(site.url + "/")).title == "Start"


async def test_many_isolated_sessions_in_one_browser(serve, pool: BrowserPool) -> None:
    site = await serve({})

    async def shopper(i: int) -> tuple[str, str]:
        sid = f"shopper-{i}"
        session = await pool.new_session(sid, extra_headers={"X-Shop-R1-Session": sid})
        first = await session.reset(site.url + "/whoami")
        result = await session.step({"type": "click", "name": by_text(first, "Again").name})
        assert result.error is None and result.observation is not None
        await session.close()
        return sid, result.observation.title

    results = await asyncio.gather(*(shopper(i) for i in range(8)))
    assert len(pool.sessions) == 0 and pool.launches == 1
    for sid, title in results:
        # Its own header on every request, and only its own cookie: contexts share nothing.
        assert title == f"{sid}|{sid}", (sid, title)
    assert {h.get("X-Shop-R1-Session") for _, h in site.hits} == {f"shopper-{i}" for i in range(8)}


async def test_bad_arguments_fail_clearly(pool: BrowserPool) -> None:
    with pytest.raises(ValueError, match="not an absolute URL"):
        await pool.new_session("s1", allowed_origins=["localhost"])
    with pytest.raises(ValueError, match="list of origins"):
        await pool.new_session("s1", allowed_origins="http://127.0.0.1:1")  # type: ignore[arg-type]
    session = await pool.new_session("dup")
    with pytest.raises(ValueError, match="already open"):
        await pool.new_session("dup")
    with pytest.raises(Exception, match="could not open http://127.0.0.1:9/"):
        await session.reset("http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="blocked_url_examples"):
        SessionOptions(blocked_url_examples=-1)


def test_origin_of_normalises() -> None:
    assert origin_of("HTTP://Example.COM/a?b") == "http://example.com:80"
    assert origin_of("https://shop.test:8443/") == "https://shop.test:8443"
    assert origin_of("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


# ---- the bundled shop ------------------------------------------------------------------------


async def test_shopper_searches_chooses_options_and_adds_to_cart(fresh_shop, pool: BrowserPool) -> None:
    sid = "cart-shopper"
    session = await pool.new_session(sid, extra_headers={"X-Shop-R1-Session": sid})
    obs = await session.reset(fresh_shop.url + "/")
    search = next(el for el in obs.elements if el.kind == "input" and el.input_type in ("search", "text"))

    result = await session.step({"type": "type_and_submit", "name": search.name, "text": "t-shirt"})
    assert result.error is None and result.observation is not None
    obs = result.observation
    assert "t-shirt" in obs.url.lower().replace("%2d", "-")
    product = next(el for el in obs.elements if el.name.endswith("view_product"))

    result = await session.step({"type": "click", "name": product.name})
    assert result.error is None and result.observation is not None
    obs = result.observation
    assert "/dp/" in obs.url

    # A size from the select (by the option name the executor documents), the first colour,
    # quantity 2 by typing its label.
    size = next(el for el in obs.elements if el.kind == "select" and el.name.endswith("size"))
    label = next(lb for lb in size.options if lb.upper() == "M")
    assert option_name(size.name, label) in obs.names  # the reducer lists options under these names
    result = await session.step({"type": "click", "name": option_name(size.name, label)})
    assert result.error is None, result.error
    quantity = next(el for el in obs.elements if el.kind == "select" and el.name.endswith("quantity"))
    result = await session.step({"type": "type_and_submit", "name": quantity.name, "text": "2"})
    assert result.error is None, result.error
    obs = result.observation
    assert obs is not None
    colour = next((el for el in obs.elements if ".color." in el.name), None)
    if colour is not None:
        result = await session.step({"type": "click", "name": colour.name})
        assert result.error is None, result.error
        obs = result.observation
        assert obs is not None
    add = next(el for el in obs.elements if el.name == "add_to_cart" or el.text.strip() == "Add to Cart")
    result = await session.step({"type": "click", "name": add.name})
    assert result.error is None, result.error

    cart = fresh_shop.state(sid)["carts"][sid]
    assert len(cart) == 1
    line = cart[0]
    assert line["qty"] == 2 and line["options"]["size"] == label

    # On to checkout; the order button (data-purchase="true") is refused without a click.
    obs = result.observation
    assert obs is not None
    if "/cart" not in obs.url:
        cart_link = next(el for el in obs.elements if el.name.endswith("cart") and el.kind == "clickable"
                         and el.name != add.name)
        obs = (await session.step({"type": "click", "name": cart_link.name})).observation
        assert obs is not None
    proceed = next(el for el in obs.elements if "checkout" in el.text.lower())
    result = await session.step({"type": "click", "name": proceed.name})
    assert result.error is None and result.observation is not None
    obs = result.observation
    assert obs.url == fresh_shop.url + "/checkout"
    place = next(el for el in obs.elements if re.search(r"place.*order", f"{el.name} {el.text}", re.I))
    result = await session.step({"type": "click", "name": place.name})
    assert result.error is not None and result.error.code == "purchase_blocked"
    assert result.observation is not None and result.observation.url == fresh_shop.url + "/checkout"
    assert fresh_shop.state(sid)["orders"] == []
    assert len(fresh_shop.state(sid)["carts"][sid]) == 1


async def test_a_page_read_before_it_has_content_is_read_again(serve, pool: BrowserPool) -> None:
    """A 200 page reduced to nothing (read before its document had content) made a scripted
    shopper leave a product page in one of 766 steps under load; an empty read is retried."""
    late = ("<html><head><title>Late</title><script>addEventListener('load', () => setTimeout(() => "
            "{ document.body.innerHTML = \"<a href='/next'>Late link</a>\"; }, 120));</script></head>"
            "<body></body></html>")
    site = await serve({"/late": lambda _s: late, "/blank": lambda _s: "<html><head><title>Blank</title></head><body></body></html>"})
    session = await pool.new_session("late")
    obs = await session.reset(site.url + "/late")
    assert by_text(obs, "Late link")
    blank = await session.reset(site.url + "/blank")  # a page that IS empty still comes back, empty
    assert blank.title == "Blank" and not blank.elements
    await session.close()
