"""Run reports computed from a hand-built trace: funnel, outcomes, abandonment, segments, HTML."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from rich.console import Console

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.simulator.analysis.report import build_report, render_console, render_html, summarize, write_html
from shop_r1.simulator.records.trace import TraceWriter, load_run_info, read_trace

BASE = "http://127.0.0.1:8000"
HOME = [{"name": "search_input", "kind": "input", "text": ""},
        {"name": "search_button", "kind": "clickable", "text": "Search"}]
# A listing page: one add-to-cart per item, so it is NOT a product page by its elements.
LISTING = HOME + [
    {"name": f"mug_{i}.add_to_cart", "kind": "clickable", "text": "Add to cart"} for i in range(5)
] + [{"name": "mug_0.view_product", "kind": "clickable", "text": "Red mug"}]
# A product page recognised only by its one add-to-cart control (URL says nothing).
PRODUCT = HOME + [{"name": "buy_box.add_to_basket", "kind": "clickable", "text": "Add to Basket"},
                  {"name": "qty", "kind": "select", "text": "1"}]
CART = [{"name": "proceed_to_checkout", "kind": "clickable", "text": "Proceed to checkout"}]
CHECKOUT = [{"name": "place_order", "kind": "clickable", "text": "Place your order"}]

PERSONAS = [
    {"id": "young-rich", "age": "25-34 years old", "income": "$100,000+"},
    {"id": "young-poor", "age": "25-34 years old", "income": "<script>alert(1)</script>"},
    {"id": "older", "age_band": "55-64", "income": "[bold]$50,000-$74,999"},
]


def _s(w: TraceWriter, sid: str, step: int, url: str, elements: list, action, persona: str, **kw) -> None:
    w.write_step({
        "session_id": sid, "step": step, "persona_id": persona, "url": BASE + url,
        "title": kw.pop("title", "Shop"), "simplified_html": "<main/>", "elements": elements,
        "action": action, "rationale": "because", "timings": {"policy_s": kw.pop("policy_s", 1.0)},
        "tokens": {"prompt": 100, "completion": 10}, **kw,
    })


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    with TraceWriter(run, "report-run", {"policy": "scripted"}, personas=PERSONAS) as w:
        # A: search -> product (by /product URL) -> add to cart -> cart -> checkout -> purchase.
        _s(w, "A", 0, "/", HOME, TypeAndSubmit(name="search_input", text="mug"), "young-rich")
        _s(w, "A", 1, "/search?q=mug", LISTING, Click(name="mug_0.view_product"), "young-rich")
        _s(w, "A", 2, "/product/17", PRODUCT, Click(name="buy_box.add_to_basket"), "young-rich")
        _s(w, "A", 3, "/cart", CART, Click(name="proceed_to_checkout"), "young-rich")
        _s(w, "A", 4, "/checkout", CHECKOUT, Click(name="place_order"), "young-rich",
           done=True, outcome="purchased", end_reason="order placed", policy_s=3.0)
        # B: search -> product page recognised by elements only -> leaves at step 2.
        _s(w, "B", 0, "/", HOME, TypeAndSubmit(name="search_input", text="kettle"), "young-poor")
        _s(w, "B", 1, "/search?q=kettle", LISTING, Click(name="mug_0.view_product"), "young-poor")
        _s(w, "B", 2, "/p?id=4", PRODUCT, Terminate(), "young-poor",
           done=True, outcome="abandoned", end_reason="too expensive")
        # C: a failed search (exec error), an unparsable answer, then out of steps on the listing.
        _s(w, "C", 0, "/", HOME, TypeAndSubmit(name="search_box", text="tea"), "older",
           exec_error={"code": "unknown_name", "message": "no element 'search_box'", "name": "search_box",
                       "suggestions": ["search_input"]})
        _s(w, "C", 1, "/", HOME, None, "older", parse_error={"code": "no_json", "message": "prose"}, raw_output="hmm")
        _s(w, "C", 2, "/", HOME, Click(name="search_button"), "older", done=True, outcome="max_steps")
        # D: add to cart fails (exec error), so not added; a policy error ends it. Unknown persona.
        _s(w, "D", 0, "/item/9", PRODUCT, Click(name="buy_box.add_to_basket"), "ghost",
           exec_error={"code": "not_visible", "message": "covered", "name": "buy_box.add_to_basket"})
        _s(w, "D", 1, "/item/9", PRODUCT, None, "ghost", parse_error={"code": "no_json", "message": "x"},
           done=True, outcome="policy_error")
        # E: crashed mid-session: no final step; checkout reached by title only.
        _s(w, "E", 0, "/x", CHECKOUT, Click(name="elsewhere"), "older", title="Secure Checkout")
        w.write_event("E", "scroll", step=1)
        # F: one decision, then the policy hung: a session_end event carries the outcome.
        _s(w, "F", 0, "/", HOME, Click(name="search_button"), "older")
        w.write_event({"session_id": "F", "step": 1, "persona_id": "older", "event": "session_end",
                       "url": None, "done": True, "outcome": "timeout", "end_reason": "session exceeded 900 s"})
        # G: the browser died before the first decision: known only from its end event.
        w.write_event("G", "session_end", step=0, persona_id="young-rich", outcome="browser_error",
                      end_reason="TargetClosedError")
    return run


def test_summary_of_a_hand_built_trace(run_dir: Path) -> None:
    summary = summarize(read_trace(run_dir), load_run_info(run_dir))
    assert summary.run_id == "report-run" and summary.policy == "scripted"
    assert (summary.sessions, summary.steps, summary.events) == (7, 15, 3)
    assert summary.mean_steps_per_session == pytest.approx(15 / 7)
    assert {k: v for k, v in summary.outcomes.items() if v} == {
        "purchased": 1, "abandoned": 1, "max_steps": 1, "policy_error": 1, "timeout": 1,
        "browser_error": 1, "unfinished": 1}
    funnel = {f.stage: f.sessions for f in summary.funnel}
    assert funnel == {"searched": 2, "viewed_product": 3, "added_to_cart": 1,
                      "reached_checkout": 2, "purchased": 1}
    assert [f.stage for f in summary.funnel] == ["searched", "viewed_product", "added_to_cart",
                                                 "reached_checkout", "purchased"]
    assert summary.funnel[1].rate == pytest.approx(3 / 7)
    # Non-purchasing sessions B, C, D, E, F, G ended at steps 2, 2, 1, 0, 1 (its end event), 0.
    assert summary.abandonment_steps == {0: 2, 1: 2, 2: 2}
    assert summary.parse_errors == {"no_json": 2}
    assert summary.exec_errors == {"unknown_name": 1, "not_visible": 1}
    assert summary.policy_latency.n == 15
    assert summary.mean_policy_latency_s == pytest.approx((14 * 1.0 + 3.0) / 15)
    assert summary.policy_latency.p90_s == 1.0
    assert summary.tokens == {"prompt": 1500, "completion": 150}

    ages = {r.value: r for r in summary.segments["age_band"]}  # OPeRA's `age` stands in for age_band
    assert set(ages) == {"25-34 years old", "55-64", "unknown"}
    assert (ages["25-34 years old"].sessions, ages["25-34 years old"].purchased) == (3, 1)
    assert ages["25-34 years old"].purchase_rate == pytest.approx(1 / 3)
    assert ages["55-64"].sessions == 3 and ages["55-64"].mean_steps == pytest.approx(5 / 3)
    assert ages["unknown"].sessions == 1  # persona "ghost" is not in run.json
    incomes = {r.value: r for r in summary.segments["income"]}
    assert incomes["$100,000+"].cart_rate == 0.5 and incomes["<script>alert(1)</script>"].cart_rate == 0.0

    chosen = summarize(run_dir, segment_by=["id"])  # a path: run.json is found next to the trace
    assert list(chosen.segments) == ["id"] and len(chosen.segments["id"]) == 4
    assert chosen.to_json()["abandonment_steps"] == {"0": 2, "1": 2, "2": 2}


def test_zero_step_run_summarises_to_zeros(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "nothing", personas=PERSONAS):
        pass
    summary = build_report(tmp_path)
    assert (summary.sessions, summary.steps, summary.mean_steps_per_session) == (0, 0, 0.0)
    assert all(f.sessions == 0 and f.rate == 0.0 for f in summary.funnel)
    assert summary.policy_latency.mean_s is None and summary.abandonment_steps == {}
    assert (tmp_path / "report.html").read_text().count("<table>") >= 5


def test_html_report_is_self_contained_and_escaped(run_dir: Path, tmp_path: Path) -> None:
    summary = summarize(run_dir)
    out = write_html(summary, tmp_path / "out" / "report.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "$" not in re.sub(r"\$[\d,]", "", text)
    for title in ("Funnel", "Outcomes", "Abandonment", "By persona age_band", "By persona income",
                  "Errors by code"):
        assert f"<h2>{title}" in text, title
    assert "<td>Reached checkout</td><td class=\"num\">2</td><td class=\"num\">28.6%</td>" in text
    assert "<td>exec</td><td>unknown_name</td><td class=\"num\">1</td>" in text
    images = re.findall(r'<img class="chart" alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">', text)
    assert len(images) == 3
    for data in images:
        svg = base64.b64decode(data).decode()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # Nothing fetched from elsewhere: inline data, or links to a session inside this same page.
    assert not re.search(r'(src|href)="(?!data:|#)', text)


def test_build_report_writes_into_the_run_dir_and_prints(run_dir: Path) -> None:
    console = Console(record=True, width=140, color_system=None)
    summary = build_report(run_dir, console)
    assert (run_dir / "report.html").is_file()
    assert summary.sessions == 7
    printed = console.export_text()
    assert "Funnel" in printed and "Outcomes" in printed and "Errors by code" in printed
    cells = r"[\s│]+"
    assert re.search(rf"Purchased{cells}1{cells}14\.3%", printed)
    assert re.search(rf"Viewed a product{cells}3{cells}42\.9%", printed)
    assert re.search(rf"timeout{cells}1{cells}14\.3%", printed)
    assert "report-run" in printed
    assert "[bold]$50,000-$74,999" in printed  # persona text is shown literally, not as markup


def test_render_console_lists_trace_problems(run_dir: Path) -> None:
    with (run_dir / "trace.jsonl").open("a") as fh:
        fh.write('{"schema_version": "shop-r1.trace/1", "run_id": "rep')  # crash mid-write
    summary = summarize(read_trace(run_dir), load_run_info(run_dir))
    assert len(summary.problems) == 1 and ":19: truncated last line" in summary.problems[0]
    console = Console(record=True, width=200, color_system=None)
    render_console(summary, console)
    assert "truncated last line" in console.export_text()
    assert "truncated last line" in render_html(summary)


def test_report_for_people_exit_pages_paths_and_stage_timing(run_dir: Path) -> None:
    summary = summarize(run_dir)
    exits = {x.kind: x for x in summary.exit_pages}
    # Non-purchasing sessions with steps: C, F end on the home page; B (/p?id=4), D (/item/9) on a
    # product page; E on the checkout page (by its title). G has no steps, A purchased.
    assert [x.kind for x in summary.exit_pages] == ["home", "product", "checkout"]
    assert (exits["home"].exits, exits["home"].visits) == (2, 4)  # A, B, C, F saw the home page
    assert (exits["product"].exits, exits["product"].visits) == (2, 3)  # A, B, D saw a product page
    assert exits["product"].quotes == [("B", "because"), ("D", "because")]
    assert sorted(exits["product"].example_paths) == ["/item/9", "/p"]
    paths = {p.path: p for p in summary.common_paths}
    assert sum(p.sessions for p in summary.common_paths) == 7
    assert paths["home → listing → product → cart → checkout"].carted == 1
    assert paths["home"].example_sessions == ["C", "F"]
    timing = {t.stage: t for t in summary.stage_timing}
    assert (timing["purchased"].sessions, timing["purchased"].median_step) == (1, 4)
    assert (timing["reached_checkout"].sessions, timing["reached_checkout"].median_step) == (2, 1.5)  # A at 3, E at 0
    assert [r.session_id for r in summary.session_index] == ["A", "B", "C", "D", "E", "F", "G"]
    assert "trace" not in summary.to_json() and summary.to_json()["exit_pages"][0]["kind"] == "home"


def test_report_opens_in_chromium_and_every_session_is_one_click_away(run_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    from shop_r1.envs.chromium import launch_options

    build_report(run_dir)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_options())
        page = browser.new_page()
        page.goto((run_dir / "report.html").as_uri())
        links = page.locator('section:has(h2:text-is("Sessions")) table a')
        assert [links.nth(i).inner_text() for i in range(links.count())] == ["A", "B", "C", "D", "E", "F", "G"]
        target = links.nth(2).get_attribute("href")  # session C: an exec error and a parse error
        links.nth(2).click()
        block = page.locator(target)
        assert not block.locator("td.err").first.is_visible()  # collapsed until opened
        block.locator("summary").first.click()
        errors = block.locator("td.err")
        assert "unknown_name" in errors.nth(0).inner_text() and "no_json" in errors.nth(1).inner_text()
        assert block.locator("td.rationale").first.inner_text() == "because"
        block.locator("details.page summary").first.click()
        assert block.locator("details.page pre").first.inner_text() == "<main/>"
        # exit-page quotes link to their sessions too
        quote = page.locator('section:has(h2:text("Exit pages")) blockquote a', has_text="D")
        quote.click()
        assert page.evaluate("location.hash") == "#s-D"
        browser.close()
