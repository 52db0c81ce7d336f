"""Names say what a control is: a hand-labelled sample of elements (tests/fixtures/names_golden.json)
on the shared real pages, both bundled layouts and the third-party shop, scored by bench/names.py.

Why a golden file: whether ``…view_product`` names a product link or a facet can only be judged
by looking at the page, so the judgement was made once by hand and is kept; the reducer is then
held to it, page by page, with real Chromium.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from shop_r1.envs.reducer import observe_target

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_names", ROOT / "bench" / "names.py")
assert _spec and _spec.loader
names = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = names  # its dataclasses look their module up
_spec.loader.exec_module(names)

# The share of labelled elements whose name's role word matches their role, after the scoping fix
# (292/334 = 87.4 % before it); each page is held to its own floor so one page cannot hide behind the rest.
MIN_SHARE = 0.97
MIN_PAGE_SHARE = 0.85


def test_role_words_claimed_by_names() -> None:
    assert names.claimed_roles("results.sony_wh_1000xm5.view_product") == {"result", "product_link"}
    assert names.claimed_roles("add_to_cart.quantity.2") == {"add_to_cart"}
    assert names.claimed_roles("header.search_bar.search_for_anything") == {"search"}
    assert names.claimed_roles("back_to_search") == set()
    assert names.claimed_roles("results.pagination_page_1.4") == {"result", "pagination"}
    assert names.matches("show_results_for.results.4.view_product", "facet") is False
    assert names.matches("refinements.brand.bose", "facet") is True
    assert names.matches("results.x.add_to_cart", "add_to_cart") is True
    assert names.matches("results.add_to_cart.quantity.1", "option") is False


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> dict:
    return asyncio.run(names.reduce_all())


def test_golden_file_is_well_formed() -> None:
    golden = json.loads(names.GOLDEN.read_text(encoding="utf-8"))
    assert len(golden) >= 16 and sum(len(v) for v in golden.values()) >= 300
    for page, labels in golden.items():
        bad = {k: v for k, v in labels.items() if v not in names.ROLES}
        assert not bad, f"{page}: unknown roles {bad}"


def test_names_say_what_controls_are(pages: dict) -> None:
    golden = json.loads(names.GOLDEN.read_text(encoding="utf-8"))
    scores = names.score(pages, golden)
    for s in scores:
        assert s.missing == 0, f"{s.page}: labelled elements no longer found: {s.mismatches}"
        assert s.table_duplicates == 0 and s.html_duplicates == 0, f"{s.page}: duplicate names"
        assert s.matching / s.labelled >= MIN_PAGE_SHARE, f"{s.page}: {s.matching}/{s.labelled}: {s.mismatches}"
    share = sum(s.matching for s in scores) / sum(s.labelled for s in scores)
    assert share >= MIN_SHARE, [m for s in scores for m in s.mismatches]


# The cases the issue measured on storefronts not in the sample, rebuilt in their shape: a listing
# whose first column is a sidebar led by "Show results for", a "Refine by" rating facet drawn with
# star images, results beside it; an item page in repeated columns whose buy box is a form with
# the id "add-to-cart" holding a protection-plan upsell and a quantity select that lists "1" twice.
_STARS = "".join(f'<li class="facet"><a href="/s?r={n}"><img alt="{n} stars" src="data:,"> &amp; up</a></li>'
                 for n in (4, 3, 2, 1))
_CARDS = "".join(f'<div class="card"><img alt="Boot {n}" src="data:,"><a href="/p/{n}">Trail Boot {n}</a>'
                 f'<span>${40 + n}.00</span></div>' for n in range(1, 5))
LISTING = f"""<!doctype html><html><head><title>Boots</title></head><body>
<div class="layout"><div class="col"><h2>Show results for</h2><ul><li><a href="/c/boots">Boots</a></li>
<li><a href="/c/shoes">Shoes</a></li></ul><h2>Refine by</h2><h3>Rating</h3><ul>{_STARS}</ul></div>
<div class="col"><h2>Results</h2>{_CARDS}</div><div class="col"><p>Ad</p></div></div></body></html>"""
ITEM = """<!doctype html><html><head><title>Trail Boot 1</title></head><body>
<div class="row"><div class="col"><img alt="Trail Boot 1" src="data:,"></div>
<div class="col"><h1>Trail Boot 1</h1><span>$41.00</span>
<form id="add-to-cart"><label>Add a 2-year protection plan <input type="checkbox" name="plan"></label>
<label>Quantity <select name="qty"><option value="1">1</option><option value="1b">1</option>
<option value="2">2</option></select></label><button>Add to Cart</button></form></div>
<div class="col"><a href="/help">Help</a></div></div></body></html>"""


async def test_issue_cases_named_for_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "listing.html").write_text(LISTING, encoding="utf-8")
    (tmp_path / "item.html").write_text(ITEM, encoding="utf-8")
    listing = await observe_target(str(tmp_path / "listing.html"), names.BIG)
    item = await observe_target(str(tmp_path / "item.html"), names.BIG)
    by_text = {" ".join(e.text.split()): e.name for e in listing.elements}
    # facets are not products, and the sidebar heading names the sidebar's links only
    stars = [e.name for e in listing.elements if e.text.endswith("stars & up")]
    assert len(stars) == 4 and not any(names.claimed_roles(n) for n in stars), stars
    assert by_text["Boots"].startswith("show_results_for.") and not by_text["Trail Boot 1"].startswith("show_results_for")
    assert all(by_text[f"Trail Boot {n}"].endswith(".view_product") for n in range(1, 5)), by_text
    assert all(names.claimed_roles(by_text[f"Trail Boot {n}"]) == {"result", "product_link"} for n in range(1, 5))
    # the buy box lends add_to_cart to nothing but the button; the item is not a result
    table = {e.name: e for e in item.elements}
    cart = [e for e in item.elements if "add_to_cart" in names.claimed_roles(e.name)]
    assert [e.text for e in cart] == ["Add to Cart"], list(table)
    assert not any(n.startswith("results") for n in table), list(table)
    # one select, two choices labelled "1": two names, in the table and in the HTML alike
    qty = [e.name for e in item.elements if e.tag == "option"]
    assert len(qty) == len(set(qty)) == 3, qty
    assert not names.html_duplicates(item) and all(f'name="{n}"' in item.simplified_html for n in qty)
