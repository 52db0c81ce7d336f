"""A bounded, polite, same-origin crawl that builds a storefront's :class:`Catalogue`.

Why a crawl at all: intents drawn from a list written for another shop send shoppers after
things the shop does not sell ("organic freeze dried beets" in a shoe shop), and every session
then measures the search's zero-results page rather than the shop. A few dozen pages — the home
page, its departments, a sample of products — are enough to know what the shop sells, at which
prices, with which options.

Bounds and manners: at most ``max_pages`` fetches and ``max_seconds``, one request at a time
with ``delay_s`` between them (or the shop's ``Crawl-delay``, if longer), only URLs of the start
URL's origin, and nothing robots.txt disallows for our user agent (``urllib.robotparser``; a
robots.txt answering 401/403 disallows everything, as the convention says). Forms are never
submitted: the crawl only follows links, so it cannot add to a cart or place an order.

Client-rendered shops: when the start page's HTML, as the server sends it, lists no items and is
no product page (an empty shell its scripts fill from a JSON request), the crawl reads it again in
headless Chromium -- loaded, left to settle (:func:`shop_r1.envs.settle.wait_settled`) and reduced
by the shoppers' own reducer -- and reads the rest of the shop that way too. The browser loads
only the shop's own origin (other requests are aborted) and robots.txt still decides what is
fetched. Product cards without pages of their own (a one-page shop's "Add to cart" cards) are
listed under the page URL with a fragment naming the card, and no product page is fetched for them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar
from datetime import datetime, timezone
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shop_r1.envs.controls import CART_LINK, CHECKOUT
from shop_r1.envs.storefront.catalogue import Catalogue, Category, CrawlStats, Currency, ListedItem, Product
from shop_r1.envs.storefront.htmlpage import HtmlPage, Link, PageReadError, read_page

T = TypeVar("T")

log = logging.getLogger(__name__)

USER_AGENT = "shop-r1-catalogue/1 (simulated-shopper research; one request at a time)"

# Links that are site chrome, never a department: account, cart, help, legal.
_CHROME = re.compile(r"\b(?:sign|log)[\s-]?(?:in|out|on)\b|\baccount\b|\bregister\b|\bhelp\b|\bcontact\b|\babout\b|"
                     r"\bprivacy\b|\bterms\b|\bconditions\b|\breturns?\b|\bshipping\b|\bcareers?\b|\bfaq\b|"
                     r"\bcookies?\b|\bwish\s?list\b|\bback to top\b|\bgift cards?\b|\bsell\b", re.I)


class CrawlError(RuntimeError):
    """The start page could not be read at all; the message names the URL and why."""


class CrawlLimits(BaseModel):
    """The crawl's caps. Defaults keep a crawl of a real shop under half a minute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_pages: int = Field(default=40, ge=1)
    max_products: int = Field(default=12, ge=0)
    max_categories: int = Field(default=12, ge=0)
    max_seconds: float = Field(default=30.0, gt=0)
    delay_s: float = Field(default=0.25, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    user_agent: str = USER_AGENT


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _currency(marks: Iterable[str]) -> Currency:
    counts: dict[Currency, int] = {}
    for mark in marks:
        patterns: tuple[tuple[Currency, str], ...] = (
            ("EUR", r"€|EUR"), ("GBP", r"£|GBP"), ("JPY", r"¥|JPY"), ("CAD", r"CAD"), ("AUD", r"AUD"),
            ("USD", r"\$|USD"))
        for cur, pattern in patterns:
            if re.search(pattern, mark):
                counts[cur] = counts.get(cur, 0) + 1
                break
    return max(counts, key=lambda c: counts[c]) if counts else "unknown"


class _Renderer:
    """One headless Chromium for a crawl, run on a thread with its own event loop.

    The crawl is synchronous and may be called from code that already runs an event loop, so the
    browser's async API is driven from a loop of its own. Pages are loaded, left to settle, read
    (the rendered HTML for links and page types) and reduced (for product cards).
    """

    def __init__(self, origin: str, limits: CrawlLimits, browser_path: str | None) -> None:
        self.origin = origin
        self.limits = limits
        self.browser_path = browser_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="crawl-chromium", daemon=True)
        self._thread.start()
        self._pw: Any = None
        self._browser: Any = None
        self._context: Any = None
        self.rendered = 0

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.limits.timeout_s + 15)

    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        from shop_r1.envs.chromium import launch_chromium
        from shop_r1.envs.reducer import install_page_hooks

        self._pw = await async_playwright().start()
        self._browser = await launch_chromium(self._pw, self.browser_path)
        self._context = await self._browser.new_context(user_agent=self.limits.user_agent, service_workers="block")
        await install_page_hooks(self._context)

        async def same_origin_only(route: Any) -> None:
            if origin_of_or_none(route.request.url) == self.origin:
                await route.continue_()
            else:
                await route.abort("blockedbyclient")

        await self._context.route("**/*", same_origin_only)

    async def _render(self, url: str) -> tuple[int | None, str, str, tuple[Any, ...]]:
        from playwright.async_api import Error as PlaywrightError

        from shop_r1.envs.reducer import reduce_page
        from shop_r1.envs.settle import NetworkQuiet, wait_settled

        if self._context is None:
            await self._start()
        page = await self._context.new_page()
        try:
            network = NetworkQuiet(page)
            response = await page.goto(url, wait_until="domcontentloaded", timeout=self.limits.timeout_s * 1000)
            try:
                await page.wait_for_load_state("load", timeout=min(self.limits.timeout_s * 1000, 5_000))
            except PlaywrightError:
                pass
            await wait_settled(page, network, max_ms=3_000)
            reduced = await reduce_page(page)
            return (response.status if response else None), page.url, await page.content(), reduced.items
        finally:
            await page.close()

    def render(self, url: str) -> tuple[int | None, str, str, tuple[Any, ...]]:
        """(HTTP status, final URL, rendered HTML, product cards) of ``url``."""
        self.rendered += 1
        return self._run(self._render(url))

    async def _close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._pw is not None:
            await self._pw.stop()

    def close(self) -> None:
        try:
            self._run(self._close())
        except Exception as exc:  # noqa: BLE001 - closing must not hide the crawl's own result
            log.debug("closing the crawl's Chromium: %s", exc)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


def origin_of_or_none(url: str) -> str | None:
    try:
        return origin_of(url)
    except ValueError:
        return None


class _Crawler:
    def __init__(self, start_url: str, limits: CrawlLimits, client: httpx.Client):
        self.start_url = start_url
        self.origin = origin_of(start_url)
        self.limits = limits
        self.client = client
        self.t0 = time.monotonic()
        self.fetched = 0
        self.failed = 0
        self.disallowed: list[str] = []
        self.stopped_by: str = "done"
        self.seen: set[str] = set()
        self.robots = self._robots()
        delay = self.robots.crawl_delay(limits.user_agent) if self.robots else None
        self.delay = max(limits.delay_s, float(delay or 0))
        self._last = 0.0
        self.renderer: _Renderer | None = None  # set once the shop turns out to render client-side
        self.cards: dict[str, tuple[Any, ...]] = {}  # rendered page URL -> its product cards

    def _robots(self) -> RobotFileParser | None:
        parser = RobotFileParser(f"{self.origin}/robots.txt")
        try:
            resp = self.client.get(f"{self.origin}/robots.txt")
        except httpx.HTTPError as exc:
            log.info("robots.txt of %s unreadable (%s); crawling politely without it", self.origin, exc)
            return None
        if resp.status_code in (401, 403):
            # typeshed omits this attribute; RobotFileParser.read() sets it the same way on 401/403.
            parser.disallow_all = True  # type: ignore[attr-defined]
        elif resp.status_code == 200:
            parser.parse(resp.text.splitlines())
        else:
            return None
        return parser

    def out_of_budget(self) -> bool:
        if self.fetched >= self.limits.max_pages:
            self.stopped_by = "page_cap"
            return True
        if time.monotonic() - self.t0 >= self.limits.max_seconds:
            self.stopped_by = "time_cap"
            return True
        return False

    def fetch(self, url: str) -> HtmlPage | None:
        """One page, politely; None when disallowed, already seen, over budget or unreadable."""
        if url in self.seen or urlsplit(url)[:2] != urlsplit(self.origin)[:2]:
            return None
        if self.robots is not None and not self.robots.can_fetch(self.limits.user_agent, url):
            self.seen.add(url)
            self.disallowed.append(url)
            log.debug("robots.txt disallows %s", url)
            return None
        if self.out_of_budget():
            return None
        self.seen.add(url)
        wait = self._last + self.delay - time.monotonic()
        if wait > 0 and self.fetched:
            time.sleep(wait)
        self.fetched += 1
        if self.renderer is not None:
            return self._rendered(url)
        try:
            resp = self.client.get(url)
            self._last = time.monotonic()
            resp.raise_for_status()
            if "html" not in resp.headers.get("content-type", "text/html"):
                return None
            return read_page(str(resp.url), resp.text)
        except (httpx.HTTPError, PageReadError) as exc:
            self._last = time.monotonic()
            self.failed += 1
            log.info("catalogue crawl: %s failed (%s)", url, exc)
            return None


    def _rendered(self, url: str) -> HtmlPage | None:
        assert self.renderer is not None
        try:
            status, final, body, cards = self.renderer.render(url)
            self._last = time.monotonic()
            if status is not None and status >= 400:
                raise PageReadError(f"{url}: HTTP {status}")
            self.cards[final] = cards
            return read_page(final, body)
        except Exception as exc:  # noqa: BLE001 - a page the browser cannot read is one failed fetch
            self._last = time.monotonic()
            self.failed += 1
            log.info("catalogue crawl: %s failed in Chromium (%s)", url, str(exc).splitlines()[0] if str(exc) else exc)
            return None

    def render_again(self, url: str, browser_path: str | None) -> HtmlPage | None:
        """``url`` (already fetched as plain HTML) read in Chromium; later fetches render too."""
        self.renderer = _Renderer(self.origin, self.limits, browser_path)
        self.fetched += 1
        return self._rendered(url)


def _shows_nothing(page: HtmlPage) -> bool:
    """The server's HTML lists no items and is no product page: a shell its scripts fill."""
    return not page.page.items and page.page.type != "product"


def _cards(c: _Crawler, page: HtmlPage, category: str | None) -> list[ListedItem]:
    """A rendered page's product cards without a title link of their own (listed by ``_listed``
    when they have one), each under the page URL with a fragment naming the card."""
    out = []
    linked = {link.url for link in page.links.values()}
    for card in c.cards.get(page.url, ()):
        if card.url and card.url in linked:
            continue
        anchor = re.sub(r"[^a-z0-9]+", "-", card.title.lower()).strip("-") or "item"
        out.append(ListedItem(title=card.title, url=card.url or f"{page.url.split('#', 1)[0]}#{anchor}",
                              price=_price_of(card.price), category=category))
    return out


def _price_of(text: str) -> float | None:
    digits = re.search(r"\d[\d,.]*", text or "")
    if not digits:
        return None
    raw = digits.group(0).rstrip(".,")
    if re.search(r",\d{2}$", raw) and "." not in raw:
        raw = raw.replace(",", ".")
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def _is_department(link: Link, item_names: set[str]) -> bool:
    words = link.text.split()
    return (link.name not in item_names and 1 <= len(words) <= 6 and not _CHROME.search(link.text)
            and not CART_LINK.search(f" {link.text} ") and not CHECKOUT.search(link.text)
            and any(c.isalpha() for c in link.text))


def _listed(page: HtmlPage, category: str | None) -> list[ListedItem]:
    out = []
    for item in page.page.items:
        link = page.links.get(item.name)
        if link is None:
            continue
        title = link.text or item.text
        out.append(ListedItem(title=title, url=link.url, price=item.price, category=category))
    return out


def crawl(start_url: str, limits: CrawlLimits | None = None, *, client: httpx.Client | None = None,
          render: bool = True, browser_path: str | None = None) -> Catalogue:
    """Crawl ``start_url``'s shop within ``limits`` and return what it sells.

    ``render``: read the shop in Chromium when the start page's HTML shows no products (see the
    module doc); ``browser_path`` as for :func:`shop_r1.envs.chromium.launch_chromium`.
    """
    limits = limits or CrawlLimits()
    own = client is None
    client = client or httpx.Client(timeout=limits.timeout_s, follow_redirects=True,
                                    headers={"User-Agent": limits.user_agent})
    c: _Crawler | None = None
    try:
        c = _Crawler(start_url, limits, client)
        home = c.fetch(start_url)
        if home is None:
            raise CrawlError(f"{start_url}: the start page could not be read for the catalogue "
                             f"({'robots.txt disallows it' if c.disallowed else 'fetch failed'})")
        if render and _shows_nothing(home) and not c.out_of_budget():
            log.info("catalogue crawl: %s lists nothing in its HTML; reading the shop in Chromium", start_url)
            rendered = c.render_again(start_url, browser_path)
            if rendered is not None:
                home = rendered
        listed: dict[str, ListedItem] = {i.url: i for i in _listed(home, None) + _cards(c, home, None)}
        item_names = {i.name for i in home.page.items}
        categories: list[Category] = []
        for link in home.same_origin_links():
            if len(categories) >= limits.max_categories or c.out_of_budget():
                break
            if not _is_department(link, item_names) or link.url.rstrip("/") == start_url.rstrip("/"):
                continue
            page = c.fetch(link.url)
            # A department lists items; a page that looks like the home page again (a logo link
            # under another URL) is not one.
            if page is None or page.page.type != "listing" or not (page.page.items or c.cards.get(page.url)):
                continue
            found = _listed(page, link.text) + _cards(c, page, link.text)
            categories.append(Category(name=link.text, url=link.url, items_seen=len(found)))
            for item in found:
                old = listed.get(item.url)
                if old is None or old.category is None:
                    listed[item.url] = item
        products: list[Product] = []
        # Cards listed under their page's URL (a fragment names them) have no page to open.
        for url in _spread([i for i in listed.values() if "#" not in i.url], limits.max_products):
            if c.out_of_budget():
                break
            page = c.fetch(url)
            if page is None or page.page.type != "product" or not page.page.heading:
                continue
            products.append(Product(url=page.url, title=page.page.heading, price=page.page.main_price,
                                    category=listed[url].category, options=page.options,
                                    attributes=page.attributes))
        marks = list(home.currency_marks)
        stats = CrawlStats(pages_fetched=c.fetched, pages_failed=c.failed, disallowed=c.disallowed,
                           seconds=round(time.monotonic() - c.t0, 3),
                           pages_rendered=c.renderer.rendered if c.renderer is not None else 0,
                           stopped_by=c.stopped_by)  # type: ignore[arg-type]
        catalogue = Catalogue(origin=c.origin, start_url=start_url,
                              crawled_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              currency=_currency(marks), categories=categories, listed=list(listed.values()),
                              products=products, stats=stats)
        log.info("catalogue of %s: %d categories, %d listed items, %d product pages (%d fetches, %.1f s, %s)",
                 c.origin, len(categories), len(catalogue.listed), len(products), c.fetched, stats.seconds,
                 stats.stopped_by)
        return catalogue
    finally:
        if c is not None and c.renderer is not None:
            c.renderer.close()
        if own:
            client.close()


def _spread(items: list[ListedItem], k: int) -> list[str]:
    """Up to ``k`` item URLs taken round-robin over categories, so the sample covers the shop."""
    by_cat: dict[str | None, list[ListedItem]] = {}
    for item in items:
        by_cat.setdefault(item.category, []).append(item)
    out: list[str] = []
    queues = list(by_cat.values())
    while len(out) < k and any(queues):
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop(0).url)
    return out
