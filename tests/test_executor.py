"""The action executor against real Chromium and a real HTTP server on 127.0.0.1.

The pages carry ``data-sr1-name`` stamps the way the reducer leaves them, and the element tables
are built from the live DOM: the executor's contract is the stamp, not the reducer's naming.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from shop_r1.envs.chromium import launch_chromium
from shop_r1.envs.reducer import reduce_page
from shop_r1.envs.executor import (
    ExecutorOptions,
    default_purchase_guard,
    execute,
    option_name,
    suggest_names,
)
from shop_r1.envs.observation import Element
from shop_r1.envs.purchase import ControlFacts, click_reason, submit_reason

SHOP_PAGE = """<!doctype html><html><head><title>Test shop</title></head><body>
<form action="/search" method="get">
  <input data-sr1-name="search_input" name="q" type="search">
  <button data-sr1-name="search_button" type="submit">Search</button>
</form>
<form action="/filter" method="get" id="twofields">
  <input data-sr1-name="filter.min_price" name="min">
  <input data-sr1-name="filter.max_price" name="max">
</form>
<input data-sr1-name="newsletter_email" type="email">
<a data-sr1-name="columbia_shirt.view_product" href="/item/7">Columbia shirt</a>
<a data-sr1-name="new_tab_link" href="/item/8" target="_blank">Opens a new tab</a>
<button data-sr1-name="add_to_cart" onclick="document.title='added'">Add to cart</button>
<button data-sr1-name="buy_now" disabled>Buy now</button>
<button data-sr1-name="secret_button" style="display:none">Hidden</button>
<button data-sr1-name="checkout.place_order" onclick="document.title='ORDERED'">Place your order</button>
<button data-sr1-name="checkout.go" data-purchase="true" onclick="document.title='ORDERED'">Go</button>
<label>Size <select data-sr1-name="product.options.size" onchange="document.title='size:'+this.value">
  <option value="">Choose</option><option value="s">Small</option><option value="m">Medium</option>
  <option value="xl">X-Large</option><option value="xxl" disabled>XX-Large</option>
</select></label>
<select data-sr1-name="sort_by" onchange="this.form && this.form.submit()">
  <option data-sr1-name="sort_by.price_low_to_high" value="price">Price: low to high</option>
  <option data-sr1-name="sort_by.rating" value="rating">Avg. rating</option>
</select>
<a data-sr1-name="slow_link" href="/slow">Slow page</a>
<div id="cover" style="position:fixed;inset:0;display:none;background:#fff"></div>
<button data-sr1-name="covered_button" onclick="document.title='clicked covered'">Covered</button>
</body></html>"""


@dataclass
class Site:
    url: str
    hits: list[str] = field(default_factory=list)


# The module's browser tests share one Chromium (launching one took 3-8 s of each test's setup on
# two busy cores) and so run in one event loop, which Playwright's objects are bound to (marked
# one by one: pytest-asyncio warns of the mark on a plain function); every test has a browser context
# of its own (cookies, storage, pages) and its own server.
in_module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def site() -> AsyncIterator[Site]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        hits.append(request.path_qs)
        if request.path == "/":
            return web.Response(text=SHOP_PAGE, content_type="text/html")
        if request.path == "/slow":
            await asyncio.sleep(5)
        title = f"{request.path} {request.query_string}".strip()
        return web.Response(text=f"<html><head><title>{title}</title></head><body>ok</body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Site(f"http://127.0.0.1:{port}", hits)
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def page(site: Site, browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(site.url + "/")
    yield page
    await context.close()


async def table(page: Page) -> list[Element]:
    """The element table as the reducer would report it, read from the live stamps."""
    rows = await page.eval_on_selector_all(
        "[data-sr1-name]",
        """els => els.map(e => ({name: e.dataset.sr1Name, tag: e.tagName.toLowerCase(),
              text: (e.innerText || '').trim(), disabled: !!e.disabled,
              options: e.tagName === 'SELECT' ? Array.from(e.options).map(o => o.label) : []}))""",
    )
    out = []
    for r in rows:
        kind = "input" if r["tag"] in ("input", "textarea") else "select" if r["tag"] == "select" else "clickable"
        out.append(Element(name=r["name"], kind=kind, text=r["text"], tag=r["tag"], disabled=r["disabled"],
                           options=tuple(r["options"]), selector=f'[data-sr1-name="{r["name"]}"]'))
    return out


# Short, but with room for a loaded CI machine: a lookup past 500 ms failed once with four test workers on 2 cores.
FAST = ExecutorOptions(action_timeout_ms=2000, interact_timeout_ms=1500)


@in_module_loop
async def test_click_link_navigates_and_reports_timings(page: Page, site: Site) -> None:
    timings: dict[str, float] = {}
    err = await execute(page, {"type": "click", "name": "columbia_shirt.view_product"}, await table(page),
                        options=FAST, timings=timings)
    assert err is None
    assert page.url == site.url + "/item/7"
    assert await page.title() == "/item/7"
    assert timings["action_ms"] > 0 and timings["settle_ms"] > 0


@in_module_loop
async def test_type_and_submit_presses_enter_in_search_form(page: Page, site: Site) -> None:
    await page.fill('[data-sr1-name="search_input"]', "old text")
    err = await execute(page, {"type": "type_and_submit", "name": "search_input", "text": "rain jacket"},
                        await table(page), options=FAST)
    assert err is None
    assert page.url == site.url + "/search?q=rain+jacket"  # cleared first, then typed
    assert "/search?q=rain+jacket" in site.hits


@in_module_loop
async def test_type_and_submit_falls_back_to_form_submit(page: Page, site: Site) -> None:
    # Two text fields and no submit button: Chromium's implicit submission does nothing on Enter.
    err = await execute(page, {"type": "type_and_submit", "name": "filter.min_price", "text": "20"},
                        await table(page), options=FAST)
    assert err is None
    assert page.url == site.url + "/filter?min=20&max="


@in_module_loop
async def test_type_and_submit_outside_a_form_just_types(page: Page, site: Site) -> None:
    err = await execute(page, {"type": "type_and_submit", "name": "newsletter_email", "text": "a@b.c"},
                        await table(page), options=FAST)
    assert err is None
    assert page.url == site.url + "/"
    assert await page.input_value('[data-sr1-name="newsletter_email"]') == "a@b.c"


@in_module_loop
async def test_unknown_name_suggests_closest(page: Page) -> None:
    err = await execute(page, {"type": "click", "name": "columbia_shirt.view_prodcut"}, await table(page),
                        options=FAST)
    assert err is not None and err.code == "unknown_name"
    assert err.suggestions[0] == "columbia_shirt.view_product"
    assert len(err.suggestions) == 3
    assert "columbia_shirt.view_product" in err.message


@in_module_loop
async def test_unknown_name_without_a_table_uses_live_names(page: Page) -> None:
    err = await execute(page, {"type": "click", "name": "cart.add_to"}, [], options=FAST)
    assert err is not None and err.code == "unknown_name"
    assert "add_to_cart" in err.suggestions


@in_module_loop
async def test_type_and_submit_suggests_inputs_only(page: Page) -> None:
    err = await execute(page, {"type": "type_and_submit", "name": "serch_input", "text": "x"},
                        await table(page), options=FAST)
    assert err is not None and err.code == "unknown_name"
    assert err.suggestions[0] == "search_input"
    tags = {el.name: el.kind for el in await table(page)}
    assert all(tags[s] in ("input", "select") for s in err.suggestions)


@in_module_loop
async def test_disabled_and_hidden_elements(page: Page) -> None:
    elements = await table(page)
    err = await execute(page, {"type": "click", "name": "buy_now"}, elements, options=FAST)
    assert err is not None and err.code == "disabled" and err.name == "buy_now"
    err = await execute(page, {"type": "click", "name": "secret_button"}, elements, options=FAST)
    assert err is not None and err.code == "not_visible"


@in_module_loop
async def test_covered_element_is_not_clickable(page: Page) -> None:
    await page.eval_on_selector("#cover", "e => e.style.display = 'block'")
    err = await execute(page, {"type": "click", "name": "covered_button"}, await table(page), options=FAST)
    assert err is not None and err.code == "not_visible"
    assert await page.title() == "Test shop"


@in_module_loop
async def test_wrong_kind_typing_into_a_link(page: Page) -> None:
    err = await execute(page, {"type": "type_and_submit", "name": "columbia_shirt.view_product", "text": "x"},
                        await table(page), options=FAST)
    assert err is not None and err.code == "wrong_kind"


@in_module_loop
async def test_select_option_by_option_name(page: Page) -> None:
    elements = await table(page)
    size = next(el for el in elements if el.name == "product.options.size")
    assert option_name(size.name, "X-Large") == "product.options.size.x_large"
    err = await execute(page, {"type": "click", "name": "product.options.size.x_large"}, elements, options=FAST)
    assert err is None
    assert await page.title() == "size:xl"
    assert await page.input_value('[data-sr1-name="product.options.size"]') == "xl"


@in_module_loop
async def test_select_option_by_type_and_submit_label(page: Page) -> None:
    err = await execute(page, {"type": "type_and_submit", "name": "product.options.size", "text": "medium"},
                        await table(page), options=FAST)
    assert err is None
    assert await page.title() == "size:m"


@in_module_loop
async def test_select_option_stamped_option_element(page: Page) -> None:
    err = await execute(page, {"type": "click", "name": "sort_by.rating"}, await table(page), options=FAST)
    assert err is None
    assert await page.input_value('[data-sr1-name="sort_by"]') == "rating"


@in_module_loop
async def test_select_bad_or_disabled_option(page: Page) -> None:
    elements = await table(page)
    err = await execute(page, {"type": "click", "name": "product.options.size.huge"}, elements, options=FAST)
    assert err is not None and err.code == "unknown_name"
    assert "product.options.size.x_large" in err.suggestions or "X-Large" in err.message
    err = await execute(page, {"type": "click", "name": "product.options.size.xx_large"}, elements, options=FAST)
    assert err is not None and err.code == "disabled"
    err = await execute(page, {"type": "click", "name": "product.options.size"}, elements, options=FAST)
    assert err is not None and err.code == "wrong_kind"
    assert "product.options.size.small" in err.suggestions


@in_module_loop
async def test_purchase_guard(page: Page) -> None:
    elements = await table(page)
    for name in ("checkout.place_order", "checkout.go"):  # by text, by data-purchase
        err = await execute(page, {"type": "click", "name": name}, elements, options=FAST)
        assert err is not None and err.code == "purchase_blocked", name
    assert await page.title() == "Test shop"  # nothing was clicked
    err = await execute(page, {"type": "click", "name": "checkout.place_order"}, elements,
                        options=ExecutorOptions(allow_purchase=True, action_timeout_ms=2000))
    assert err is None
    assert await page.title() == "ORDERED"


def test_default_purchase_guard_patterns() -> None:
    def el(text: str, name: str = "x") -> Element:
        return Element(name=name, kind="clickable", text=text)

    for text in ("Place your order", "place order", "Complete purchase", "Pay now", "Submit payment",
                 "Confirm Order", "confirm purchase"):
        assert default_purchase_guard(el(text)), text
    assert default_purchase_guard(el("", name="checkout.place_order"))
    for text in ("Add to cart", "Proceed to checkout", "Order history", "Buy now options"):
        assert not default_purchase_guard(el(text)), text


def test_purchase_words_in_links_and_languages() -> None:
    def link(text: str) -> Element:
        return Element(name="nav.x", kind="clickable", text=text, tag="a")

    # a link that merely mentions paying is navigation; one that is nothing but an order phrase is not
    assert not default_purchase_guard(link("Checkout paynow help"))
    assert default_purchase_guard(link("Place your order »"))
    for text in ("Zahlungspflichtig bestellen", "Passer la commande", "Realizar pedido", "Conferma ordine",
                 "Bestelling plaatsen", "Finalizar pedido", "Kupuję i płacę", "注文を確定する", "提交订单"):
        assert default_purchase_guard(Element(name="x", kind="clickable", text=text, tag="button")), text
    # words a product page's buy box also says count only on a purchase step (see envs.purchase)
    for text in ("Buy now", "Jetzt kaufen", "Commander", "Comprar", "Confirm"):
        assert not default_purchase_guard(Element(name="x", kind="clickable", text=text, tag="button")), text


def test_purchase_reasons_by_form_page_and_words() -> None:
    def button(text: str, form: dict | None = None) -> ControlFacts:
        return ControlFacts.model_validate({"tag": "button", "type": "submit", "text": text,
                                            "submits": form is not None, "form": form})

    card = {"type": "text", "autocomplete": "cc-number", "words": "card"}
    coupon = {"type": "text", "autocomplete": "", "words": "coupon Gift card code"}
    assert "payment fields" in click_reason(button("Buy now", {"method": "post", "action": "http://s/x",
                                                               "fields": [card]}), navigates=False, step=None)
    assert "/place-order" in click_reason(button("Confirm", {"method": "post", "action": "http://s/place-order"}),
                                          navigates=False, step=None)
    # "Buy now" buys at once on a product page too (one-click buying places an order), in any language
    add = button("Buy now", {"method": "post", "action": "http://s/cart/add", "fields": []})
    assert "one-click" in click_reason(add, navigates=False, step=None)
    assert "one-click" in click_reason(button("Jetzt kaufen"), navigates=False, step=None)
    # the product page's add-to-cart form, and a coupon form on a checkout page, pass
    assert click_reason(button("Add to basket", {"method": "post", "action": "http://s/cart/add", "fields": []}),
                        navigates=False, step=None) is None
    assert click_reason(button("Apply", {"method": "post", "action": "http://s/coupon", "fields": [coupon]}),
                        navigates=False, step="a checkout page") is None
    # a POST form whose button says an order word is an order on any page (a plain review page)
    review = {"method": "post", "action": "http://s/s/7f3a", "fields": []}
    assert "POST form" in click_reason(button("Commander", review), navigates=False, step=None)
    assert click_reason(button("Commander", {**review, "method": "get"}), navigates=False, step=None) is None
    # a script button saying an order word counts on a purchase step only
    assert click_reason(button("Bestellen"), navigates=False, step=None) is None
    assert click_reason(button("Bestellen"), navigates=False, step="a checkout page") is not None
    # Enter in a card field is a payment, whatever the form says
    field = ControlFacts.model_validate({"tag": "input", "field": card})
    assert submit_reason(field, step=None) is not None


@in_module_loop
async def test_target_blank_link_stays_in_the_tab(page: Page, site: Site) -> None:
    err = await execute(page, {"type": "click", "name": "new_tab_link"}, await table(page), options=FAST)
    assert err is None
    assert page.url == site.url + "/item/8"
    assert len(page.context.pages) == 1


@in_module_loop
async def test_navigation_timeout_still_leaves_a_usable_page(page: Page, site: Site) -> None:
    err = await execute(page, {"type": "click", "name": "slow_link"}, await table(page),
                        options=ExecutorOptions(action_timeout_ms=600))
    assert err is not None and err.code == "navigation_timeout"
    assert "/slow" in err.message
    assert await page.evaluate("1 + 1") == 2  # the page can still be read and observed


@in_module_loop
async def test_invalid_dict_and_terminate(page: Page) -> None:
    err = await execute(page, {"type": "click"}, [], options=FAST)
    assert err is not None and err.code == "invalid_action" and "name" in err.message
    assert await execute(page, {"type": "terminate"}, [], options=FAST) is None


@in_module_loop
async def test_closed_page_is_page_crashed(page: Page) -> None:
    elements = await table(page)
    await page.close()
    err = await execute(page, {"type": "click", "name": "add_to_cart"}, elements, options=FAST)
    assert err is not None and err.code == "page_crashed"


def test_suggest_names_ranks_typos_and_reordered_tokens() -> None:
    names = ["search_input", "add_to_cart", "columbia_shirt.view_product", "refinements.customer_reviews"]
    assert suggest_names("serch_input", names)[0] == "search_input"
    assert suggest_names("cart.add", names)[0] == "add_to_cart"
    assert suggest_names("customer_reviews", names, n=1) == ("refinements.customer_reviews",)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="action_timeout_ms"):
        ExecutorOptions(action_timeout_ms=0)
    with pytest.raises(ValueError, match="purchase_guard"):
        ExecutorOptions(purchase_guard="yes")  # type: ignore[arg-type]


@in_module_loop
async def test_select_option_with_a_repeated_label_by_its_listed_name(page: Page) -> None:
    """Two choices labelled alike get a name no label spells (``…_copy_2``); the executor picks
    the one the observation listed, not the first with that label."""
    await page.set_content("<select aria-label='Quantity' name='qty'><option>1</option><option>1</option>"
                           "<option>2</option></select>")
    reduced = await reduce_page(page)
    names = [e.name for e in reduced.elements]
    copy = next(n for n in names if n.endswith("_copy_2"))
    err = await execute(page, {"type": "click", "name": copy}, reduced.elements, options=FAST)
    assert err is None
    assert await page.eval_on_selector("select", "s => s.selectedIndex") == 1
