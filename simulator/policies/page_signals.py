"""Generic reading of a reduced page: what a shopper can do here, from names and text alone.

Shop-agnostic on purpose: the scripted shopper and the run report both need to tell a search
box, a product link or an add-to-cart button apart on storefronts they have never seen, so the
rules look at element kinds, names and visible text (in any shop's wording), never at one
shop's markup.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field

from shop_r1.envs.observation import Element, Observation

from shop_r1.envs.controls import (  # noqa: E402  (re-exported: the policy's vocabulary)
    ADD_TO_CART,
    BUY_NOW,
    CART_LINK,
    CHECKOUT,
    OPTION_GROUP,
    ORDER_CONFIRMATION as CONFIRMATION,
    PLACE_ORDER,
    PRICE,
    REFINEMENT,
    SEARCH,
    SORT_LOW_HIGH,
    control_label,
)

_STOP = set(
    "i im i'm a an the and or for of to in on with want need looking some that is are be it my me "
    "would like please buy get find which who whose also than lower less price dollars dollar under "
    "between about around from this these those has have having can am its also".split()
)


def tokens(text: str) -> set[str]:
    """Lower-cased content words (3+ chars or digits), stop words removed."""
    words = re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))
    return {w for w in words if w not in _STOP and (len(w) > 2 or w.isdigit())}


# Words that only say how to shop, not what: dropped from a typed query.
_GOAL_FILLER = set(
    "looking find want need get buy like would please also should must prefer choose pick ones one them "
    "something some that which with for and the a an in of to my me is are it its size color colour come "
    "price lower less than dollars under between id i'd im i'm am".split()
)
_OWN_INTENT_WORDS = 5  # intents this short are the shopper's own words (OPeRA queries), not a written goal


def intent_kind(intent: str) -> str:
    """``own`` for a shopper's own short need ("Bike bott"), ``goal`` for a written instruction.

    People type differently for the two (OPeRA shoppers' first queries: median 2 words; WebShop
    workers given goals of median 13 words typed a median of 6), so the realism reference and
    the scripted shopper's query both depend on it.
    """
    return "own" if len(intent.split()) <= _OWN_INTENT_WORDS else "goal"


def content_words(intent: str) -> list[str]:
    """The intent's words that describe the item, in order, without filler or the budget."""
    text = re.split(r",?\s*(?:and\s+)?price\s+(?:lower|less)|\bunder\s+\$|\bless than\s+\$", intent, flags=re.I)[0]
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'&-]*", text.lower())
    return [w for w in words if w not in _STOP and w not in _GOAL_FILLER and not re.fullmatch(r"[\d.]+", w)]


# Words that end a short need without naming a kind of product ("gift ideas", "kitchen stuff").
_GENERIC_HEADS = set(
    "gift gifts idea ideas stuff thing things item items product products something options deals "
    "accessories supplies essentials".split()
)
_PREPOSITION = re.compile(r"\b(?:for|with|without|in|under|from|to|of|by|on|that|which)\b", re.I)


def head_word(intent: str) -> str | None:
    """The kind of product a shopper's own short need names: its last content word before any
    preposition ("new computers" -> computers, "shoes for running" -> shoes), or None.

    Only own intents have one (see :func:`intent_kind`): a written goal's noun phrase ("a long
    lasting 6.76 fl oz bottle of l'eau d'issey") is not reliably headed by a word the product's
    title repeats. A generic last word ("gift ideas") names no kind either.
    """
    if intent_kind(intent) != "own":
        return None
    words = content_words(_PREPOSITION.split(intent, maxsplit=1)[0])
    head = words[-1] if words else None
    return None if head is None or head in _GENERIC_HEADS or len(head) < 3 else head


def typo(word: str, rng: random.Random) -> str:
    """One slip of the fingers: a swapped, dropped or doubled letter (never the first one)."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def query_from_intent(intent: str, rng: random.Random | None = None, *, typo_rate: float = 0.0,
                      partial_rate: float = 0.0) -> str:
    """What a person would type for this intent: short, sometimes misspelt or cut off.

    Own intents are typed nearly as they are (they are what the person had in mind); written
    goals are condensed to their head words — 4 to 8 of them, median 6 as WebShop's workers did.
    ``typo_rate`` is per word, ``partial_rate`` the chance the last word is left half-typed
    ("kitchen kni"), as in OPeRA's recorded queries.
    """
    rng = rng or random.Random(0)
    if intent_kind(intent) == "own":
        words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'&.-]*", intent.lower())[:4]
    else:
        words = content_words(intent)[: rng.choice((4, 5, 6, 6, 6, 7, 8))]
    if not words:
        return intent.strip().lower()[:40]
    words = [typo(w, rng) if rng.random() < typo_rate else w for w in words]
    if len(words) > 1 and len(words[-1]) >= 5 and rng.random() < partial_rate:
        words[-1] = words[-1][: max(3, int(len(words[-1]) * rng.uniform(0.5, 0.8)))]
    return " ".join(words)


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
    sig.is_confirmation = bool(CONFIRMATION.search(obs.title) or CONFIRMATION.search(obs.simplified_html[:4000]))
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
