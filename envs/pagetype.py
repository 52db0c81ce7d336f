"""What kind of page a shopper is on, from the page's content and structure alone.

The scripted shopper, the run report's funnel, replay's verdicts and the realism metrics all ask
"was this a product page?". They must agree, and they must answer on storefronts nobody wrote
rules for, so the answer comes from what a person sees — a title heading with a price and one
buy control is a product; repeated blocks of link + price are a listing; a heading about the
cart with a checkout control is a cart — never from URL conventions (``/dp/``, ``/product``),
which differ per shop and lie on many.

The input is what every policy sees: the reduced page (element table + simplified HTML). The
simplified HTML is parsed once here into a tree because structure (siblings that repeat) is the
evidence; the element table gives the controls with their roles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal, Protocol

import lxml.html
from lxml.etree import ParserError
from pydantic import BaseModel, ConfigDict

from shop_r1.envs.controls import ADD_TO_CART, BUY_NOW, CHECKOUT, ORDER_CONFIRMATION, PLACE_ORDER, control_label
from shop_r1.envs.observation import Element

PageType = Literal["home", "listing", "product", "cart", "checkout", "account", "other"]
PAGE_TYPES: tuple[PageType, ...] = ("home", "listing", "product", "cart", "checkout", "account", "other")

# Prices in the ways shops print them: "$12.99", "US $0.01", "€ 12,50", "12.50 USD", "EUR 9".
PRICE_TEXT = re.compile(
    r"(?:[$€£¥]\s?\d[\d,.]*|\b(?:USD|EUR|GBP|CAD|AUD)\s?\d[\d,.]*|\d[\d,.]*\s?(?:[$€£]|USD|EUR|GBP)(?![\w$€£]))")
BID = re.compile(r"place[\s_.-]*(?:a[\s_.-]*)?bid|buy[\s_.-]*it[\s_.-]*now", re.I)
_NOT_BUY = re.compile(r"wish|watch|compare|registry|save for later", re.I)
_RESULT_CUE = re.compile(
    r"\b\d[\d,]*\s*\+?\s*(?:results?|matches|products|items)\b|\bno (?:results|products|items|matches)\b"
    r"|\b(?:found|showing)\s+\d|\bresults? for\b|did you mean|total results|search results|\d+\s*-\s*\d+ of \d",
    re.I)
_SORT = re.compile(r"\bsort\b|low[\s_.-]*to[\s_.-]*high|high[\s_.-]*to[\s_.-]*low|newest|best[\s_.-]*selling", re.I)
_NEXT = re.compile(r"^\s*(?:next|next page|›|»|>|next\s*>)\s*$", re.I)
_CART_WORD = re.compile(r"\b(?:cart|basket|bag|trolley)\b", re.I)
_CART_CUE = re.compile(r"subtotal|\bempty\b|order summary|\btotal\b", re.I)
_ACCOUNT = re.compile(r"sign[\s-]?in|log[\s-]?in|create (?:an )?account|my account|register|forgot (?:your )?password",
                      re.I)
_CHECKOUT_HEAD = re.compile(r"check[\s-]?out|shipping (?:address|details)|payment|delivery address|billing", re.I)
_ADDRESS = re.compile(r"street|address|city|zip|postal|postcode|email|e-mail|phone|card[\s_]*number|surname|"
                      r"full[\s_]*name|first[\s_]*name|last[\s_]*name|state|country", re.I)
_HOME_HEAD = re.compile(r"shop by|featured|best[\s-]?sellers?|new arrivals|today'?s deals|trending|popular|"
                        r"welcome|collections?|recommended|top picks", re.I)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


class PageView(Protocol):
    """What the classifier reads: an Observation or a reducer's ReducedPage."""

    # Read-only members: an Observation and a reducer's page are frozen, which a protocol of
    # plain (settable) attributes would not accept.
    @property
    def title(self) -> str: ...
    @property
    def simplified_html(self) -> str: ...
    @property
    def elements(self) -> Sequence[Element]: ...


class ItemLink(BaseModel):
    """One item block's title link: what a shopper would open to see that item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    text: str  # the whole block's words (title, rating, price), as a shopper reads them
    price: float | None = None


class PageClass(BaseModel):
    """A page's type and the evidence it was decided on (kept so a report can say why)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: PageType
    reasons: tuple[str, ...]
    heading: str = ""
    prices: int = 0
    buy_controls: tuple[str, ...] = ()
    item_blocks: int = 0  # the longest run of repeated link + price blocks
    item_runs: int = 0  # how many such runs (home pages show several shelves)
    listing_cues: tuple[str, ...] = ()
    confirmation: bool = False
    items: tuple[ItemLink, ...] = ()  # every item block's link (in runs or alone), page order
    main_price: float | None = None  # the page's own price (a product's), not a listed item's
    suggestions: tuple[str, ...] = ()  # links offered as other searches ("Did you mean …?")


def _text(node: lxml.html.HtmlElement) -> str:
    return " ".join(" ".join(node.itertext()).split())


def _parse(html: str) -> lxml.html.HtmlElement | None:
    if not html.strip():
        return None
    try:
        return lxml.html.fragment_fromstring(html, create_parent="div")
    except (ParserError, ValueError):
        return None


def _is_card(node: lxml.html.HtmlElement) -> bool:
    """One item block: a few links (title, image, rating), a price, some words — not a whole list."""
    if not isinstance(node.tag, str) or node.tag in _HEADINGS:
        return False
    links = [a for a in node.iter("a", "button") if a.get("name")]
    if not 1 <= len(links) <= 4:
        return False
    text = _text(node)
    return len(text.split()) >= 3 and len(PRICE_TEXT.findall(text)) >= 1


def _price_value(text: str) -> float | None:
    m = PRICE_TEXT.search(text)
    if not m:
        return None
    digits = re.search(r"\d[\d,.]*", m.group(0))
    raw = digits.group(0).rstrip(".,") if digits else ""
    if re.search(r",\d{2}$", raw) and "." not in raw:  # "12,50" (comma decimals)
        raw = raw.replace(",", ".")
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def _events(node: lxml.html.HtmlElement, out: list[tuple[str, str, str]]) -> None:
    """The page in reading order: ("control", name, own text), ("text", "", words), ("stop", "", "")."""
    if not isinstance(node.tag, str):
        return
    name = node.get("name")
    if name and node.tag in ("a", "button", "input", "select"):
        out.append(("control" if node.tag == "a" else "input", name, _text(node)))
    else:
        if node.tag == "h1":
            out.append(("stop", "", ""))
        if node.text and node.text.strip():
            out.append(("text", "", node.text))
        for child in node:
            _events(child, out)
    if node.tail and node.tail.strip():
        out.append(("text", "", node.tail))


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]{2,}", PRICE_TEXT.sub(" ", text))


# Links that act on the page or its item rather than naming an item.
_NOT_ITEM = re.compile(r"^\s*[\d,.]+\s*\+?\s*\w*\s*$|\b(?:reviews?|ratings?|stars?|bids?|watch\w*|share|save|compare|"
                       r"sign in|log in|help|answered questions|out of 5)\b", re.I)


_SUGGEST = re.compile(r"did you mean|search instead for|showing results for|related searches|similar searches", re.I)


def _suggestions(root: lxml.html.HtmlElement) -> list[str]:
    """Links offered as other searches ("Did you mean boots?"): neither items nor departments."""
    events: list[tuple[str, str, str]] = []
    _events(root, events)
    out: list[str] = []
    for i, (kind, name, _own) in enumerate(events):
        if kind == "control" and any(k == "text" and _SUGGEST.search(t) for k, _, t in events[max(0, i - 2):i]):
            out.append(name)
    return out


def _names_item(own: str) -> bool:
    if not _words(own) or _NOT_ITEM.search(own):
        return False
    # A facet such as "$25 to $50" or "Under $25" is only a price with a word around it.
    return not PRICE_TEXT.search(own) or len(_words(own)) >= 3


def _main_price(root: lxml.html.HtmlElement, items: Sequence[ItemLink]) -> float | None:
    """The page's own price: the first after the title heading (h1), else the first not in an item."""
    events: list[tuple[str, str, str]] = []
    _events(root, events)
    item_names = {i.name for i in items}
    after_h1 = any(kind == "stop" for kind, _, _ in events)
    seen_h1, in_item = False, False
    for kind, name, text in events:
        if kind == "stop":
            seen_h1 = True
        elif kind in ("control", "input"):
            in_item = name in item_names
        elif (seen_h1 or not after_h1) and not in_item:
            price = _price_value(text)
            if price is not None:
                return price
    return None


def _items(root: lxml.html.HtmlElement) -> list[ItemLink]:
    """Every item's link: a link followed by a price before the next control, in page order.

    Reduced pages flatten item wrappers (a result is a heading link, then a rating and a price
    as siblings), so items are found in reading order rather than by container. Breadcrumbs,
    "did you mean" suggestions, category tiles and facets are followed by no price of their own
    (or are only a price, like "$25 to $50"), so they are never items, whatever their names say;
    the page's own title heading (h1) ends any item before it.
    """
    events: list[tuple[str, str, str]] = []
    _events(root, events)
    out: list[ItemLink] = []
    seen: set[str] = set()
    for i, (kind, name, own) in enumerate(events):
        if kind != "control" or name in seen or not _names_item(own):
            continue
        parts = [own]
        for kind2, _name2, text2 in events[i + 1:]:
            if kind2 != "text":
                break
            parts.append(text2)
        text = " ".join(" ".join(parts).split())
        price = _price_value(text)
        if price is None or len(text.split()) < 3:
            continue
        seen.add(name)
        out.append(ItemLink(name=name, text=text, price=price))
    return out


def _card_runs(root: lxml.html.HtmlElement) -> list[int]:
    """Lengths of runs of consecutive sibling cards (>= 3) anywhere in the tree.

    Reduced pages flatten wrappers, so the shelves of a home page end up as siblings split only
    by their headings: a run ends at any sibling that is not a card.
    """
    runs: list[int] = []
    for parent in root.iter():
        if not isinstance(parent.tag, str):
            continue
        n = 0
        for child in parent:
            if _is_card(child):
                n += 1
                continue
            if n >= 3:
                runs.append(n)
            n = 0
        if n >= 3:
            runs.append(n)
    return runs


def _main_heading(root: lxml.html.HtmlElement) -> str:
    for level in _HEADINGS[:3]:
        for h in root.iter(level):
            text = _text(h)
            if text and not text.lower().startswith("instruction"):
                return text
    return ""


def _label(el: Element) -> str:
    return control_label(el.name, el.text)


def classify(page: PageView) -> PageClass:
    """The page's type, decided in a fixed order of precedence (most specific first).

    A pure function of the title, the simplified HTML and the element table, remembered for the
    last pages seen: one step's page is classified by the shopper, the purchase guard, the report
    and the realism block, and parsing it is the expensive part (~10 % of an A/B run's Python).
    """
    return _classify(page.title, page.simplified_html, tuple(page.elements))


@lru_cache(maxsize=256)
def _classify(title: str, simplified_html: str, elements: tuple[Element, ...]) -> PageClass:
    """:func:`classify` on the page's three parts (hashable, so the result can be remembered).

    Order matters: a product page also lists "customers also viewed" items (a listing's shape),
    and a checkout page shows an order summary of cart lines, so purchase steps and the product's
    buy box are checked before repeated blocks.
    """
    root = _parse(simplified_html)
    text = _text(root) if root is not None else ""
    heading = _main_heading(root) if root is not None else ""
    headings = [_text(h) for h in root.iter(*_HEADINGS)] if root is not None else []
    runs = _card_runs(root) if root is not None else []
    items = tuple(_items(root)) if root is not None else ()
    if not runs and len(items) >= 3:  # flattened result lists: the items are the run
        runs = [len(items)]
    prices = len(PRICE_TEXT.findall(text))
    live = [el for el in elements if not el.disabled]
    clickables = [el for el in live if el.kind == "clickable"]
    inputs = [el for el in live if el.kind == "input"]
    buy = [el.name for el in clickables
           if (ADD_TO_CART.search(_label(el)) or BUY_NOW.search(_label(el)) or BID.search(_label(el)))
           and not _NOT_BUY.search(_label(el))]
    cues = sorted({m.group(0).lower() for m in _RESULT_CUE.finditer(" ".join(headings) + " " + text[:3000])})
    sortable = any(_SORT.search(_label(el)) for el in live if el.kind in ("clickable", "select"))
    paged = any(is_next_page(el) for el in clickables)
    confirmation = bool(ORDER_CONFIRMATION.search(title) or ORDER_CONFIRMATION.search(heading))
    base = dict(heading=heading, prices=prices, buy_controls=tuple(buy), item_blocks=max(runs, default=0),
                item_runs=len(runs), listing_cues=tuple(cues), confirmation=confirmation,
                items=items, main_price=_main_price(root, items) if root is not None else None,
                suggestions=tuple(_suggestions(root)) if root is not None else ())

    def result(kind: PageType, *reasons: str) -> PageClass:
        return PageClass(type=kind, reasons=reasons, **base)

    head_and_title = f"{heading} {title}"
    address_fields = [el for el in inputs if _ADDRESS.search(f"{el.name} {el.text}") and el.input_type != "search"]
    if confirmation:
        return result("checkout", "order confirmation in the heading or title")
    if any(PLACE_ORDER.search(_label(el)) for el in clickables):
        return result("checkout", "a place-order control")
    if len(address_fields) >= 2 and _CHECKOUT_HEAD.search(head_and_title + " " + " ".join(headings)):
        return result("checkout", f"{len(address_fields)} address fields under a checkout heading")
    if _CHECKOUT_HEAD.search(heading) and not buy and not runs:
        return result("checkout", "a checkout heading")
    if any(el.input_type == "password" for el in inputs):
        return result("account", "a password field")
    if _ACCOUNT.search(heading) and not buy:
        return result("account", "a sign-in / account heading")
    if _CART_WORD.search(heading) and (any(CHECKOUT.search(_label(el)) for el in clickables)
                                       or _CART_CUE.search(text)) and len(buy) <= 1:
        return result("cart", "a cart heading with a checkout control or subtotal")
    if buy and len(set(buy)) <= 3 and prices and heading and not _RESULT_CUE.search(heading):
        return result("product", f"a title heading, a price and a buy control ({buy[0]})")
    disclosure = [el.name for el in clickables if _BUY_DISCLOSURE.search(_label(el))]
    if disclosure and base["main_price"] is not None and heading and not _RESULT_CUE.search(heading):
        return result("product", f"a title heading, the page's own price and buying options behind "
                                 f"a disclosure ({disclosure[0]})")
    if cues and (runs or prices or "no " in " ".join(cues) or "did you mean" in cues):
        return result("listing", f"result-count wording ({cues[0]})")
    if runs and (sortable or paged):
        return result("listing", "repeated item blocks with sort or pagination controls")
    if len(runs) >= 2 or (runs and any(_HOME_HEAD.search(h) for h in headings)):
        return result("home", f"{len(runs)} shelves of item blocks")
    if runs:
        return result("listing", f"{max(runs)} repeated item blocks with links and prices")
    if sum(1 for h in headings if _HOME_HEAD.search(h)) >= 1 and len(clickables) >= 8:
        return result("home", "promotional section headings and navigation")
    return result("other", "no product, listing, cart, checkout or account evidence")


#: A product's buy box folded away ("More buying options", "See all buying choices").
_BUY_DISCLOSURE = re.compile(r"(?:more|other|see\s+all)\s+buying\s+(?:options|choices)|purchase\s+options", re.I)


def is_next_page(el: Element) -> bool:
    """A control that opens the next page of results ("Next", "›", a name ending in ``next``)."""
    return bool(_NEXT.match(el.text or "")) or el.name.rsplit(".", 1)[-1] in ("next", "next_page")


def page_type(page: PageView) -> PageType:
    """Just the type (the funnel and the realism metrics need nothing else)."""
    return classify(page).type


# ---- bot walls ---------------------------------------------------------------------------------
# A page a bot-protection service shows instead of the shop: a challenge ("Just a moment...
# Checking your browser"), a CAPTCHA, or a refusal ("Access Denied", 403). A session that meets
# one measures the shop's protection, not the shopper, so it ends with its own outcome
# (``bot_wall``). Told by what a person reads there, in several languages, and by the CAPTCHA
# providers' frames; the page must also not be a shop page (a T-shirt called "Access Denied"
# with a price and an "Add to cart" is a product, a sign-in form with a CAPTCHA is a sign-in).
_CHALLENGE = re.compile(
    r"just a moment|checking (?:if the site connection is secure|your browser)|"
    r"verify(?:ing)? (?:that )?you(?:'re| are) (?:a )?human|are you (?:a )?(?:robot|human)|i'?m not a robot|"
    r"attention required|pardon our interruption|press (?:&|and) hold|unusual traffic|security check|"
    r"ddos protection|ein(?:en)? moment,? bitte|dass sie ein mensch sind|kein roboter|"
    r"(?:vous|tu) (?:êtes|es) (?:un )?humain|pas un robot|un instant|eres (?:un )?humano|no soy un robot|"
    r"essere umano|non sono un robot", re.I)
_DENIED = re.compile(
    r"access (?:denied|blocked|to this page has been denied)|\b403\b|forbidden|request (?:blocked|rejected)|"
    r"you (?:don'?t|do not) have permission to access|you have been blocked|too many requests|"
    r"zugriff verweigert|accès refusé|acceso denegado|accesso negato", re.I)
_CAPTCHA_FRAME = re.compile(r"recaptcha|hcaptcha|captcha|challenges\.cloudflare|turnstile|arkoselabs|funcaptcha|"
                            r"geetest|datadome|perimeterx", re.I)
_WALL_URL = re.compile(r"/cdn-cgi/challenge|/captcha|_incapsula_resource|/px-captcha|/sorry/index", re.I)
_WALL_MAX_CONTROLS = 12


def bot_wall(page: PageView) -> str | None:
    """Why ``page`` is a bot wall (a challenge, CAPTCHA or access-denied page), None when it is not.

    Reads what every policy reads (title, simplified HTML, element table) and, where the page is
    an :class:`~shop_r1.envs.observation.Observation`, its HTTP status, URL and the frames the
    reducer could not read (a CAPTCHA provider's frame is cross-origin).
    """
    root = _parse(page.simplified_html)
    headings = " ".join(_text(h) for h in root.iter(*_HEADINGS)) if root is not None else ""
    body = _text(root)[:800] if root is not None else ""
    live = [el for el in page.elements if not el.disabled]
    status = getattr(page, "http_status", None)
    url = str(getattr(page, "url", "") or "")
    frames = [u.where for u in getattr(page, "unreadable", ()) if u.kind == "cross_origin_frame"]
    buy = any((ADD_TO_CART.search(_label(el)) or BUY_NOW.search(_label(el))) for el in live if el.kind == "clickable")
    # A shop page offers buying, many controls or an account form; a wall offers one way on, if any.
    shoplike = buy or len(live) > _WALL_MAX_CONTROLS or any(el.input_type == "password" for el in live)
    if shoplike:
        return None
    # A CAPTCHA frame beside fields of one's own is a form that asks for one (contact, sign-up).
    captcha = next((w for w in frames if _CAPTCHA_FRAME.search(w)), None)
    if captcha is not None and not any(el.kind == "input" for el in live):
        return f"a CAPTCHA frame ({captcha})"
    lead = f"{page.title} {headings}"
    # "captcha" alone says it only in a title or heading (a contact form may ask for one in its text).
    m = _CHALLENGE.search(lead) or _CHALLENGE.search(body) or re.search(r"captcha", lead, re.I)
    if m:
        return f"a challenge page ({m.group(0)!r})"
    m = _DENIED.search(lead)
    if m and (status in (401, 403, 429) or len(body.split()) < 80):
        return f"an access-denied page ({m.group(0)!r}" + (f", HTTP {status})" if status else ")")
    if _WALL_URL.search(url) and status is not None and status >= 400:
        return f"a bot-protection URL answering HTTP {status}"
    return None
