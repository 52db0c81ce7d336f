"""Do element names say what a control is? The share of hand-labelled elements whose name's role
word matches what the element does, on real pages, both bundled layouts and the third-party shop.

Why: a policy (and the scripted shopper) chooses by name. A facet named ``…view_product`` or a
protection-plan upsell named ``…add_to_cart.…`` sends it the wrong way, however good the model is.

The sample is fixed and labelled by hand in ``tests/fixtures/names_golden.json``: page → element key
(``tag|text|n``, n-th element with that tag and text, so keys survive renaming) → expected role,
one of ``ROLES``. A name *claims* a role through its role words (``view_product`` → product link,
``add_to_cart`` / ``buy_now`` → add-to-cart, ``search`` → search, ``pagination`` / ``next`` /
``page_2`` → pagination, a ``results`` scope → "an item of a result list"); it matches when it
claims exactly the expected role, or none for a facet / option / other (a facet or an option under
``results`` is not a result). Uniqueness is counted too: duplicate names in the element table and
``name="…"`` values that occur twice in the simplified HTML.

    python bench/names.py            # share per page and overall
    python bench/names.py --json
    python bench/names.py --dump PAGE_ID   # every element key with its name, for labelling
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from playwright.async_api import async_playwright

from shop_r1.envs.chromium import launch_chromium
from shop_r1.envs.observation import Element
from shop_r1.envs.reducer import ReducedPage, ReducerOptions, open_target, reduce_page
from shop_r1.envs.shop.server import run_in_thread

ROOT = Path(__file__).resolve().parents[1]
SHARED_PAGES = ROOT.parent / "shared" / "data" / "pages"
GOLDEN = ROOT / "tests" / "fixtures" / "names_golden.json"
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from third_party_shop import ThirdPartyShop  # noqa: E402  (a test fixture, not a package)

ROLES = ("product_link", "facet", "add_to_cart", "search", "option", "pagination", "other")
BIG = ReducerOptions(token_budget=60_000)

# Role words a name can carry, and the role each claims.
_ROLE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("product_link", re.compile(r"(^|_)view_product(_\d+)?$")),
    ("add_to_cart", re.compile(r"(^|_)(add_to_(cart|bag|basket)|buy_now|buy_it_now)(_|$)")),
    ("search", re.compile(r"^search(_|$)")),  # "search_bar", "search_in"; not "back_to_search"
    ("pagination", re.compile(r"^(pagination(_.*)?|next(_page)?|prev(ious)?(_page)?|page_\d+)$")),
)
_RESULTS = re.compile(r"^results(_\d+)?$")
# A "results" scope says "an item of a result list": fine for what sits in a result card.
_RESULT_ROLES = frozenset({"product_link", "add_to_cart", "pagination", "other"})


def claimed_roles(name: str) -> set[str]:
    found: set[str] = set()
    for seg in name.split("."):
        for role, pattern in _ROLE_WORDS:
            if pattern.search(seg):
                found.add(role)
        if _RESULTS.match(seg):
            found.add("result")
    return found


def matches(name: str, expected: str) -> bool:
    claims = claimed_roles(name)
    if "result" in claims:
        if expected not in _RESULT_ROLES:
            return False
        claims.discard("result")
    if expected in ("facet", "option", "other"):
        return not claims
    return claims == {expected}


def keyed(elements: tuple[Element, ...]) -> Iterator[tuple[str, Element]]:
    """(``tag|text|n``, element): a key that does not depend on the name it is being judged by."""
    seen: Counter[tuple[str, str]] = Counter()
    for el in elements:
        text = " ".join(el.text.split())[:60]
        seen[(el.tag, text)] += 1
        yield f"{el.tag}|{text}|{seen[(el.tag, text)]}", el


def html_duplicates(page: ReducedPage) -> list[str]:
    counts = Counter(re.findall(r'\bname="([^"]+)"', page.simplified_html))
    return sorted(n for n, k in counts.items() if k > 1)


@asynccontextmanager
async def _targets() -> AsyncIterator[list[tuple[str, str]]]:
    """(page id, URL or file) for every page of the sample; the shops run while in use."""
    with ExitStack() as stack:
        targets = [(p.stem, str(p)) for p in sorted(SHARED_PAGES.glob("*.html"))]
        for layout in ("v1", "v2"):
            shop = stack.enter_context(run_in_thread(seed=0, layout=layout))
            targets += [(f"shop_{layout}_home", shop.url + "/"),
                        (f"shop_{layout}_results", shop.url + "/s?k=headphones"),
                        (f"shop_{layout}_product", shop.url + "/dp/{first_product}")]
        third = stack.enter_context(ThirdPartyShop())
        targets += [("third_party_start", third.page("start")), ("third_party_cat", third.page("cat", c="footwear")),
                    ("third_party_find", third.page("find", term="jacket")),
                    ("third_party_item", third.page("item", sku="1003"))]
        yield targets


async def reduce_all() -> dict[str, ReducedPage]:
    out: dict[str, ReducedPage] = {}
    async with _targets() as targets, async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            first_product: dict[str, str] = {}
            for page_id, target in targets:
                if "{first_product}" in target:
                    target = target.replace("/dp/{first_product}", first_product[page_id.rsplit("_", 1)[0]])
                page = await open_target(browser, target)
                reduced = await reduce_page(page, BIG)
                if page_id.startswith("shop_") and page_id.endswith("_results"):  # the product page is the first result's
                    found = re.search(r'href="(/dp/[^"?#]+)"', await page.content())
                    if not found:
                        raise RuntimeError(f"{target}: no product link on the results page")
                    first_product[page_id.rsplit("_", 1)[0]] = found.group(1)
                await page.context.close()
                out[page_id] = reduced
        finally:
            await browser.close()
    return out


@dataclass
class PageScore:
    page: str
    labelled: int
    missing: int
    matching: int
    table_duplicates: int
    html_duplicates: int
    mismatches: list[tuple[str, str, str]]  # (key, name, expected role)


def score(pages: dict[str, ReducedPage], golden: dict[str, dict[str, str]]) -> list[PageScore]:
    scores = []
    for page_id, labels in golden.items():
        page = pages[page_id]
        by_key = dict(keyed(page.elements))
        names = page.names
        s = PageScore(page_id, len(labels), 0, 0, len(names) - len(set(names)), len(html_duplicates(page)), [])
        for key, role in labels.items():
            el = by_key.get(key)
            if el is None:
                s.missing += 1
                s.mismatches.append((key, "<missing>", role))
            elif matches(el.name, role):
                s.matching += 1
            else:
                s.mismatches.append((key, el.name, role))
        scores.append(s)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--dump", metavar="PAGE_ID", help="print every element key and name of one page")
    ap.add_argument("--mismatches", action="store_true", help="list each element whose name does not match")
    args = ap.parse_args()
    if args.dump:
        page = asyncio.run(reduce_all())[args.dump]
        for key, el in keyed(page.elements):
            print(f"{key!r:70} {el.name}")
        print("html duplicates:", html_duplicates(page))
        return
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    scores = score(asyncio.run(reduce_all()), golden)
    total = sum(s.labelled for s in scores)
    good = sum(s.matching for s in scores)
    if args.json:
        print(json.dumps({"share": good / total, "labelled": total, "matching": good,
                          "pages": [asdict(s) for s in scores]}, indent=1))
        return
    for s in scores:
        print(f"{s.page:28} {s.matching:3}/{s.labelled:<3} {s.matching / s.labelled:6.1%}  "
              f"missing {s.missing}  duplicate names: table {s.table_duplicates}, html {s.html_duplicates}")
        if args.mismatches:
            for key, name, role in s.mismatches:
                print(f"    {role:13} {name:60} {key}")
    print(f"{'all':28} {good:3}/{total:<3} {good / total:6.1%}")


if __name__ == "__main__":
    main()
