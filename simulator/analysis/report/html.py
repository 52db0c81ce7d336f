"""The self-contained ``report.html``: the template in ``simulator/analysis/templates/`` filled with the
tables, charts, people sections, realism and task sections; written atomically."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from shop_r1.simulator.analysis.realism import realism_html
from shop_r1.simulator.analysis.report.charts import run_charts
from shop_r1.simulator.analysis.report.errors import ReportError
from shop_r1.simulator.analysis.report.facts import STAGE_LABELS, STAGE_RULES
from shop_r1.simulator.analysis.report.sessions import people_sections
from shop_r1.simulator.analysis.report.summary import RunSummary
from shop_r1.simulator.analysis.report.tables import report_tables

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """report.html as a Jinja2 template with autoescape on: a value is escaped unless marked safe."""
    text = resources.files("shop_r1.simulator.analysis").joinpath("templates/report.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals["zip"] = zip
    return env.from_string(text)


def report_css() -> str:
    """The stylesheet every shop-r1 HTML report inlines (one file: the reports stay self-contained)."""
    return resources.files("shop_r1.simulator.analysis").joinpath("templates/report.css").read_text(encoding="utf-8")


def render_html(summary: RunSummary) -> str:
    """The whole report as one HTML string (all text escaped by the template, charts inline)."""
    return _template().render(
        title=f"shop-r1 run {summary.run_id or ''}".strip(),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        unallowed_orders=summary.unallowed_orders,
        allowed_orders=[o for o in summary.orders if o.allowed],
        # Built as HTML elsewhere, escaped there: the stylesheet (ours), the charts (SVG from
        # report/charts.py), the task, people and realism sections (report/sessions.py, realism.py).
        style=Markup(report_css()),
        charts=[Markup(c) for c in run_charts(summary)],
        tables=report_tables(summary),
        people=Markup(summary.tasks_html + people_sections(summary)
                      + (realism_html(summary.realism) if summary.realism else "")),
        rules=[(STAGE_LABELS[k], v) for k, v in STAGE_RULES.items()],
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
