"""The shopper side of storefronts as they really are (issue 24), in real Chromium on real shops
served on 127.0.0.1 (``fixtures.wild_shops``): consent walls and newsletter modals in three
languages (with and without ARIA), a client-rendered one-page shop of product cards, bot walls;
the loop guard and the ``stuck`` outcome; shoppers who do not all buy; the report's
repeated-action rate and funnel beside people.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from fixtures.third_party_shop import ThirdPartyShop
from fixtures.wild_shops import CLIENT_ITEMS, BotWallShop, ClientShop, ConsentShop
from shop_r1.envs.actions import Click, TypeAndSubmit
from shop_r1.envs.controls import control_label
from shop_r1.envs.observation import Element, Observation
from shop_r1.personas.library import load_library
from shop_r1.personas.missions import BUYERS_ONLY, MISSION_MIX, allot_missions, split_mission, with_mission
from shop_r1.personas.sampler import sample
from shop_r1.simulator.loop.loops import STUCK_REPEATS, LoopWatch
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import HistoryItem, PolicyRequest, PolicyResponse
from shop_r1.envs.page_signals import ADD_TO_CART, product_cards, read_dialog
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.agent.prompt import SYSTEM_PROMPT, build_messages
from shop_r1.simulator.analysis.realism import realism_of_run
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.envs.storefront import crawl
from shop_r1.personas.intents import intent_source
from shop_r1.simulator.records.trace import read_trace

SESSIONS = 6


def _run(url: str, out: Path, personas: Sequence, *, steps: int = 15, policy: Policy | None = None,
         concurrency: int = 3):
    cfg = RunConfig(shop_url=url, shoppers=len(personas), concurrency=concurrency, max_steps=steps, seed=3,
                    out_dir=out)
    result = asyncio.run(Runner(cfg, policy or ScriptedPolicy(seed=3), personas).run())
    return result, read_trace(out)


def _adds(step) -> bool:
    """Whether a recorded step clicked an add-to-cart control that went through."""
    if not isinstance(step.action, Click) or step.exec_error is not None:
        return False
    el = step.element(step.action.name)
    return bool(ADD_TO_CART.search(control_label(step.action.name, el.text if el else "")))


def _shop_personas(url: str, seed: int = 3) -> list:
    """Six shoppers with intents drawn from what the shop sells (its crawled catalogue), in the
    default mission mix: some come only to browse, compare or check a price."""
    catalogue = crawl(url)
    return sample(SESSIONS, seed=seed, intent_source=intent_source(catalogue))


# ---- end to end on the wild shops ------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_scripted_shoppers_get_past_consent_walls_and_newsletters(lang: str, tmp_path: Path) -> None:
    with ConsentShop(lang) as shop:
        personas = _shop_personas(shop.url + "/")
        result, trace = _run(shop.url + "/", tmp_path / "run", personas)
        baskets = {sid: list(lines) for sid, lines in shop.baskets.items() if lines}
    assert not trace.problems and len(trace.sessions) == SESSIONS
    reached = [sid for sid, steps in trace.sessions.items() if any("/p/" in s.url for s in steps)]
    assert len(reached) >= 5, (result.outcomes, [p.intent for p in personas])
    assert len(baskets) >= 2, (result.outcomes, [p.intent for p in personas])
    for steps in trace.sessions.values():
        first = steps[0].action
        # The wall is answered first, by a control of the wall itself, in the shop's language.
        assert isinstance(first, Click) and steps[0].element(first.name) is not None, first
        assert steps[0].exec_error is None
        # No shopper fights the page: a failed click is never retried as it was.
        failed = [json.dumps(s.action.to_json()) for s in steps if s.exec_error is not None and s.action]
        assert len(failed) == len(set(failed)), failed
    # Shoppers who came to look, compare or check a price looked and left: no add-to-cart click,
    # and no more baskets than buyers (baskets are kept by the shop's own cookie, not session id).
    missions = [split_mission(p.intent)[0] for p in personas]
    assert "buy" in missions and set(missions) - {"buy"}, missions
    assert len(baskets) <= missions.count("buy")
    for sid, mission in zip(sorted(trace.sessions), missions):
        if mission != "buy":
            assert not any(_adds(s) for s in trace.sessions[sid]), sid


def test_scripted_shoppers_shop_a_client_rendered_page_of_cards(tmp_path: Path) -> None:
    titles = {i.title.lower() for i in CLIENT_ITEMS}
    with ClientShop() as shop:
        personas = _shop_personas(shop.url + "/")
        result, trace = _run(shop.url + "/", tmp_path / "run", personas)
        carts = {sid: list(lines) for sid, lines in shop.carts.items() if lines}
        orders = list(shop.orders)
    assert not trace.problems and len(trace.sessions) == SESSIONS
    intents = [p.intent for p in personas]
    assert sum(any(t.split()[-1] in i.lower() for t in titles) for i in intents) >= 4, intents  # what it sells
    saw_cards = [sid for sid, steps in trace.sessions.items()
                 if any(any(t in s.simplified_html.lower() for t in titles) for s in steps)]
    assert len(saw_cards) >= 5, (result.outcomes, intents)
    assert len(carts) >= 2, (result.outcomes, intents)
    assert orders == []  # checkout is guarded


def test_a_bot_wall_ends_the_session_as_bot_wall(tmp_path: Path) -> None:
    with BotWallShop() as shop:
        result, trace = _run(shop.page("/captcha"), tmp_path / "run", sample(2, seed=1), steps=5)
        product, _ = _run(shop.page("/product"), tmp_path / "product", sample(1, seed=1), steps=2)
    assert [s.outcome for s in result.sessions] == ["bot_wall", "bot_wall"], result.sessions
    assert {trace.outcome(sid) for sid in trace.session_ids} == {"bot_wall"}
    assert all(s.steps == 0 for s in result.sessions)  # turned away before a first step
    # A product page that merely mentions "Access Denied" (a band's T-shirt) is shopped as usual.
    assert [s.outcome for s in product.sessions] != ["bot_wall"], product.sessions


# ---- dialogs on hand-made pages --------------------------------------------------------------------

def _obs(html: str, *elements: tuple[str, str], url: str = "http://127.0.0.1/") -> Observation:
    els = tuple(Element(name=n, kind="input" if n.endswith("email") else "clickable", text=t, tag="button")
                for n, t in elements)
    return Observation(url=url, title="Shop", simplified_html=html, elements=els)


@pytest.mark.parametrize(("accept", "reject"), [
    ("Accept all cookies", "Reject non-essential"),
    ("Alle akzeptieren", "Nur notwendige Cookies"),
    ("Tout accepter", "Continuer sans accepter"),
    ("Aceptar todo", "Rechazar todo"),
])
def test_consent_buttons_are_read_in_several_languages(accept: str, reject: str) -> None:
    obs = _obs(f"<div><p>Cookies privacy</p><button name='a'>{accept}</button><button name='r'>{reject}</button></div>"
               "<a name='shoes'>Shoes</a>", ("a", accept), ("r", reject), ("shoes", "Shoes"))
    dialog = read_dialog(obs)
    assert dialog is not None and dialog.kind == "consent"
    assert dialog.accept is not None and dialog.accept.name == "a"
    assert dialog.reject is not None and dialog.reject.name == "r"


@pytest.mark.parametrize("close", ["×", "Fermer", "No thanks", "Schließen", "✕"])
def test_a_newsletter_modal_is_closed_in_any_wording(close: str) -> None:
    html = ('<dialog name="newsletter"><p>Join our newsletter: 10% off</p></dialog>'
            '<a name="shoes">Shoes</a>')
    obs = _obs(html, ("newsletter.close", close), ("newsletter.subscribe", "Subscribe"), ("shoes", "Shoes"))
    dialog = read_dialog(obs)
    assert dialog is not None and dialog.kind == "newsletter" and dialog.close is not None
    assert dialog.close.name == "newsletter.close"
    persona = sample(1, seed=3, missions=None)[0].with_intent("running shoes")
    (resp,) = asyncio.run(ScriptedPolicy(seed=0).act([PolicyRequest("s", obs, persona=persona)]))
    assert isinstance(resp.action, Click) and resp.action.name in ("newsletter.close",), resp


def test_a_close_button_alone_is_no_dialog() -> None:
    """A drawer's or a menu's "×" is not a pop-up: only pop-up evidence makes it one."""
    obs = _obs("<nav><button name='menu_close'>×</button><a name='shoes'>Shoes</a></nav>",
               ("menu_close", "×"), ("shoes", "Shoes"))
    assert read_dialog(obs) is None
    assert read_dialog(obs, last_error="not_visible: it is covered by <div.overlay>") is not None


def test_the_consent_choice_follows_the_persona() -> None:
    wall = ('<dialog name="cookie_consent"><p>We use cookies</p></dialog><a name="shoes">Shoes</a>')
    obs = _obs(wall, ("cookie_consent.accept_all_cookies", "Accept all cookies"),
               ("cookie_consent.reject_non_essential", "Reject non-essential"), ("shoes", "Shoes"))
    library = load_library()
    private = library.personas[0].model_copy(update={"bio": "I care a lot about my privacy online.",
                                                     "persona_id": "private", "intent": "shoes"})
    (resp,) = asyncio.run(ScriptedPolicy(seed=0).act([PolicyRequest("p", obs, persona=private)]))
    assert isinstance(resp.action, Click) and resp.action.name == "cookie_consent.reject_non_essential"
    choices = set()
    policy = ScriptedPolicy(seed=0)
    for i, p in enumerate(library.personas):
        (resp,) = asyncio.run(policy.act([PolicyRequest(f"s{i}", obs, persona=p.with_intent("shoes"))]))
        assert isinstance(resp.action, Click) and resp.action.name.startswith("cookie_consent.")
        choices.add(resp.action.name)
    assert choices == {"cookie_consent.accept_all_cookies", "cookie_consent.reject_non_essential"}


def test_cards_in_flattened_markup_carry_their_titles_and_prices() -> None:
    html = ("<button name='sizes.m'>M</button><p>2 Product(s) found</p><p>White T-shirt Gucci</p>"
            "<div>$ 10 .90</div><button name='add_to_cart'>Add to cart</button><p>Skater Black Sweatshirt</p>"
            "<div>$ 22 .50</div><button name='add_to_cart_2'>Add to cart</button>")
    obs = _obs(html, ("sizes.m", "M"), ("add_to_cart", "Add to cart"), ("add_to_cart_2", "Add to cart"))
    cards = product_cards(obs)
    assert [c.text.split(" $")[0] for c in cards] == ["White T-shirt Gucci", "Skater Black Sweatshirt"]
    assert [c.price for c in cards] == [10.0, 22.0]


# ---- loop guard and stuck ----------------------------------------------------------------------------

def test_the_scripted_shopper_changes_course_after_two_failures_of_a_kind() -> None:
    html = ("<h1>12 results for shoes</h1>" + "".join(
        f"<div><a name='results.shoe_{i}.view_product'>Trail Running Shoe Model {i}</a> $4{i}.00</div>"
        for i in range(5)) + "<a name='footwear'>Footwear</a><input name='search' type='search'>")
    elements = tuple(Element(name=f"results.shoe_{i}.view_product", kind="clickable",
                             text=f"Trail Running Shoe Model {i}", tag="a") for i in range(5)) + (
        Element(name="footwear", kind="clickable", text="Footwear", tag="a"),
        Element(name="search", kind="input", text="Search", tag="input", input_type="search"))
    obs = Observation(url="http://127.0.0.1/s?k=shoes", title="Shop", simplified_html=html, elements=elements)
    persona = sample(1, seed=3, missions=None)[0].with_intent("trail running shoes")
    policy = ScriptedPolicy(seed=0)
    history: list[HistoryItem] = []
    opened: list[str] = []
    for step in range(4):
        (resp,) = asyncio.run(policy.act([PolicyRequest("s", obs, history=tuple(history), persona=persona,
                                                        step=step)]))
        action = resp.action
        assert action is not None
        if isinstance(action, Click) and action.name.startswith("results."):
            opened.append(action.name)
        # Every click fails as a covered link would, and the page stays as it was.
        history.append(HistoryItem(url=obs.url, simplified_html=obs.simplified_html, action=action.to_json(),
                                   error=f"not_visible: could not click {getattr(action, 'name', '')!r}"))
    assert len(opened) == 2 and len(set(opened)) == 2, opened  # two different items, then no third
    assert all(a["name"] != opened[0] for a in (h.action for h in history[2:]) if a and "name" in a)


class _OneClick(Policy):
    """A policy that clicks one control forever (a real policy, as a stuck model behaves)."""

    name = "one-click"

    def __init__(self, target: str) -> None:
        self.target = target

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        return [PolicyResponse(action=Click(name=self.target), rationale="again") for _ in requests]


def test_a_policy_repeating_a_failing_action_ends_stuck_and_the_report_shows_the_rate(tmp_path: Path) -> None:
    with ThirdPartyShop() as shop:
        result, trace = _run(shop.url, tmp_path / "run", sample(2, seed=3), steps=10,
                             policy=_OneClick("no_such_control"))
    assert [s.outcome for s in result.sessions] == ["stuck", "stuck"], result.sessions
    assert all(len(steps) == STUCK_REPEATS for steps in trace.sessions.values())
    block = realism_of_run(tmp_path / "run")
    assert block["repeated_actions"] == {"one-click": {"pairs": 4, "repeats": 4, "rate": 1.0}}
    items = {i["name"]: i for i in block["items"]}
    assert items["repeated_action_rate"]["value"] == {"one-click": 1.0}
    from shop_r1.simulator.analysis.report import build_report

    build_report(tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Repeated actions per policy" in page and "100.0%" in page
    assert "population-level references" in page and "70.22%" in page and "6.4%–7.9%" in page


def test_loop_watch_counts_only_identical_ineffective_actions() -> None:
    watch = LoopWatch(limit=3)
    a, b = Click(name="x"), Click(name="y")
    assert not watch.note(a, True) and not watch.note(a, True)
    assert not watch.note(b, True)  # another action starts a new run
    assert not watch.note(b, False)  # an effective one ends it
    assert [watch.note(a, True) for _ in range(3)] == [False, False, True]
    with pytest.raises(ValueError):
        LoopWatch(limit=1)


def test_model_prompts_show_failed_actions_and_say_how_to_treat_dialogs() -> None:
    assert "cookie" in SYSTEM_PROMPT and "cannot be clicked" in SYSTEM_PROMPT and "failed" in SYSTEM_PROMPT
    item = HistoryItem(url="http://127.0.0.1/p", simplified_html="<p>page</p>", action={"type": "click", "name": "x"},
                       error="not_visible: could not click 'x': it is covered by <dialog newsletter>")
    user = build_messages("<a name='x'>x</a>", [item], token_budget=10_000)[1]["content"]
    assert "Result: FAILED (not_visible: could not click 'x': it is covered by <dialog newsletter>)" in user
    ok = HistoryItem(url="http://127.0.0.1/p", simplified_html="<p>page</p>", action={"type": "click", "name": "x"})
    assert "FAILED" not in build_messages("<a name='x'>x</a>", [ok], token_budget=10_000)[1]["content"]


# ---- shoppers who do not all buy ----------------------------------------------------------------------

def test_missions_are_allotted_by_quota_and_written_into_the_intent() -> None:
    counts = {m: allot_missions(20, MISSION_MIX, random.Random(1)).count(m) for m in MISSION_MIX}
    assert counts == {"buy": 12, "compare": 3, "price_check": 2, "browse": 3}
    assert split_mission(with_mission("trail running shoes", "browse")) == ("browse", "trail running shoes")
    assert split_mission("looking for a red dress") == ("buy", "looking for a red dress")
    people = sample(20, seed=4)
    assert sum(split_mission(p.intent)[0] == "buy" for p in people) == 12
    # The needs and the people are those of a run of buyers: only the lead-ins differ.
    buyers = sample(20, seed=4, missions=BUYERS_ONLY)
    assert [split_mission(p.intent)[1] for p in people] == [p.intent for p in buyers]
    assert [p.persona_id for p in people] == [p.persona_id for p in buyers]


def test_lookers_leave_without_adding_to_cart_where_buyers_buy(tmp_path: Path) -> None:
    base = sample(4, seed=3, missions=None)
    intents = ["trail running shoes", "just browsing: trail running shoes",
               "comparing options, not buying yet: cast iron skillet", "checking prices, not buying: fleece pullover"]
    personas = [p.with_intent(i) for p, i in zip(base, intents)]
    with ThirdPartyShop() as shop:
        result, trace = _run(shop.url, tmp_path / "run", personas, steps=15)
        bags = [lines for lines in shop.bags.values() if lines]
    outcomes = [e.outcome for e in sorted(result.sessions, key=lambda e: e.session_id)]
    assert outcomes[0] == "added_to_cart" and len(bags) == 1, outcomes  # the buyer buys, no one else
    for sid in sorted(trace.sessions)[1:]:
        steps = trace.sessions[sid]
        assert any(isinstance(s.action, TypeAndSubmit) for s in steps)  # they did look
        assert steps[-1].outcome == "abandoned", [s.rationale for s in steps]


def test_on_a_card_shop_the_shopper_filters_by_size_compares_adds_and_proceeds(tmp_path: Path) -> None:
    """No product pages: the size filter first, then the best card of that size into the cart,
    then checkout, where the shopper stops (purchases are not allowed)."""
    intents = ["black t-shirt in size xl", "white t-shirt in size m"]
    personas = [p.with_intent(i) for p, i in zip(sample(2, seed=3, missions=None), intents)]
    with ClientShop() as shop:
        result, trace = _run(shop.url + "/", tmp_path / "run", personas, steps=8, concurrency=2)
        added = sorted(i for lines in shop.carts.values() for i in lines)
        orders = list(shop.orders)
    by_id = {i.id: i for i in CLIENT_ITEMS}
    assert [e.outcome for e in result.sessions] == ["added_to_cart", "added_to_cart"], result.sessions
    assert len(added) == 2 and orders == []
    for (sid, steps), intent in zip(sorted(trace.sessions.items()), intents):
        size = intent.rsplit(" ", 1)[-1].upper()
        first = steps[0].action
        assert isinstance(first, Click) and first.name.endswith(f".{size.lower()}"), first  # the filter
        adds = [s for s in steps if _adds(s)]
        assert len(adds) == 1 and "Comparing the" in adds[0].rationale
        assert any("checkout" in s.url for s in steps)  # proceeded; the checkout page ended it
    # One black T-shirt made in XL and one white one made in M went into the carts.
    items = [by_id[i] for i in added]
    assert any("black" in i.title.lower() and "XL" in i.sizes for i in items), items
    assert any("white" in i.title.lower() and "M" in i.sizes for i in items), items
