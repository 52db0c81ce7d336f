"""HTML of the bundled shop, rendered from plain Python strings.

Why no template engine: the pages are small, rendering must take a few milliseconds with 32
shoppers hitting the server, and one file keeps the markup contract in view. That contract:
semantic landmarks and labels (so a generic reducer can name every control without site rules),
plus realistic clutter (banners, inline styles, icons, scripts, footers) for it to strip. Every
value that reaches the page goes through :func:`e` (HTML-escaped, quotes included).

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
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

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


def e(value: object) -> str:
    """Escape for HTML text and attribute values alike."""
    return html.escape(str(value), quote=True)


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


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------


def _url(path: str, params: Mapping[str, str | int]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


def stars(rating: float) -> str:
    full = min(5, int(rating + 0.5))
    glyphs = "★" * full + "☆" * (5 - full)
    return f'<span class="a-icon-star" aria-label="{rating:.1f} out of 5 stars">{glyphs}</span>'


@functools.lru_cache(maxsize=4096)
def product_image(product_id: str, category: str, color: str, size: int) -> str:
    """A generated, purely visual product picture (inline SVG): shape by category, product colour."""
    h = zlib.crc32(product_id.encode())
    fill = color_hex(color)
    accent = f"hsl({h % 360},55%,60%)"
    shapes = {
        "electronics": f'<rect x="50" y="40" width="100" height="120" rx="30" fill="{fill}"/>'
                       f'<circle cx="100" cy="100" r="28" fill="{accent}"/>',
        "computers": f'<rect x="30" y="50" width="140" height="90" rx="6" fill="{fill}"/>'
                     f'<rect x="20" y="142" width="160" height="10" rx="4" fill="{accent}"/>',
        "clothing": f'<path d="M60 40 L100 55 L140 40 L175 75 L150 95 L145 165 L55 165 L50 95 L25 75 Z" fill="{fill}"/>',
        "shoes": f'<path d="M25 130 Q40 80 80 95 L120 110 Q175 115 178 140 L178 150 L25 150 Z" fill="{fill}"/>'
                 f'<rect x="25" y="146" width="153" height="8" fill="{accent}"/>',
        "books": f'<rect x="55" y="30" width="90" height="140" rx="3" fill="{fill}"/>'
                 f'<rect x="65" y="50" width="70" height="12" fill="{accent}"/>',
    }
    body = shapes.get(category, f'<rect x="45" y="45" width="110" height="110" rx="18" fill="{fill}"/>'
                                f'<circle cx="100" cy="100" r="{20 + h % 20}" fill="{accent}"/>')
    return (f'<svg class="s-image" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" width="{size}" '
            f'height="{size}" aria-hidden="true" focusable="false"><rect width="200" height="200" fill="#f7f7f7"/>'
            f'<g stroke="#9a9a9a" stroke-width="2">{body}</g></svg>')


def _image(p: Product, size: int) -> str:
    return product_image(p.id, p.category, p.colors[0] if p.colors else "", size)


def _price_block(p: Product) -> str:
    out = f'<span class="a-price">{format_price(p.price_cents)}</span>'
    if p.list_price_cents:
        out += (f' <span class="a-text-price" style="color:#565959;text-decoration:line-through">'
                f'List: {format_price(p.list_price_cents)}</span>')
    return out


_ICON_CART = ('<svg aria-hidden="true" focusable="false" width="28" height="22" viewBox="0 0 28 22">'
              '<path d="M1 2h4l3 13h14l3-9H8" fill="none" stroke="#fff" stroke-width="2"/>'
              '<circle cx="10" cy="19" r="2" fill="#fff"/><circle cx="21" cy="19" r="2" fill="#fff"/></svg>')
_ICON_SEARCH = ('<svg aria-hidden="true" focusable="false" width="18" height="18" viewBox="0 0 18 18">'
                '<circle cx="7" cy="7" r="5.5" fill="none" stroke="#111" stroke-width="2"/>'
                '<path d="M11 11l6 6" stroke="#111" stroke-width="2"/></svg>')


def _search_form(ctx: PageContext) -> str:
    lay = ctx.layout
    dept = ""
    if lay.department_select:
        opts = ['<option value="">All Departments</option>'] + [
            f'<option value="{e(c.slug)}"{" selected" if c.slug == ctx.category else ""}>{e(c.name)}</option>'
            for c in ctx.catalog.categories
        ]
        dept = f'<select name="i" aria-label="Search in" class="nav-search-dropdown">{"".join(opts)}</select>'
    return (
        f'<form role="search" method="get" action="/s" class="nav-search">{dept}'
        f'<input type="search" name="{lay.search_param}" aria-label="{e(lay.search_label)}" '
        f'placeholder="{e(lay.search_label)} {SHOP_NAME}" value="{e(ctx.query)}" autocomplete="off">'
        f'<button type="submit" class="nav-search-submit" aria-label="{e(lay.search_button)}">{_ICON_SEARCH}'
        f'<span class="a-offscreen">{e(lay.search_button)}</span></button></form>'
    )


def _header(ctx: PageContext) -> str:
    lay = ctx.layout
    search = _search_form(ctx) if lay.search_in_header else ""
    header = (
        '<header id="navbar" style="background:#131921;color:#fff;display:flex;align-items:center;gap:12px;'
        'padding:8px 14px">'
        f'<a href="/" class="nav-logo" aria-label="{SHOP_NAME} home"><span style="font:bold 22px Arial;color:#fff">'
        f'{SHOP_NAME}</span><span style="color:#febd69">.example</span></a>'
        '<div class="nav-deliver" style="font-size:12px;line-height:1.1"><span style="color:#ccc">Deliver to</span>'
        '<br><b>Springfield 62704</b></div>'
        f'{search}'
        '<div class="nav-tools" style="margin-left:auto;display:flex;gap:14px;font-size:12px">'
        '<span class="nav-lang">EN</span><span>Hello, shopper<br><b>Account &amp; Lists</b></span>'
        f'<a href="/cart" id="nav-cart" aria-label="{lay.cart_word}">{_ICON_CART}'
        f'<span class="nav-cart-count" aria-hidden="true">{ctx.cart_count}</span>'
        f'<span class="nav-cart-text">{lay.cart_word}</span></a></div></header>'
    )
    if not lay.search_in_header:
        header += (f'<section class="search-strip" aria-label="{e(lay.search_region_label)}" '
                   f'style="background:#232f3e;padding:6px 14px">{_search_form(ctx)}</section>')
    cats = "".join(f'<li><a href="{e(_url("/s", {"i": c.slug}))}">{e(c.name)}</a></li>'
                   for c in ctx.catalog.categories)
    header += (f'<nav aria-label="Categories" class="nav-main" style="background:#232f3e;padding:4px 14px">'
               f'<ul class="nav-cats">{cats}</ul></nav>')
    return header


_FOOTER = (
    '<footer id="navFooter" style="background:#232f3e;color:#ddd;margin-top:32px;padding:16px 14px;font-size:13px">'
    '<a href="#top" class="nav-back-to-top" style="display:block;text-align:center;color:#fff">Back to top</a>'
    '<div class="nav-footer-cols" style="display:flex;gap:40px;justify-content:center;padding:12px">'
    '<ul><li><b>Get to Know Us</b></li><li><a href="/help/about">About shopr1</a></li>'
    '<li><a href="/help/careers">Careers</a></li></ul>'
    '<ul><li><b>Let Us Help You</b></li><li><a href="/help/returns">Returns &amp; Replacements</a></li>'
    '<li><a href="/help/shipping">Shipping Rates &amp; Policies</a></li><li><a href="/help/help">Help</a></li></ul>'
    '</div><div class="nav-footer-legal" style="text-align:center;font-size:11px">'
    '<a href="/help/conditions">Conditions of Use</a> · <a href="/help/privacy">Privacy Notice</a> · '
    '© 2026 shopr1.example, a demonstration store. Nothing here is for sale.</div></footer>'
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


def page(ctx: PageContext, title: str, main: str, *, page_type: str) -> str:
    """The whole document around one page's ``<main>``."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)}</title>'
        '<link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/static/shop.css">'
        + (f'<style>{ctx.variant.extra_css}</style>' if ctx.variant.extra_css else '') +
        f'<script>window.sr1Page={{type:"{page_type}",layout:"{ctx.layout.name}"}};'
        'window.sr1Metrics=[];</script>'
        '<script src="/static/shop.js" defer></script></head>'
        f'<body class="layout-{ctx.layout.name}" id="top">'
        '<div class="promo-banner" role="note" style="background:#febd69;color:#111;text-align:center;'
        'font-size:13px;padding:4px">FREE delivery on orders over $35 &middot; '
        '<span style="font-weight:bold">Deals of the Day</span> end at midnight</div>'
        f'{_header(ctx)}<main id="main" style="padding:12px 18px">{main}</main>{_FOOTER}</body></html>'
    )


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _card(p: Product, heading: str = "h3") -> str:
    return (
        f'<div class="a-card" data-asin="{e(p.id)}" style="width:190px;display:inline-block;vertical-align:top;'
        f'margin:6px">{_image(p, 150)}<{heading} class="a-card-title" style="font-size:14px">'
        f'<a href="/dp/{e(p.id)}">{e(p.title)}</a></{heading}>'
        f'<div>{stars(p.rating)} <span class="a-size-small">{p.rating_count:,}</span></div>{_price_block(p)}</div>'
    )


def render_home(ctx: PageContext) -> str:
    cat = ctx.catalog
    deals = [p for p in cat.products if p.list_price_cents][:8]
    best = sorted(cat.products, key=lambda p: (-p.rating_count, p.id))[:8]
    tiles = "".join(
        f'<li class="cat-tile" style="display:inline-block;width:160px;margin:6px">'
        f'<a href="{e(_url("/s", {"i": c.slug}))}">Shop {e(c.name)}</a></li>' for c in cat.categories
    )
    main = (
        '<div class="hero" aria-hidden="true" style="height:120px;background:linear-gradient(90deg,#37475a,#6f8bad);'
        'color:#fff;font:bold 28px Arial;padding:30px">Spring savings across the store</div>'
        f'<section aria-labelledby="h-cats"><h2 id="h-cats">Shop by category</h2><ul>{tiles}</ul></section>'
        f'<section aria-labelledby="h-deals"><h2 id="h-deals">Today\'s deals</h2>'
        f'{"".join(_card(p) for p in deals)}</section>'
        f'<section aria-labelledby="h-best"><h2 id="h-best">Best sellers</h2>'
        f'{"".join(_card(p) for p in best)}</section>'
    )
    return page(ctx, f"{SHOP_NAME}.example: Online shopping", main, page_type="home")


def _refinement_section(key: str, heading: str, view: ResultsPage, ctx: PageContext) -> str:
    params, res = view.params, view.result

    def link(label: str, **change: str | None) -> str:
        new = dict(params)
        new.pop("page", None)
        for k, v in change.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        return f'<li><a href="{e(_url("/s", new))}">{label}</a></li>'

    def current(label: str) -> str:
        return f'<li><span class="a-text-bold" aria-current="true" style="font-weight:bold">{label}</span></li>'

    items: list[str] = []
    if key == "department":
        if "i" in params:
            items.append(link("Any Department", i=None))
        for cat, _n in res.departments:
            items.append(current(e(cat.name)) if params.get("i") == cat.slug else link(e(cat.name), i=cat.slug))
    elif key == "brand":
        if "brand" in params:
            items.append(link("Any Brand", brand=None))
        for brand, _n in res.brands[:12]:
            items.append(current(e(brand)) if params.get("brand") == brand else link(e(brand), brand=brand))
    elif key == "price":
        if "price" in params:
            items.append(link("Any Price", price=None))
        for band, (label, _lo, _hi) in PRICE_BANDS.items():
            items.append(current(e(label)) if params.get("price") == band else link(e(label), price=band))
    elif key == "rating":
        if "rating" in params:
            items.append(link("Any Rating", rating=None))
        for floor in RATING_FLOORS:
            label = f'{stars(float(floor))} {floor} Stars &amp; Up'
            items.append(current(label) if params.get("rating") == str(floor) else link(label, rating=str(floor)))
    if not items:
        return ""
    return f'<section class="s-refinement"><h3>{e(heading)}</h3><ul>{"".join(items)}</ul></section>'


def _result_item(p: Product, sponsored: bool) -> str:
    badge = ('<span class="s-sponsored-label" style="font-size:11px;color:#565959">Sponsored</span>'
             if sponsored else "")
    delivery = "FREE delivery" if p.price_cents >= 3500 else "$5.99 delivery"
    return (
        f'<div class="s-result-item" data-asin="{e(p.id)}" style="display:flex;gap:12px;border-bottom:1px solid #eee;'
        f'padding:10px 0"><a href="/dp/{e(p.id)}" class="s-product-image" tabindex="-1" aria-hidden="true">'
        f'{_image(p, 120)}</a><div class="s-result-body">{badge}'
        f'<h2 class="a-size-medium" style="font-size:16px;margin:2px 0"><a href="/dp/{e(p.id)}">{e(p.title)}</a></h2>'
        f'<div class="a-row">{stars(p.rating)} <span class="a-size-small">{p.rating_count:,}</span></div>'
        f'<div class="a-row">{_price_block(p)}</div>'
        f'<div class="a-row a-size-small" style="color:#565959">{delivery}</div></div></div>'
    )


def render_results(ctx: PageContext, view: ResultsPage) -> str:
    res, params = view.result, view.params
    total = len(res.products)
    q = res.request.query.strip()
    if total:
        first = (view.page - 1) * view.page_size + 1
        last = first + len(view.products) - 1
        summary = f"{first}-{last} of {total:,} results"
    else:
        summary = "No results"
    if q:
        summary += f' for <span class="a-color-state" style="color:#c45500">"{e(q)}"</span>'
    elif res.request.category:
        cat = ctx.catalog.category(res.request.category)
        summary += f" in {e(cat.name if cat else res.request.category)}"

    sort_links = []
    for key, label in SORTS.items():
        if res.request.sort == key:
            sort_links.append(f'<li><span aria-current="true" style="font-weight:bold">{e(label)}</span></li>')
        else:
            new = {k: v for k, v in params.items() if k != "page"}
            new["s"] = key
            sort_links.append(f'<li><a href="{e(_url("/s", new))}">{e(label)}</a></li>')
    sort_nav = (f'<nav aria-label="Sort by" class="s-sort"><span>Sort by:</span>'
                f'<ul style="display:inline-flex;gap:10px;list-style:none">{"".join(sort_links)}</ul></nav>')

    aside = ""
    if ctx.variant.search_refinements:
        sections = "".join(_refinement_section(k, h, view, ctx) for k, h in ctx.layout.refinement_sections)
        aside = (f'<aside aria-label="{e(ctx.layout.refinements_label)}" class="s-refinements" '
                 f'style="width:220px;flex:none">{sections}</aside>')

    if view.products:
        items = "".join(_result_item(p, sponsored=(view.page == 1 and i == 0 and bool(q)))
                        for i, p in enumerate(view.products))
        results = f'<div class="s-main-slot s-result-list">{items}</div>'
    else:
        shown = f' for "{e(q)}"' if q else ""
        results = (f'<div class="s-no-results"><h2>No results{shown}.</h2>'
                   '<p>Try checking your spelling or use more general terms.</p></div>')

    pager = ""
    if view.pages > 1:
        parts = []
        base = {k: v for k, v in params.items() if k != "page"}
        if view.page > 1:
            parts.append(f'<li><a href="{e(_url("/s", {**base, "page": view.page - 1}))}">Previous</a></li>')
        lo, hi = max(1, view.page - 2), min(view.pages, view.page + 2)
        for n in range(lo, hi + 1):
            if n == view.page:
                parts.append(f'<li><span aria-current="page" style="font-weight:bold">{n}</span></li>')
            else:
                parts.append(f'<li><a href="{e(_url("/s", {**base, "page": n}))}">{n}</a></li>')
        if view.page < view.pages:
            parts.append(f'<li><a href="{e(_url("/s", {**base, "page": view.page + 1}))}">Next</a></li>')
        pager = (f'<nav aria-label="Pagination" class="s-pagination"><ul style="display:flex;gap:10px;'
                 f'list-style:none">{"".join(parts)}</ul></nav>')

    main = (
        f'<div class="s-result-info-bar" style="display:flex;justify-content:space-between;align-items:center;'
        f'border-bottom:1px solid #ddd;padding:6px 0">'
        f'<h1 class="s-results-summary" style="font-size:14px;display:inline">{summary}</h1>{sort_nav}</div>'
        f'<div class="s-layout" style="display:flex;gap:18px">{aside}'
        f'<div class="s-results" style="flex:1"><h2 class="a-offscreen">Results</h2>{results}{pager}</div></div>'
    )
    title = f"{SHOP_NAME}.example : {q}" if q else f"{SHOP_NAME}.example : browse"
    return page(ctx, title, main, page_type="search")


def _buying_controls(ctx: PageContext) -> str:
    """Add to cart and Buy Now; in ``hidden-add-to-cart`` behind a collapsed disclosure."""
    lay = ctx.layout
    buttons = (
        f'<button type="submit" name="submit_action" value="add" id="{lay.add_to_cart_id}" class="a-button-primary" '
        f'style="display:block;width:100%;margin:8px 0;background:#ffd814;border-radius:20px">'
        f'{e(lay.add_to_cart_text)}</button>'
        f'<button type="submit" name="submit_action" value="buy" id="buy-now-button" class="a-button-buy" '
        f'style="display:block;width:100%;background:#ffa41c;border-radius:20px">Buy Now</button>'
    )
    if not ctx.variant.buying_options_collapsed:
        return buttons
    return (f'<details class="more-buying-options" style="margin:8px 0"><summary>More buying options</summary>'
            f'{buttons}</details>')


def render_product(ctx: PageContext, p: Product, related: Sequence[Product], *, error: str = "",
                   chosen: Mapping[str, str] | None = None) -> str:
    lay, chosen = ctx.layout, chosen or {}
    cat = ctx.catalog.category(p.category)
    options = ""
    if p.sizes:
        opts = ['<option value="">Select</option>'] + [
            f'<option value="{e(s)}"{" selected" if chosen.get("size") == s else ""}>{e(s)}</option>' for s in p.sizes
        ]
        options += (f'<div class="a-row variation-size"><label for="size">Size:</label> '
                    f'<select id="size" name="size" aria-label="Size">{"".join(opts)}</select></div>')
    if len(p.colors) > 1:
        picked = chosen.get("color", p.colors[0])
        radios = "".join(
            f'<label class="swatch" style="margin-right:8px"><input type="radio" name="color" value="{e(c)}"'
            f'{" checked" if c == picked else ""}><span class="swatch-chip" aria-hidden="true" '
            f'style="display:inline-block;width:12px;height:12px;background:{color_hex(c)}"></span> {e(c)}</label>'
            for c in p.colors
        )
        options += (f'<fieldset class="variation-color"><legend>{e(lay.color_label)}</legend>{radios}</fieldset>')
    qty_opts = "".join(f'<option value="{n}"{" selected" if str(n) == chosen.get("quantity", "1") else ""}>{n}'
                       f'</option>' for n in range(1, 11))
    alert = (f'<div class="a-alert a-alert-error" role="alert" style="border:1px solid #c40000;color:#c40000;'
             f'padding:6px;margin:6px 0">{e(error)}</div>' if error else "")
    in_stock = "In Stock" if zlib.crc32(p.id.encode()) % 9 else "Only 3 left in stock - order soon."
    buybox = (
        f'<div id="buybox" style="border:1px solid #ddd;border-radius:8px;padding:12px;width:260px">'
        f'<div class="a-price-large" style="font-size:22px">{format_price(p.price_cents)}</div>'
        f'<div style="color:#007600">{in_stock}</div>{alert}'
        f'<form method="post" action="/cart/add" id="addToCart">'
        f'<input type="hidden" name="product_id" value="{e(p.id)}">{options}'
        f'<div class="a-row"><label for="quantity">Quantity:</label> '
        f'<select id="quantity" name="quantity" aria-label="Quantity">{qty_opts}</select></div>'
        f'{_buying_controls(ctx)}</form><div class="a-size-small" style="color:#565959;margin-top:6px">Ships from and sold by '
        f'{SHOP_NAME}.example</div></div>'
    )
    attrs = "".join(f'<tr><th scope="row">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in p.attributes)
    bullets = "".join(f"<li>{e(f)}</li>" for f in p.features)
    reviews = "".join(
        f'<div class="review" data-hook="review"><div class="a-profile-name">{e(r.author)}</div>'
        f'<div>{stars(float(r.stars))} <span class="review-title" style="font-weight:bold">{e(r.title)}</span></div>'
        f'<div class="review-date a-size-small" style="color:#565959">Reviewed on {e(r.date)}'
        f'{" · Verified Purchase" if r.verified else ""}</div><p class="review-text">{e(r.text)}</p></div>'
        for r in p.reviews
    )
    rel = "".join(f'<li><a href="/dp/{e(r.id)}">{e(r.title)}</a> <span class="a-price">{format_price(r.price_cents)}'
                  f'</span></li>' for r in related)
    crumbs = (f'<nav aria-label="Breadcrumb" class="a-breadcrumb"><ol style="display:flex;gap:6px;list-style:none">'
              f'<li><a href="{e(_url("/s", {"i": p.category}))}">{e(cat.name if cat else p.category)}</a></li>'
              f'<li aria-current="page">{e(p.product_type)}</li></ol></nav>')
    main = (
        f'{crumbs}<div id="dp-container" style="display:flex;gap:24px">'
        f'<div id="imageBlock">{_image(p, 320)}</div>'
        f'<div id="centerCol" style="flex:1"><h1 id="productTitle" style="font-size:22px">{e(p.title)}</h1>'
        f'<a id="bylineInfo" href="{e(_url("/s", {"brand": p.brand}))}">Visit the {e(p.brand)} Store</a>'
        f'<div id="averageCustomerReviews">{stars(p.rating)} <a href="#reviews" id="acrCustomerReviewLink">'
        f'{p.rating_count:,} ratings</a></div><hr><div id="corePrice">{_price_block(p)}</div>'
        f'<table id="productOverview" class="a-normal">{attrs}</table>'
        f'<div id="featurebullets"><h2>About this item</h2><ul>{bullets}</ul></div>'
        f'<p id="productDescription">{e(p.description)}</p></div>{buybox}</div>'
        f'<section id="reviews" aria-labelledby="reviews-heading"><h2 id="reviews-heading">Customer reviews</h2>'
        f'<div>{stars(p.rating)} {p.rating:.1f} out of 5 · {p.rating_count:,} global ratings</div>{reviews}</section>'
        f'<section aria-labelledby="related-heading"><h2 id="related-heading">Customers also viewed</h2>'
        f'<ul>{rel}</ul></section>'
    )
    return page(ctx, f"{p.title} : {cat.name if cat else ''}", main, page_type="product")


def _options_text(options: Mapping[str, str]) -> str:
    return " · ".join(f"{'Size' if k == 'size' else 'Color'}: {e(v)}" for k, v in options.items())


def render_cart(ctx: PageContext, lines: Sequence[CartLineView]) -> str:
    word = ctx.layout.cart_word
    if not lines:
        main = (f'<h1>Your {word} is empty</h1><p>Your shopping {word.lower()} is waiting. '
                f'<a href="/">Continue shopping</a></p>')
        return page(ctx, f"{SHOP_NAME}.example {word}", main, page_type="cart")
    rows = []
    for line in lines:
        p = ctx.catalog.get(line.product_id)
        img = _image(p, 90) if p else ""
        rows.append(
            f'<div class="sc-list-item" data-asin="{e(line.product_id)}" style="display:flex;gap:12px;'
            f'border-bottom:1px solid #eee;padding:8px 0">{img}<div style="flex:1">'
            f'<h2 class="sc-product-title" style="font-size:16px"><a href="/dp/{e(line.product_id)}">{e(line.title)}'
            f'</a></h2><div class="a-size-small">{_options_text(line.options)}</div>'
            f'<div class="sc-price">{format_price(line.price_cents)}</div>'
            f'<form method="post" action="/cart/update" class="sc-quantity" style="display:inline">'
            f'<input type="hidden" name="line" value="{e(line.line_id)}">'
            f'<label for="qty-{e(line.line_id)}">Qty:</label> '
            f'<input type="number" id="qty-{e(line.line_id)}" name="qty" min="0" max="99" value="{line.qty}" '
            f'style="width:4em"> <button type="submit">Update</button></form> '
            f'<form method="post" action="/cart/remove" class="sc-delete" style="display:inline">'
            f'<input type="hidden" name="line" value="{e(line.line_id)}">'
            f'<button type="submit">Delete</button></form></div></div>'
        )
    count = sum(line.qty for line in lines)
    subtotal = sum(line.qty * line.price_cents for line in lines)
    main = (
        f'<div style="display:flex;gap:24px"><div style="flex:1"><h1>Shopping {word}</h1>{"".join(rows)}</div>'
        f'<div id="sc-buy-box" style="width:260px;border:1px solid #ddd;padding:12px">'
        f'<div id="sc-subtotal">Subtotal ({count} item{"s" if count != 1 else ""}): '
        f'<b>{format_price(subtotal)}</b></div>'
        f'<a href="/checkout" id="proceed-to-checkout" class="a-button-primary" role="button" '
        f'style="display:block;margin-top:8px;background:#ffd814;text-align:center;border-radius:20px;'
        f'padding:6px">Proceed to checkout</a></div></div>'
    )
    return page(ctx, f"{SHOP_NAME}.example Shopping {word}", main, page_type="cart")


def render_checkout(ctx: PageContext, lines: Sequence[CartLineView], *, values: Mapping[str, str] | None = None,
                    errors: Mapping[str, str] | None = None) -> str:
    values, errors = values or {}, errors or {}
    if not lines:
        main = (f'<h1>Checkout</h1><p>Your {ctx.layout.cart_word.lower()} is empty, so there is nothing to check out. '
                f'<a href="/">Continue shopping</a></p>')
        return page(ctx, "Checkout", main, page_type="checkout")
    fields = []
    for name, label, typ, auto in CHECKOUT_FIELDS:
        err = errors.get(name, "")
        described = f' aria-invalid="true" aria-describedby="err-{name}"' if err else ""
        msg = f'<div id="err-{name}" class="a-form-error" style="color:#c40000">{e(err)}</div>' if err else ""
        fields.append(
            f'<div class="a-input-row" style="margin:6px 0"><label for="address-{name}" style="display:block">'
            f'{label}</label><input type="{typ}" id="address-{name}" name="{name}" autocomplete="{auto}" required '
            f'value="{e(values.get(name, ""))}"{described}>{msg}</div>'
        )
    items = "".join(f'<li>{e(line.title)} ({_options_text(line.options)}) × {line.qty} — '
                    f'{format_price(line.qty * line.price_cents)}</li>' for line in lines)
    total = sum(line.qty * line.price_cents for line in lines)
    summary_alert = ('<div class="a-alert a-alert-error" role="alert" style="color:#c40000">'
                     'There was a problem with your address. Please correct the fields below.</div>'
                     if errors else "")
    main = (
        f'<h1>Checkout</h1>{summary_alert}<div style="display:flex;gap:24px">'
        f'<form method="post" action="/checkout" id="checkoutForm" style="flex:1">'
        f'<fieldset><legend>Shipping address</legend>{"".join(fields)}</fieldset>'
        f'<p class="a-size-small">No payment is needed: this is a demonstration store.</p>'
        f'<button type="submit" id="placeOrderButton" data-purchase="true" class="a-button-primary" '
        f'style="background:#ffd814;border-radius:20px;padding:6px 18px">Place order</button></form>'
        f'<section aria-labelledby="summary-heading" style="width:320px"><h2 id="summary-heading">Order summary</h2>'
        f'<ul>{items}</ul><div>Order total: <b>{format_price(total)}</b></div></section></div>'
    )
    return page(ctx, "Checkout", main, page_type="checkout")


def render_order(ctx: PageContext, order: OrderView) -> str:
    a = order.address
    items = "".join(f'<li><a href="/dp/{e(i.product_id)}">{e(i.title)}</a> ({_options_text(i.options)}) '
                    f'× {i.qty}</li>' for i in order.items)
    main = (
        f'<div role="status" class="a-alert a-alert-success" style="border:1px solid #067d62;padding:12px">'
        f'<h1 style="color:#067d62">Order placed, thank you!</h1>'
        f'<p>Confirmation will be sent to {e(a.get("email", ""))}.</p>'
        f'<p>Order number: <b id="order-id">{e(order.order_id)}</b></p></div>'
        f'<section aria-labelledby="h-items"><h2 id="h-items">Items</h2><ul>{items}</ul>'
        f'<div>Order total: <b>{format_price(order.total_cents)}</b></div></section>'
        f'<section aria-labelledby="h-ship"><h2 id="h-ship">Shipping to</h2><address>{e(a.get("name", ""))}<br>'
        f'{e(a.get("street", ""))}<br>{e(a.get("city", ""))} {e(a.get("zip", ""))}</address></section>'
        f'<p><a href="/">Continue shopping</a></p>'
    )
    return page(ctx, "Order placed, thank you", main, page_type="confirmation")


def render_help(ctx: PageContext, topic: str) -> str:
    title, text = HELP_TOPICS[topic]
    return page(ctx, title, f"<h1>{e(title)}</h1><p>{e(text)}</p><p><a href=\"/\">Back to the home page</a></p>",
                page_type="help")


def render_error(ctx: PageContext, status: int, reason: str, message: str) -> str:
    main = (f'<div class="a-alert a-alert-error" role="alert" style="padding:12px">'
            f'<h1>{status} {e(reason)}</h1><p class="error-message">{e(message)}</p>'
            f'<p><a href="/">Go to the home page</a></p></div>')
    return page(ctx, f"{status} {reason}", main, page_type="error")
