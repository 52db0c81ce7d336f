"""Run reports: what the simulated shoppers did, summarised from the trace alone.

Everything here is computed GENERICALLY from trace records (URLs, titles, element tables,
actions, outcomes), never from knowledge of one storefront, so the same report works for the
bundled shop, a real site and imported real logs. The heuristics are deliberately simple and
written down (see ``STAGE_RULES``) so a number in the report can always be explained.

``summarize`` -> ``RunSummary`` (plain data, JSON-able, stored in run.json);
``render_console`` prints it with rich; ``write_html`` writes a self-contained report.html with
the same tables and SVG charts.

Where things live: ``facts`` (page kinds, funnel stages, per-session facts), ``summary`` (the
summary data and ``summarize``), ``tables`` (rows shared by both renderings), ``console``,
``charts``, ``sessions`` (the sections for people), ``html``, ``errors``, ``build``
(``build_report``). Import from this package; the split is an implementation detail.
"""

from shop_r1.simulator.analysis.report.build import build_report
from shop_r1.simulator.analysis.report.charts import svg_img
from shop_r1.simulator.analysis.report.console import render_console
from shop_r1.simulator.analysis.report.errors import ReportError
from shop_r1.simulator.analysis.report.facts import (
    ADD_TO_CART_RE,
    CHECKOUT_RE,
    DEFAULT_SEGMENT_FIELDS,
    FUNNEL_STAGES,
    MAX_CART_CONTROLS_ON_PRODUCT_PAGE,
    PAGE_KINDS,
    PLACE_ORDER_RE,
    PRODUCT_URL_RE,
    SEGMENT_FIELD_FALLBACKS,
    STAGE_LABELS,
    STAGE_RULES,
    SessionFacts,
    is_product_page,
    page_kind,
    session_facts,
    session_stages,
    step_stages,
)
from shop_r1.simulator.analysis.report.html import render_html, report_css, write_html
from shop_r1.simulator.analysis.report.sessions import PAGE_EXCERPT_CHARS, render_session, session_anchor
from shop_r1.simulator.analysis.report.summary import (
    MAX_PATH_ROWS,
    MAX_QUOTES,
    ExitPage,
    FunnelStage,
    LatencyStats,
    PathRow,
    RunSummary,
    SegmentRow,
    SessionRow,
    StageTiming,
    common_paths,
    exit_pages,
    persona_field,
    stage_timing,
    summarize,
)

__all__ = [
    "ADD_TO_CART_RE", "CHECKOUT_RE", "DEFAULT_SEGMENT_FIELDS", "FUNNEL_STAGES", "MAX_CART_CONTROLS_ON_PRODUCT_PAGE",
    "MAX_PATH_ROWS", "MAX_QUOTES", "PAGE_EXCERPT_CHARS", "PAGE_KINDS", "PLACE_ORDER_RE", "PRODUCT_URL_RE",
    "SEGMENT_FIELD_FALLBACKS", "STAGE_LABELS", "STAGE_RULES", "ExitPage", "FunnelStage", "LatencyStats", "PathRow",
    "ReportError", "RunSummary", "SegmentRow", "SessionFacts", "SessionRow", "StageTiming", "build_report",
    "common_paths", "exit_pages", "is_product_page", "page_kind", "persona_field", "render_console", "render_html",
    "render_session", "report_css", "session_anchor", "session_facts", "session_stages", "stage_timing",
    "step_stages", "summarize", "svg_img", "write_html",
]
