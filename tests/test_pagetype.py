"""The page-type classifier on the bundled shop (both layouts), the shared real pages and a
third-party shop with other markup conventions — every page observed in real Chromium."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest
from playwright.async_api import async_playwright

from fixtures.third_party_shop import ThirdPartyShop
from shop_r1.envs.chromium import LAUNCH_ARGS, find_chromium
from shop_r1.envs.observation import Element, Observation
from shop_r1.envs.pagetype import PAGE_TYPES, PageClass, classify, page_type
from shop_r1.envs.reducer import ReducedPage, ReducerOptions, observe_target, open_target, reduce_page
from shop_r1.envs.shop.server import run_in_thread

BIG = ReducerOptions(token_budget=60_000)


async def _observe_all(targets: list[str], options: ReducerOptions | None = None) -> list[ReducedPage]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(None), args=list(LAUNCH_ARGS), headless=True)
        try:
            out = []
            for target in targets:
                page = await open_target(browser, target)
                out.append(await reduce_page(page, options))
                await page.context.close()
            return out
        finally:
            await browser.close()


def _check(expected: dict[str, str], pages: list[ReducedPage]) -> None:
    got = {label: classify(p) for label, p in zip(expected, pages)}
    wrong = {label: (c.type, c.reasons) for label, c in got.items() if c.type != expected[label]}
    assert not wrong, f"misclassified: {wrong}"


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_bundled_shop_pages(layout):
    with run_in_thread(seed=0, port=0, layout=layout) as shop:
        listing = urllib.request.urlopen(f"{shop.url}/s?k=headphones").read().decode()
        product = re.search(r'href="(/dp/[^"]+)"', listing).group(1)
        expected = {"/": "home", "/s?k=headphones": "listing", "/s?k=zzzqqq": "listing", "/s?i=shoes": "listing",
                    product: "product", "/cart": "cart", "/checkout": "checkout", "/help/about": "other"}
        pages = asyncio.run(_observe_all([shop.url + path for path in expected]))
    _check(expected, pages)
    # The product page's verdict rests on the buy box, not on the related-items list it also shows.
    prod = classify(pages[4])
    assert prod.heading and prod.prices >= 1 and len(prod.buy_controls) >= 1
    assert classify(pages[2]).listing_cues  # "No results for ..." is a listing with zero items


def test_shared_real_pages(shared_data):
    pages_dir = shared_data / "pages"
    expected = {"ebay_item": "product", "ebay_search_results": "listing", "webshop_item": "product",
                "webshop_search_results": "listing",
                # WebShop's description/features tabs show neither a price nor a buy control.
                "webshop_item_description": "other", "webshop_item_features": "other"}
    pages = asyncio.run(_observe_all([str(pages_dir / f"{name}.html") for name in expected], BIG))
    _check(expected, pages)
    # eBay's "Buy It Now" facet on the results page is a filter, not the page's buy control.
    assert classify(pages[1]).item_blocks >= 10


def test_third_party_markup():
    with ThirdPartyShop() as shop:
        expected = {
            shop.page("start"): "home",
            shop.page("cat", c="footwear"): "listing",
            shop.page("find", term="organic freeze dried beets"): "listing",  # "Found 0 results. Did you mean"
            shop.page("find", term="jacket"): "listing",
            shop.page("item", sku="1003"): "product",
            shop.page("item", sku="3001"): "product",  # no options at all
            shop.page("bag"): "cart",
            shop.page("pay"): "checkout",
            shop.page("thanks"): "checkout",
            shop.page("login"): "account",
            shop.page("missing"): "other",
        }
        pages = asyncio.run(_observe_all(list(expected)))
    _check(expected, pages)
    assert classify(pages[8]).confirmation and not classify(pages[7]).confirmation
    zero = classify(pages[2])  # "Did you mean boots?" is an offered search, not an item
    assert zero.suggestions and not set(zero.suggestions) & {i.name for i in zero.items}
    product = classify(pages[4])
    assert product.main_price == 139.0 and product.items == ()  # the breadcrumb is not an item
    home = classify(pages[0])
    assert home.item_runs == 2, home  # two shelves ("New arrivals", "Staff picks")


def _page(html: str, elements: tuple[Element, ...] = (), title: str = "", url: str = "http://127.0.0.1/") -> Observation:
    return Observation(url=url, title=title, simplified_html=html, elements=elements)


def test_no_url_conventions_and_bad_input():
    """The URL never decides: a product-looking URL with a help page's content is "other"."""
    help_page = _page("<h1>Help</h1><p>Returns within 30 days.</p>", title="Help",
                      url="http://127.0.0.1/dp/B00X/product/item")
    assert page_type(help_page) == "other"
    assert page_type(_page("")) == "other"  # empty or unparsable HTML is no evidence, not a crash
    assert page_type(_page("<<<>>>&&")) == "other"
    buy = Element(name="buy_box.add_to_cart", kind="clickable", text="Add to cart", tag="button")
    wish = Element(name="add_to_wishlist", kind="clickable", text="Add to wish list", tag="a")
    assert page_type(_page("<h1>Blue kettle</h1><p>$19.99</p>", (buy,))) == "product"
    assert page_type(_page("<h1>Blue kettle</h1><p>$19.99</p>", (wish,))) != "product"
    assert set(PAGE_TYPES) == set(PageClass.model_fields["type"].annotation.__args__)


def test_product_page_with_buying_options_folded_away() -> None:
    """The ``hidden-add-to-cart`` variant folds the buy box into "More buying options": still a
    product page (a title, its own price), or an A/B test would report fewer product views."""
    import re
    import urllib.request

    from shop_r1.envs.shop.server import run_in_thread

    with run_in_thread(seed=0, variant="hidden-add-to-cart") as shop:
        results = urllib.request.urlopen(shop.url + "/s?k=headphones", timeout=30).read().decode()
        link = re.search(r'href="(/dp/[^"]+)"', results).group(1)
        page = asyncio.run(observe_target(shop.url + link))
    found = classify(page)
    assert found.type == "product", found.reasons
    assert "disclosure" in found.reasons[0]
