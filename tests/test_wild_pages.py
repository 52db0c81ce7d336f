"""Storefronts as they really are (issue 24), in real Chromium against real loopback servers:
consent walls and pop-ups over a server-rendered shop (with and without ARIA, in three
languages), a client-rendered one-page shop, bot walls, and the catalogue crawl of a shop whose
HTML lists nothing until its scripts run. The shops are in ``tests/fixtures/wild_shops.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import pytest

from fixtures.wild_shops import CLIENT_ITEMS, BotWallShop, ClientShop, ConsentShop, StaticPages
from shop_r1.envs.browser import BrowserPool, SessionOptions
from shop_r1.envs.observation import Element, Observation
from shop_r1.envs.pagetype import bot_wall
from shop_r1.envs.storefront.crawl import CrawlLimits, crawl
from shop_r1.simulator.records.trace.convert import observation_element, trace_element
from shop_r1.simulator.records.trace.views import TraceElement


@pytest.fixture
async def pool() -> AsyncIterator[BrowserPool]:
    async with BrowserPool() as p:
        yield p


def _names(obs: Observation) -> list[str]:
    return [el.name for el in obs.elements]


def _el(obs: Observation, name: str) -> Element:
    el = obs.element(name)
    assert el is not None, f"no {name!r} among {_names(obs)}"
    return el


# ---- client-rendered pages -------------------------------------------------------------------

async def test_first_observation_of_a_client_rendered_shop_shows_its_products(pool: BrowserPool) -> None:
    """The shell says "0 Product(s) found" until the product API answers; the observation waits
    for it (a session that does not wait reads the shell, which is what shoppers saw before)."""
    with ClientShop(api_delay_s=2.5) as slow:
        hasty = await pool.new_session("hasty", options=SessionOptions(observe_settle_max_ms=0))
        shell = await hasty.reset(slow.url + "/")
        assert "0 Product(s) found" in shell.simplified_html
        assert not [n for n in _names(shell) if n.endswith("add_to_cart")]
        await hasty.close()
    with ClientShop(api_delay_s=0.5) as shop:
        session = await pool.new_session("s")
        obs = await session.reset(shop.url + "/")
        assert f"{len(CLIENT_ITEMS)} Product(s) found" in obs.simplified_html
        adds = [n for n in _names(obs) if n.endswith(".add_to_cart")]
        assert len(adds) == len(CLIENT_ITEMS), _names(obs)
        # Named by the card's product, not by position; the cart toggle by its icon, not its badge.
        assert "results.white_t_shirt_gucci.add_to_cart" in adds
        assert not [n for n in _names(obs) if re.search(r"add_to_cart_\d+$", n)]
        assert _el(obs, "cart").text == "Cart 0"
        # The closed drawer lies outside the viewport (a fixed layer slid out): not offered.
        assert "checkout" not in _names(obs)
        assert obs.timings["observe_settle_ms"] > 0


async def test_in_page_changes_are_read_again(pool: BrowserPool) -> None:
    """Adding to the cart opens a sliding drawer and a size filter refetches the grid, neither
    navigates: the next observation shows the result of each."""
    with ClientShop(api_delay_s=0.3) as shop:
        session = await pool.new_session("s")
        await session.reset(shop.url + "/")
        added = await session.step({"type": "click", "name": "results.white_t_shirt_gucci.add_to_cart"})
        assert added.error is None, added.error
        obs = added.observation
        assert obs is not None
        assert "SUBTOTAL $ 10.90" in obs.simplified_html
        assert "checkout" in _names(obs) and _el(obs, "checkout").in_viewport  # the drawer slid in
        assert _el(obs, "cart").text == "Cart 1"
        assert shop.cart_lines() == [1]
        filtered = await session.step({"type": "click", "name": "sidebar.sizes.xs"})
        assert filtered.error is None, filtered.error
        obs = filtered.observation
        assert obs is not None
        adds = sorted(n for n in _names(obs) if n.endswith(".add_to_cart"))
        want = [i for i in CLIENT_ITEMS if "XS" in i.sizes]
        assert len(adds) == len(want), adds
        assert "results.cropped_stay_groovy_off_white.add_to_cart" in adds
        assert f"{len(want)} Product(s) found" in obs.simplified_html


async def test_a_page_that_never_stops_changing_is_read_at_the_cap(pool: BrowserPool) -> None:
    """A ticker that changes the DOM every 20 ms never goes quiet: the wait ends at its cap."""
    page = ("<!doctype html><title>Ticker</title><body><a href='/deal'>Deal of the day</a><span id='t'>0</span>"
            "<script>let n = 0; setInterval(() => { document.getElementById('t').textContent = ++n; }, 20);</script>"
            "</body>")
    with StaticPages({"/": page}) as site:
        session = await pool.new_session("s", options=SessionOptions(observe_settle_max_ms=600))
        obs = await session.reset(site.url + "/")
        assert "deal_of_the_day" in _names(obs)
        assert 600 <= obs.timings["observe_settle_ms"] < 600 + 1500, obs.timings


# ---- dialogs and overlays --------------------------------------------------------------------

# Per language: the consent button's name, the shop's "add" button's name.
WALLS = {
    "en": ("cookie_consent.accept_all_cookies", "add_to_basket"),
    "de": ("cookie_consent.alle_akzeptieren", "in_den_warenkorb"),
    "fr": ("cookie_consent.tout_accepter", "ajouter_au_panier"),
}


async def _until_dialog(session, name: str, timeout_s: float = 6.0) -> Observation:  # noqa: ANN001
    """Observe until a dialog named ``name`` is up (the newsletter appears a second after load)."""
    end = time.monotonic() + timeout_s
    while True:
        obs = await session.observe()
        if obs.simplified_html.startswith(f'<dialog name="{name}">') or time.monotonic() > end:
            return obs
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("lang", sorted(WALLS))
async def test_consent_wall_and_newsletter_come_first_and_cover_the_page(pool: BrowserPool, lang: str) -> None:
    """en marks its dialogs up with ARIA; de (backdrop and box as siblings) and fr (box inside a
    full-viewport div) have none: all three are read as dialogs, first, over a covered page."""
    accept, add = WALLS[lang]
    with ConsentShop(lang) as shop:
        # A click timeout far longer than any probe: a refusal that came in under it was said at once.
        session = await pool.new_session("s", options=SessionOptions(interact_timeout_ms=12_000))
        obs = await session.reset(shop.url + "/")  # the home page: the wall, no newsletter
        assert obs.simplified_html.startswith('<dialog name="cookie_consent">'), obs.simplified_html[:300]
        inside = [el for el in obs.elements if el.name.startswith("cookie_consent.")]
        assert accept in [el.name for el in inside] and len(inside) >= 2
        assert not [el.name for el in inside if el.covered]
        products = [el for el in obs.elements if el.name.endswith(".view_product")]
        assert len(products) == len(shop.items) and all(el.covered for el in products), _names(obs)
        assert re.search(rf'<a name="{products[0].name}" covered>', obs.simplified_html)
        clickable, _inputs = obs.executable_names()
        assert products[0].name not in clickable and accept in clickable

        t0 = time.monotonic()
        refused = await session.step({"type": "click", "name": products[0].name})
        took = time.monotonic() - t0
        assert refused.error is not None and refused.error.code == "not_visible"
        assert "covered by the dialog 'cookie_consent'" in refused.error.message, refused.error.message
        assert accept in refused.error.suggestions
        assert took < 10.0, f"a covered click took {took:.1f} s"  # said at once, not at the click timeout
        search = next(el for el in obs.elements if el.kind == "input" and el.input_type == "search")
        assert search.covered
        typed = await session.step({"type": "type_and_submit", "name": search.name, "text": "lamp"})
        assert typed.error is not None and "covered by the dialog 'cookie_consent'" in typed.error.message
        assert typed.observation is not None and "/search" not in typed.observation.url  # nothing was typed

        done = await session.step({"type": "click", "name": accept})
        assert done.error is None, done.error
        assert done.observation is not None and "<dialog" not in done.observation.simplified_html
        opened = await session.step({"type": "click", "name": products[0].name})
        assert opened.error is None, opened.error
        obs = await _until_dialog(session, "newsletter")  # on product pages, a second after load
        assert obs.simplified_html.startswith('<dialog name="newsletter">'), obs.simplified_html[:300]
        assert _el(obs, "newsletter.close").covered is False
        assert _el(obs, add).covered
        closed = await session.step({"type": "click", "name": "newsletter.close"})
        assert closed.error is None, closed.error
        obs = closed.observation
        assert obs is not None and "<dialog" not in obs.simplified_html
        assert not [el.name for el in obs.elements if el.covered]
        bought = await session.step({"type": "click", "name": add})
        assert bought.error is None, bought.error
        assert shop.basket_of_any() == [shop.items[0].slug]


async def test_a_tight_budget_drops_what_the_dialog_covers_first() -> None:
    """Over budget, the controls under an open dialog go before anything else, even before the
    site's header links (which a tight budget otherwise drops first): the dialog's buttons are the
    next action, the header drawn above its backdrop still works, and what the dialog covers cannot
    be clicked until it is answered."""
    from playwright.async_api import async_playwright

    from shop_r1.envs.chromium import launch_chromium
    from shop_r1.envs.reducer import ReducerOptions, reduce_page

    products = "".join(f"<li><a href='/p/{i}'>Merino wool hiking socks, pair {i}</a> <span>$1{i}.00</span></li>"
                       for i in range(30))
    page_html = ("<!doctype html><title>Shop</title><body style='margin:0'>"
                 "<header style='position:fixed;top:0;left:0;right:0;height:50px;z-index:200;background:#fff'>"
                 "<nav><a href='/help'>Help</a> <a href='/orders'>Your orders</a> <a href='/stores'>Stores</a>"
                 "</nav></header><main style='padding-top:80px'><h1>Socks</h1><ul>" + products + "</ul></main>"
                 "<div role='dialog' aria-modal='true' aria-label='Cookie consent' "
                 "style='position:fixed;inset:0;z-index:100;background:rgba(0,0,0,.5)'>"
                 "<div style='margin:200px auto;width:400px;background:#fff;padding:20px'>"
                 "<p>We use cookies.</p><button>Accept all cookies</button><button>Reject non-essential</button>"
                 "</div></div></body>")
    with StaticPages({"/": page_html}) as site:
        async with async_playwright() as pw:
            browser = await launch_chromium(pw)
            page = await browser.new_page()
            await page.goto(site.url + "/")
            full = await reduce_page(page, ReducerOptions(token_budget=60_000))
            budget = full.stats.simplified_tokens * 3 // 5
            cut = await reduce_page(page, ReducerOptions(token_budget=budget))
            await browser.close()
    covered = {el.name for el in full.elements if el.covered}
    usable = {el.name for el in full.elements if not el.covered}
    header = {"header.nav.help", "header.nav.your_orders", "header.nav.stores"}
    assert header <= usable and len(covered) == 30 and not full.stats.truncated, [
        (el.name, el.covered) for el in full.elements]
    assert len(usable - header) >= 2  # the dialog's two buttons
    kept = {el.name for el in cut.elements}
    assert cut.stats.truncated and cut.stats.simplified_tokens <= budget
    assert usable <= kept, usable - kept  # the dialog's buttons and the header above it stay
    assert covered - kept, "the budget was met without dropping anything: the page is too small"
    assert cut.simplified_html.startswith("<dialog name=")


async def test_a_dialog_that_appears_after_the_observation_is_named_by_the_click_error(pool: BrowserPool) -> None:
    """The newsletter comes up after the page was read: the click that meets it says what it is."""
    with ConsentShop("en", newsletter_after_ms=3_000) as shop:
        session = await pool.new_session("s", options=SessionOptions(interact_timeout_ms=1_000))
        await session.reset(shop.url + "/")
        await session.step({"type": "click", "name": WALLS["en"][0]})
        obs = await session.reset(shop.product_url(1))
        if obs.simplified_html.startswith("<dialog"):
            pytest.skip("the newsletter was already up when the page was read (a slow machine)")
        await _until_dialog_in_dom(session)
        result = await session.step({"type": "click", "name": "add_to_basket"})
        assert result.error is not None and result.error.code == "not_visible"
        assert "Join our newsletter" in result.error.message, result.error.message
        assert result.observation is not None and result.observation.simplified_html.startswith('<dialog name="newsletter">')


async def _until_dialog_in_dom(session, timeout_s: float = 8.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not await session.page.evaluate("!!document.querySelector('[aria-modal]')"):
        await asyncio.sleep(0.1)


async def test_a_covered_click_names_an_unnamed_cover(pool: BrowserPool) -> None:
    """A layer that is no dialog (no z-index, no ARIA) still covers a link: the error names it."""
    page = ("<!doctype html><title>Promo</title><body><a href='/next'>Spring collection</a>"
            "<div id='promo-layer' style='position:fixed;inset:0;background:rgba(0,0,0,.02)'>Tap anywhere</div>"
            "</body>")
    with StaticPages({"/": page, "/next": "<title>Next</title><h1>Next</h1>"}) as site:
        session = await pool.new_session("s", options=SessionOptions(interact_timeout_ms=800))
        obs = await session.reset(site.url + "/")
        link = _el(obs, "spring_collection")
        result = await session.step({"type": "click", "name": link.name})
        assert result.error is not None and result.error.code == "not_visible"
        assert "div#promo-layer" in result.error.message and "Tap anywhere" in result.error.message


async def test_a_header_above_the_backdrop_is_not_covered(pool: BrowserPool) -> None:
    """Covered means a click cannot reach it: a control drawn above the overlay stays usable."""
    page = ("<!doctype html><title>Shop</title><body style='margin:0'>"
            "<div style='position:fixed;top:0;left:0;right:0;height:50px;z-index:200;background:#fff'>"
            "<a href='/help'>Help</a></div><main style='padding-top:80px'><a href='/p/1'>Wool socks</a></main>"
            "<div style='position:fixed;inset:0;z-index:100;background:rgba(0,0,0,.5)'>"
            "<div style='margin:200px auto;width:400px;background:#fff;padding:20px'><b>Choose your country</b>"
            "<button onclick='this.closest(\"div[style]\").parentElement.remove()'>Germany</button>"
            "<button>France</button></div></div></body>")
    with StaticPages({"/": page}) as site:
        session = await pool.new_session("s")
        obs = await session.reset(site.url + "/")
        assert obs.simplified_html.startswith("<dialog name=")
        assert _el(obs, "wool_socks").covered
        assert not _el(obs, "help").covered
        # No ARIA, no id: the dialog is named by its bold title line.
        assert obs.simplified_html.startswith('<dialog name="choose_your_country">')
        assert {"choose_your_country.germany", "choose_your_country.france"} <= set(_names(obs))


async def test_a_bar_that_only_says_aria_modal_covers_only_what_it_overlaps(pool: BrowserPool) -> None:
    """A consent bar at the bottom marked aria-modal but without a backdrop leaves the page usable:
    it comes first, a link under it is covered, links beside it or further down the page are not."""
    filler = "".join(f"<p>Story {i} of our workshop.</p>" for i in range(60))
    page = ("<!doctype html><title>Shop</title><body style='margin:0'><a href='/top'>Top sellers</a>"
            "<div style='height:800px'></div><a href='/hidden' style='display:block'>Gift cards</a>"
            f"{filler}<a href='/far'>Careers</a>"
            "<div role='dialog' aria-modal='true' aria-label='Cookies' style='position:fixed;left:0;right:0;bottom:0;"
            "height:140px;background:#eee;z-index:50'>We use cookies. <button>OK</button></div></body>")
    with StaticPages({"/": page}) as site:
        session = await pool.new_session("s", viewport=(1280, 900))
        obs = await session.reset(site.url + "/")
        assert obs.simplified_html.startswith('<dialog name="cookie_consent">')
        assert not _el(obs, "top_sellers").covered
        assert _el(obs, "gift_cards").covered  # drawn at 800-820 px, under the bar (760-900)
        assert not _el(obs, "careers").covered  # off screen: scrolled to, it is not under the bar


# ---- bot walls ---------------------------------------------------------------------------------

async def test_bot_walls_are_recognised_and_shop_pages_are_not(pool: BrowserPool, shop_url: str) -> None:
    with BotWallShop() as walls:
        session = await pool.new_session("s", allowed_origins=[walls.url, walls.captcha.url])
        seen: dict[str, str | None] = {}
        for path in ("/challenge", "/captcha", "/hcaptcha", "/denied", "/product", "/login", "/contact"):
            obs = await session.reset(walls.page(path))  # a 503 challenge is a wall, not an outage
            seen[path] = bot_wall(obs)
        await session.close()
    walled = {p for p, why in seen.items() if why}
    assert walled == {"/challenge", "/captcha", "/hcaptcha", "/denied"}, seen
    assert "CAPTCHA" in (seen["/hcaptcha"] or "") and "403" in (seen["/denied"] or "")
    bundled = await pool.new_session("b")
    obs = await bundled.reset(shop_url)
    assert bot_wall(obs) is None
    step = await bundled.step({"type": "type_and_submit", "name": _search_box(obs), "text": "headphones"})
    assert step.observation is not None and bot_wall(step.observation) is None


def _search_box(obs: Observation) -> str:
    _clickable, inputs = obs.executable_names()
    return next(n for n in inputs if "search" in n)


# ---- the catalogue crawl -----------------------------------------------------------------------

def test_crawl_renders_a_shop_whose_html_lists_nothing() -> None:
    with ClientShop(api_delay_s=0.2) as shop:
        limits = CrawlLimits(delay_s=0, max_seconds=60)
        plain = crawl(shop.url + "/", limits, render=False)
        assert plain.listed == [] and plain.stats.pages_rendered == 0
        catalogue = crawl(shop.url + "/", limits)
    assert catalogue.stats.pages_rendered >= 1
    assert sorted(i.title for i in catalogue.listed) == sorted(i.title for i in CLIENT_ITEMS)
    prices = {i.title: i.price for i in catalogue.listed}
    assert prices["Crazy Monkey Grey"] == 134.90
    assert catalogue.currency == "USD"


# ---- the trace carries `covered` ----------------------------------------------------------------

def test_trace_elements_carry_covered_and_old_traces_read() -> None:
    el = Element(name="results.lamp.view_product", kind="clickable", text="Lamp", covered=True)
    stored = trace_element(el)
    assert stored.covered is True and observation_element(stored).covered is True
    old = TraceElement.model_validate({"name": "a", "kind": "clickable"})
    assert old.covered is False
