"""The catalogue crawl and shop-derived intents, on real HTTP shops served on 127.0.0.1: the
bundled shop in both layouts and the third-party fixture shop (other markup, EUR prices)."""

from __future__ import annotations

import random
import re
import threading
from http.server import ThreadingHTTPServer

import pytest

from fixtures import third_party_shop as tps
from fixtures.third_party_shop import ThirdPartyShop
from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.model import Persona
from shop_r1.personas.sampler import content_words, sample
from shop_r1.personas.shoppers import shoppers_for_run as _load_personas
from shop_r1.envs.storefront import CrawlError, CrawlLimits, crawl, load_catalogue
from shop_r1.personas.intents import draw_intent, intent_source
from shop_r1.envs.storefront.cache import cache_path
from shop_r1.personas.intents import head_phrase, round_budget, spend_cap

FAST = CrawlLimits(delay_s=0.0)


@pytest.fixture(scope="module")
def third_party_catalogue():
    with ThirdPartyShop() as shop:
        yield crawl(shop.url + "/", FAST)


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_crawl_bundled_shop_finds_departments_products_and_prices(layout):
    with run_in_thread(seed=0, port=0, layout=layout) as shop:
        cat = crawl(shop.url + "/", FAST)
    assert cat.currency == "USD" and cat.stats.pages_fetched <= FAST.max_pages
    names = {c.name for c in cat.categories}
    assert {"Shoes", "Electronics", "Books"} <= names, names
    assert all(c.items_seen >= 3 for c in cat.categories)
    assert len(cat.products) == FAST.max_products
    assert len({p.category for p in cat.products}) >= 6  # the sample spreads over departments
    for p in cat.products:
        assert p.title and p.price is not None and 0 < p.price < 5000, p
        assert "/dp/" in p.url
    assert any(opts for p in cat.products for opts in p.options.values())
    assert any("Brand" in p.attributes for p in cat.products)


def test_crawl_third_party_shop_matches_what_it_sells(third_party_catalogue):
    cat = third_party_catalogue
    assert cat.currency == "EUR"
    assert {c.name for c in cat.categories} == set(tps.CATEGORIES.values())
    assert {i.title: i.price for i in cat.listed} == {i.title: i.price for i in tps.ITEMS}
    by_title = {p.title: p for p in cat.products}
    assert set(by_title) == {i.title for i in tps.ITEMS}  # 12 items, cap 12: every page opened
    for item in tps.ITEMS:
        p = by_title[item.title]
        assert p.price == item.price and p.category == tps.CATEGORIES[item.category]
        assert p.options.get("Size", []) == list(item.sizes)


def test_crawl_caps_pages_and_time():
    with ThirdPartyShop() as shop:
        capped = crawl(shop.url + "/", CrawlLimits(max_pages=5, delay_s=0.0))
        slow = crawl(shop.url + "/", CrawlLimits(max_seconds=0.5, delay_s=0.2))
    assert capped.stats.pages_fetched == 5 and capped.stats.stopped_by == "page_cap"
    assert slow.stats.stopped_by == "time_cap" and slow.stats.pages_fetched <= 4
    assert slow.stats.seconds < 2.0


class _RobotsHandler(tps._Handler):
    ROBOTS = "User-agent: *\nDisallow: /index.php?view=cat&c=kitchen\nDisallow: /index.php?view=item&sku=1003\n"

    def do_GET(self) -> None:  # noqa: N802
        self.server.paths.append(self.path)
        if self.path == "/robots.txt":
            data = self.ROBOTS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()


class _RobotsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RobotsHandler)
        self.lock = threading.Lock()
        self.bags: dict = {}
        self.orders: list = []
        self.paths: list[str] = []


def test_crawl_honours_robots_txt():
    server = _RobotsServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        cat = crawl(url, FAST)
    finally:
        server.shutdown()
        server.server_close()
    assert server.paths[0] == "/robots.txt"
    assert not any("c=kitchen" in p or "sku=1003" in p for p in server.paths), server.paths
    assert {c.name for c in cat.categories} == {"Footwear", "Outerwear"}
    assert "Summit Waterproof Hiking Boot" not in {p.title for p in cat.products}
    assert any("c=kitchen" in u for u in cat.stats.disallowed) and any("sku=1003" in u for u in cat.stats.disallowed)


def test_catalogue_cache_per_origin_and_refresh(tmp_path):
    with ThirdPartyShop() as shop:
        url = shop.url + "/"
        first = load_catalogue(url, FAST, cache=True, root=tmp_path)
    assert cache_path(url, tmp_path).is_file()
    # The shop is gone: a cached catalogue is still there, a refresh has to crawl and cannot.
    again = load_catalogue(url, FAST, cache=True, root=tmp_path)
    assert again == first
    with pytest.raises(CrawlError, match="start page could not be read"):
        load_catalogue(url, FAST, cache=True, root=tmp_path, refresh=True)
    # Loopback origins are not cached by default: the port will be another server's next time.
    with ThirdPartyShop() as shop:
        load_catalogue(shop.url + "/", FAST, root=tmp_path)
        assert not cache_path(shop.url + "/", tmp_path).exists()


def test_head_phrase_and_budgets():
    assert head_phrase("Summit Waterproof Hiking Boot") == "waterproof hiking boot"
    assert head_phrase("Forge Cast Iron Skillet 10 inch") == "cast iron skillet"
    assert head_phrase("Hasbro Series 8 Classic Trading Board Game, Green", brand="Hasbro") == "trading board game"
    assert head_phrase("Brewmaster Pour Over Coffee Kettle") == "coffee kettle"
    rng = random.Random(0)
    for price in (9.99, 23.99, 49.0, 139.0, 312.99, 899.0):
        b = round_budget(price, rng)
        assert price < b <= price * 1.35 + 100, (price, b)
        assert b == round(b)


def _budget_in(text: str) -> float | None:
    m = re.search(r"under \$?(\d+)", text)
    return float(m.group(1)) if m else None


def test_intents_fit_the_catalogue_and_the_persona(third_party_catalogue):
    cat = third_party_catalogue
    shop_words = set()
    for term in cat.terms():
        shop_words |= content_words(term)
    rng = random.Random(1)
    drawn = [draw_intent(cat, None, rng) for _ in range(60)]
    assert {d.style for d in drawn} == {"specific", "attribute", "browse"}
    prices = {i.title: i.price for i in cat.listed}
    for d in drawn:
        assert 1 <= len(d.text.split()) <= 16, d.text
        assert content_words(d.text) & shop_words, d.text  # names something the shop sells
        if d.budget is not None:
            assert _budget_in(d.text) == d.budget and "euros" in d.text  # in the shop's currency
            if d.item_title:
                assert d.budget > prices[d.item_title]
    # A persona who spends $30 a month is drawn to items it can afford (the shop has some under 45).
    thrifty = Persona(persona_id="t", budget=30.0, source="test")
    for _ in range(20):
        d = draw_intent(cat, thrifty, rng, style="specific")
        assert prices[d.item_title] <= spend_cap(thrifty) == 45.0
    rich = Persona(persona_id="r", income="$150,000 or more", source="test")
    assert spend_cap(rich) > max(prices.values())


def test_sampler_takes_intents_from_the_shop_deterministically(third_party_catalogue):
    a = sample(8, seed=4, intent_source=intent_source(third_party_catalogue))
    b = sample(8, seed=4, intent_source=intent_source(third_party_catalogue))
    assert a == b
    assert [p.persona_id for p in a] == [p.persona_id for p in sample(8, seed=4)]  # same people
    titles = {w for i in tps.ITEMS for w in content_words(f"{i.title} {tps.CATEGORIES[i.category]}")}
    assert all(content_words(p.intent) & titles for p in a), [p.intent for p in a]


def test_simulate_persona_loading_uses_shop_intents_or_the_library(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path / "cache"))
    with ThirdPartyShop() as shop:
        shop_people = _load_personas(None, None, 5, 2, shop.url + "/")
        library_people = _load_personas(None, None, 5, 2, shop.url + "/", intents="library")
    titles = {w for i in tps.ITEMS for w in content_words(f"{i.title} {tps.CATEGORIES[i.category]}")}
    assert all(content_words(p.intent) & titles for p in shop_people), [p.intent for p in shop_people]
    assert [p.persona_id for p in shop_people] == [p.persona_id for p in library_people]
    assert [p.intent for p in shop_people] != [p.intent for p in library_people]
