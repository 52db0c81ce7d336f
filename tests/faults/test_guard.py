"""The purchase guard by meaning, on the fault shop's checkout pages in twelve button languages.

Real Chromium, real sessions (the guard sees the observation the policy acted on), and the
shop's own order counter as the ground truth: no order without ``allow_purchase``, exactly one
with it, whatever the button says; ordinary navigation that mentions checkout still works.
"""

from __future__ import annotations

import asyncio



from shop_r1.envs.browser import BrowserPool, SessionOptions
from shop_r1.envs.observation import Element, Observation
from tests.faults.fault_shop import ORDER_BUTTONS, FaultShops


def by_text(obs: Observation, text: str) -> Element:
    found = [el for el in obs.elements if el.text.strip() == text]
    assert found, f"no element with text {text!r} on {obs.url}: {[(e.name, e.text) for e in obs.elements]}"
    return found[0]


def card_field(obs: Observation) -> Element:
    return next(el for el in obs.elements if el.kind == "input" and "card" in f"{el.name} {el.text}".lower())


async def test_no_order_without_allow_purchase_in_any_language(shops: FaultShops, pool: BrowserPool) -> None:
    session = await pool.new_session("guarded")
    before = shops.counts.orders
    for lang, label in ORDER_BUTTONS.items():
        for route in ("checkout", "checkout-js"):  # a payment form; a script button on a checkout page
            obs = await session.reset(f"{shops.url}/{route}/{lang}")
            result = await session.step({"type": "click", "name": by_text(obs, label).name})
            assert result.error is not None and result.error.code == "purchase_blocked", (route, lang, result.error)
            assert label in result.error.message or repr(label) in result.error.message
            assert result.observation is not None and result.observation.url == f"{shops.url}/{route}/{lang}"
        # Enter in the card field would submit the payment form too
        obs = await session.reset(f"{shops.url}/checkout/{lang}")
        result = await session.step({"type": "type_and_submit", "name": card_field(obs).name,
                                     "text": "4242 4242 4242 4242"})
        assert result.error is not None and result.error.code == "purchase_blocked", (lang, result.error)
    assert shops.counts.orders == before
    assert shops.counts.paths["/place-order"] == 0


async def test_one_order_each_with_allow_purchase(shops: FaultShops, pool: BrowserPool) -> None:
    session = await pool.new_session("buyer", options=SessionOptions(allow_purchase=True))
    for lang, label in ORDER_BUTTONS.items():
        for route in ("checkout", "checkout-js"):
            before = shops.counts.orders
            obs = await session.reset(f"{shops.url}/{route}/{lang}")
            result = await session.step({"type": "click", "name": by_text(obs, label).name})
            assert result.error is None, (route, lang, result.error)
            # checkout-js posts the order from a script after the click: on a loaded machine the
            # request may land after the step's settle cap, so give it a few seconds to arrive.
            for _ in range(50):
                if shops.counts.orders != before:
                    break
                await asyncio.sleep(0.1)
            assert shops.counts.orders == before + 1, (route, lang)


async def test_navigation_that_mentions_checkout_is_not_refused(shops: FaultShops, pool: BrowserPool) -> None:
    session = await pool.new_session("browsing")
    orders = shops.counts.orders
    obs = await session.reset(shops.url + "/")
    result = await session.step({"type": "click", "name": by_text(obs, "Checkout paynow help").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/help/checkout"
    # A product page's own POST form (add to cart) is shopping, not an order; it lands on checkout.
    obs = await session.reset(shops.url + "/product")
    result = await session.step({"type": "click", "name": by_text(obs, "Add to cart").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/checkout/en"
    # On the checkout page a link back is still navigation.
    obs = await session.reset(shops.url + "/checkout-js/de")
    result = await session.step({"type": "click", "name": by_text(obs, "Back to the shoe").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url == shops.url + "/product"
    assert shops.counts.orders == orders
