"""HTML of the bundled shop: Jinja2 templates in ``templates/`` (one base layout, one template per
page kind, shared pieces in ``_parts.html``), rendered with autoescape on.

The markup contract: semantic landmarks and labels (so a generic reducer can name every control
without site rules), plus realistic clutter (banners, inline styles, icons, scripts, footers) for
it to strip. Every value that reaches a page is HTML-escaped (quotes included) by the template
environment; this module works out what a page shows (links, refinements, the pager) and passes
plain values. Templates are compiled once per process; a results page renders in a few
milliseconds (32 shoppers hit the server at once).

Two layouts share one catalog: ``v1`` and ``v2``, a deliberately changed build used to check that
replaying old sessions notices a changed site (search box moved and relabelled, "Add to Basket",
refinements renamed and reordered).

Variants (``VARIANTS``) are builds with a *known* effect, so that an A/B experiment's method can be
checked against the truth: ``recolor`` changes only colours and fonts (no effect may be found),
``hidden-add-to-cart`` puts the buying controls behind a collapsed disclosure (fewer adds),
``no-search-refinements`` drops the filter column, ``slow-search`` delays every results page.
"""

from __future__ import annotations

import functools
import html
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol
from urllib.parse import urlencode

import jinja2
import jinja2.ext
from markupsafe import Markup

from shop_r1.envs.shop.catalog import (
    PRICE_BANDS,
    RATING_FLOORS,
    SORTS,
    Catalog,
    Product,
    SearchResult,
    color_hex,
    format_price,
)

SHOP_NAME = "shopr1"


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    name: str
    search_label: str
    search_param: str  # the search input's name; the server accepts both "k" and "q"
    search_in_header: bool  # v1: inside <header>; v2: in its own region below it
    search_region_label: str
    search_button: str
    department_select: bool
    cart_word: str
    add_to_cart_text: str
    add_to_cart_id: str
    color_label: str
    refinements_label: str
    refinement_sections: tuple[tuple[str, str], ...]  # (facet key, heading), in page order


LAYOUTS: dict[str, Layout] = {
    "v1": Layout(
        name="v1", search_label="Search", search_param="k", search_in_header=True, search_region_label="",
        search_button="Go", department_select=True, cart_word="Cart", add_to_cart_text="Add to Cart",
        add_to_cart_id="add-to-cart-button", color_label="Color", refinements_label="Refinements",
        refinement_sections=(("department", "Department"), ("rating", "Customer Reviews"),
                             ("brand", "Brand"), ("price", "Price")),
    ),
    "v2": Layout(
        name="v2", search_label="Search products", search_param="q", search_in_header=False,
        search_region_label="Product search", search_button="Search", department_select=False,
        cart_word="Basket", add_to_cart_text="Add to Basket", add_to_cart_id="add-to-basket-button",
        color_label="Colour", refinements_label="Filter results",
        refinement_sections=(("price", "Price range"), ("brand", "Brands"),
                             ("rating", "Avg. Customer Review"), ("department", "Category")),
    ),
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown shop layout {name!r}; expected one of {', '.join(LAYOUTS)}") from None


@dataclass(frozen=True)
class Variant:
    """A build of the shop with a known effect (see the module docstring)."""

    name: str
    extra_css: str = ""  # cosmetic only: the reducer drops styles, so shoppers read the same page
    buying_options_collapsed: bool = False
    search_refinements: bool = True
    search_delay_s: float = 0.0


# Cosmetic only: button colours and fonts. Nothing a shopper reads or can click changes.
_RECOLOR_CSS = (
    "body{font-family:Georgia,'Times New Roman',serif}"
    ".a-button-primary{background:#2e7d32!important;color:#fff!important}"
    ".a-button-buy{background:#6a1b9a!important;color:#fff!important}"
    "#navbar{background:#0b3d5c!important}.promo-banner{background:#b3e5fc!important}"
)

VARIANTS: dict[str, Variant] = {
    "control": Variant("control"),
    "recolor": Variant("recolor", extra_css=_RECOLOR_CSS),
    "hidden-add-to-cart": Variant("hidden-add-to-cart", buying_options_collapsed=True),
    "no-search-refinements": Variant("no-search-refinements", search_refinements=False),
    "slow-search": Variant("slow-search", search_delay_s=1.5),
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown shop variant {name!r}; expected one of {', '.join(VARIANTS)}") from None


# --------------------------------------------------------------------------------------------
# What the server hands to the renderer
# --------------------------------------------------------------------------------------------


# Read-only members: the server's records are frozen dataclasses, which a protocol of plain
# (settable) attributes would not accept.
class CartLineView(Protocol):
    @property
    def line_id(self) -> str: ...
    @property
    def product_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def qty(self) -> int: ...
    @property
    def options(self) -> Mapping[str, str]: ...
    @property
    def price_cents(self) -> int: ...


class OrderView(Protocol):
    @property
    def order_id(self) -> str: ...
    @property
    def items(self) -> Sequence[CartLineView]: ...
    @property
    def total_cents(self) -> int: ...
    @property
    def address(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class PageContext:
    """What every page's chrome needs: layout, catalog, the shopper's cart size, the query."""

    layout: Layout
    catalog: Catalog
    cart_count: int = 0
    query: str = ""
    category: str | None = None
    variant: Variant = VARIANTS["control"]


@dataclass(frozen=True)
class ResultsPage:
    result: SearchResult
    products: Sequence[Product]  # this page's slice
    page: int
    pages: int
    page_size: int
    params: dict[str, str] = field(default_factory=dict)  # current query-string, canonical keys


CHECKOUT_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    # (field name, label, input type, autocomplete)
    ("name", "Full name", "text", "name"),
    ("street", "Street address", "text", "street-address"),
    ("city", "City", "text", "address-level2"),
    ("zip", "ZIP code", "text", "postal-code"),
    ("email", "Email", "email", "email"),
)


HELP_TOPICS: dict[str, tuple[str, str]] = {
    "about": ("About shopr1", "shopr1 is a demonstration storefront bundled with shop-r1 for simulated shoppers."),
    "careers": ("Careers", "We are not hiring: this shop is a simulation."),
    "returns": ("Returns & Replacements", "Items can be returned within 30 days of delivery."),
    "shipping": ("Shipping Rates & Policies", "Free delivery on orders over $35. Standard delivery takes 3-5 days."),
    "help": ("Help", "Search for a product, choose its options, add it to your cart and check out."),
    "conditions": ("Conditions of Use", "No real orders are placed and no payment is taken."),
    "privacy": ("Privacy Notice", "This shop stores carts and orders in memory only, per browser session."),
}


# --------------------------------------------------------------------------------------------
# The template environment
# --------------------------------------------------------------------------------------------

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_LINE_BREAK = re.compile(r"[ \t]*\n[ \t]*")


class _JoinLines(jinja2.ext.Extension):
    """Line breaks in the shop's templates are for reading: each one, with the spaces around it, is
    dropped from the template source before it is compiled. The pages come out as the one-line
    markup the shop has always served (no text node gains a stray space), and a space that belongs
    in the page is written inside a line. Values are not touched: this runs on the template text."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _LINE_BREAK.sub("", source)


def _escape(value: object) -> Markup:
    """Every ``{{ value }}`` of a template, HTML-escaped with the stdlib's entities (quotes included:
    ``&quot;`` and ``&#x27;``, as the shop always wrote them; markupsafe would write ``&#34;`` and
    ``&#39;``). HTML already marked safe passes as it is. Autoescape stays on behind this, so markup
    a template joins from pieces is escaped all the same."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return Markup(html.escape(str(value), quote=True))


class _ImageLook(NamedTuple):
    fill: str
    accent: str
    radius: int


@functools.lru_cache(maxsize=4096)
def _image_look(product_id: str, color: str) -> _ImageLook:
    h = zlib.crc32(product_id.encode())
    return _ImageLook(fill=color_hex(color), accent=f"hsl({h % 360},55%,60%)", radius=20 + h % 20)


def image_look(p: Product) -> _ImageLook:
    """The colours of a product's generated picture: its first colour, and an accent from its id."""
    return _image_look(p.id, p.colors[0] if p.colors else "")


def star_glyphs(rating: float) -> str:
    full = min(5, int(rating + 0.5))
    return "★" * full + "☆" * (5 - full)


def _url(path: str, params: Mapping[str, str | int]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, finalize=_escape,
        undefined=jinja2.StrictUndefined, extensions=[_JoinLines], auto_reload=False,
    )
    env.globals.update(url=_url, image_look=image_look, star_glyphs=star_glyphs, shop_name=SHOP_NAME)
    env.filters.update(price=format_price, color_hex=color_hex, thousands=lambda n: f"{n:,}")
    return env


_ENV = _environment()


def page(ctx: PageContext, template: str, title: str, *, page_type: str, **values: object) -> str:
    """One page: ``template`` (it extends ``base.html``, the document around its ``<main>``) with the
    chrome's values from ``ctx`` and the page's own ``values``."""
    return _ENV.get_template(template).render(
        title=title, page_type=page_type, layout=ctx.layout, catalog=ctx.catalog, cart_count=ctx.cart_count,
        query=ctx.query, category=ctx.category, variant=ctx.variant,
        # The variant's stylesheet is ours (a constant in VARIANTS), and CSS, not HTML: escaping would break it.
        extra_css=Markup(ctx.variant.extra_css), **values,
    )


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def render_home(ctx: PageContext) -> str:
    cat = ctx.catalog
    deals = [p for p in cat.products if p.list_price_cents][:8]
    best = sorted(cat.products, key=lambda p: (-p.rating_count, p.id))[:8]
    return page(ctx, "home.html", f"{SHOP_NAME}.example: Online shopping", page_type="home", deals=deals, best=best)


@dataclass(frozen=True)
class _Refinement:
    label: str
    href: str | None  # None: the refinement in force (shown, not linked)
    stars: int | None = None  # a rating floor: drawn as stars and "N Stars & Up"


@dataclass(frozen=True)
class _RefinementSection:
    heading: str
    items: list[_Refinement]


def _refinement_section(key: str, heading: str, view: ResultsPage) -> _RefinementSection | None:
    params, res = view.params, view.result

    def link(label: str, stars: int | None = None, **change: str | None) -> _Refinement:
        new = dict(params)
        new.pop("page", None)
        for k, v in change.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        return _Refinement(label, _url("/s", new), stars)

    items: list[_Refinement] = []
    if key == "department":
        if "i" in params:
            items.append(link("Any Department", i=None))
        for cat, _n in res.departments:
            items.append(_Refinement(cat.name, None) if params.get("i") == cat.slug else link(cat.name, i=cat.slug))
    elif key == "brand":
        if "brand" in params:
            items.append(link("Any Brand", brand=None))
        for brand, _n in res.brands[:12]:
            items.append(_Refinement(brand, None) if params.get("brand") == brand else link(brand, brand=brand))
    elif key == "price":
        if "price" in params:
            items.append(link("Any Price", price=None))
        for band, (label, _lo, _hi) in PRICE_BANDS.items():
            items.append(_Refinement(label, None) if params.get("price") == band else link(label, price=band))
    elif key == "rating":
        if "rating" in params:
            items.append(link("Any Rating", rating=None))
        for floor in RATING_FLOORS:
            items.append(_Refinement("", None, floor) if params.get("rating") == str(floor)
                         else link("", floor, rating=str(floor)))
    return _RefinementSection(heading, items) if items else None


def render_results(ctx: PageContext, view: ResultsPage) -> str:
    res, params = view.result, view.params
    total = len(res.products)
    q = res.request.query.strip()
    first = (view.page - 1) * view.page_size + 1
    in_category = ""
    if not q and res.request.category:
        cat = ctx.catalog.category(res.request.category)
        in_category = cat.name if cat else res.request.category

    base = {k: v for k, v in params.items() if k != "page"}
    sort_links = [(label, None if res.request.sort == key else _url("/s", {**base, "s": key}))
                  for key, label in SORTS.items()]
    refinements = None
    if ctx.variant.search_refinements:
        refinements = [s for k, h in ctx.layout.refinement_sections if (s := _refinement_section(k, h, view))]
    pager: list[tuple[int | str, str | None]] = []
    if view.pages > 1:
        if view.page > 1:
            pager.append(("Previous", _url("/s", {**base, "page": view.page - 1})))
        for n in range(max(1, view.page - 2), min(view.pages, view.page + 2) + 1):
            pager.append((n, None if n == view.page else _url("/s", {**base, "page": n})))
        if view.page < view.pages:
            pager.append(("Next", _url("/s", {**base, "page": view.page + 1})))
    title = f"{SHOP_NAME}.example : {q}" if q else f"{SHOP_NAME}.example : browse"
    return page(ctx, "results.html", title, page_type="search", view=view, q=q, total=total, first=first,
                last=first + len(view.products) - 1, in_category=in_category, sort_links=sort_links,
                refinements=refinements, pager=pager)


def render_product(ctx: PageContext, p: Product, related: Sequence[Product], *, error: str = "",
                   chosen: Mapping[str, str] | None = None) -> str:
    chosen = chosen or {}
    cat = ctx.catalog.category(p.category)
    in_stock = "In Stock" if zlib.crc32(p.id.encode()) % 9 else "Only 3 left in stock - order soon."
    return page(ctx, "product.html", f"{p.title} : {cat.name if cat else ''}", page_type="product", p=p,
                related=related, error=error, chosen=chosen, picked_color=chosen.get("color", p.colors[0] if p.colors else ""),
                quantity=chosen.get("quantity", "1"), in_stock=in_stock,
                category_name=cat.name if cat else p.category)


def render_cart(ctx: PageContext, lines: Sequence[CartLineView]) -> str:
    word = ctx.layout.cart_word
    title = f"{SHOP_NAME}.example Shopping {word}" if lines else f"{SHOP_NAME}.example {word}"
    return page(ctx, "cart.html", title, page_type="cart",
                rows=[(line, ctx.catalog.get(line.product_id)) for line in lines],
                count=sum(line.qty for line in lines), subtotal=sum(line.qty * line.price_cents for line in lines))


def render_checkout(ctx: PageContext, lines: Sequence[CartLineView], *, values: Mapping[str, str] | None = None,
                    errors: Mapping[str, str] | None = None) -> str:
    return page(ctx, "checkout.html", "Checkout", page_type="checkout", lines=lines, fields=CHECKOUT_FIELDS,
                values=values or {}, errors=errors or {},
                total=sum(line.qty * line.price_cents for line in lines))


def render_order(ctx: PageContext, order: OrderView) -> str:
    return page(ctx, "order.html", "Order placed, thank you", page_type="confirmation", order=order,
                address=order.address)


def render_help(ctx: PageContext, topic: str) -> str:
    title, text = HELP_TOPICS[topic]
    return page(ctx, "help.html", title, page_type="help", heading=title, text=text)


def render_error(ctx: PageContext, status: int, reason: str, message: str) -> str:
    return page(ctx, "error.html", f"{status} {reason}", page_type="error", status=status, reason=reason,
                message=message)
