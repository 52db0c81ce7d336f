"""What one step achieved in the funnel: the one place that decides it.

The runner (is this session a buyer?), the run report and the A/B analysis (funnel bars),
the realism block (this run next to people) and the OPeRA importer (a real log's outcome) all ask
"did this step search, show a product, add to cart, reach checkout, buy?". Decided in four places
they disagreed (the importer counted "Buy now" as a purchase, the runner did not); decided here,
a number in a report means the same wherever it is computed.

A step's events come from two things:

* what its action did, when it executed (:func:`action_events`): a submitted search, a click on an
  add-to-cart, checkout, place-order or "Buy now" control (the purchase guard lets the last two
  through only with ``--allow-purchase``, so an executed one is a purchase);
* the page it was taken on (:func:`page_events`): a listing, product, cart or checkout page as the
  content classifier (:mod:`shop_r1.envs.pagetype`) reads it, or an order confirmation.
"""

from __future__ import annotations

from typing import Literal

from shop_r1.envs.actions import Action, Click, TypeAndSubmit
from shop_r1.envs.controls import ADD_TO_CART, BUY_NOW, CHECKOUT, PLACE_ORDER

FunnelEvent = Literal["searched", "viewed_listing", "viewed_product", "viewed_cart", "added_to_cart",
                      "reached_checkout", "purchased"]
FUNNEL_EVENTS: tuple[FunnelEvent, ...] = ("searched", "viewed_listing", "viewed_product", "viewed_cart",
                                          "added_to_cart", "reached_checkout", "purchased")
#: The page kinds a page event is read from (``shop_r1.envs.pagetype`` types, plus "confirmation").
_PAGE_EVENT: dict[str, FunnelEvent] = {"listing": "viewed_listing", "product": "viewed_product",
                                       "cart": "viewed_cart", "checkout": "reached_checkout"}


def action_events(action: Action | None, label: str, *, executed: bool) -> frozenset[FunnelEvent]:
    """What ``action`` achieved by itself. ``label``: the clicked control's words
    (:func:`shop_r1.envs.controls.control_label`); ``executed``: it ran without error (a refused
    or failed action achieved nothing)."""
    if action is None or not executed:
        return frozenset()
    if isinstance(action, TypeAndSubmit):
        return frozenset({"searched"})
    if not isinstance(action, Click):
        return frozenset()
    events: set[FunnelEvent] = set()
    if ADD_TO_CART.search(label):
        events.add("added_to_cart")
    if PLACE_ORDER.search(label) or BUY_NOW.search(label):
        events.add("purchased")
    elif CHECKOUT.search(label):
        events.add("reached_checkout")
    return frozenset(events)


def page_events(kind: str, *, confirmation: bool = False) -> frozenset[FunnelEvent]:
    """What being on a page of ``kind`` shows (a page type, or "confirmation"); a checkout page
    that is an order confirmation shows a purchase."""
    if confirmation or kind == "confirmation":  # past the checkout, and the order is in
        return frozenset({"reached_checkout", "purchased"})
    event = _PAGE_EVENT.get(kind)
    return frozenset({event}) if event else frozenset()


def step_events(action: Action | None, label: str, *, executed: bool, page_kind: str | None = None,
                confirmation: bool = False, order_placed: bool = False) -> frozenset[FunnelEvent]:
    """Everything one step achieved: its action's events, its page's, and a purchase when the
    runner saw the action lead to an order confirmation (``order_placed``)."""
    events = set(action_events(action, label, executed=executed))
    if page_kind is not None:
        events |= page_events(page_kind, confirmation=confirmation)
    if order_placed:
        events.add("purchased")
    return frozenset(events)


__all__ = ["FUNNEL_EVENTS", "FunnelEvent", "action_events", "page_events", "step_events"]
