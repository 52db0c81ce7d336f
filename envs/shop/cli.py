"""``shop-r1 shop``: serve the bundled storefront, or look at its catalog."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shop_r1.envs.shop.pages import VARIANTS

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.group("shop")
def shop() -> None:
    """The bundled mock storefront (an Amazon-shaped shop generated from a seed)."""


@shop.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8800, show_default=True,
              help="TCP port (0 picks a free one).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Catalog seed: the same seed always gives the same products.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--layout", type=click.Choice(["v1", "v2"]), default="v1", show_default=True,
              help="Page layout: v2 is a deliberately changed build (for replay divergence checks).")
@click.option("--variant", type=click.Choice(list(VARIANTS)), default="control", show_default=True,
              help="A build with a known effect, for checking A/B experiments (recolor: cosmetic only).")
def serve(port: int, seed: int, host: str, layout: str, variant: str) -> None:
    """Serve the shop until Ctrl-C."""
    from shop_r1.envs.shop.server import serve_forever

    console = Console()
    if not _is_loopback(host):
        console.print(f"[yellow]warning:[/] listening on {host}, not loopback: other machines can reach this shop")

    def ready(url: str) -> None:
        console.print(f"[bold green]shop ready[/] at [link={url}]{url}[/link]  "
                      f"(seed {seed}, layout {layout}, variant {variant}; state at {url}/api/state) — Ctrl-C stops it")

    try:
        asyncio.run(serve_forever(seed=seed, port=port, layout=layout, host=host, on_ready=ready, variant=variant))
    except KeyboardInterrupt:
        console.print("shop stopped")
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@shop.command("catalog")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the whole catalog as canonical JSON to this file.")
def catalog(seed: int, json_out: Path | None) -> None:
    """Summarise the catalog for a seed (products per category, brands, price range)."""
    from shop_r1.envs.shop.catalog import build_catalog, format_price

    cat = build_catalog(seed)
    table = Table(title=f"catalog, seed {seed}: {len(cat.products)} products")
    for col in ("department", "products", "brands", "cheapest", "dearest"):
        table.add_column(col, justify="left" if col == "department" else "right")
    for c in cat.categories:
        items = cat.in_category(c.slug)
        table.add_row(c.name, str(len(items)), str(len({p.brand for p in items})),
                      format_price(min(p.price_cents for p in items)), format_price(max(p.price_cents for p in items)))
    Console().print(table)
    if json_out is not None:
        json_out.write_bytes(cat.to_json_bytes())
        Console().print(f"wrote {json_out}")
