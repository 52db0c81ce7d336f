"""The self-contained ``report.html``: the template in ``simulator/templates/`` filled with the
tables, charts, people sections, realism and task sections; written atomically."""

from __future__ import annotations

import html
import logging
import os
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template

from shop_r1.simulator.realism import realism_html
from shop_r1.simulator.report.charts import run_charts
from shop_r1.simulator.report.errors import ReportError
from shop_r1.simulator.report.facts import STAGE_LABELS, STAGE_RULES
from shop_r1.simulator.report.sessions import people_sections
from shop_r1.simulator.report.summary import RunSummary
from shop_r1.simulator.report.tables import ReportTable, report_tables

log = logging.getLogger(__name__)


def _html_table(t: ReportTable) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{e(v)}</td>' if num else f"<td>{e(v)}</td>" for v, num in zip(row, t.numeric)
        ) + "</tr>"
        for row in t.rows
    ) or f'<tr><td colspan="{len(t.columns)}" class="empty">none</td></tr>'
    return f"<section><h2>{e(t.title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"


def report_css() -> str:
    """The stylesheet every shop-r1 HTML report inlines (one file: the reports stay self-contained)."""
    return resources.files("shop_r1.simulator").joinpath("templates/report.css").read_text(encoding="utf-8")


def _template() -> Template:
    text = resources.files("shop_r1.simulator").joinpath("templates/report.html").read_text(encoding="utf-8")
    return Template(text)


def _orders_html(summary: RunSummary) -> str:
    """The red block an order placed without --allow-purchase puts first in the report."""
    e = html.escape
    bad = summary.unallowed_orders
    allowed = [o for o in summary.orders if o.allowed]
    out = ""
    if bad:
        rows = "".join(f"<li>session {e(o.session_id)} step {o.step} on {e(o.url)}: {e(o.evidence)}</li>" for o in bad)
        out += (f'<section class="alert order-placed"><h2>{len(bad)} order(s) placed without --allow-purchase</h2>'
                f"<p>The purchase guard missed these; check the shop's orders and cancel or refund them.</p>"
                f"<ul>{rows}</ul></section>")
    if allowed:
        out += f'<p class="meta">{len(allowed)} order(s) placed (purchases were allowed).</p>'
    return out


def render_html(summary: RunSummary) -> str:
    """The whole report as one HTML string (all text escaped, charts inline)."""
    rules = "".join(
        f"<li><b>{html.escape(STAGE_LABELS[k])}</b>: {html.escape(v)}</li>" for k, v in STAGE_RULES.items()
    )
    return _template().substitute(
        title=html.escape(f"shop-r1 run {summary.run_id or ''}".strip()),
        alerts=_orders_html(summary),
        generated=html.escape(datetime.now(timezone.utc).isoformat(timespec="seconds")),
        charts="\n".join(run_charts(summary)),
        tables="\n".join(_html_table(t) for t in report_tables(summary)),
        people=summary.tasks_html + people_sections(summary)
        + (realism_html(summary.realism) if summary.realism else ""),
        rules=rules,
        style=report_css(),
    )


def write_html(summary: RunSummary, path: str | os.PathLike[str]) -> Path:
    """Write a self-contained ``report.html`` (a directory gets ``report.html`` inside it)."""
    out = Path(path)
    if out.is_dir():
        out = out / "report.html"
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(render_html(summary), encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:  # a full disk or a read-only folder: the old report (if any) stays whole
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    log.info("report written to %s", out)
    return out
