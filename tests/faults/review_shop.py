"""A staging shop nobody here wrote the rules for: plain review pages, one-click buying, hostile text.

It looks nothing like the bundled shop. Its checkout is a review page -- title "Checkout", a
heading "Review your order" in the page's language, a total, and one bare POST form whose single
button says an order word ("Jetzt kaufen", "Commander", "Confirm", "Pay now", ...) and whose
endpoint path says nothing (``/s/<token>``). Product pages carry a one-click "Buy now" form and a
quantity form; the basket a coupon and a quantity form; the home page a newsletter form and a
link whose whole text is an order phrase. ``/leaky`` is a broken build whose "Proceed" button
places the order with words no guard could read as ordering: only the confirmation page that
follows tells. ``/hostile`` carries terminal control sequences in its title, link and product
texts. Every order (and every minor form) is counted, so tests assert on what the shop saw.

Also here, for the CLI: a stand-in for a paid LLM API (an OpenAI-compatible chat endpoint) that
clicks the first element whose name holds the word its model name gives (``click:proceed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web

# The review page's heading and its one button, per language (the button is all a guard has).
REVIEW: dict[str, tuple[str, str]] = {
    "en": ("Review your order", "Confirm"),
    "en-pay": ("Review your order", "Pay now"),
    "en-complete": ("Review your order", "Complete purchase"),
    "en-buy": ("Review your order", "Buy now"),
    "de": ("Bestellung prüfen", "Jetzt kaufen"),
    "fr": ("Vérifiez votre commande", "Commander"),
    "es": ("Revisa tu pedido", "Confirmar"),
    "it": ("Controlla il tuo ordine", "Acquista"),
    "nl": ("Controleer je bestelling", "Afrekenen"),
    "pl": ("Sprawdź zamówienie", "Zamów"),
    "ja": ("ご注文内容の確認", "注文する"),
}
# What the shop says once an order went through, per language.
THANKS: dict[str, str] = {
    "en": "Thank you, order placed", "de": "Vielen Dank! Bestellung eingegangen", "fr": "Merci ! Commande confirmée",
    "es": "¡Gracias por tu pedido!", "it": "Grazie per il tuo ordine", "nl": "Bedankt voor je bestelling",
    "pl": "Dziękujemy za zamówienie", "ja": "ご注文ありがとうございます",
}
# One-click buttons on the product page, per language.
ONE_CLICK: dict[str, str] = {"en": "Buy now", "de": "Jetzt kaufen", "fr": "Acheter maintenant", "es": "Comprar ahora"}

ESC = "\x1b"
# An OSC 8 hyperlink to another site around "Deal", a clear-screen, a red title, a bell, a C1 CSI.
HOSTILE_LINK = f"{ESC}]8;;http://evil.example/{ESC}\\Deal of the day{ESC}]8;;{ESC}\\"
HOSTILE_PRODUCT = f"{ESC}[2J{ESC}[HWool socks\x07 \x9b31m[link=http://evil.example]grey[/link]"
HOSTILE_TITLE = f"{ESC}[31mSock shop{ESC}[0m"


@dataclass
class Counts:
    orders: int = 0
    paths: Counter[str] = field(default_factory=Counter)
    posted: list[dict[str, str]] = field(default_factory=list)


def _page(title: str, body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                             f"</head><body style='font-family:serif'>{body}</body></html>",
                        content_type="text/html", charset="utf-8")


def shop_app(counts: Counts) -> web.Application:
    e = html.escape

    async def home(_: web.Request) -> web.Response:
        return _page("Maison Laine", (
            "<header><b>Maison Laine</b> <a href='/basket'>Basket</a></header>"
            "<section><h2>Knitwear</h2><ul>"
            "<li><a href='/p/scarf'>Merino scarf</a> €39.00</li><li><a href='/p/hat'>Alpaca hat</a> €29.00</li></ul>"
            "</section>"
            # A link whose whole text is an order phrase: an order button styled as a link.
            "<p><a href='/s/a91'>Place order</a> · <a href='/help/buying'>Help with buying now and paying later</a></p>"
            "<form method='post' action='/subscribe'><label>Newsletter <input name='newsletter_email' type='email'>"
            "</label><button>Subscribe</button></form>"))

    async def product(request: web.Request) -> web.Response:
        lang = request.query.get("lang", "en")
        item = e(request.match_info["item"])
        return _page(f"{item} | Maison Laine", (
            f"<h1>Merino {item}</h1><p>€39.00</p>"
            f"<form method='post' action='/basket/add'><input type='hidden' name='item' value='{item}'>"
            "<label>Quantity <input name='qty' type='number' value='1'></label>"
            "<button>Add to basket</button></form>"
            # One-click buying: a bare POST form (the token is all it sends) and a script button.
            f"<form method='post' action='/x/{item}'><input type='hidden' name='t' value='k1'>"
            f"<button>{e(ONE_CLICK[lang])}</button></form>"
            f"<button type='button' onclick=\"fetch('/x/{item}', {{method: 'POST'}})"
            f".then(() => location.href = '/done/{lang}')\">{e(ONE_CLICK[lang])} (1-Click)</button>"))

    async def basket(_: web.Request) -> web.Response:
        return _page("Basket", (
            "<h1>Your basket</h1><p>Merino scarf × 1 — €39.00</p>"
            "<form method='post' action='/basket/qty'><label>Qty <input name='qty' type='number' value='1'></label>"
            "<button>Update</button></form>"
            "<form method='post' action='/basket/coupon'><label>Coupon code <input name='coupon'></label>"
            "<button>Apply</button></form>"
            "<a href='/review/en'>Checkout</a>"))

    async def review(request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        if lang not in REVIEW:
            raise web.HTTPNotFound()
        heading, button = REVIEW[lang]
        note = ("<label>Note for the courier <input name='courier_note'></label>"
                if request.query.get("note") else "")
        return _page("Checkout", (
            f"<h1>{e(heading)}</h1><p>Merino scarf × 1</p><p><b>Total: €39.00</b></p>"
            f"<form method='post' action='/s/7f3a?l={e(lang)}'><input type='hidden' name='token' value='c0ffee'>"
            f"{note}<button>{e(button)}</button></form>"
            "<a href='/basket'>Back to basket</a>"))

    async def leaky(_: web.Request) -> web.Response:
        # A broken build: its "Proceed" places the order (no order word, no order endpoint).
        return _page("Basket", (
            "<h1>Your basket</h1><p>Merino scarf × 1 — €39.00</p>"
            "<form method='post' action='/s/b2'><input type='hidden' name='token' value='c0ffee'>"
            "<button>Proceed</button></form>"))

    async def hostile(_: web.Request) -> web.Response:
        return web.Response(
            text=(f"<!doctype html><html><head><meta charset='utf-8'><title>{HOSTILE_TITLE}</title></head><body>"
                  f"<h1>{HOSTILE_TITLE}</h1><ul><li><a href='/p/socks'>{HOSTILE_PRODUCT}</a> €9.00</li>"
                  f"<li><a href='/p/scarf'>{HOSTILE_LINK}</a></li></ul>"
                  f"<button type='button' aria-label='{ESC}[2Jclear'>{ESC}[5mBlink{ESC}[0m</button>"
                  "<div id='late'></div><script>document.getElementById('late').textContent = "
                  "'Injected \\u001b[2J by script';</script></body></html>"),
            content_type="text/html", charset="utf-8")

    async def place(request: web.Request) -> web.Response:
        counts.orders += 1
        counts.paths[request.path] += 1
        lang = request.query.get("l", "en").split("-")[0]
        raise web.HTTPSeeOther(f"/done/{lang}")

    async def done(request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        return _page(THANKS.get(lang, THANKS["en"]),
                     f"<h1>{e(THANKS.get(lang, THANKS['en']))}</h1><p>Order number: MX-{1000 + counts.orders}</p>"
                     "<a href='/'>Continue shopping</a>")

    async def minor(request: web.Request) -> web.Response:
        counts.paths[request.path] += 1
        counts.posted.append(dict(await request.post()))
        raise web.HTTPSeeOther("/basket")

    async def help_page(_: web.Request) -> web.Response:
        return _page("Help", "<h1>Buying now, paying later</h1><a href='/'>Home</a>")

    app = web.Application()
    r = app.router
    r.add_get("/", home)
    r.add_get("/p/{item}", product)
    r.add_get("/basket", basket)
    r.add_get("/review/{lang}", review)
    r.add_get("/leaky", leaky)
    r.add_get("/hostile", hostile)
    r.add_get("/done/{lang}", done)
    r.add_get("/help/buying", help_page)
    for path in ("/s/7f3a", "/s/a91", "/s/b2", "/x/{item}"):
        r.add_post(path, place)
    r.add_get("/s/a91", place)  # the order link
    for path in ("/basket/add", "/basket/qty", "/basket/coupon", "/subscribe"):
        r.add_post(path, minor)
    return app


def chat_app(calls: list[str]) -> web.Application:
    """An OpenAI-compatible stand-in: ``click:WORD`` clicks the first element whose name holds
    WORD on the page in the prompt, and terminates when there is none."""

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        word = body["model"].split(":", 1)[1]
        prompt = "\n".join(str(m["content"]) for m in body["messages"])
        names = [n for n in re.findall(r'name="([^"]+)"', prompt) if word in n]
        calls.append(names[0] if names else "terminate")
        action = {"type": "click", "name": names[0]} if names else {"type": "terminate"}
        content = json.dumps({"rationale": f"I'll go on with {word}.", "action": action})
        return web.json_response({
            "id": "chatcmpl-review", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


@dataclass
class ReviewShop:
    url: str
    llm_url: str
    counts: Counts
    llm_calls: list[str]


@contextlib.contextmanager
def serve_review_shop(host: str = "127.0.0.1") -> Iterator[ReviewShop]:
    """The shop and the chat stand-in, each on its own port, in one background thread."""
    counts, calls = Counts(), []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        urls, runners = [], []
        for app in (shop_app(counts), chat_app(calls)):
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, host, 0)
            await site.start()
            urls.append(f"http://{host}:{site._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
            runners.append(runner)
        holder.update(urls=urls, runners=runners)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True, name="review-shop")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("review shop did not start")
    shop_url, llm_url = holder["urls"]  # type: ignore[misc]
    try:
        yield ReviewShop(url=shop_url, llm_url=f"{llm_url}/v1", counts=counts, llm_calls=calls)
    finally:
        async def stop() -> None:
            for runner in holder["runners"]:  # type: ignore[attr-defined]
                with contextlib.suppress(Exception):
                    await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
