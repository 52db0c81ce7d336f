"""The scripted shopper on three storefronts in real Chromium: the bundled shop in both layouts
and a third-party shop with other markup conventions. Shoppers must reach product pages (by
content) and carts (as the shop itself records them), type short human-like queries, and never
take a "did you mean" suggestion or a breadcrumb for a product."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fixtures.third_party_shop import ThirdPartyShop
from shop_r1.envs.actions import Click, TypeAndSubmit
from shop_r1.envs.pagetype import classify
from shop_r1.personas.missions import BUYERS_ONLY
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.analysis.realism import realism_of_run
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import observation_from_step, read_trace

TERMS = ["headphones", "shirt", "kitchen", "shoes", "toys", "coffee", "laptop"]
# Intents that fit the third-party shop's catalogue, in the library's two styles (own words,
# written goals), plus one it does not stock at all: that shopper must still browse to products.
THIRD_PARTY_INTENTS = [
    "trail running shoes",
    "i need a waterproof rain jacket in size m for hiking, price lower than 150 dollars",
    "cast iron skillet",
    "organic freeze dried beets",
    "fleece pullover",
    "i want a pour over coffee kettle with a gooseneck spout",
]


def _run(url: str, out: Path, personas, steps: int = 20):
    cfg = RunConfig(shop_url=url, shoppers=len(personas), concurrency=3, max_steps=steps, seed=3, out_dir=out)
    result = asyncio.run(Runner(cfg, ScriptedPolicy(seed=3), personas).run())
    return result, read_trace(out)


def _product_sessions(trace) -> int:
    return sum(any(classify(observation_from_step(s)).type == "product" for s in steps)
               for steps in trace.sessions.values())


def _check_clicks_are_honest(trace) -> None:
    """A click meant to open an item targets an item block of that page, never a suggestion/breadcrumb."""
    for steps in trace.sessions.values():
        for s in steps:
            if not isinstance(s.action, Click):
                continue
            page = classify(observation_from_step(s))
            opening = any(w in s.rationale for w in ("looks promising", "check the details", "closest to what",
                                                     "catches my eye", "looks closer"))
            if opening:
                assert s.action.name in {i.name for i in page.items}, (s.action.name, s.rationale)
            el = s.element(s.action.name)
            if "did you mean" in page.listing_cues and el is not None and el.name not in {i.name for i in page.items}:
                assert not opening


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_bundled_shop_layouts(layout, tmp_path):
    from shop_r1.envs.shop.server import run_in_thread

    # Buyers: this test checks the purchase path (the default mix sends some shoppers only to look).
    personas = sample(6, seed=3, catalog_terms=TERMS, missions=BUYERS_ONLY)
    with run_in_thread(seed=0, port=0, layout=layout) as shop:
        result, trace = _run(shop.url, tmp_path / "run", personas)
        state = shop.state()
    carts = state["carts"]
    assert not trace.problems and len(trace.sessions) == 6
    assert _product_sessions(trace) >= 5
    assert sum(1 for sid in trace.sessions if carts.get(sid)) >= 2, result.outcomes
    assert state["orders"] == []  # no purchase without --allow-purchase
    _check_clicks_are_honest(trace)
    firsts = [next(s.action for s in steps if isinstance(s.action, TypeAndSubmit)) for steps in trace.sessions.values()]
    assert all(1 <= len(a.text.split()) <= 8 for a in firsts), [a.text for a in firsts]
    block = realism_of_run(tmp_path / "run")  # intents from run.json's personas
    assert sum(block["first_query_words"][k]["n"] for k in block["first_query_words"]) == 6
    assert abs(sum(block["action_mix"].values()) - 1) < 1e-3
    assert block["funnel"]["product"] >= 5 / 6 - 1e-9
    assert block["action_mix"]["click"] > block["action_mix"]["type_and_submit"]


def test_third_party_shop(tmp_path):
    personas = [p.with_intent(i) for p, i in zip(sample(6, seed=3), THIRD_PARTY_INTENTS)]
    with ThirdPartyShop() as shop:
        result, trace = _run(shop.url, tmp_path / "run", personas)
        bags = dict(shop.bags)
        orders = list(shop.server.orders)
    assert not trace.problems and len(trace.sessions) == 6
    assert _product_sessions(trace) >= 5, result.outcomes
    assert len([b for b in bags.values() if b]) >= 2, result.outcomes
    assert orders == []  # checkout is guarded: nobody pays without --allow-purchase
    _check_clicks_are_honest(trace)
    # The shopper whose item the shop does not stock never clicks the "Did you mean" link.
    beets = next(sid for sid, p in zip(sorted(trace.sessions), personas) if "beets" in p.intent)
    clicked = {s.action.name for s in trace.sessions[beets] if isinstance(s.action, Click)}
    assert "boots" not in clicked and "jacket" not in clicked


def test_did_you_mean_page_decision():
    """On a zero-results page the shopper reformulates or browses; the suggestion is no product."""
    from shop_r1.envs.reducer import observe

    with ThirdPartyShop() as shop:
        page = observe(shop.page("find", term="organic freeze dried beets"))
    from shop_r1.envs.observation import Observation
    from shop_r1.simulator.records.exchange import PolicyRequest

    obs = Observation(url=page.url, title=page.title, simplified_html=page.simplified_html, elements=page.elements)
    persona = sample(1, seed=3)[0].with_intent("organic freeze dried beets")
    policy = ScriptedPolicy(seed=1)
    req = PolicyRequest(session_id="s-1", observation=obs, persona=persona, step=1)
    policy._state(req).searched = 1  # as if this page answered its first search
    (resp,) = asyncio.run(policy.act([req]))
    assert resp.action is not None and getattr(resp.action, "name", "") != "boots", resp


def test_a_viewed_product_is_known_by_its_title_under_other_trimmings() -> None:
    from shop_r1.simulator.agent.policies.scripted import _same_product

    title = "Pedigree GM-7000XS4 Grain-Free Salmon Dog Food, 24 lb"
    assert _same_product("Pedigree GM-7000XS4 Grain-Free Salmon … $41.99 ★★★★☆ 388", title)
    assert not _same_product("Purina PU8017 Grain-Free Salmon Dog Food $39.99", title)
    assert not _same_product("Dog Food", "Dog Food Bowl")  # too few words to tell


@pytest.mark.parametrize(("intent", "head"), [
    ("new computers", "computers"),
    ("shoes for running", "shoes"),
    ("Kitchen knife set", "set"),
    ("gift ideas for dad", None),  # names no kind of product
    ("i need a long lasting 6.76 fl oz bottle of l'eau d'issey, and price lower than 100.00 dollars", None),
])
def test_head_word_of_an_own_intent(intent: str, head: str | None) -> None:
    from shop_r1.personas.intent_words import head_word

    assert head_word(intent) == head


def test_an_item_sharing_only_a_qualifier_with_the_intent_does_not_fit() -> None:
    from shop_r1.simulator.records.exchange import PolicyRequest
    from shop_r1.simulator.agent.policies.scripted import _fit
    from shop_r1.envs.observation import Observation

    policy = ScriptedPolicy(seed=0)
    persona = sample(1, seed=3)[0].with_intent("new computers")
    st = policy._state(PolicyRequest(session_id="s", observation=Observation(url="http://127.0.0.1/", title="", simplified_html="", elements=()),
                                     persona=persona))
    assert _fit(st, "New Balance 574 Sneaker $79.99") == 0.0
    assert _fit(st, "Lenovo IdeaCentre desktop computer $499") > 0.34  # the plural's singular counts
    assert _fit(st, "New Lenovo computer") == 1.0


def test_a_shopper_whose_item_is_not_stocked_adds_nothing_to_cart(tmp_path):
    """Seed 7's catalogue has New Balance shoes and no computers: the "new computers" shopper may
    look around, but buys no sneaker as the closest thing to a computer."""
    from shop_r1.envs.shop.server import run_in_thread

    personas = [p.with_intent("new computers") for p in sample(3, seed=3)]
    with run_in_thread(seed=7, port=0, layout="v2") as shop:
        result, trace = _run(shop.url, tmp_path / "run", personas, steps=10)
        carts = shop.state()["carts"]
    assert not trace.problems and len(trace.sessions) == 3
    assert not any(carts.get(sid) for sid in trace.sessions), carts
    for steps in trace.sessions.values():
        # On the first results page (sneakers, no computer) the shopper searches again or browses:
        # it does not open a result that only shares the word "new".
        first = next(i for i, s in enumerate(steps) if isinstance(s.action, TypeAndSubmit))
        results = steps[first + 1]
        page = classify(observation_from_step(results))
        opened = results.action.name if isinstance(results.action, Click) else None
        titles = {i.name: i.text for i in page.items}
        assert opened not in titles or "computer" in titles[opened].lower(), (titles.get(opened), results.rationale)
        # Searching again, it broadens to the kind of product it wants, not the same words reordered.
        queries = [s.action.text for s in steps if isinstance(s.action, TypeAndSubmit)]
        assert all(q.split() != ["computers", "new"] for q in queries), queries
        if len(queries) > 1:
            assert queries[1] == "computers", queries
