"""Hostile text comes out escaped: the bundled shop's pages (Jinja2 templates, autoescape on) and
``ab.html``. A product name, a search query, cart and order text, and every free-text field of an
A/B result carry a script tag and an attribute break-out; the raw forms must not appear, the
escaped forms must (so a page that dropped the text would fail too)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from shop_r1.envs.shop import pages
from shop_r1.envs.shop.catalog import SearchRequest, build_catalog
from shop_r1.envs.shop.server import CartLine, Order, Shop
from shop_r1.simulator.analysis.ab.analysis import ABResult, ArmInfo, DivergenceRow, ExitChange, PairInfo
from shop_r1.simulator.analysis.ab.html import render_ab_html
from shop_r1.simulator.analysis.ab.stats import Metric, SegmentTest

HOSTILE = '<script>alert(1)</script>"onmouseover=alert(2)'
RAW = ("<script>alert", '"onmouseover=')


def assert_escaped(text: str, quote: str = "&quot;") -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} is in the page unescaped"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert f"{quote}onmouseover=alert(2)" in text


CATALOG = build_catalog(0)


@pytest.mark.parametrize("layout", sorted(pages.LAYOUTS))
@pytest.mark.parametrize("variant", ["control", "hidden-add-to-cart"])
def test_shop_pages_escape_a_hostile_product_name(layout: str, variant: str) -> None:
    real = next(p for p in CATALOG.products if p.sizes and len(p.colors) > 1)
    evil = dataclasses.replace(real, title=HOSTILE, brand=HOSTILE, description=HOSTILE, features=(HOSTILE,),
                               attributes=((HOSTILE, HOSTILE),), colors=(real.colors[0], HOSTILE))
    ctx = pages.PageContext(layout=pages.get_layout(layout), catalog=CATALOG, query=HOSTILE,
                            variant=pages.get_variant(variant))
    related = Shop(catalog=CATALOG, layout=ctx.layout).related[real.id]
    assert_escaped(pages.render_product(ctx, evil, (evil, *related), error=HOSTILE,
                                        chosen={"size": HOSTILE, "color": HOSTILE}))
    result = CATALOG.search(SearchRequest(query="shirt"))
    result = dataclasses.replace(result, products=[evil, *result.products[:3]], brands=[(HOSTILE, 1)])
    view = pages.ResultsPage(result=result, products=result.products, page=1, pages=2, page_size=4,
                             params={ctx.layout.search_param: "shirt", "brand": HOSTILE})
    assert_escaped(pages.render_results(ctx, view))
    lines = [CartLine(evil.id, HOSTILE, 1, {"color": HOSTILE}, evil.price_cents)]
    assert_escaped(pages.render_cart(ctx, lines))
    assert_escaped(pages.render_checkout(ctx, lines, values={"name": HOSTILE}, errors={"name": HOSTILE}))
    order = Order("114-1", "sid", tuple(lines), evil.price_cents, {"name": HOSTILE, "email": HOSTILE})
    assert_escaped(pages.render_order(ctx, order))
    assert_escaped(pages.render_error(ctx, 404, HOSTILE, HOSTILE))


def test_shop_escapes_a_hostile_search_query_over_http(shop_url: str) -> None:
    with httpx.Client(base_url=shop_url) as client:
        r = client.get("/s", params={"k": HOSTILE})
        assert r.status_code == 200
        assert_escaped(r.text)  # in the title, the summary, the no-results note and the search box
        assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;onmouseover=alert(2)"' in r.text


def test_ab_html_escapes_hostile_text(tmp_path: Path) -> None:
    for arm in ("a", "b"):
        (tmp_path / arm).mkdir()
        (tmp_path / arm / "trace.jsonl").write_text("", encoding="utf-8")

    def arm_info(arm: str) -> ArmInfo:
        return ArmInfo(target=HOSTILE, url=f"http://127.0.0.1/?q={HOSTILE}", run_dir=str(tmp_path / arm),
                       run_id=HOSTILE, sessions=1, outcomes={})

    metric = Metric(kind="rate", n=1, a=0.5, b=0.25, diff=-0.25, ci95=(-0.5, 0.1), p_value=0.5, mde=None,
                    method=HOSTILE)
    result = ABResult(
        design="paired", shoppers=1, a=arm_info("a"), b=arm_info("b"), metrics={"added_to_cart": metric},
        segments=[SegmentTest(field=HOSTILE, value=HOSTILE, metric="added_to_cart", n=1, a=1.0, b=0.0, diff=-1.0,
                              ci95=(-1.0, 0.0), p_value=1.0, p_holm=1.0)],
        divergence=[DivergenceRow(kind=HOSTILE, pairs=1, share=1.0, a_actions=[HOSTILE], b_actions=[HOSTILE],
                                  pair_ids=["p1"])],
        exit_changes=[ExitChange(kind=HOSTILE, a_exits=1, a_visits=1, b_exits=0, b_visits=1, a_rate=1.0, b_rate=0.0,
                                 diff=-1.0, pair_ids=["p1"], sessions={})],
        pairs=[PairInfo(pair_id=HOSTILE, a_session="s1", b_session="s1", first_divergence=2,
                        divergence_kind=HOSTILE)],
        notes=[HOSTILE],
    )
    text = render_ab_html(result, tmp_path)
    assert_escaped(text, quote="&#34;")  # markupsafe's spelling, as in report.html
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 10  # title, arms, notes, every table
