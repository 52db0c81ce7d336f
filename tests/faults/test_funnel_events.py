"""What a step achieved is decided once (shop_r1.envs.funnel), and runner, report, realism and the
OPeRA importer agree on the same steps.

A real session through the real runner on the review shop (product, basket, checkout, an order
with --allow-purchase, then back to the shop), then the same steps through the report's session
facts, realism's stages, and -- written out as OPeRA rows and imported -- the importer's trace
and outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.funnel import action_events, page_events, step_events
from shop_r1.simulator.records.opera_import import import_opera, read_rows
from shop_r1.simulator.analysis.realism import _stages
from shop_r1.simulator.analysis.report.facts import session_facts, step_stages
from shop_r1.simulator.records.trace import TraceStep, read_trace
from tests.faults.review_shop import ReviewShop, serve_review_shop

#: Realism names page stages by the page; the report by the funnel event.
REALISM_NAME = {"viewed_product": "product", "reached_checkout": "checkout"}


@pytest.fixture(scope="module")
def shop() -> Iterator[ReviewShop]:
    with serve_review_shop() as s:
        yield s


def test_one_rule_for_actions_and_pages() -> None:
    assert action_events(TypeAndSubmit(name="q", text="scarf"), "", executed=True) == {"searched"}
    assert action_events(TypeAndSubmit(name="q", text="scarf"), "", executed=False) == frozenset()
    assert action_events(Click(name="add_to_basket"), "add to basket Add to basket", executed=True) == {"added_to_cart"}
    # "Buy now" only runs with --allow-purchase (the guard), so an executed one is a purchase, as
    # a place-order button is; a checkout link reaches checkout.
    assert action_events(Click(name="buy_now"), "buy now Buy now", executed=True) == {"purchased"}
    assert action_events(Click(name="place_order"), "place order Place your order", executed=True) == {"purchased"}
    assert action_events(Click(name="checkout"), "checkout Proceed to checkout", executed=True) == {"reached_checkout"}
    assert action_events(Terminate(), "", executed=True) == frozenset()
    assert page_events("product") == {"viewed_product"} and page_events("home") == frozenset()
    assert page_events("checkout", confirmation=True) == {"reached_checkout", "purchased"}
    assert step_events(None, "", executed=False, page_kind="cart", order_placed=True) == {"viewed_cart", "purchased"}


def opera_rows(steps: list[TraceStep]) -> list[dict[str, object]]:
    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    rows = []
    for i, s in enumerate(steps):
        act = s.action
        kind = "click" if isinstance(act, Click) else "input" if isinstance(act, TypeAndSubmit) else "terminate"
        rows.append({"session_id": "review-1", "action_id": i, "timestamp": (t0 + timedelta(seconds=10 * i)).isoformat(),
                     "action_type": kind, "semantic_id": getattr(act, "name", None),
                     "input_text": getattr(act, "text", None), "url": s.url, "simplified_html": s.simplified_html,
                     "page_meta": json.dumps({"title": s.title})})
    return rows


def test_runner_report_realism_and_importer_agree(shop: ReviewShop, run_shop, tmp_path: Path) -> None:
    run = run_shop(f"{shop.url}/", ["Merino scarf", "Add to basket", "Checkout", "Confirm", "Continue shopping"],
                   allow_purchase=True, max_steps=8)
    assert run.outcome == "purchased", run.reason  # the runner's own bookkeeping
    steps = run.trace.steps
    per_step = [step_stages(s) for s in steps]
    # product page + add-to-basket click, basket, review page + the order its button placed, the
    # confirmation page, and the last step (its outcome)
    assert per_step[1] == {"viewed_product", "added_to_cart"}
    assert per_step[3] == {"reached_checkout", "purchased"} and steps[3].events == ["order_placed"]
    assert per_step[4] == {"reached_checkout", "purchased"}
    assert "purchased" in per_step[5]  # (the home page's order link makes the classifier call it a checkout)
    report = set(session_facts(run.trace)[steps[0].session_id].stages)
    assert {"viewed_product", "added_to_cart", "reached_checkout", "purchased"} <= report
    realism = _stages(list(steps))
    assert {REALISM_NAME.get(e, e) for e in report} <= realism
    # The importer, given the same steps as a real log, writes a trace the report reads the same,
    # and decides the same outcome.
    rows = tmp_path / "opera.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in opera_rows(list(steps))))
    import_opera(read_rows(rows), tmp_path / "imported")
    imported = read_trace(tmp_path / "imported")
    assert [step_stages(s) for s in imported.steps] == per_step
    assert imported.outcome("review-1") == "purchased"
