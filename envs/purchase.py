"""Would this action place an order or pay? Decided by meaning, not by a few English words.

Users point shoppers at staging shops with real payment sandboxes, so an order placed by accident
is the worst thing a run can do. Button words alone cannot decide it: "Buy now", "Confirm",
"Commander" or "Jetzt kaufen" place an order on a review page and merely open the checkout on a
product page, while a home-page link "Checkout paynow help" is ordinary navigation. So the guard
weighs three kinds of evidence, any one of which refuses the action:

* the control's form: marked ``data-purchase``, holding payment fields (card number, CVC, IBAN,
  ``autocomplete="cc-*"``), or a POST to an order endpoint (``/place-order``, ``/pay``,
  ``/checkout/complete`` ...);
* the page: a checkout page by :func:`shop_r1.envs.pagetype.classify` (the one page-type
  classifier) or one whose element table holds payment fields — there a POST form other than
  a coupon/search box, and a button saying an order word in any of the supported languages,
  commit the order;
* the form and its words, on any page: a POST form that is not a minor one (search, coupon,
  newsletter, quantity, address lookup) submitted by a button that says an order word in any
  supported language ("Confirm", "Jetzt kaufen", "Commander", "Pay now") is an order. A staging
  shop's review page is often just a title, a total and such a form posting to a path that says
  nothing; the guard must not need to recognise the page as a checkout to refuse it;
* the words: :data:`~shop_r1.envs.controls.PLACE_ORDER` phrases ("Zahlungspflichtig bestellen",
  "注文を確定する") commit an order on any button, and so does "Buy now" in any supported language
  (:data:`~shop_r1.envs.controls.BUY_NOW`): one-click buying places an order from a product page;
  on a link these count only when they are the link's whole text, because a link that merely
  mentions paying is navigation.

A guard can miss (a shop's words nobody listed), so it is not the last line: the runner checks
every page a shopper lands on with :func:`order_confirmation`, and a confirmation after a step
without ``--allow-purchase`` ends the session as ``order_placed`` and fails the run.

The facts come from ``envs/js/executor_prepare.js`` (the live element, read just before acting)
and are validated here once, into :class:`ControlFacts`.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from shop_r1.envs.controls import (
    BUY_NOW,
    MINOR_FIELD,
    ORDER_CONFIRMATION,
    ORDER_WORDS,
    PAYMENT_FIELD,
    PLACE_ORDER,
    PURCHASE_ENDPOINT,
)
from shop_r1.envs.pagetype import PageView, classify


class FieldFacts(BaseModel):
    """One form field as the page names it (type, autocomplete token, name/id/label words)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str = ""
    autocomplete: str = ""
    words: str = ""

    @property
    def payment(self) -> bool:
        return self.autocomplete.startswith("cc-") or bool(PAYMENT_FIELD.search(self.words))

    @property
    def minor(self) -> bool:
        """A coupon, gift-card, newsletter or search field: submitting it is not an order."""
        return self.type == "search" or bool(MINOR_FIELD.search(self.words))


class FormFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    method: str = "get"
    action: str = ""
    purchase: bool = False
    fields: tuple[FieldFacts, ...] = ()
    submit_texts: tuple[str, ...] = ()

    def order_reason(self) -> str | None:
        """Why submitting this form is an order, whatever page it is on; None when it is not."""
        if self.purchase:
            return "its form is marked data-purchase"
        paying = [f.words or f.autocomplete for f in self.fields if f.payment]
        if paying:
            return f"its form holds payment fields ({', '.join(paying[:3])})"
        path = urlsplit(self.action).path
        if self.method == "post" and PURCHASE_ENDPOINT.search(path):
            return f"its form posts to {path}"
        return None

    @property
    def minor(self) -> bool:
        return bool(self.fields) and all(f.minor for f in self.fields)

    @property
    def posts_order(self) -> bool:
        """A POST form that is not a minor one: submitted by an order word, it sends an order."""
        return self.method == "post" and not self.minor


class ControlFacts(BaseModel):
    """The live control the policy named, as far as the purchase guard is concerned."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tag: str
    type: str = ""
    text: str = ""
    href: str = ""
    submits: bool = False
    purchase: bool = False  # data-purchase on the control or its marked container
    form: FormFacts | None = None
    field: FieldFacts | None = None


def purchase_step(seen: PageView | None) -> str | None:
    """Why the page the policy acted on is a purchase step (checkout, review, payment); else None."""
    if seen is None:
        return None
    page = classify(seen)
    if page.type == "checkout" and not page.confirmation:
        return f"a checkout page ({page.reasons[0]})"
    paying = [el.name for el in seen.elements
              if el.kind == "input" and PAYMENT_FIELD.search(f"{el.name.replace('_', ' ')} {el.text}")]
    if paying:
        return f"a page with payment fields ({', '.join(paying[:3])})"
    return None


def page_matters(control: ControlFacts, *, typing: bool) -> bool:
    """Whether the page's type could change the verdict on ``control`` (see :func:`click_reason`,
    :func:`submit_reason`). Classifying a large page costs tens of ms, which a search box or a
    link should not pay."""
    form = control.form
    posts = form is not None and form.method == "post" and not form.minor
    if typing:
        return posts or (form is not None and any(ORDER_WORDS.search(t) for t in form.submit_texts))
    return (control.submits and posts) or bool(ORDER_WORDS.search(control.text))


def whole_phrase(text: str) -> bool:
    """The text is nothing but an order phrase ("Place your order »", "Buy now"), not a sentence
    mentioning one."""
    core = re.sub(r"^[^\w$€£]+|[^\w$€£]+$", "", text.strip())
    return bool(core) and bool(PLACE_ORDER.fullmatch(core) or BUY_NOW.fullmatch(core))


def _order_word(text: str) -> str | None:
    found = ORDER_WORDS.search(text)
    return found.group(0) if found else None


def click_reason(control: ControlFacts, *, navigates: bool, step: str | None) -> str | None:
    """Why clicking ``control`` would place an order; None when it would not.

    ``navigates``: the control is a link to another document (ordinary navigation: never refused
    for what it says unless an order phrase is its whole text). ``step``: see :func:`purchase_step`.
    """
    if control.purchase:
        return "it is marked data-purchase"
    if navigates and control.tag == "a":
        return f"its text {control.text!r} is an order phrase" if whole_phrase(control.text) else None
    form = control.form if control.submits else None
    reason = form.order_reason() if form is not None else None
    if reason:
        return reason
    if PLACE_ORDER.search(control.text):
        return f"its text {control.text!r} places an order"
    if BUY_NOW.search(control.text):
        return f"its text {control.text!r} buys at once (one-click buying places an order)"
    if form is not None and form.posts_order:
        word = _order_word(control.text)
        if word:
            return f"it submits a POST form and its button says {word!r}, an order word"
        if step:
            return f"it submits a form on {step}"
    if step and ORDER_WORDS.search(control.text):
        return f"its text {control.text!r} confirms an order on {step}"
    return None


def submit_reason(control: ControlFacts, *, step: str | None) -> str | None:
    """Why type_and_submit into ``control`` (typing, then Enter) would place an order; else None."""
    if control.field is not None and control.field.payment:
        return "it is a payment field (Enter would submit the payment)"
    form = control.form
    if form is None:
        return None
    reason = form.order_reason()
    if reason:
        return reason
    if step and form.posts_order:
        return f"it submits a form on {step}"
    for text in form.submit_texts:
        word = _order_word(text)
        if form.posts_order and word:
            return f"Enter submits a POST form whose button {text!r} says {word!r}, an order word"
        if PLACE_ORDER.search(text) or BUY_NOW.search(text) or (step and word):
            return f"Enter submits its form's order button {text!r}"
    return None


_TAG = re.compile(r"<[^>]*>")
_HEADING = re.compile(r"<h[1-3]\b[^>]*>(.*?)</h[1-3]>", re.I | re.S)
#: How much of a page's text, from its top, may hold the confirmation ("Thank you for your order"
#: is what a confirmation page says first; a review further down saying "order received" is not one).
CONFIRMATION_TEXT_CHARS = 600


def order_confirmation(page: PageView) -> str | None:
    """What on ``page`` says an order was placed ("title: 'Thank you for your order'"); None when
    nothing does. Read from the title, the headings and the top of the page's text, in every
    supported language (:data:`~shop_r1.envs.controls.ORDER_CONFIRMATION`)."""
    places = [("title", page.title)]
    places += [("heading", _TAG.sub(" ", h)) for h in _HEADING.findall(page.simplified_html)]
    places.append(("page text", _TAG.sub(" ", page.simplified_html)))
    for where, text in places:
        words = " ".join(html.unescape(text).split())
        found = ORDER_CONFIRMATION.search(words[:CONFIRMATION_TEXT_CHARS] if where == "page text" else words)
        if found:
            return f"{where}: {found.group(0)!r}"
    return None
