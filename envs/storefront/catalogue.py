"""The catalogue model a crawl builds: what a storefront sells, as a shopper could see it.

Intents are drawn from this (not from a list of goals written for another shop), so it keeps
only what a person browsing the shop would learn: the departments, the products with their
titles and prices, and the choices and facts a product page offers (sizes, colours, "Material:
Synthetic"). Prices are the numbers as printed with the currency they were printed in, because
an intent's budget is written in the shop's currency.
"""

from __future__ import annotations

import statistics
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CATALOGUE_SCHEMA = 1

Currency = Literal["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "unknown"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Category(_Frozen):
    """A department or listing the shop links to (a navigation link whose page lists items)."""

    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    items_seen: int = Field(default=0, ge=0)


class ListedItem(_Frozen):
    """An item as a listing shows it (title link + price), before its page was opened."""

    title: str = Field(min_length=1)
    url: str = Field(min_length=1)
    price: float | None = Field(default=None, ge=0)
    category: str | None = None


class Product(_Frozen):
    """A product page: its title heading, its own price, its options and facts."""

    url: str = Field(min_length=1)
    title: str = Field(min_length=1)
    price: float | None = Field(default=None, ge=0)
    category: str | None = None
    # choice name ("Size", "Color") -> the values offered, as printed
    options: dict[str, list[str]] = Field(default_factory=dict)
    # fact name ("Material") -> value, from two-column rows and definition lists
    attributes: dict[str, str] = Field(default_factory=dict)


class CrawlStats(_Frozen):
    """How the crawl went, so a thin catalogue can be told apart from a small shop."""

    pages_fetched: int = Field(ge=0)
    pages_failed: int = Field(default=0, ge=0)
    disallowed: list[str] = Field(default_factory=list)  # URLs robots.txt kept the crawl out of
    seconds: float = Field(ge=0)
    stopped_by: Literal["done", "page_cap", "time_cap"] = "done"
    pages_rendered: int = Field(default=0, ge=0)  # of pages_fetched, read in Chromium (client-rendered shops)


class Catalogue(_Frozen):
    """One storefront's catalogue as crawled from ``start_url`` (cached per origin)."""

    schema_version: int = CATALOGUE_SCHEMA
    origin: str = Field(min_length=1)
    start_url: str = Field(min_length=1)
    crawled_at: str = Field(min_length=1)
    currency: Currency = "unknown"
    categories: list[Category] = Field(default_factory=list)
    listed: list[ListedItem] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    stats: CrawlStats

    @property
    def prices(self) -> list[float]:
        """Every price seen, product pages first (a listed item opened later is counted once)."""
        seen = {p.url for p in self.products}
        return ([p.price for p in self.products if p.price is not None]
                + [i.price for i in self.listed if i.price is not None and i.url not in seen])

    def median_price(self) -> float | None:
        prices = self.prices
        return statistics.median(prices) if prices else None

    @property
    def is_empty(self) -> bool:
        return not self.products and not self.listed

    def terms(self) -> list[str]:
        """The shop's own words (departments, titles, option values), for matching and tests."""
        out = [c.name for c in self.categories]
        out += [i.title for i in self.listed] + [p.title for p in self.products]
        for p in self.products:
            for values in p.options.values():
                out += values
            out += list(p.attributes.values())
        return out
