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
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shop_r1.envs.controls import CART_LINK, CHECKOUT
from shop_r1.simulator.shopmodel.catalogue import Catalogue, Category, CrawlStats, Currency, ListedItem, Product
from shop_r1.simulator.shopmodel.htmlpage import HtmlPage, Link, PageReadError, read_page

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


def crawl(start_url: str, limits: CrawlLimits | None = None, *, client: httpx.Client | None = None) -> Catalogue:
    """Crawl ``start_url``'s shop within ``limits`` and return what it sells."""
    limits = limits or CrawlLimits()
    own = client is None
    client = client or httpx.Client(timeout=limits.timeout_s, follow_redirects=True,
                                    headers={"User-Agent": limits.user_agent})
    try:
        c = _Crawler(start_url, limits, client)
        home = c.fetch(start_url)
        if home is None:
            raise CrawlError(f"{start_url}: the start page could not be read for the catalogue "
                             f"({'robots.txt disallows it' if c.disallowed else 'fetch failed'})")
        listed: dict[str, ListedItem] = {i.url: i for i in _listed(home, None)}
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
            if page is None or page.page.type != "listing" or not page.page.items:
                continue
            found = _listed(page, link.text)
            categories.append(Category(name=link.text, url=link.url, items_seen=len(found)))
            for item in found:
                old = listed.get(item.url)
                if old is None or old.category is None:
                    listed[item.url] = item
        products: list[Product] = []
        for url in _spread(list(listed.values()), limits.max_products):
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
