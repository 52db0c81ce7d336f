"""The bundled shop's catalog: products generated from word lists, and the results-page query.

Why generated and not shipped: a catalog is large, and a fixed file would be one more thing to
download or to keep in sync. Everything here comes from a seeded ``random.Random`` walked in a
fixed order over the word lists of ``envs/shop/data`` (:mod:`shop_r1.envs.shop.words`: lists and
insertion-ordered objects, never sets), so the same seed gives the same catalog byte for byte
(``Catalog.to_json_bytes``) on every machine.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shop_r1.envs.shop.products import Category, Product, Review, format_price
from shop_r1.envs.shop.search import SearchIndex
from shop_r1.envs.shop.words import ProductType, word_lists

__all__ = ["APPAREL_SIZES", "DEFAULT_SIZE", "PET_SIZES", "PRICE_BANDS", "RATING_FLOORS", "SHOE_SIZES", "SORTS",
           "Catalog", "Category", "Product", "Review", "SearchRequest", "SearchResult", "build_catalog",
           "color_hex", "format_price", "iter_brand_counts"]

DEFAULT_SIZE = 600
_ASIN_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_EPOCH = _dt.date(2019, 1, 1)

APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = ("6", "7", "8", "9", "10", "11", "12", "13")
PET_SIZES = ("Small", "Medium", "Large", "X-Large")


def color_hex(color: str) -> str:
    return word_lists().colors.get(color, "#888888")


# The refinements and sort orders a results page offers. Keys are what travels in the URL.
SORTS: dict[str, str] = {
    "relevance": "Featured",
    "price-asc": "Price: Low to High",
    "price-desc": "Price: High to Low",
    "rating": "Avg. Customer Review",
    "newest": "Newest Arrivals",
}
# key -> (label, lowest cents inclusive, highest cents exclusive or None)
PRICE_BANDS: dict[str, tuple[str, int, int | None]] = {
    "0-25": ("Under $25", 0, 2500),
    "25-50": ("$25 to $50", 2500, 5000),
    "50-100": ("$50 to $100", 5000, 10000),
    "100-200": ("$100 to $200", 10000, 20000),
    "200-": ("$200 & Above", 20000, None),
}
RATING_FLOORS: tuple[int, ...] = (4, 3, 2, 1)


@dataclass(frozen=True)
class SearchRequest:
    """One results-page query; values are already validated (see ``Catalog.search``)."""

    query: str = ""
    category: str | None = None
    brand: str | None = None
    price: str | None = None
    rating: int | None = None
    sort: str = "relevance"


@dataclass(frozen=True)
class SearchResult:
    request: SearchRequest
    products: list[Product]
    departments: list[tuple[Category, int]]  # facet: departments of the matches (other filters applied)
    brands: list[tuple[str, int]]  # facet: brands of the matches (other filters applied)


def _in_band(p: Product, band: str) -> bool:
    _, lo, hi = PRICE_BANDS[band]
    return p.price_cents >= lo and (hi is None or p.price_cents < hi)


_SORT_KEYS = {
    "price-asc": lambda p: (p.price_cents, p.id),
    "price-desc": lambda p: (-p.price_cents, p.id),
    "rating": lambda p: (-p.rating, -p.rating_count, p.id),
    "newest": lambda p: (_dt.date.fromisoformat(p.release_date).toordinal() * -1, p.id),
}


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    seed: int
    categories: tuple[Category, ...]
    products: tuple[Product, ...]
    by_id: dict[str, Product] = field(repr=False, compare=False)
    index: SearchIndex = field(repr=False, compare=False)
    brands: tuple[str, ...] = field(default=(), compare=False)  # sorted case-insensitively

    def get(self, product_id: str) -> Product | None:
        return self.by_id.get(product_id)

    def category(self, slug: str) -> Category | None:
        for cat in self.categories:
            if cat.slug == slug:
                return cat
        return None

    def in_category(self, slug: str) -> list[Product]:
        return [p for p in self.products if p.category == slug]

    def search(self, req: SearchRequest) -> SearchResult:
        """Match, refine and sort; raises ValueError naming the first unknown value."""
        if req.sort not in SORTS:
            raise ValueError(f"unknown sort {req.sort!r}; expected one of {', '.join(SORTS)}")
        if req.price is not None and req.price not in PRICE_BANDS:
            raise ValueError(f"unknown price band {req.price!r}; expected one of {', '.join(PRICE_BANDS)}")
        if req.rating is not None and req.rating not in RATING_FLOORS:
            raise ValueError(f"unknown rating floor {req.rating!r}; expected one of {RATING_FLOORS}")
        if req.category is not None and self.category(req.category) is None:
            raise ValueError(f"unknown department {req.category!r}")
        if req.brand is not None and req.brand not in self.brands:
            raise ValueError(f"unknown brand {req.brand!r}")
        if req.query.strip():
            base = [p for p, _ in self.index.search(req.query)]
        else:
            base = sorted(self.products, key=lambda p: (-p.rating_count, p.id))

        def keep(p: Product, skip: str = "") -> bool:
            return ((skip == "category" or req.category is None or p.category == req.category)
                    and (skip == "brand" or req.brand is None or p.brand == req.brand)
                    and (req.price is None or _in_band(p, req.price))
                    and (req.rating is None or p.rating >= req.rating))

        matches = [p for p in base if keep(p)]
        if req.sort != "relevance":
            matches.sort(key=_SORT_KEYS[req.sort])
        dept_counts: dict[str, int] = {}
        for p in base:
            if keep(p, skip="category"):
                dept_counts[p.category] = dept_counts.get(p.category, 0) + 1
        departments = [(c, dept_counts[c.slug]) for c in self.categories if c.slug in dept_counts]
        brands = iter_brand_counts(p for p in base if keep(p, skip="brand"))
        return SearchResult(request=req, products=matches, departments=departments, brands=brands)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "categories": [asdict(c) for c in self.categories],
                "products": [p.to_json() for p in self.products]}

    def to_json_bytes(self) -> bytes:
        """Canonical serialisation: what "same seed, same catalog byte for byte" is checked on."""
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = "B0" + "".join(rng.choice(_ASIN_ALPHABET) for _ in range(8))
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def _model_code(rng: random.Random, brand: str) -> str:
    letters = "".join(ch for ch in brand.upper() if ch.isalpha())[:2] or "X"
    pattern = rng.randrange(5)
    if pattern == 0:
        return f"{letters}-{rng.randint(100, 999)}"
    if pattern == 1:
        return f"{letters}{rng.randint(10, 99)} Pro"
    if pattern == 2:
        return f"{rng.choice('ABCDEFGHKMNRSTWX')}{rng.choice('ABCDEFGHKMNRSTWX')}-{rng.randint(1, 9)}000X{rng.choice('MNRS')}{rng.randint(2, 6)}"
    if pattern == 3:
        return f"Series {rng.randint(3, 9)}"
    return f"{letters}{rng.randint(1000, 9999)}"


def _price_cents(rng: random.Random, lo: float, hi: float) -> int:
    # Log-uniform, then snapped to a shop-like ending (.99, .95, .49, .00).
    value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    ending = rng.choice((99, 99, 99, 95, 49, 0))
    dollars = max(1, int(value))
    return dollars * 100 + ending if ending else dollars * 100


def _title(rng: random.Random, cat_slug: str, brand: str, noun: str, descriptor: str,
           colors: tuple[str, ...]) -> tuple[str, str]:
    """(title, brand shown on the page); books are by an author, published by ``brand``."""
    if cat_slug == "books":
        books, people = word_lists().books, word_lists().reviews
        words = rng.sample(books.title_words, 2)
        author = f"{rng.choice(people.first_names)} {rng.choice(books.author_last_names)}"
        if noun == "Programming Guide":
            return f"{descriptor} Guide, by {author}", brand
        return f"The {words[0]} {words[1]}: {descriptor} {noun}, by {author}", brand
    if cat_slug in ("clothing", "shoes"):
        return f"{brand} {descriptor} {noun}", brand
    model = _model_code(rng, brand)
    base = f"{brand} {model} {descriptor} {noun}"
    if len(colors) == 1 and cat_slug not in ("books",):
        base += f", {colors[0]}"
    return base, brand


def _reviews(rng: random.Random, rating: float, count: int, lines: Sequence[str]) -> tuple[Review, ...]:
    words = word_lists().reviews
    out: list[Review] = []
    for _ in range(min(count, rng.randint(3, 8))):
        stars = max(1, min(5, round(rng.gauss(rating, 0.9))))
        author = f"{rng.choice(words.first_names)} {rng.choice('ABCDEFGHJKLMNOPRSTW')}."
        body = " ".join((rng.choice(words.openers[stars]), rng.choice(lines)))
        day = _EPOCH + _dt.timedelta(days=rng.randint(200, 2400))
        out.append(Review(author=author, stars=stars, title=rng.choice(words.titles[stars]), text=body,
                          date=day.isoformat(), verified=rng.random() < 0.8))
    out.sort(key=lambda r: r.date, reverse=True)
    return tuple(out)


def build_catalog(seed: int = 0, size: int = DEFAULT_SIZE) -> Catalog:
    """Generate the catalog for ``seed``: ``size`` products spread evenly over the categories."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"catalog seed must be a non-negative integer, got {seed!r}")
    words = word_lists()
    specs = words.categories
    if size < len(specs):
        raise ValueError(f"catalog size must be at least {len(specs)} (one per category), got {size}")
    rng = random.Random(f"shop-r1-catalog:{seed}")
    taken: set[str] = set()
    products: list[Product] = []
    for i in range(size):
        spec = specs[i % len(specs)]
        slug, palette = spec.slug, spec.palette
        kind: ProductType = rng.choice(spec.types)
        noun, features, option_kind = kind.noun, kind.features, kind.options
        brand = rng.choice(words.type_brands.get(noun, spec.brands))
        descriptor = rng.choice(kind.descriptors)
        if option_kind in ("colors", "apparel", "shoes", "pets"):
            colors = tuple(rng.sample(palette, rng.randint(1, min(4, len(palette)))))
        else:
            colors = (rng.choice(palette),)
        sizes = {"apparel": APPAREL_SIZES, "shoes": SHOE_SIZES, "pets": PET_SIZES}.get(option_kind, ())
        if option_kind == "pets" and noun == "Dog Chew Toy":
            sizes = PET_SIZES[:3]
        title, shown_brand = _title(rng, slug, brand, noun, descriptor, colors)
        attributes = tuple((k, rng.choice(v)) for k, v in kind.attributes.items())
        attributes += (("Brand", shown_brand),)
        if len(colors) == 1:
            attributes += (("Color", colors[0]),)
        price = _price_cents(rng, *kind.price_range)
        list_price = price + rng.randint(2, 12) * 500 if rng.random() < 0.3 else None
        rating = round(min(5.0, max(1.0, rng.gauss(4.2, 0.45))), 1)
        rating_count = int(rng.lognormvariate(5.0, 1.6)) + 1
        release = (_EPOCH + _dt.timedelta(days=rng.randint(0, 2300))).isoformat()
        description = (f"The {title.split(',')[0]} from {shown_brand}. "
                       f"{features[0]}. {features[1]}. {features[2]}.")
        products.append(Product(
            id=_asin(rng, taken), title=title, brand=shown_brand, category=slug, product_type=noun,
            price_cents=price, list_price_cents=list_price, rating=rating, rating_count=rating_count,
            release_date=release, colors=colors, sizes=sizes, attributes=attributes,
            features=tuple(rng.sample(features, len(features))), description=description,
            reviews=_reviews(rng, rating, rating_count, kind.review_lines),
        ))
    categories = tuple(Category(s.slug, s.name) for s in specs)
    names = {c.slug: c.name for c in categories}
    return Catalog(seed=seed, categories=categories, products=tuple(products),
                   by_id={p.id: p for p in products}, index=SearchIndex(products, names),
                   brands=tuple(sorted({p.brand for p in products}, key=lambda b: (b.lower(), b))))


def iter_brand_counts(products: Iterable[Product]) -> list[tuple[str, int]]:
    """Brands of ``products``, most frequent first (then alphabetical): the brand refinement."""
    counts: dict[str, int] = {}
    for p in products:
        counts[p.brand] = counts.get(p.brand, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))
