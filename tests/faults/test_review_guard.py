"""No order without --allow-purchase on a staging shop whose checkout is a plain review page.

Real Chromium, the real executor and runner, and the shop's own order counter as ground truth.
The review pages' forms post to a path that says nothing and have no address or payment field, so
the guard must refuse by the button's words on a POST form, not by recognising a checkout; the
minor forms (coupon, newsletter, quantity) must still work; and an order the guard cannot see
(``/leaky``) must never pass silently: the runner ends that session as ``order_placed``, the
report says so in red and ``shop-r1 simulate`` exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.browser import BrowserPool, SessionOptions
from shop_r1.envs.observation import Element, Observation
from shop_r1.simulator.cli.main import main
from shop_r1.simulator.analysis.report import build_report
from shop_r1.simulator.records.trace import read_trace
from tests.faults.review_shop import ONE_CLICK, REVIEW, ReviewShop, serve_review_shop


@pytest.fixture(scope="module")
def shop() -> Iterator[ReviewShop]:
    with serve_review_shop() as s:
        yield s


def by_text(obs: Observation, text: str) -> Element:
    found = [el for el in obs.elements if el.text.strip() == text]
    assert found, f"no element with text {text!r} on {obs.url}: {[(e.name, e.text) for e in obs.elements]}"
    return found[0]


async def test_review_pages_in_every_language_place_no_order(shop: ReviewShop, pool: BrowserPool) -> None:
    session = await pool.new_session("review")
    before = shop.counts.orders
    for lang, (_, button) in REVIEW.items():
        obs = await session.reset(f"{shop.url}/review/{lang}")
        result = await session.step({"type": "click", "name": by_text(obs, button).name})
        assert result.error is not None and result.error.code == "purchase_blocked", (lang, result.error)
        # The step's error says which rule refused it: the form's order word, or the phrase itself.
        rule = ("it submits a POST form and its button says" if lang in ("en", "fr", "es", "it", "nl", "pl")
                else "its text")
        assert rule in result.error.message, (lang, result.error.message)
        assert result.observation is not None and result.observation.url == f"{shop.url}/review/{lang}"
    # Enter in a field of the review form submits it too.
    obs = await session.reset(f"{shop.url}/review/de?note=1")
    note = next(el for el in obs.elements if el.kind == "input")
    result = await session.step({"type": "type_and_submit", "name": note.name, "text": "ring twice"})
    assert result.error is not None and result.error.code == "purchase_blocked", result.error
    assert "'Jetzt kaufen'" in result.error.message
    await session.close()
    assert shop.counts.orders == before


async def test_one_click_buy_now_and_order_links_are_refused(shop: ReviewShop, pool: BrowserPool) -> None:
    session = await pool.new_session("one-click")
    before = shop.counts.orders
    for lang, label in ONE_CLICK.items():
        obs = await session.reset(f"{shop.url}/p/scarf?lang={lang}")
        for text in (label, f"{label} (1-Click)"):  # a POST form's button; a script button
            result = await session.step({"type": "click", "name": by_text(obs, text).name})
            assert result.error is not None and result.error.code == "purchase_blocked", (lang, text, result.error)
            assert "one-click" in result.error.message
    obs = await session.reset(shop.url + "/")
    result = await session.step({"type": "click", "name": by_text(obs, "Place order").name})
    assert result.error is not None and result.error.code == "purchase_blocked", result.error
    # A link that merely mentions buying now is navigation.
    result = await session.step({"type": "click", "name": by_text(obs, "Help with buying now and paying later").name})
    assert result.error is None, result.error
    assert result.observation is not None and result.observation.url.endswith("/help/buying")
    await session.close()
    assert shop.counts.orders == before


async def test_minor_forms_still_work(shop: ReviewShop, pool: BrowserPool) -> None:
    session = await pool.new_session("minor")
    paths = shop.counts.paths
    obs = await session.reset(f"{shop.url}/p/hat")
    result = await session.step({"type": "click", "name": by_text(obs, "Add to basket").name})
    assert result.error is None, result.error
    obs = await session.reset(f"{shop.url}/basket")
    coupon = next(el for el in obs.elements if el.kind == "input" and "coupon" in el.name)
    result = await session.step({"type": "type_and_submit", "name": coupon.name, "text": "WINTER10"})
    assert result.error is None, result.error
    obs = await session.reset(f"{shop.url}/basket")
    result = await session.step({"type": "click", "name": by_text(obs, "Update").name})
    assert result.error is None, result.error
    obs = await session.reset(shop.url + "/")
    email = next(el for el in obs.elements if el.kind == "input" and "newsletter" in el.name)
    result = await session.step({"type": "type_and_submit", "name": email.name, "text": "me@example.org"})
    assert result.error is None, result.error
    await session.close()
    for path in ("/basket/add", "/basket/coupon", "/basket/qty", "/subscribe"):
        assert paths[path] >= 1, (path, dict(paths))
    assert {"item": "hat", "qty": "1"}.items() <= shop.counts.posted[0].items()


async def test_with_allow_purchase_each_review_page_places_one_order(shop: ReviewShop, pool: BrowserPool) -> None:
    session = await pool.new_session("buyer", options=SessionOptions(allow_purchase=True))
    for lang, (_, button) in REVIEW.items():
        before = shop.counts.orders
        obs = await session.reset(f"{shop.url}/review/{lang}")
        result = await session.step({"type": "click", "name": by_text(obs, button).name})
        assert result.error is None, (lang, result.error)
        assert shop.counts.orders == before + 1, lang
    await session.close()


def test_an_order_the_guard_missed_ends_the_session_and_fails_the_run(shop: ReviewShop, run_shop, tmp_path: Path
                                                                      ) -> None:
    before = shop.counts.orders
    run = run_shop(f"{shop.url}/leaky", ["Proceed", "Continue shopping"])
    assert shop.counts.orders == before + 1  # the shop's broken button did place it
    assert run.outcome == "order_placed", (run.outcome, run.reason)
    (step,) = run.trace.steps
    assert step.events == ["order_placed"] and step.done and step.outcome == "order_placed"
    assert "order confirmation" in run.reason and "/done/en" in run.reason and "guard missed" in run.reason
    summary = build_report(run.result.run_dir)
    (order,) = summary.unallowed_orders
    assert order.session_id == step.session_id and order.step == 0
    html = (run.result.run_dir / "report.html").read_text()
    assert 'class="alert order-placed"' in html and "1 order(s) placed without --allow-purchase" in html

    # The same order with purchases allowed is recorded on its step and counted as a purchase.
    allowed = run_shop(f"{shop.url}/review/fr", ["Commander", "Continue shopping"], allow_purchase=True)
    assert allowed.outcome == "purchased", (allowed.outcome, allowed.reason)
    assert [s.events for s in allowed.trace.steps] == [["order_placed"], [], []]
    assert [o.allowed for o in build_report(allowed.result.run_dir).orders] == [True]

    # The command a user runs: red, non-zero, the order named in the report.
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["simulate", "--shop", f"{shop.url}/leaky", "--policy", "openai",
                                    "--base-url", shop.llm_url, "--model", "click:proceed", "-n", "1", "-c", "1",
                                    "--max-steps", "3", "--intents", "library", "--out", str(out)],
                             env={"OPENAI_API_KEY": "sk-local"})
    assert res.exit_code == 4, res.output
    assert "placed an order although purchases were not allowed" in res.output
    assert "order(s) placed WITHOUT --allow-purchase" in res.output
    trace = read_trace(out)
    assert [s.outcome for s in trace.steps if s.done] == ["order_placed"]
    assert shop.llm_calls[-1] == "proceed"
