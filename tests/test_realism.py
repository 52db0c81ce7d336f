"""The realism block: computed from trace records against the shipped human reference data."""

from __future__ import annotations

import json
import statistics

import pytest

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.personas.library import load_intents
from shop_r1.simulator.analysis.realism import REFERENCE_FILE, load_reference, realism_block, realism_html
from shop_r1.simulator.records.trace import TraceElement, TraceStep

LISTING = ('<h1>3 results for "kettle"</h1><div><a name="r.a">Blue Steel Kettle</a> $19.99</div>'
           '<div><a name="r.b">Red Enamel Kettle</a> $24.99</div><div><a name="r.c">Glass Kettle Pro</a> $31.00</div>')
PRODUCT = '<h1>Blue Steel Kettle</h1><p>$19.99</p><button name="buy.add_to_cart">Add to cart</button>'


def _step(sid: str, i: int, action, html: str = "<p>hello</p>", elements=()) -> TraceStep:
    return TraceStep(run_id="r", session_id=sid, step=i, url="http://127.0.0.1/x", simplified_html=html,
                     action=action, elements=[TraceElement(**e) for e in elements])


def _session(sid: str, query: str) -> list[TraceStep]:
    buy = {"name": "buy.add_to_cart", "kind": "clickable", "text": "Add to cart", "tag": "button"}
    items = [{"name": n, "kind": "clickable", "text": t, "tag": "a"}
             for n, t in (("r.a", "Blue Steel Kettle"), ("r.b", "Red Enamel Kettle"), ("r.c", "Glass Kettle Pro"))]
    return [
        _step(sid, 0, TypeAndSubmit(name="q", text=query)),
        _step(sid, 1, Click(name="r.a"), LISTING, items),
        _step(sid, 2, Click(name="buy.add_to_cart"), PRODUCT, [buy]),
        _step(sid, 3, Click(name="x"), "<h1>Your cart</h1><p>Subtotal $19.99</p><a name='checkout'>Checkout</a>",
              [{"name": "checkout", "kind": "clickable", "text": "Checkout", "tag": "a"}]),
        _step(sid, 4, Terminate()),
    ]


def test_figures_from_steps():
    steps = _session("a", "kettle") + _session("b", "blue steel kettle for my kitchen stove")
    block = realism_block(steps, intents={"a": "kettle", "b": "i want a blue steel kettle for my kitchen stove, "
                                                          "and price lower than 30.00 dollars"})
    assert block["sessions"] == 2 and block["actions"] == 10
    assert block["action_mix"] == {"click": 0.6, "type_and_submit": 0.2, "terminate": 0.2}
    assert block["session_length"]["median"] == 5
    assert block["first_query_words"]["own"]["median"] == 1 and block["first_query_words"]["goal"]["median"] == 7
    # Stages come from page content: the listing and product pages have no /dp/ or /product in their URL.
    assert block["funnel"]["listing"] == 1.0 and block["funnel"]["product"] == 1.0
    assert block["funnel"]["added_to_cart"] == 1.0 and block["funnel"]["cart"] == 1.0
    assert block["funnel"]["purchased"] == 0.0
    items = {i["name"]: i for i in block["items"]}
    mix = items["action_mix"]
    assert mix["reference"] == {"click": 0.863, "type_and_submit": 0.102, "terminate": 0.036}
    assert mix["distance"] == pytest.approx(0.5 * (0.263 + 0.098 + 0.164), abs=1e-4) and mix["met"] is False
    assert items["first_query_words_own"]["distance"] == 1.0 and items["first_query_words_own"]["met"] is True
    assert items["first_query_words_goal"]["distance"] == 1.0 and "WebShop" in items["first_query_words_goal"]["source"]
    assert all(i["source"] for i in block["items"])
    json.dumps(block)  # plain JSON for run.json
    section = realism_html(block)
    items_table = section.split("</table>")[0]  # then the funnel beside people and the repeats per policy
    assert items_table.count("<tr>") == len(block["items"]) + 1 and "0.863" in section and "OPeRA" in section
    # Issue 24: both sessions added to cart and neither bought, next to people's figures, marked
    # as population-level; no action repeats its predecessor; the first queries against the needs.
    people = block["people_funnel"]
    assert people["add_to_cart_rate"]["run"] == 1.0 and people["cart_abandonment_rate"]["run"] == 1.0
    assert people["add_to_cart_rate"]["people_low"] == 0.064 and people["cart_abandonment_rate"]["people"] == 0.7022
    assert "population-level" in section and "Baymard" in section and "70.22%" in section
    assert block["repeated_actions"] == {"run": {"pairs": 8, "repeats": 0, "rate": 0.0}}
    assert items["first_query_rouge_own"]["value"] == {"mean": 1.0, "n": 1}  # typed as intended
    goal = items["first_query_rouge_goal"]
    assert 0 < goal["value"]["mean"] < 1 and goal["met"] is (goal["value"]["mean"] >= 0.69)


def test_reference_matches_the_shipped_sources():
    ref = load_reference()
    own = ref["first_query_words"]["own"]
    lengths = [len(q.split()) for q in load_intents("opera")]
    assert own["n"] == len(lengths) and statistics.median(lengths) == own["median"] == 2
    assert sum(own["histogram"].values()) == len(lengths)
    goals = [len(g.split()) for g in load_intents("webshop")]
    assert statistics.median(goals) == ref["first_query_words"]["goal"]["goal_median_words"] == 13
    assert sum(ref["action_mix"]["value"].values()) == pytest.approx(1.0, abs=0.002)
    assert REFERENCE_FILE.is_file()


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="TraceStep"):
        realism_block([{"action": "click"}])
    empty = realism_block([])
    assert empty["sessions"] == 0 and empty["action_mix"]["click"] == 0.0
