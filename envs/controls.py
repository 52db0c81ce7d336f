"""What shop controls mean, from their words: the one place these patterns live.

The purchase guard (executor), the scripted shopper, the runner's outcome bookkeeping and the
run report all need to recognise "add to cart", "checkout" or "place order" on storefronts they
have never seen. They must agree — a report that counts a purchase the guard did not see as one
would mislead a UX team — so they all match against these patterns.

Matching is done on :func:`control_label`: the element's visible text plus the LAST segment of
its hierarchical name. Earlier segments name the container (``add_to_cart.color.olive`` is a
colour radio inside the add-to-cart form, not the add-to-cart button).
"""

from __future__ import annotations

import re

_SEP = r"[\s_.\-/]*"

ADD_TO_CART = re.compile(rf"add{_SEP}(?:\w+{_SEP})?(?:to{_SEP})?(?:the{_SEP})?(?:cart|basket|bag|trolley)", re.I)
BUY_NOW = re.compile(rf"buy{_SEP}(?:it{_SEP})?now", re.I)
CART_LINK = re.compile(r"(?:^|[\s_.])(?:cart|basket|bag|trolley)(?:$|[\s_.(])", re.I)
CHECKOUT = re.compile(rf"check{_SEP}out|proceed{_SEP}to", re.I)
PLACE_ORDER = re.compile(
    rf"place{_SEP}(?:your{_SEP})?order|(?:complete|submit|confirm){_SEP}(?:your{_SEP})?(?:purchase|order|payment)"
    rf"|pay{_SEP}now|buy{_SEP}and{_SEP}pay",
    re.I,
)
ORDER_CONFIRMATION = re.compile(
    rf"order{_SEP}(?:confirmed|placed|number|received)|thank{_SEP}you{_SEP}for{_SEP}your{_SEP}order", re.I)
SEARCH = re.compile(r"search|query|(?:^|[._\s])(?:q|k|kw|keywords?)(?:$|[._\s])", re.I)
REFINEMENT = re.compile(rf"refine|filter|facet|brand|categor|rating|price{_SEP}band|stars?", re.I)
SORT_LOW_HIGH = re.compile(rf"low{_SEP}(?:to|-){_SEP}high|price{_SEP}(?:ascending|asc)", re.I)
OPTION_GROUP = re.compile(r"option|size|colou?r|style|variant|flavou?r|capacity|pattern", re.I)
PRODUCT_URL = re.compile(r"/(?:products?|dp|items?|itm)(?:/|$|[-_.?])", re.I)
PRICE = re.compile(r"[$€£]\s?(\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?)")


def control_label(name: str, text: str = "") -> str:
    """Words that describe one control: its visible text and its own name segment."""
    return f"{name.rsplit('.', 1)[-1].replace('_', ' ')} {text}".strip()
