"""The word lists the catalogue is generated from, read from the JSON files in ``envs/shop/data``.

Kept as data, not code, so that adding a product type or a brand is an edit to a JSON file that
anyone can review. The files are validated strictly once, on first use: a typo in a bundled file
fails with the file and field named instead of producing an odd catalogue.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

#: Which purchase options a product type has: none, colours only, or a size chart plus colours.
OptionKind = Literal["", "colors", "apparel", "shoes", "pets"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


class ProductType(_Frozen):
    """One kind of product ("Headphones") and the pools its listings are drawn from."""

    noun: str
    descriptors: tuple[str, ...]
    price_range: tuple[float, float]  # dollars, (lowest, highest)
    attributes: dict[str, tuple[str, ...]]  # insertion order is the order drawn: keep it
    features: tuple[str, ...]
    review_lines: tuple[str, ...]
    options: OptionKind


class CategorySpec(_Frozen):
    """A department: its fallback brands, colour palette and product types."""

    slug: str
    name: str
    brands: tuple[str, ...]
    palette: tuple[str, ...]
    types: tuple[ProductType, ...]


class ReviewWords(_Frozen):
    first_names: tuple[str, ...]
    titles: dict[int, tuple[str, ...]]  # by star rating 1-5
    openers: dict[int, tuple[str, ...]]


class BookWords(_Frozen):
    title_words: tuple[str, ...]
    author_last_names: tuple[str, ...]


class WordLists(_Frozen):
    categories: tuple[CategorySpec, ...]
    type_brands: dict[str, tuple[str, ...]]  # brands that make a type (else the category's list)
    reviews: ReviewWords
    books: BookWords
    colors: dict[str, str]  # colour name -> swatch hex


_T = TypeVar("_T")


def _read(name: str, schema: TypeAdapter[_T], root: Traversable | None = None) -> _T:
    """One data file, validated; ``root`` (default: the package's ``data`` folder) is for tests."""
    path = (root or resources.files("shop_r1.envs.shop").joinpath("data")).joinpath(name)
    try:
        return schema.validate_json(path.read_text(encoding="utf-8"), strict=True)
    except ValidationError as exc:
        raise ValueError(f"{path}: not a valid word list: {exc}") from exc


@cache
def word_lists() -> WordLists:
    """All bundled word lists (read and validated once per process)."""
    return WordLists(
        categories=_read("categories.json", TypeAdapter(tuple[CategorySpec, ...])),
        type_brands=_read("type_brands.json", TypeAdapter(dict[str, tuple[str, ...]])),
        reviews=_read("reviews.json", TypeAdapter(ReviewWords)),
        books=_read("books.json", TypeAdapter(BookWords)),
        colors=_read("colors.json", TypeAdapter(dict[str, str])),
    )
