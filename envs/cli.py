"""``shop-r1 observe TARGET``: print what a shopper policy would read on a page.

TARGET is an http(s) URL or a local ``.html`` file (loaded with all network blocked). The HTML
format prints the simplified page (highlighted on a terminal, plain when piped) and the size
figures on stderr, so ``shop-r1 observe page.html > out.html`` captures only the page. The JSON
format prints one object with a fixed set of keys for scripts.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.syntax import Syntax

from shop_r1.envs.chromium import BrowserError, ChromiumNotFound
from shop_r1.envs.reducer import ObserveError, ReducerError, ReducerOptions
from shop_r1.envs.reducer import observe as observe_page


@click.command("observe")
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", show_default=True,
              help="html: the simplified page; json: page, elements and stats as one object.")
@click.option("--budget", type=click.IntRange(min=64), default=ReducerOptions.token_budget, show_default=True,
              help="Token budget of the simplified page (SmolLM2 tokens).")
@click.option("--browser-path", type=click.Path(dir_okay=False), default=None,
              help="Chromium executable (default: $SHOP_R1_CHROMIUM, Playwright's, or the system one).")
@click.option("--screenshot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also save a PNG of the viewport to this file.")
def observe_cmd(target: str, fmt: str, budget: int, browser_path: str | None, screenshot: str | None) -> None:
    """Print the simplified page (or JSON) for TARGET, an http(s) URL or a local .html file."""
    options = ReducerOptions(token_budget=budget, count_raw_tokens=True)
    try:
        page = observe_page(target, options, browser_path, screenshot=screenshot)
    except (ObserveError, ReducerError, ChromiumNotFound, BrowserError) as exc:
        raise click.ClickException(str(exc)) from None
    s = page.stats
    if fmt == "json":
        payload = {
            "url": page.url,
            "title": page.title,
            "simplified_html": page.simplified_html,
            "elements": [{"name": e.name, "kind": e.kind, "text": e.text} for e in page.elements],
            "stats": {"raw_bytes": s.raw_bytes, "simplified_bytes": s.simplified_bytes, "raw_tokens": s.raw_tokens,
                      "simplified_tokens": s.simplified_tokens, "ms": s.ms},
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if sys.stdout.isatty():
        Console().print(Syntax(page.simplified_html, "html", word_wrap=True, theme="ansi_dark"))
    else:
        click.echo(page.simplified_html, nl=False)
    ratio = s.simplified_tokens / s.raw_tokens if s.raw_tokens else 0.0
    note = f", truncated ({s.dropped_elements} elements dropped)" if s.truncated else ""
    click.echo(
        f"{page.url}: {len(page.elements)} elements; {s.raw_bytes:,} → {s.simplified_bytes:,} bytes, "
        f"{s.raw_tokens:,} → {s.simplified_tokens:,} tokens ({ratio:.1%}); {s.ms:.0f} ms{note}",
        err=True,
    )


# The name simulator/cli/main.py's lazy map imports ("shop_r1.envs.cli:observe").
observe = observe_cmd
