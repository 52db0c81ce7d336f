"""Generic reading of a reduced page: what a shopper can do here, from names and text alone.

Shop-agnostic on purpose: the scripted shopper and the run report both need to tell a search
box, a product link or an add-to-cart button apart on storefronts they have never seen, so the
rules look at element kinds, names and visible text (in any shop's wording), never at one
shop's markup.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from shop_r1.envs.controls import (  # noqa: F401  (re-exported: the policy's vocabulary)
    ADD_TO_CART,
    BUY_NOW,
    CART_LINK,
    CHECKOUT,
    OPTION_GROUP,
    PLACE_ORDER,
    PRICE,
    REFINEMENT,
    SEARCH,
    SORT_LOW_HIGH,
    control_label,
)
from shop_r1.envs.observation import Element, Observation
from shop_r1.envs.purchase import order_confirmation
from shop_r1.envs.text import tokens


def _label(el: Element) -> str:
    return control_label(el.name, el.text)




_PLACEHOLDER = re.compile(r"^\s*(?:-+|select|choose|pick|please select|select an? \w+|--.*--)\s*$", re.I)


@dataclass
class PageSignals:
    search_input: Element | None = None
    add_to_cart: Element | None = None
    buy_now: Element | None = None
    cart_link: Element | None = None
    checkout: Element | None = None
    place_order: Element | None = None
    sort_low_to_high: Element | None = None
    is_confirmation: bool = False
    products: list[Element] = field(default_factory=list)
    refinements: list[Element] = field(default_factory=list)
    form_inputs: list[Element] = field(default_factory=list)
    option_groups: dict[str, list[Element]] = field(default_factory=dict)


def read_signals(obs: Observation) -> PageSignals:
    sig = PageSignals()
    inputs = [el for el in obs.elements if el.kind == "input" and not el.disabled]
    clickables = [el for el in obs.elements if el.kind == "clickable" and not el.disabled]
    searchy = [el for el in inputs if el.input_type == "search" or SEARCH.search(_label(el))]
    sig.search_input = searchy[0] if searchy else None
    sig.form_inputs = [el for el in inputs if el is not sig.search_input
                       and el.input_type not in ("hidden", "submit", "button", "checkbox", "radio")]
    for el in clickables:
        label = _label(el)
        if sig.place_order is None and PLACE_ORDER.search(label):
            sig.place_order = el
        elif sig.add_to_cart is None and ADD_TO_CART.search(label):
            sig.add_to_cart = el
        elif sig.buy_now is None and BUY_NOW.search(label):
            sig.buy_now = el
        elif sig.checkout is None and CHECKOUT.search(label):
            sig.checkout = el
        elif sig.cart_link is None and CART_LINK.search(label) and not ADD_TO_CART.search(label):
            sig.cart_link = el
        elif sig.sort_low_to_high is None and SORT_LOW_HIGH.search(label):
            sig.sort_low_to_high = el
    sig.is_confirmation = order_confirmation(obs) is not None  # the runner's own test (envs.purchase)
    special = {id(x) for x in (sig.place_order, sig.add_to_cart, sig.buy_now, sig.checkout, sig.cart_link,
                                sig.sort_low_to_high) if x is not None}
    groups: dict[str, list[Element]] = defaultdict(list)
    # Repeated structures (result lists) share one name pattern per item: "<list>.<item>.<control>".
    patterns: dict[tuple[str, str], list[Element]] = defaultdict(list)
    for el in clickables:
        if id(el) in special:
            continue
        parent, _, _leaf = el.name.rpartition(".")
        words = len(el.text.split())
        if parent and OPTION_GROUP.search(parent.rsplit(".", 1)[-1]) and words <= 4:
            if not (el.tag == "option" and _PLACEHOLDER.match(el.text)):  # "Select" is no choice
                groups[parent].append(el)
        elif REFINEMENT.search(parent) and words <= 6:
            sig.refinements.append(el)
        else:
            parts = el.name.split(".")
            if len(parts) >= 3 and words >= 2:
                patterns[(parts[0], parts[-1])].append(el)
    sig.option_groups = {k: v for k, v in groups.items() if len(v) >= 2}
    repeated = [items for items in patterns.values() if len(items) >= 3]
    if repeated:
        # The list whose items carry the longest texts is the product list (titles are long).
        sig.products = max(repeated, key=lambda items: sum(len(e.text.split()) for e in items) / len(items))
    else:
        sig.products = [el for el in clickables if id(el) not in special and el.tag in ("a", "")
                        and len(el.text.split()) >= 4 and el not in sig.refinements]
    return sig


def price_near(obs: Observation, name: str) -> float | None:
    """The first price shown in the element's neighbourhood of the simplified HTML.

    Works on the reduced text rather than the DOM: the policy sees the same text, and results
    lists keep each item's price right after its title in document order.
    """
    html = obs.simplified_html
    pos = html.find(f'name="{name}"')
    if pos < 0:
        return None
    window = html[pos: pos + 1500]
    m = PRICE.search(window)
    if not m:
        return None
    try:
        return float(m.group(1).replace(",", ""))
    except ValueError:
        return None


def main_price(obs: Observation) -> float | None:
    """The product page's own price: the first price after the page's main heading."""
    html = obs.simplified_html
    start = html.find("<h1")
    m = PRICE.search(html, start if start >= 0 else 0)
    return float(m.group(1).replace(",", "")) if m else None


# -- dialogs and overlays ----------------------------------------------------------------------
#
# Live storefronts put a consent wall over the first page and a newsletter or promotion modal over
# later ones; a shopper who does not deal with them clicks links under the overlay that cannot be
# clicked. People answer them in the shop's language, so the words below cover the languages users
# point this at (en/de/fr/es/it/nl). Patterns match whole labels where a word alone would be too
# loose ("OK", "×"); they are read on ``control_label`` (visible text + the name's last segment).

ACCEPT_CONSENT = re.compile(
    r"accept(?:[\s_]+all)?(?:[\s_]+cookies)?|allow[\s_]+(?:all|cookies)|agree(?:[\s_]+and[\s_]+(?:close|continue))?"
    r"|^\s*i[\s_]+agree|got[\s_]+it|alle[\s_]+(?:cookies[\s_]+)?akzeptieren|akzeptieren|zustimmen|einverstanden"
    r"|alle[\s_]+zulassen|tout[\s_]+accepter|accepter|j'accepte|aceptar|accetta|accepteren|toestaan", re.I)
REJECT_CONSENT = re.compile(
    r"reject|decline|\bdeny\b|refuse|only[\s_]+(?:necessary|essential|required)|(?:necessary|essential)[\s_]+only"
    r"|necessary[\s_]+cookies[\s_]+only|nur[\s_]+(?:notwendige|essenzielle|erforderliche)|ablehnen"
    r"|tout[\s_]+refuser|refuser|continuer[\s_]+sans[\s_]+accepter|rechazar|solo[\s_]+necesarias|rifiuta"
    r"|weigeren|alleen[\s_]+noodzakelijke", re.I)
DIALOG_CLOSE = re.compile(
    r"^\s*(?:[×✕✖xX]|close|close[\s_]+(?:dialog|modal|popup|window)|dismiss|no[\s_,]+thanks|not[\s_]+now|maybe[\s_]+later"
    r"|skip|continue[\s_]+shopping|schlie(?:ß|ss)en|nein[\s_,]+danke|sp(?:ä|ae)ter|fermer|non[\s_,]+merci|plus[\s_]+tard"
    r"|cerrar|no[\s_,]+gracias|chiudi|no[\s_,]+grazie|sluiten|nee[\s_,]+bedankt)\s*$", re.I)
SUBSCRIBE = re.compile(r"subscribe|sign[\s_]*up|join|abonnieren|anmelden|s'(?:inscrire|abonner)|suscrib|iscriviti"
                       r"|inschrijven", re.I)
_CONSENT_CUE = re.compile(r"cookie|consent|gdpr|rgpd|datenschutz|privacy|tracking|einwilligung|confidentialit",
                          re.I)
_PROMO_CUE = re.compile(r"newsletter|subscribe|sign[\s_-]*up|discount|\d+\s*%|offer|promo|rabatt|gutschein|inscri|"
                        r"abonn|remise|descuento|sconto|korting|popup|pop_up|modal|overlay", re.I)
_DIALOG_TAG = re.compile(r"""<dialog\b[^>]*\bname=["']([^"']+)["']""", re.I)
_COVERED_ERROR = re.compile(r"covered|intercepts? pointer|obscured|overlay|dialog", re.I)


@dataclass
class Dialog:
    """An open dialog the shopper must answer before the page under it can be used.

    ``kind`` is ``consent`` (a cookie wall), ``newsletter`` (a sign-up or promotion modal) or
    ``other``; the controls are those the shopper may answer it with (None when absent).
    """

    kind: str
    segment: str = ""  # the dialog's own name segment, when the observation marks it
    accept: Element | None = None
    reject: Element | None = None
    close: Element | None = None
    subscribe: Element | None = None
    email: Element | None = None
    evidence: str = ""

    def controls(self) -> list[Element]:
        return [e for e in (self.accept, self.reject, self.close, self.subscribe, self.email) if e is not None]


def read_dialog(obs: Observation, last_error: str = "") -> Dialog | None:
    """The open dialog on this page, or None.

    Evidence, strongest first: the observation's own ``<dialog name=…>`` (its controls are named
    with that segment first) or controls marked ``covered`` (something modal lies over them);
    then consent buttons in plain view (a page whose cookie choice is made shows none); then a
    close control in a container named like a pop-up, or right after a click failed because
    something covered its target. Close buttons alone ("×") are not enough: drawers and menus
    have them too.
    """
    elements = [el for el in obs.elements if not el.disabled and el.kind in ("clickable", "input")]
    marked = _DIALOG_TAG.search(obs.simplified_html)
    segment = marked.group(1) if marked else ""
    any_covered = any(getattr(el, "covered", False) for el in obs.elements)
    if segment:
        own = [el for el in elements if el.name == segment or el.name.startswith(segment + ".")]
        if own:
            elements = own
    elif any_covered:
        elements = [el for el in elements if not getattr(el, "covered", False)]
    clickables = [el for el in elements if el.kind == "clickable"]
    accept = next((el for el in clickables if ACCEPT_CONSENT.search(_label(el))
                   and not REJECT_CONSENT.search(_label(el))), None)
    reject = next((el for el in clickables if REJECT_CONSENT.search(_label(el))), None)
    close = next((el for el in clickables if DIALOG_CLOSE.search(el.text or "")
                  or DIALOG_CLOSE.search(el.name.rsplit(".", 1)[-1].replace("_", " "))), None)
    email = next((el for el in elements if el.kind == "input"
                  and (el.input_type == "email" or re.search(r"e-?mail", _label(el), re.I))), None)
    subscribe = next((el for el in clickables if SUBSCRIBE.search(_label(el)) and el is not close), None)
    where = f"{segment} {' '.join(el.name for el in (accept, reject, close, subscribe) if el is not None)}"
    consent_words = bool(_CONSENT_CUE.search(where) or _CONSENT_CUE.search(obs.simplified_html[:6000]))
    marked_modal = bool(segment) or any_covered
    if (accept is not None or reject is not None) and (consent_words or marked_modal):
        kind = "consent"
    elif close is not None or subscribe is not None:
        promo = bool(_PROMO_CUE.search(where) or (email is not None and subscribe is not None))
        blocked = bool(last_error and _COVERED_ERROR.search(last_error))
        if not (marked_modal or promo or blocked):
            return None
        kind = "newsletter" if promo or email is not None else "other"
    else:
        return None
    evidence = ("the page marks a dialog" if segment else "controls are covered" if any_covered
                else "consent buttons in view" if kind == "consent" else "a pop-up's controls")
    return Dialog(kind=kind, segment=segment, accept=accept, reject=reject, close=close, subscribe=subscribe,
                  email=email, evidence=evidence)


# -- product cards (shops without product pages) ------------------------------------------------

_NAMED_TAG = re.compile(r"""<(\w+)\b[^>]*\bname=["']([^"']+)["'][^>]*>""", re.I)
_FOUND = re.compile(r"^\s*\d+\s+(?:products?|items?|results?)(?:\(s\))?\s+found\s*", re.I)


def _text_before_each(html: str, wanted: set[str]) -> dict[str, str]:
    """For each wanted control, the page's words between the previous named control's end and it."""
    out: dict[str, str] = {}
    last_end = 0
    for m in _NAMED_TAG.finditer(html):
        tag, name = m.group(1).lower(), m.group(2)
        if name in wanted:
            chunk = re.sub(r"<[^>]+>", " ", html[last_end:m.start()])
            out[name] = _FOUND.sub("", " ".join(chunk.split()))
        close = html.find(f"</{tag}>", m.end())
        last_end = close + len(tag) + 3 if close >= 0 and tag not in ("input", "img") else m.end()
    return out


@dataclass
class Card:
    """One product card: its add-to-cart control and the card's words (title, price, sizes)."""

    add: Element
    text: str
    price: float | None = None


def product_cards(obs: Observation) -> list[Card]:
    """Cards that each carry their own add-to-cart control, as on one-page shops.

    A card's words are those of the smallest enclosing block of the simplified HTML that holds
    this one add-to-cart control and no other: the title, the price and any sizes a person
    reads on the card. Two or more such controls make a page of cards; one is a product page's
    buy box, which the product-page rules handle.
    """
    adds = [el for el in obs.elements if el.kind == "clickable" and not el.disabled
            and not getattr(el, "covered", False) and ADD_TO_CART.search(_label(el))]
    if len(adds) < 2:
        return []
    try:
        import lxml.html

        root = lxml.html.fromstring(obs.simplified_html or "<html></html>")
    except Exception:  # noqa: BLE001 - an unparsable page simply has no cards
        return []
    add_names = {el.name for el in adds}
    by_name = {node.get("name"): node for node in root.iter() if isinstance(node.tag, str) and node.get("name")}
    between = _text_before_each(obs.simplified_html, add_names)
    cards: list[Card] = []
    for el in adds:
        node = by_name.get(el.name)
        text = ""
        while node is not None:
            parent = node.getparent()
            if parent is None:
                break
            inside = {n.get("name") for n in parent.iter() if isinstance(n.tag, str)} & add_names
            if len(inside) > 1:
                break
            node = parent
            text = " ".join(node.text_content().split())
        if not text or text == " ".join(el.text.split()):
            # Flattened markup (the reducer dropped the card's box): the words since the previous
            # control are this card's title and price.
            text = between.get(el.name, "")
        # The product a control's name says it acts on ("white_t_shirt_gucci.add_to_cart"), when the
        # card's words do not already say it.
        prefix = el.name.rsplit(".", 2)[-2] if "." in el.name else ""
        if prefix and not tokens(prefix) <= tokens(text):
            text = f"{prefix.replace('_', ' ')} {text}".strip()
        if not text:
            text = el.name.replace("_", " ")
        price_match = PRICE.search(text)
        price = None
        if price_match:
            try:
                price = float(price_match.group(1).replace(",", ""))
            except ValueError:
                price = None
        cards.append(Card(add=el, text=text, price=price))
    return cards
