"""The report printed as rich tables (persona text always wrapped in ``Text``: never markup)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shop_r1.simulator.analysis.report.summary import RunSummary
from shop_r1.simulator.analysis.report.tables import report_tables


def _short(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def render_orders(summary: RunSummary, console: Console) -> None:
    """Orders first: one placed without --allow-purchase is the worst a run can do, in red."""
    bad = summary.unallowed_orders
    if bad:
        console.print(Text(f"{len(bad)} order(s) placed WITHOUT --allow-purchase: the purchase guard missed "
                           "them; check the shop's orders and refund or cancel them", style="bold red"))
        for o in bad:
            console.print(Text(f"  order_placed: session {o.session_id} step {o.step} on {o.url}: {o.evidence}",
                               style="red"))
        console.print()
    allowed = [o for o in summary.orders if o.allowed]
    if allowed:
        console.print(Text(f"{len(allowed)} order(s) placed (purchases were allowed)", style="yellow"))


def render_console(summary: RunSummary, console: Console | None = None) -> None:
    """Print the report as rich tables."""
    console = console or Console()
    render_orders(summary, console)
    for t in report_tables(summary):
        table = Table(title=t.title, title_justify="left", show_edge=False)
        for col, numeric in zip(t.columns, t.numeric):
            table.add_column(col, justify="right" if numeric else "left")
        for row in t.rows or [tuple("–" for _ in t.columns)]:
            table.add_row(*(Text(cell) for cell in row))  # Text: persona data is never markup
        console.print(table)
        console.print()
    if summary.realism:
        table = Table(title="Realism (this run next to people)", title_justify="left", show_edge=False)
        for col in ("item", "this run", "people", "distance", "target"):
            table.add_column(col)
        for item in summary.realism.get("items", []):
            met = "" if item.get("met") is None else ("met" if item["met"] else "missed")
            table.add_row(*(Text(_short(v)) for v in (item["name"], item["value"], item["reference"],
                                                       item["distance"], met)))
        console.print(table)
        console.print()
    if summary.exit_pages:
        table = Table(title="Exit pages (non-purchasing sessions)", title_justify="left", show_edge=False)
        for col in ("page", "exits", "exit rate", "a shopper's words"):
            table.add_column(col, justify="right" if col in ("exits", "exit rate") else "left")
        for x in summary.exit_pages:
            quote = f"“{x.quotes[0][1]}” ({x.quotes[0][0]})" if x.quotes else "–"
            table.add_row(Text(x.kind), Text(str(x.exits)), Text(f"{100 * x.exit_rate:.0f}%"), Text(quote))
        console.print(table)
        console.print()
