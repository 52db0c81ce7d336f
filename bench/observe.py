"""Benchmark the page reducer against BrowserGym's observation extraction, same pages, same Chromium.

For each page (the recorded eBay and WebShop pages in ../shared/data/pages, plus the bundled
shop's home, results and product pages unless ``--no-shop``) it prints:

* raw tokens (the serialized live DOM) vs our simplified tokens, and the ratio;
* kept / total actionable controls: an independent in-page count of visible (non-empty box, as
  Playwright requires to click), accessibility-exposed controls (links, buttons, inputs,
  selects, textareas, ARIA widget roles, [onclick]) and how
  many of them carry a ``data-sr1-name`` stamp (on themselves or an enclosing named control);
* ms per observation (median of ``--repeat`` runs of ``reduce_page``);
* BrowserGym (browsergym-core) on the same page: the DOM snapshot + merged AXTree extraction
  followed by ``flatten_axtree_to_str`` and ``prune_html(flatten_dom_to_str(...))``, with its
  tokens and ms, and our speed-up over it.

All tokens are SmolLM2 tokens (shop_r1.envs.tokens.TOKENIZER_NAME). Targets: ≤ 5 % of raw tokens with
100 % of actionable controls on the eBay pages; ≥ 10× faster than BrowserGym.

    python bench/observe.py [--repeat 5] [--budget 32000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from playwright.async_api import async_playwright
from playwright.sync_api import sync_playwright
from rich.console import Console
from rich.table import Table

from shop_r1.envs.chromium import launch_chromium, launch_options
from shop_r1.envs.reducer import ReducerOptions, open_target, reduce_page
from shop_r1.envs.shop.server import run_in_thread
from shop_r1.envs.tokens import TOKENIZER_NAME, count_tokens

ROOT = Path(__file__).resolve().parents[1]

SHARED_PAGES = ROOT.parent / "shared" / "data" / "pages"

# An independent definition of "actionable", evaluated in the page after our reducer ran.
COUNT_ACTIONABLE_JS = """() => {
  const sel = 'a[href],button,input:not([type=hidden]),select,textarea,[onclick],[role=button],[role=link],' +
              '[role=tab],[role=menuitem],[role=checkbox],[role=radio],[role=option]';
  let total = 0, kept = 0;
  for (const el of document.querySelectorAll(sel)) {
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    if (el.closest('[aria-hidden="true"]')) continue;
    const r = el.getBoundingClientRect();
    if (r.width * r.height === 0) continue;  // Playwright cannot click an empty box either
    const role = el.getAttribute('role');
    if ((role === 'presentation' || role === 'none') && el.closest('a[href],button,label')) continue;
    total++;
    if (el.closest('[data-sr1-name]')) kept++;
  }
  return [kept, total];
}"""


@dataclass
class Row:
    page: str
    raw_tokens: int
    ours_tokens: int
    ratio: float
    kept: int
    actionable: int
    ours_ms: float
    truncated: bool
    bg_axtree_tokens: int | None = None
    bg_html_tokens: int | None = None
    bg_ms: float | None = None
    speedup: float | None = None


def targets(shop_url: str | None) -> list[tuple[str, str]]:
    pages = [(p.stem, str(p)) for p in sorted(SHARED_PAGES.glob("*.html"))]
    if shop_url:
        pages += [("shop_home", shop_url + "/"), ("shop_results", shop_url + "/s?k=headphones")]
    return pages


async def shop_product_url(browser, shop_url: str) -> str | None:
    page = await open_target(browser, shop_url + "/s?k=headphones")
    href = await page.evaluate("() => { const a = document.querySelector('a[href*=\"/dp/\"]'); return a && a.href; }")
    await page.context.close()
    return href


async def measure_ours(pages: list[tuple[str, str]], repeat: int, budget: int, shop_url: str | None) -> list[Row]:
    rows: list[Row] = []
    options = ReducerOptions(token_budget=budget)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        if shop_url:
            product = await shop_product_url(browser, shop_url)
            if product:
                pages.append(("shop_product", product))
        for label, target in pages:
            page = await open_target(browser, target)
            raw_tokens = count_tokens(await page.content())
            await reduce_page(page, options)  # warm-up (tokenizer load, JIT)
            times, reduced = [], None
            for _ in range(repeat):
                t0 = time.perf_counter()
                reduced = await reduce_page(page, options)
                times.append((time.perf_counter() - t0) * 1000)
            kept, total = await page.evaluate(COUNT_ACTIONABLE_JS)
            s = reduced.stats
            rows.append(Row(label, raw_tokens, s.simplified_tokens, s.simplified_tokens / max(raw_tokens, 1),
                            kept, total, statistics.median(times), s.truncated))
            await page.context.close()
        await browser.close()
    return rows


def _local_route(url: str, body: bytes):
    """Sync twin of shop_r1.envs.reducer.open_target's rules: the file itself, blank images, nothing else.

    (A closure, not default arguments: Playwright passes (route, request) to two-argument handlers.)
    """
    blank_gif = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

    def route(r) -> None:
        if r.request.url.split("#", 1)[0] == url:
            r.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
        elif r.request.resource_type == "image":
            r.fulfill(status=200, content_type="image/gif", body=blank_gif)
        else:
            r.abort("blockedbyclient")

    return route


def measure_browsergym(rows: list[Row], pages: list[tuple[str, str]], repeat: int) -> str | None:
    """BrowserGym's extraction on the same pages (sync Playwright, same Chromium). None if unavailable."""
    try:  # optional, heavy and not a dependency of the project: only this comparison needs it
        from browsergym.core.observation import (_post_extract, _pre_extract, extract_dom_extra_properties,
                                                 extract_dom_snapshot, extract_merged_axtree)
        from browsergym.utils.obs import flatten_axtree_to_str, flatten_dom_to_str, prune_html
    except ImportError as exc:
        return f"browsergym-core is not installed ({exc}); `pip install --no-deps browsergym-core gymnasium pyparsing`"

    by_label = {r.page: r for r in rows}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_options())
        for label, target in pages:
            row = by_label[label]
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            if not target.startswith("http"):
                url = Path(target).resolve().as_uri()
                body = Path(target).read_bytes()
                context.route("**/*", _local_route(url, body))
            else:
                url = target
            page = context.new_page()
            page.goto(url, wait_until="domcontentloaded")
            try:
                page.wait_for_load_state("load", timeout=5000)
            except Exception:
                pass
            times = []
            ax_text = html_text = ""
            for _ in range(repeat + 1):  # first run is the warm-up
                t0 = time.perf_counter()
                _pre_extract(page, lenient=True)
                dom = extract_dom_snapshot(page)
                axtree = extract_merged_axtree(page)
                extra = extract_dom_extra_properties(dom, scale_factor=1.0)
                _post_extract(page)
                ax_text = flatten_axtree_to_str(axtree, extra_properties=extra)
                html_text = prune_html(flatten_dom_to_str(dom, extra_properties=extra))
                times.append((time.perf_counter() - t0) * 1000)
            row.bg_ms = statistics.median(times[1:])
            row.bg_axtree_tokens = count_tokens(ax_text)
            row.bg_html_tokens = count_tokens(html_text)
            row.speedup = row.bg_ms / row.ours_ms if row.ours_ms else None
            context.close()
        browser.close()
    return None


def print_table(rows: list[Row], note: str | None, budget: int, repeat: int) -> None:
    table = Table(title=f"Page observation: ours vs BrowserGym (SmolLM2 tokens, median of {repeat}, budget {budget})")
    for col in ("page", "raw tok", "ours tok", "ours/raw", "actionable kept", "ours ms",
                "BG axtree tok", "BG pruned-html tok", "BG ms", "speed-up"):
        table.add_column(col, justify="left" if col == "page" else "right")
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        ok = r.kept == r.actionable
        table.add_row(r.page, f"{r.raw_tokens:,}", f"{r.ours_tokens:,}" + (" (cut)" if r.truncated else ""),
                      f"{r.ratio:.1%}", f"[{'green' if ok else 'red'}]{r.kept}/{r.actionable}[/]",
                      f"{r.ours_ms:.1f}", fmt(r.bg_axtree_tokens, ","), fmt(r.bg_html_tokens, ","),
                      fmt(r.bg_ms, ".1f"), fmt(r.speedup, ".1f") + ("×" if r.speedup else ""))
    console = Console()
    console.print(table)
    console.print(f"tokenizer: {TOKENIZER_NAME}")
    if note:
        console.print(f"[yellow]BrowserGym not measured:[/] {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="observations per page (median reported)")
    ap.add_argument("--budget", type=int, default=32000,
                    help="reducer token budget (default 32000, Shop-R1's context length: whole eBay pages fit)")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    ap.add_argument("--no-shop", action="store_true", help="skip the bundled shop's pages")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with ExitStack() as stack:
        shop_url = None
        if not args.no_shop:
            shop_url = stack.enter_context(run_in_thread(seed=0, port=0)).url
        pages = targets(shop_url)
        rows = asyncio.run(measure_ours(pages, args.repeat, args.budget, shop_url))
        note = measure_browsergym(rows, pages, args.repeat)
    if args.json:
        print(json.dumps({"tokenizer": TOKENIZER_NAME, "budget": args.budget, "repeat": args.repeat,
                          "browsergym": note or "measured", "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print_table(rows, note, args.budget, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
