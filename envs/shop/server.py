"""The bundled shop's HTTP server (aiohttp) and its server-side state.

Shoppers are told apart by the ``X-Shop-R1-Session`` header (the simulator sets one per browser
context, so 32 shoppers in one browser stay separate), else by the ``sr1_sid`` cookie the shop
hands out, as a real shop would. Carts, orders and a log of page views live in memory and are
exposed read-only at ``GET /api/state`` so tests and the simulator can check what a shopper
really did, not what a page claimed.

Forms are POST-redirect-GET (303), bad input gets a 4xx page that says what was wrong, and an
unexpected error is logged and answered with a 500 page rather than a dropped connection.

Routes: ``/`` home · ``/s?k=&i=&brand=&price=&rating=&s=&page=`` results (``q`` is accepted for
``k``) · ``/dp/{id}`` product · ``/cart`` and POST ``/cart/add|update|remove`` · ``/checkout``
(GET form, POST places the order) · ``/order/{id}`` confirmation · ``/help/{topic}`` ·
``/api/state[?sid=]`` · ``/api/products/{id}`` · ``/static/*``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from shop_r1.envs.shop import pages
from shop_r1.envs.shop.catalog import Catalog, Product, SearchRequest, build_catalog
from shop_r1.envs.shop.pages import (
    CHECKOUT_FIELDS,
    HELP_TOPICS,
    Layout,
    PageContext,
    ResultsPage,
    Variant,
    get_layout,
    get_variant,
)

from shop_r1.envs.browser import SESSION_HEADER  # noqa: E402  (re-exported for the shop's tests)

log = logging.getLogger(__name__)

SESSION_COOKIE = "sr1_sid"
PAGE_SIZE = 16
MAX_LINE_QTY = 99
MAX_QUERY_CHARS = 200
MAX_FIELD_CHARS = 200
MAX_EVENTS = 50_000
STATIC_DIR = Path(__file__).resolve().parent / "static"

_SID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_ZIP = re.compile(r"^\d{5}(?:-\d{4})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNTRACKED_PREFIXES = ("/static/", "/api/", "/favicon.ico")


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class CartLine:
    product_id: str
    title: str
    qty: int
    options: dict[str, str]
    price_cents: int

    @property
    def line_id(self) -> str:
        """Stable per (product, options): safe in URLs and HTML ids, the same in every run."""
        digest = hashlib.sha1(json.dumps([self.product_id, sorted(self.options.items())]).encode()).hexdigest()
        return f"{self.product_id}-{digest[:6]}"

    def to_json(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "title": self.title, "qty": self.qty,
                "options": dict(self.options), "price": self.price_cents / 100}


@dataclass(frozen=True)
class Order:
    order_id: str
    sid: str
    items: tuple[CartLine, ...]
    total_cents: int
    address: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "sid": self.sid, "items": [i.to_json() for i in self.items],
                "total": self.total_cents / 100, "address": dict(self.address)}


class CartError(ValueError):
    """A cart operation the shopper asked for that cannot be done; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ShopState:
    """Carts, orders and page views of every shopper.

    Mutated only on the server's event loop, but read from other threads (``ShopServer.state``
    in tests and the simulator), hence the lock; snapshots are deep copies.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._carts: dict[str, list[CartLine]] = {}
        self._orders: list[Order] = []
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)

    def cart(self, sid: str) -> list[CartLine]:
        with self._lock:
            return [CartLine(**vars(line)) for line in self._carts.get(sid, [])]

    def cart_count(self, sid: str) -> int:
        with self._lock:
            return sum(line.qty for line in self._carts.get(sid, []))

    def add(self, sid: str, product: Product, options: dict[str, str], qty: int) -> None:
        with self._lock:
            lines = self._carts.setdefault(sid, [])
            new = CartLine(product.id, product.title, qty, dict(options), product.price_cents)
            for line in lines:
                if line.line_id == new.line_id:
                    if line.qty + qty > MAX_LINE_QTY:
                        raise CartError(f"cannot add {qty} more of {product.id}: you have {line.qty} and at most "
                                        f"{MAX_LINE_QTY} fit on one line")
                    line.qty += qty
                    return
            lines.append(new)

    def _find(self, sid: str, line_id: str) -> tuple[list[CartLine], int]:
        lines = self._carts.get(sid, [])
        for i, line in enumerate(lines):
            if line.line_id == line_id:
                return lines, i
        raise CartError(f"there is no line {line_id!r} in your cart", status=404)

    def set_qty(self, sid: str, line_id: str, qty: int) -> None:
        with self._lock:
            lines, i = self._find(sid, line_id)
            if qty == 0:
                del lines[i]
            else:
                lines[i].qty = qty

    def remove(self, sid: str, line_id: str) -> None:
        with self._lock:
            lines, i = self._find(sid, line_id)
            del lines[i]

    def place_order(self, sid: str, address: dict[str, str]) -> Order:
        with self._lock:
            lines = self._carts.get(sid, [])
            if not lines:
                raise CartError("your cart is empty, so there is no order to place", status=409)
            seq = len(self._orders) + 1
            order_id = f"114-{seq:07d}-{zlib.crc32(f'{sid}|{seq}'.encode()) % 10_000_000:07d}"
            order = Order(order_id=order_id, sid=sid, items=tuple(CartLine(**vars(x)) for x in lines),
                          total_cents=sum(x.qty * x.price_cents for x in lines), address=dict(address))
            self._orders.append(order)
            self._carts[sid] = []
            log.info("order %s placed by %s: %d items, total %d cents", order_id, sid, len(lines), order.total_cents)
            return order

    def order(self, order_id: str) -> Order | None:
        with self._lock:
            return next((o for o in self._orders if o.order_id == order_id), None)

    def record(self, sid: str, method: str, path: str, status: int) -> None:
        with self._lock:
            self._events.append({"sid": sid, "method": method, "path": path, "status": status, "ts": time.time()})

    def snapshot(self, sid: str | None = None) -> dict[str, Any]:
        """The ``/api/state`` document; ``sid`` keeps one shopper's carts, orders and events."""
        with self._lock:
            carts = {s: [line.to_json() for line in lines] for s, lines in self._carts.items()
                     if sid is None or s == sid}
            orders = [o.to_json() for o in self._orders if sid is None or o.sid == sid]
            events = [dict(ev) for ev in self._events if sid is None or ev["sid"] == sid]
        return {"carts": carts, "orders": orders, "events": events}


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------


@dataclass
class Shop:
    """Everything a request handler needs, built once at start-up."""

    catalog: Catalog
    layout: Layout
    variant: Variant = field(default_factory=lambda: get_variant("control"))
    state: ShopState = field(default_factory=ShopState)
    related: dict[str, tuple[Product, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        groups: dict[tuple[str, str], list[Product]] = {}
        for p in self.catalog.products:
            groups.setdefault((p.category, p.product_type), []).append(p)
        for members in groups.values():
            members.sort(key=lambda p: (-p.rating_count, p.id))
            for p in members:
                self.related[p.id] = tuple(x for x in members if x.id != p.id)[:6]


SHOP_KEY: web.AppKey[Shop] = web.AppKey("shop", Shop)
SID_KEY: web.RequestKey[str] = web.RequestKey("sid", str)  # the shopper's identity, set by identity_middleware


@functools.lru_cache(maxsize=4)
def _catalog(seed: int) -> Catalog:
    return build_catalog(seed)


def _shop(request: web.Request) -> Shop:
    return request.app[SHOP_KEY]


def _ctx(request: web.Request, *, query: str = "", category: str | None = None) -> PageContext:
    shop = _shop(request)
    sid = request.get(SID_KEY)
    return PageContext(layout=shop.layout, catalog=shop.catalog,
                       cart_count=shop.state.cart_count(sid) if sid else 0, query=query, category=category,
                       variant=shop.variant)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def _redirect(location: str) -> web.Response:
    """303 See Other: the GET after a form POST (so reload never re-submits)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


class BadInput(web.HTTPBadRequest):
    """400 with a message naming the parameter and the value that was wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message)


def _first(values: MultiMapping[Any], name: str) -> str | None:
    """The first value of a query or form field; repeated fields are not an error (browsers do it)."""
    found = values.getall(name, [])
    if not found:
        return None
    value = found[0]
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a text field, not a file upload")
    return value


def _int_param(values: MultiMapping[Any], name: str, default: int, lo: int, hi: int | None, where: str) -> int:
    raw = _first(values, name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadInput(f"{where}: {name} must be a whole number, got {raw[:40]!r}") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise BadInput(f"{where}: {name} must be {bound}, got {value}")
    return value


# ---- pages ------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    return _html(pages.render_home(_ctx(request)))


async def search(request: web.Request) -> web.Response:
    shop, q = _shop(request), request.query
    query = (_first(q, "k") or _first(q, "q") or "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise BadInput(f"search: the query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    category = _first(q, "i") or None
    brand = _first(q, "brand") or None
    price = _first(q, "price") or None
    sort = _first(q, "s") or "relevance"
    rating_raw = _first(q, "rating")
    rating = _int_param(q, "rating", 0, 1, 4, "search") if rating_raw else None
    page_no = _int_param(q, "page", 1, 1, None, "search")
    try:
        result = shop.catalog.search(SearchRequest(query=query, category=category, brand=brand, price=price,
                                                   rating=rating, sort=sort))
    except ValueError as exc:
        if category is not None and shop.catalog.category(category) is None:
            raise web.HTTPNotFound(text=f"search: {exc}") from None
        raise BadInput(f"search: {exc}") from None
    pages_total = max(1, math.ceil(len(result.products) / PAGE_SIZE))
    if page_no > pages_total:
        raise web.HTTPNotFound(text=f"search: page {page_no} is past the last page ({pages_total}) of these results")
    start = (page_no - 1) * PAGE_SIZE
    params = {shop.layout.search_param: query, "i": category or "", "brand": brand or "", "price": price or "",
              "rating": str(rating) if rating else "", "s": "" if sort == "relevance" else sort}
    params = {k: v for k, v in params.items() if v}
    view = ResultsPage(result=result, products=result.products[start:start + PAGE_SIZE], page=page_no,
                       pages=pages_total, page_size=PAGE_SIZE, params=params)
    if shop.variant.search_delay_s:
        await asyncio.sleep(shop.variant.search_delay_s)  # the slow-search build: a known cost per results page
    return _html(pages.render_results(_ctx(request, query=query, category=category), view))


def _product_or_404(shop: Shop, product_id: str | None, where: str) -> Product:
    if not product_id:
        raise BadInput(f"{where}: product_id is missing")
    product = shop.catalog.get(product_id.strip())
    if product is None:
        raise web.HTTPNotFound(text=f"{where}: there is no product with id {product_id[:40]!r}")
    return product


async def product_page(request: web.Request) -> web.Response:
    shop = _shop(request)
    product = _product_or_404(shop, request.match_info["product_id"], "product page")
    return _html(pages.render_product(_ctx(request, category=product.category), product, shop.related[product.id]))


async def cart_page(request: web.Request) -> web.Response:
    return _html(pages.render_cart(_ctx(request), _shop(request).state.cart(request[SID_KEY])))


async def cart_add(request: web.Request) -> web.Response:
    shop, form = _shop(request), await request.post()
    product = _product_or_404(shop, _first(form, "product_id"), "add to cart")
    qty = _int_param(form, "quantity", 1, 1, MAX_LINE_QTY, "add to cart")
    action = _first(form, "submit_action") or "add"
    if action not in ("add", "buy"):
        raise BadInput(f"add to cart: submit_action must be 'add' or 'buy', got {action[:40]!r}")
    chosen = {k: v for k in ("size", "color", "quantity") if (v := _first(form, k))}
    options: dict[str, str] = {}
    missing: list[str] = []
    if product.sizes:
        size = (_first(form, "size") or "").strip()
        if not size:
            missing.append("Size")
        elif size not in product.sizes:
            raise BadInput(f"add to cart: size {size[:40]!r} is not offered for {product.id} "
                           f"(choose one of {', '.join(product.sizes)})")
        else:
            options["size"] = size
    color = (_first(form, "color") or "").strip()
    if len(product.colors) > 1 and not color:
        missing.append(shop.layout.color_label)
    elif color and color not in product.colors:
        raise BadInput(f"add to cart: colour {color[:40]!r} is not offered for {product.id} "
                       f"(choose one of {', '.join(product.colors)})")
    elif product.colors:
        options["color"] = color or product.colors[0]
    if missing:
        # A real shop re-shows the product page with the problem in place (422), not a bare error.
        message = f"Please select a {' and a '.join(missing)} before adding this item."
        body = pages.render_product(_ctx(request, category=product.category), product, shop.related[product.id],
                                    error=message, chosen=chosen)
        return _html(body, status=422)
    try:
        shop.state.add(request[SID_KEY], product, options, qty)
    except CartError as exc:
        raise web.HTTPBadRequest(text=f"add to cart: {exc}") from None
    return _redirect("/checkout" if action == "buy" else "/cart")


def _cart_http_error(exc: CartError, where: str) -> web.HTTPException:
    cls = {404: web.HTTPNotFound, 409: web.HTTPConflict}.get(exc.status, web.HTTPBadRequest)
    return cls(text=f"{where}: {exc}")


async def cart_update(request: web.Request) -> web.Response:
    form = await request.post()
    line = _first(form, "line")
    if not line:
        raise BadInput("update cart: line is missing")
    if not (_first(form, "qty") or "").strip():
        raise BadInput("update cart: qty is missing")
    qty = _int_param(form, "qty", 0, 0, MAX_LINE_QTY, "update cart")
    try:
        _shop(request).state.set_qty(request[SID_KEY], line, qty)
    except CartError as exc:
        raise _cart_http_error(exc, "update cart") from None
    return _redirect("/cart")


async def cart_remove(request: web.Request) -> web.Response:
    form = await request.post()
    line = _first(form, "line")
    if not line:
        raise BadInput("remove from cart: line is missing")
    try:
        _shop(request).state.remove(request[SID_KEY], line)
    except CartError as exc:
        raise _cart_http_error(exc, "remove from cart") from None
    return _redirect("/cart")


async def checkout_page(request: web.Request) -> web.Response:
    return _html(pages.render_checkout(_ctx(request), _shop(request).state.cart(request[SID_KEY])))


def validate_address(form: MultiMapping[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(values, errors by field): every field required, no control characters, sane ZIP and email."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, label, _typ, _auto in CHECKOUT_FIELDS:
        value = (_first(form, name) or "").strip()
        values[name] = value
        if not value:
            errors[name] = f"Enter your {label.lower()}."
        elif len(value) > MAX_FIELD_CHARS:
            errors[name] = f"{label} is {len(value)} characters long; at most {MAX_FIELD_CHARS} are allowed."
        elif _CONTROL.search(value):
            errors[name] = f"{label} contains control characters."
        elif name == "zip" and not _ZIP.match(value):
            errors[name] = "ZIP code must be 5 digits (or ZIP+4, like 12345-6789)."
        elif name == "email" and not _EMAIL.match(value):
            errors[name] = "Enter an email address like name@example.com."
    return values, errors


async def checkout_place(request: web.Request) -> web.Response:
    shop, form = _shop(request), await request.post()
    sid = request[SID_KEY]
    lines = shop.state.cart(sid)
    if not lines:
        raise web.HTTPConflict(text="place order: your cart is empty, so there is no order to place")
    values, errors = validate_address(form)
    if errors:
        return _html(pages.render_checkout(_ctx(request), lines, values=values, errors=errors), status=422)
    try:
        order = shop.state.place_order(sid, values)
    except CartError as exc:
        raise _cart_http_error(exc, "place order") from None
    return _redirect(f"/order/{order.order_id}")


async def order_page(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    order = _shop(request).state.order(order_id)
    if order is None or order.sid != request[SID_KEY]:
        raise web.HTTPNotFound(text=f"order page: there is no order {order_id[:40]!r} for this shopper")
    return _html(pages.render_order(_ctx(request), order))


async def help_page(request: web.Request) -> web.Response:
    topic = request.match_info["topic"]
    if topic not in HELP_TOPICS:
        raise web.HTTPNotFound(text=f"help: there is no help page {topic[:40]!r}")
    return _html(pages.render_help(_ctx(request), topic))


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "logo.svg", headers={"Content-Type": "image/svg+xml"})


# ---- JSON -----------------------------------------------------------------------------------


async def api_state(request: web.Request) -> web.Response:
    sid = _first(request.query, "sid")
    return web.json_response(_shop(request).state.snapshot(sid or None))


async def api_product(request: web.Request) -> web.Response:
    product = _product_or_404(_shop(request), request.match_info["product_id"], "product API")
    return web.json_response({**product.to_json(), "url": f"/dp/{product.id}"})


# ---- middleware -----------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": message, "status": status}, status=status)
    return _html(pages.render_error(_ctx(request), status, reason, message), status=status)


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is shopping: the header, else a valid cookie, else a fresh cookie. Logs page views."""
    header = request.headers.get(SESSION_HEADER)
    new_cookie = False
    if header is not None:
        if not _SID.match(header):
            return _error_response(request, 400, "Bad Request",
                                   f"{SESSION_HEADER} header must be 1-128 characters of letters, digits and ._:@-, "
                                   f"got {header[:40]!r}")
        sid = header
    else:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if _SID.match(cookie):
            sid = cookie
        else:
            sid, new_cookie = uuid.uuid4().hex, True
    request[SID_KEY] = sid
    response = await handler(request)
    if new_cookie:
        response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True, samesite="Lax")
    if request.path.startswith(("/static/", "/favicon.ico")) and response.status == 200:
        # As a real shop does: assets are immutable for a build, so a shopper's browser fetches
        # them once per session instead of on every page (less work per simulated step).
        response.headers["Cache-Control"] = "public, max-age=3600"
    if not request.path.startswith(_UNTRACKED_PREFIXES):
        _shop(request).state.record(sid, request.method, request.path_qs, response.status)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a page that says what went wrong (JSON under /api/)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text or ""
        if message.startswith(f"{exc.status}:"):  # aiohttp's own "404: Not Found" and friends
            if exc.status == 404:
                message = f"there is no page at {request.path[:200]}"
            elif exc.status == 405:
                message = f"{request.method} is not allowed for {request.path[:200]}"
        return _error_response(request, exc.status, exc.reason, message)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path_qs)
        return _error_response(request, 500, "Internal Server Error",
                               "the shop hit an unexpected error; the server log has the details")


def create_app(seed: int = 0, layout: str = "v1", variant: str = "control") -> web.Application:
    """The shop as an aiohttp application: catalog for ``seed``, pages in ``layout`` (v1 | v2), one of
    the known-effect ``variant`` builds (see ``pages.VARIANTS``)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"shop seed must be a non-negative integer, got {seed!r}")
    shop = Shop(catalog=_catalog(seed), layout=get_layout(layout), variant=get_variant(variant))
    app = web.Application(middlewares=[identity_middleware, error_middleware], client_max_size=64 * 1024)
    app[SHOP_KEY] = shop
    r = app.router
    r.add_get("/", home)
    r.add_get("/s", search)
    r.add_get("/dp/{product_id}", product_page)
    r.add_get("/cart", cart_page)
    r.add_post("/cart/add", cart_add)
    r.add_post("/cart/update", cart_update)
    r.add_post("/cart/remove", cart_remove)
    r.add_get("/checkout", checkout_page)
    r.add_post("/checkout", checkout_place)
    r.add_get("/order/{order_id}", order_page)
    r.add_get("/help/{topic}", help_page)
    r.add_get("/favicon.ico", favicon)
    r.add_get("/api/state", api_state)
    r.add_get("/api/products/{product_id}", api_product)
    r.add_static("/static", STATIC_DIR)
    log.debug("shop app ready: seed %d, layout %s, variant %s, %d products", seed, layout, variant,
              len(shop.catalog.products))
    return app


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


def _bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    raise RuntimeError(f"the shop is not listening on a TCP port (addresses: {runner.addresses})")


class ShopServer:
    """A shop running on its own event loop in a background thread.

    Started on construction; a context manager (``with run_in_thread() as shop``) that stops it on
    exit, or stopped explicitly with ``stop()`` (idempotent).
    """

    def __init__(self, seed: int = 0, port: int = 0, layout: str = "v1", host: str = "127.0.0.1",
                 variant: str = "control") -> None:
        self.app = create_app(seed, layout, variant)
        self.host = host
        self.seed = seed
        self.layout = layout
        self.variant = variant
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped = False
        self.port = 0
        self._thread = threading.Thread(target=self._run, args=(port,), name=f"shop-r1-shop:{port}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join(timeout=5)
            raise OSError(f"the shop could not listen on {host}:{port}: {self._error}") from self._error
        self.url = f"http://{host}:{self.port}"
        log.info("shop serving %s (seed %d, layout %s, variant %s)", self.url, seed, layout, variant)

    def _run(self, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, port)
            self._loop.run_until_complete(site.start())
            self.port = _bound_port(self._runner)
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

    @property
    def shop(self) -> Shop:
        return self.app[SHOP_KEY]

    def state(self, sid: str | None = None) -> dict[str, Any]:
        """The same document as ``GET /api/state`` (``sid`` filters), read directly."""
        return self.shop.state.snapshot(sid)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            log.warning("shop thread for %s did not stop within 10 s", self.url)

    def __enter__(self) -> ShopServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(seed: int = 0, port: int = 0, layout: str = "v1", host: str = "127.0.0.1",
                  variant: str = "control") -> ShopServer:
    """Start the shop in a background thread; use as ``with run_in_thread(...) as shop: shop.url``."""
    return ShopServer(seed=seed, port=port, layout=layout, host=host, variant=variant)


async def serve_forever(seed: int, port: int, layout: str, host: str,
                        on_ready: Callable[[str], None] | None = None, variant: str = "control") -> None:
    """Serve in the current event loop until cancelled (Ctrl-C in ``shop-r1 shop serve``)."""
    app = create_app(seed, layout, variant)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        url = f"http://{host}:{_bound_port(runner)}"
        if on_ready:
            on_ready(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

