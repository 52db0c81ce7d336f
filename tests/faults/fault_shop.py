"""Small local shops that misbehave on purpose, and a trap origin that counts what reaches it.

Each route is one fault a staging storefront can have: answers 500, hangs, drops the
connection, redirects or navigates off-origin (302, meta refresh, JS, popup, iframe, WebSocket,
EventSource, service worker), echoes typed secrets back in URLs and pages, carries checkout
buttons in many languages, loops in JavaScript after load, or hides controls in iframes and
shadow roots. The servers run on their own loopback addresses in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web

# Order buttons a shopper must not press without --allow-purchase, per language.
ORDER_BUTTONS: dict[str, str] = {
    "en": "Buy now", "en2": "Confirm", "de": "Jetzt kaufen", "de2": "Zahlungspflichtig bestellen",
    "fr": "Commander", "es": "Realizar pedido", "it": "Conferma ordine", "nl": "Bestelling plaatsen",
    "pt": "Finalizar compra", "pl": "Kupuję i płacę", "ja": "注文を確定する", "zh": "提交订单",
}


@dataclass
class Counts:
    """What the servers saw; tests assert on it."""

    orders: int = 0
    trap_hits: list[str] = field(default_factory=list)
    paths: Counter[str] = field(default_factory=Counter)
    status_500: bool = False


def _page(title: str, body: str, head: str = "") -> web.Response:
    return web.Response(
        text=f"<!doctype html><html><head><title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>",
        content_type="text/html")


def add_hop_and_outage_routes(r: web.UrlDispatcher) -> None:
    """Same-origin hops that must keep working, and links into the outages above."""

    async def redirect_in(_: web.Request) -> web.Response:
        raise web.HTTPFound("/product")

    async def outages(_: web.Request) -> web.Response:
        return _page("Outages", '<main><a href="/status/500">Sale</a> <a href="/drop">Clearance</a> '
                                '<a href="/missing">Old deals</a> <a href="/redirect-in">Trail shoe</a></main>')

    async def missing(_: web.Request) -> web.Response:
        return web.Response(status=404, text="<title>Not found</title><h1>Not found</h1><a href='/'>Home</a>",
                            content_type="text/html")

    async def loop_forever(_: web.Request) -> web.Response:
        return _page("Busy", "<h1>Busy</h1><script>setInterval(() => { while (true) {} }, 10);</script>")

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"echo {msg.data}")
        return ws

    async def ws_page(_: web.Request) -> web.Response:
        return _page("Socket", """<h1>Socket</h1><script>
const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws-echo');
ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { document.title = e.data; };
</script>""")

    r.add_get("/redirect-in", redirect_in)
    r.add_get("/outages", outages)
    r.add_get("/missing", missing)
    r.add_get("/loop-forever", loop_forever)
    r.add_get("/ws-echo", ws_echo)
    r.add_get("/ws-page", ws_page)


def shop_app(counts: Counts, trap: str) -> web.Application:
    async def count(request: web.Request, handler):  # noqa: ANN001 - aiohttp middleware
        counts.paths[request.path] += 1
        return await handler(request)

    app = web.Application(middlewares=[web.middleware(count)])
    r = app.router
    add_hop_and_outage_routes(r)

    async def home(_: web.Request) -> web.Response:
        if counts.status_500:
            return web.Response(status=500, text="<h1>Internal Server Error</h1>", content_type="text/html")
        return _page("Fault shop", """
<header><form action="/search" method="get"><input type="search" name="q" aria-label="Search">
<button>Search</button></form></header>
<nav><a href="/help/checkout">Checkout paynow help</a> <a href="/product">Trail shoe</a>
<a href="/account">Sign in</a></nav><main><h1>Welcome</h1></main>""")

    async def product(_: web.Request) -> web.Response:
        return _page("Trail shoe", """<main><h1>Trail shoe</h1><span class="price">$89.00</span>
<form action="/cart/add" method="post"><button>Add to cart</button></form></main>""")

    async def cart_add(_: web.Request) -> web.Response:
        raise web.HTTPFound("/checkout/en")

    async def checkout(request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        label = ORDER_BUTTONS.get(lang, "Buy now")
        return _page("Checkout", f"""<main><h1>Review your order</h1><p>Total $89.00</p>
<form action="/place-order" method="post"><label>Card number <input name="card" autocomplete="cc-number"></label>
<button type="submit">{html.escape(label)}</button></form></main>""")

    async def checkout_js(request: web.Request) -> web.Response:
        # No form at all: the order button posts by script, so only the page (a checkout page
        # with address fields) and the button's words can tell it places an order.
        label = ORDER_BUTTONS.get(request.match_info["lang"], "Buy now")
        return _page("Checkout", f"""<main><h1>Checkout</h1><p>Total $89.00</p>
<label>Street <input name="street"></label> <label>City <input name="city"></label>
<button type="button" onclick="fetch('/place-order', {{method: 'POST'}}).then(() => {{ location.href = '/help/checkout'; }})">{html.escape(label)}</button>
<a href="/product">Back to the shoe</a></main>""")

    async def place_order(_: web.Request) -> web.Response:
        counts.orders += 1
        return _page("Thank you", "<h1>Thank you for your order</h1>")

    async def help_checkout(_: web.Request) -> web.Response:
        return _page("Help", "<h1>How checkout works</h1><p>Pay when you are ready.</p>")

    async def account(request: web.Request) -> web.Response:
        email = request.query.get("email", "")
        password = request.query.get("password", "")
        echo = (f"<p>Signed in as {html.escape(email)} (password {html.escape(password)})</p>"
                f"<a href='/account?email={email}&token={password}'>again</a>") if email else ""
        return _page(f"Account {email}", f"""<main><h1>Sign in</h1>{echo}
<form action="/account" method="get"><input type="email" name="email" aria-label="Email">
<input type="password" name="password" aria-label="Password"><button>Sign in</button></form></main>""")

    async def status_500(_: web.Request) -> web.Response:
        return web.Response(status=500, text="<h1>Internal Server Error</h1>", content_type="text/html")

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return _page("late", "late")

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError

    async def redirect_off(_: web.Request) -> web.Response:
        raise web.HTTPFound(f"{trap}/redirected")

    async def link_to_redirect(_: web.Request) -> web.Response:
        return _page("Links", '<main><a href="/redirect-off">Deals</a> <a href="/product">Trail shoe</a></main>')

    async def meta_off(_: web.Request) -> web.Response:
        return _page("Meta", "<p>moving</p>", head=f'<meta http-equiv="refresh" content="0;url={trap}/meta">')

    async def js_off(_: web.Request) -> web.Response:
        return _page("JS", f"<p>moving</p><script>location.href = '{trap}/js';</script>")

    async def popup(_: web.Request) -> web.Response:
        return _page("Popup", f"""<button onclick="window.open('{trap}/popup')">Open deals</button>
<a href="{trap}/blank" target="_blank">New tab deals</a>""")

    async def subresources(_: web.Request) -> web.Response:
        return _page("Subresources", f"""<iframe src="{trap}/iframe"></iframe>
<script>
try {{ new WebSocket('{trap.replace("http", "ws")}/ws'); }} catch (e) {{}}
try {{ new EventSource('{trap}/sse'); }} catch (e) {{}}
try {{ fetch('{trap}/fetch', {{mode: 'no-cors'}}); }} catch (e) {{}}
if (navigator.serviceWorker) navigator.serviceWorker.register('/sw.js').catch(() => {{}});
</script><h1>Subresources</h1>""")

    async def sw(_: web.Request) -> web.Response:
        return web.Response(text=f"self.addEventListener('install', () => fetch('{trap}/sw'));",
                            content_type="application/javascript")

    async def loop(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "50"))  # ms after load: before, during or after a read
        return _page("Loop", "<h1>Loop</h1><a href='/product'>Trail shoe</a>"
                             "<button onclick='while (true) {}'>Spin</button>"
                             "<script>window.addEventListener('load', () => { setTimeout(() => { while (true) {} }, "
                             f"{after}); }});</script>")

    async def frames(_: web.Request) -> web.Response:
        return _page("Frames", f"""<main><h1>Frames</h1>
<iframe src="/frame-inner" title="Payment"></iframe>
<iframe src="{trap}/frame-cross" title="Cross"></iframe>
<div id="open-host"></div><div id="closed-host"></div>
<script>
const o = document.getElementById('open-host').attachShadow({{mode: 'open'}});
o.innerHTML = '<button id="shadow-btn" onclick="location.href=\\'/product\\'">Shadow deals</button>';
const c = document.getElementById('closed-host').attachShadow({{mode: 'closed'}});
c.innerHTML = '<button>Closed deals</button>';
</script></main>""")

    async def frame_inner(_: web.Request) -> web.Response:
        return _page("Inner", '<form action="/search" method="get" target="_top">'
                              '<input name="q" aria-label="Gift card code"><button>Apply code</button></form>')

    async def components(_: web.Request) -> web.Response:
        # Web components as shops build them: a card whose shadow root slots a light-DOM link,
        # a nested open root, and a same-origin srcdoc frame holding a shadow-root button.
        return _page("Components", """<main><h1>Components</h1>
<product-card id="card"><a slot="title" href="/product">Trail shoe</a></product-card>
<iframe title="Promo" srcdoc="<div id=h></div><script>document.getElementById('h').attachShadow({mode:'open'}).innerHTML=
'<button onclick=&quot;top.location.href=\\'/help/checkout\\'&quot;>Promo help</button>'</script>"></iframe>
<script>
customElements.define('product-card', class extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<h2><slot name="title"></slot></h2><span>$89.00</span><size-picker></size-picker>';
    const picker = root.querySelector('size-picker').attachShadow({mode: 'open'});
    picker.innerHTML = '<span id="lbl">Shoe size</span><select aria-labelledby="lbl" onchange="document.title=this.value">'
      + '<option>9</option><option>10</option></select>';
  }
});
</script></main>""")

    async def search(request: web.Request) -> web.Response:
        return _page(f"Results for {request.query.get('q', '')}",
                     f"<h1>Results for {html.escape(request.query.get('q', ''))}</h1><a href='/product'>Trail shoe</a>")

    r.add_get("/", home)
    r.add_get("/product", product)
    r.add_post("/cart/add", cart_add)
    r.add_get("/checkout/{lang}", checkout)
    r.add_post("/place-order", place_order)
    r.add_get("/checkout-js/{lang}", checkout_js)
    r.add_get("/help/checkout", help_checkout)
    r.add_get("/account", account)
    r.add_get("/status/500", status_500)
    r.add_get("/hang", hang)
    r.add_get("/drop", drop)
    r.add_get("/redirect-off", redirect_off)
    r.add_get("/links", link_to_redirect)
    r.add_get("/meta-off", meta_off)
    r.add_get("/js-off", js_off)
    r.add_get("/popup", popup)
    r.add_get("/subresources", subresources)
    r.add_get("/sw.js", sw)
    r.add_get("/loop", loop)
    r.add_get("/frames", frames)
    r.add_get("/frame-inner", frame_inner)
    r.add_get("/search", search)
    r.add_get("/components", components)
    return app


def trap_app(counts: Counts) -> web.Application:
    async def anything(request: web.Request) -> web.Response:
        counts.trap_hits.append(request.path)
        return _page("Off-origin", "<h1>You should not be here</h1>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


@dataclass
class FaultShops:
    url: str
    trap: str
    counts: Counts
    loop: asyncio.AbstractEventLoop
    _shop_runner: web.AppRunner | None = None

    def stop_shop(self) -> None:
        """Kill the shop mid-run (the trap stays): later pages cannot be reached."""
        assert self._shop_runner is not None
        asyncio.run_coroutine_threadsafe(self._shop_runner.cleanup(), self.loop).result(10)


@contextlib.contextmanager
def serve_fault_shops(shop_host: str = "127.0.0.1", trap_host: str = "127.0.0.2") -> Iterator[FaultShops]:
    """The fault shop and the trap origin, each on its own loopback address, in one thread."""
    counts = Counts()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        trap_runner = web.AppRunner(trap_app(counts))
        await trap_runner.setup()
        trap_site = web.TCPSite(trap_runner, trap_host, 0)
        await trap_site.start()
        trap_port = trap_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        trap = f"http://{trap_host}:{trap_port}"
        shop_runner = web.AppRunner(shop_app(counts, trap), shutdown_timeout=1.0)  # /hang must not hold the stop
        await shop_runner.setup()
        shop_site = web.TCPSite(shop_runner, shop_host, 0)
        await shop_site.start()
        port = shop_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        holder.update(url=f"http://{shop_host}:{port}", trap=trap, runners=(trap_runner, shop_runner))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True, name="fault-shops")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("fault shops did not start")
    trap_runner, shop_runner = holder["runners"]  # type: ignore[misc]
    shops = FaultShops(url=str(holder["url"]), trap=str(holder["trap"]), counts=counts, loop=loop,
                       _shop_runner=shop_runner)
    try:
        yield shops
    finally:
        async def stop() -> None:
            for runner in (shop_runner, trap_runner):
                with contextlib.suppress(Exception):
                    await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
