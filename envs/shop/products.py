"""What the catalogue is made of: products, their reviews and departments.

Plain frozen dataclasses, apart from the generator (:mod:`shop_r1.envs.shop.catalog`) and the
search index (:mod:`shop_r1.envs.shop.search`) so that both can use them without importing each
other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Review:
    author: str
    stars: int
    title: str
    text: str
    date: str  # ISO date
    verified: bool


@dataclass(frozen=True)
class Category:
    slug: str
    name: str


@dataclass(frozen=True)
class Product:
    """One catalog item. Prices are integer cents: money never goes through binary floats."""

    id: str
    title: str
    brand: str
    category: str  # Category.slug
    product_type: str
    price_cents: int
    list_price_cents: int | None
    rating: float
    rating_count: int
    release_date: str
    colors: tuple[str, ...]
    sizes: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]
    features: tuple[str, ...]
    description: str
    reviews: tuple[Review, ...]

    @property
    def price(self) -> float:
        return self.price_cents / 100

    @property
    def option_names(self) -> tuple[str, ...]:
        """Options a shopper must choose before adding to cart ("size", "color")."""
        names: list[str] = []
        if self.sizes:
            names.append("size")
        if len(self.colors) > 1:
            names.append("color")
        return tuple(names)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"] = self.price
        data["list_price"] = self.list_price_cents / 100 if self.list_price_cents else None
        data["attributes"] = dict(self.attributes)
        return data


def format_price(cents: int) -> str:
    """``$1,234.99`` — the way US shops print money."""
    return f"${cents // 100:,}.{cents % 100:02d}"
