"""Run reports: what the simulated shoppers did, summarised from the trace alone.

Everything here is computed GENERICALLY from trace records (URLs, titles, element tables,
actions, outcomes), never from knowledge of one storefront, so the same report works for the
bundled shop, a real site and imported real logs. The heuristics are deliberately simple and
written down (see ``STAGE_RULES``) so a number in the report can always be explained.

``summarize`` -> ``RunSummary`` (plain data, JSON-able, stored in run.json);
``render_console`` prints it with rich; ``write_html`` writes a self-contained report.html with
the same tables and SVG charts (base64 ``<img>``: no external files, and any text inside a
chart cannot run as markup).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import logging
import os
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.pagetype import page_type
from shop_r1.simulator.realism import realism_block, realism_html, run_intents
from shop_r1.simulator.shopmodel.verdicts import read_task_run, task_outcomes_html, verdicts
from shop_r1.simulator.trace import (
    OUTCOMES,
    RunInfo,
    TraceReadResult,
    TraceStep,
    load_run_info,
    observation_from_step,
    read_trace,
)

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

from shop_r1.envs.controls import (  # noqa: E402
    ADD_TO_CART,
    CART_LINK,
    CHECKOUT,
    ORDER_CONFIRMATION,
    PLACE_ORDER,
    PRODUCT_URL,
    SEARCH,
    control_label,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Funnel heuristics
# --------------------------------------------------------------------------------------------

PRODUCT_URL_RE = PRODUCT_URL
ADD_TO_CART_RE = ADD_TO_CART
CHECKOUT_RE = CHECKOUT
PLACE_ORDER_RE = PLACE_ORDER
# A listing page shows one add-to-cart control per item; a product page one or two.
MAX_CART_CONTROLS_ON_PRODUCT_PAGE = 2

FUNNEL_STAGES: tuple[str, ...] = ("searched", "viewed_product", "added_to_cart", "reached_checkout", "purchased")
STAGE_LABELS: dict[str, str] = {
    "searched": "Searched",
    "viewed_product": "Viewed a product",
    "added_to_cart": "Added to cart",
    "reached_checkout": "Reached checkout",
    "purchased": "Purchased",
}
STAGE_RULES: dict[str, str] = {
    "searched": "a type_and_submit action that executed without error",
    "viewed_product": (
        "a page the content classifier (shop_r1.envs.pagetype: a title heading with a price and one buy "
        "control) calls a product page; where it cannot tell, a page whose URL path has /product, /dp/, "
        f"/item or /itm/, or whose element table has 1-{MAX_CART_CONTROLS_ON_PRODUCT_PAGE} add-to-cart controls"
    ),
    "added_to_cart": (
        "a click without error on an element whose name or text matches add…(cart|basket|bag), "
        "or the outcome added_to_cart"
    ),
    "reached_checkout": ("a page the classifier calls a checkout page (else: URL or title contains 'checkout'), "
                         "or a successful click on a checkout control"),
    "purchased": "the outcome purchased, or a click without error on a place-order control",
}
DEFAULT_SEGMENT_FIELDS: tuple[str, ...] = ("age_band", "income")
# A persona library may name a field differently (OPeRA calls the age band ``age``).
SEGMENT_FIELD_FALLBACKS: dict[str, tuple[str, ...]] = {"age_band": ("age",)}


def _label_of(step: TraceStep, name: str) -> str:
    """The control's words (see :func:`shop_r1.envs.controls.control_label`)."""
    el = step.element(name)
    return control_label(name, el.text if el is not None else "")


def _executed(step: TraceStep) -> bool:
    return step.action is not None and step.exec_error is None


def is_product_page(step: TraceStep) -> bool:
    """Whether the page of this step looks like a product page (see ``STAGE_RULES``)."""
    if PRODUCT_URL_RE.search(urlsplit(step.url).path or ""):
        return True
    cart_controls = sum(
        1 for el in step.elements
        if el.kind == "clickable" and ADD_TO_CART_RE.search(control_label(el.name, el.text))
    )
    return 1 <= cart_controls <= MAX_CART_CONTROLS_ON_PRODUCT_PAGE


# The page kinds a report names. ``page_kind`` is the single place that decides what a page is,
# so it can be pointed at a content-based classifier without touching anything that uses it.
PAGE_KINDS: tuple[str, ...] = ("home", "listing", "product", "cart", "checkout", "account", "confirmation", "other")


def page_kind(step: TraceStep) -> str:
    """What kind of page one step was taken on (one of ``PAGE_KINDS``).

    The content-based classifier (``shop_r1.envs.pagetype``) decides; where it finds no evidence
    ("other": a page stored without its HTML, as imported logs often are), the written-down URL
    and element rules of ``STAGE_RULES`` do.
    """
    classified = page_type(observation_from_step(step))
    if classified != "other":
        return classified
    path = urlsplit(step.url).path or "/"
    if is_product_page(step):
        return "product"
    if CHECKOUT_RE.search(step.url) or CHECKOUT_RE.search(step.title):
        return "checkout"
    if ORDER_CONFIRMATION.search(step.title) or ORDER_CONFIRMATION.search(step.simplified_html[:4000]):
        return "confirmation"
    if CART_LINK.search(path.replace("/", " ")):
        return "cart"
    if path in ("", "/") or path.endswith(("/index.html", "/home")):
        return "home"
    if any(el.kind == "clickable" and ADD_TO_CART_RE.search(control_label(el.name, el.text)) for el in step.elements) \
            or SEARCH.search(urlsplit(step.url).query or ""):
        return "listing"
    return "other"


def step_stages(step: TraceStep, kind: str | None = None) -> set[str]:
    """The funnel stages this one step shows (``kind``: its ``page_kind``, when already known)."""
    reached: set[str] = set()
    kind = page_kind(step) if kind is None else kind
    if kind == "product":
        reached.add("viewed_product")
    elif kind == "checkout":
        reached.add("reached_checkout")
    if step.outcome == "purchased":
        reached.add("purchased")
    if step.outcome == "added_to_cart":
        reached.add("added_to_cart")
    if not _executed(step):
        return reached
    action = step.action
    if isinstance(action, TypeAndSubmit):
        reached.add("searched")
    elif isinstance(action, Click):
        label = _label_of(step, action.name)
        if ADD_TO_CART_RE.search(label):
            reached.add("added_to_cart")
        if PLACE_ORDER_RE.search(label):
            reached.add("purchased")
        elif CHECKOUT_RE.search(label):
            reached.add("reached_checkout")
    return reached


def session_stages(steps: Sequence[TraceStep]) -> set[str]:
    """The funnel stages one session reached (a set of ``FUNNEL_STAGES`` names)."""
    reached: set[str] = set()
    for s in steps:
        reached |= step_stages(s)
    return reached


@dataclass(frozen=True)
class SessionFacts:
    """What one session did, as the report and A/B analysis read it (computed once per session)."""

    session_id: str
    persona_id: str | None
    outcome: str
    stages: frozenset[str]
    steps: int
    seconds: float  # from the first to the last recorded decision
    kinds: tuple[str, ...]  # page_kind of every step
    paths: tuple[str, ...]  # URL path of every step
    first_reached: dict[str, tuple[int, float]]  # stage -> (step index, seconds since the first step)
    end_rationale: str
    end_reason: str

    @property
    def last_kind(self) -> str:
        return self.kinds[-1] if self.kinds else "none"

    @property
    def last_path(self) -> str:
        return self.paths[-1] if self.paths else ""


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def session_facts(trace: TraceReadResult) -> dict[str, SessionFacts]:
    """Facts of every session of a trace, in file order."""
    facts: dict[str, SessionFacts] = {}
    for sid in trace.session_ids:
        steps = trace.sessions.get(sid, [])
        end = trace.session_end(sid)
        outcome = trace.outcome(sid)
        kinds = tuple(page_kind(s) for s in steps)
        reached: set[str] = set()
        first: dict[str, tuple[int, float]] = {}
        t0 = _ts(steps[0].ts) if steps else None
        for s, kind in zip(steps, kinds):
            for stage in step_stages(s, kind) - reached:
                first[stage] = (s.step, (_ts(s.ts) - t0).total_seconds() if t0 else 0.0)
            reached |= step_stages(s, kind)
        if outcome == "purchased":
            reached.add("purchased")
        seconds = (_ts(steps[-1].ts) - t0).total_seconds() if steps and t0 else 0.0
        persona_id = steps[0].persona_id if steps else (end.persona_id if end is not None else None)
        last_words = next((s.rationale for s in reversed(steps) if s.rationale), "")
        facts[sid] = SessionFacts(
            session_id=sid, persona_id=persona_id, outcome=outcome, stages=frozenset(reached), steps=len(steps),
            seconds=max(seconds, 0.0), kinds=kinds, paths=tuple(urlsplit(s.url).path or "/" for s in steps),
            first_reached=first, end_rationale=last_words, end_reason=(end.end_reason or "") if end else "",
        )
    return facts


# --------------------------------------------------------------------------------------------
# Summary data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStage:
    stage: str
    label: str
    sessions: int
    rate: float  # share of all sessions


@dataclass(frozen=True)
class SegmentRow:
    value: str
    sessions: int
    purchased: int
    added_to_cart: int
    purchase_rate: float
    cart_rate: float
    mean_steps: float


@dataclass(frozen=True)
class LatencyStats:
    n: int = 0
    mean_s: float | None = None
    p50_s: float | None = None
    p90_s: float | None = None


@dataclass(frozen=True)
class ExitPage:
    """Where non-purchasing sessions ended, by page kind, with the shoppers' last words."""

    kind: str
    exits: int
    visits: int  # sessions that saw a page of this kind at all
    exit_rate: float
    example_paths: list[str]
    quotes: list[tuple[str, str]]  # (session id, the shopper's last rationale)


@dataclass(frozen=True)
class PathRow:
    path: str  # page kinds, repeats collapsed: "home → listing → product"
    sessions: int
    share: float
    carted: int
    example_sessions: list[str]


@dataclass(frozen=True)
class StageTiming:
    stage: str
    label: str
    sessions: int
    median_step: float | None
    median_seconds: float | None


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    persona_id: str | None
    outcome: str
    steps: int
    stages: list[str]


@dataclass
class RunSummary:
    """Everything the report shows; ``to_json`` is what goes into run.json's ``summary``."""

    run_id: str | None
    sessions: int
    steps: int
    events: int
    outcomes: dict[str, int]
    mean_steps_per_session: float
    funnel: list[FunnelStage]
    abandonment_steps: dict[int, int]
    segments: dict[str, list[SegmentRow]]
    parse_errors: dict[str, int]
    exec_errors: dict[str, int]
    policy_latency: LatencyStats
    tokens: dict[str, int]
    problems: list[str] = field(default_factory=list)
    started_at: str | None = None
    ended_at: str | None = None
    policy: str | None = None
    exit_pages: list[ExitPage] = field(default_factory=list)
    common_paths: list[PathRow] = field(default_factory=list)
    stage_timing: list[StageTiming] = field(default_factory=list)
    session_index: list[SessionRow] = field(default_factory=list)
    # simulator.realism's block (run.json's, else computed from the trace): the run next to people.
    realism: dict[str, Any] | None = None
    # The --tasks verdicts (simulator.shopmodel.verdicts), rendered: did each scenario succeed?
    tasks_html: str = ""
    # The steps themselves, for the report's session pages; never stored in run.json.
    trace: TraceReadResult | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = {name: value for name, value in asdict(_without_trace(self)).items() if name not in ("trace", "tasks_html")}
        data["abandonment_steps"] = {str(k): v for k, v in self.abandonment_steps.items()}
        return data

    @property
    def mean_policy_latency_s(self) -> float | None:
        return self.policy_latency.mean_s


def _without_trace(summary: RunSummary) -> RunSummary:
    return dataclasses.replace(summary, trace=None)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


MAX_QUOTES = 3
MAX_PATH_ROWS = 10


def _collapse(kinds: Sequence[str]) -> str:
    out: list[str] = []
    for k in kinds:
        if not out or out[-1] != k:
            out.append(k)
    return " → ".join(out) or "(no steps)"


def exit_pages(facts: Sequence[SessionFacts]) -> list[ExitPage]:
    """Page kinds ranked by how many non-purchasing sessions ended there."""
    visits: Counter[str] = Counter()
    for f in facts:
        visits.update(set(f.kinds))
    ended: dict[str, list[SessionFacts]] = {}
    for f in facts:
        if "purchased" not in f.stages and f.kinds:
            ended.setdefault(f.last_kind, []).append(f)
    rows = []
    for kind, group in sorted(ended.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        paths = [p for p, _ in Counter(f.last_path for f in group).most_common(3)]
        quotes = [(f.session_id, f.end_rationale) for f in group if f.end_rationale][:MAX_QUOTES]
        rows.append(ExitPage(kind=kind, exits=len(group), visits=visits[kind],
                             exit_rate=_rate(len(group), visits[kind]), example_paths=paths, quotes=quotes))
    return rows


def common_paths(facts: Sequence[SessionFacts]) -> list[PathRow]:
    groups: dict[str, list[SessionFacts]] = {}
    for f in facts:
        groups.setdefault(_collapse(f.kinds), []).append(f)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_PATH_ROWS]
    return [PathRow(path=p, sessions=len(g), share=_rate(len(g), len(facts)),
                    carted=sum(1 for f in g if "added_to_cart" in f.stages),
                    example_sessions=[f.session_id for f in g[:3]]) for p, g in ranked]


def stage_timing(facts: Sequence[SessionFacts]) -> list[StageTiming]:
    rows = []
    for st in FUNNEL_STAGES:
        reached = [f.first_reached[st] for f in facts if st in f.first_reached]
        rows.append(StageTiming(stage=st, label=STAGE_LABELS[st], sessions=len(reached),
                                median_step=_median([r[0] for r in reached]),
                                median_seconds=_median([r[1] for r in reached])))
    return rows


def _rate(n: int, d: int) -> float:
    return n / d if d else 0.0


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def persona_field(persona: dict[str, Any] | None, name: str) -> str:
    if persona is None:
        return "unknown"
    for key in (name, *SEGMENT_FIELD_FALLBACKS.get(name, ())):
        value = persona.get(key)
        if value not in (None, ""):
            return str(value)
    return "unknown"


def _segment_fields(run_info: RunInfo | None, requested: Sequence[str] | None) -> list[str]:
    """Requested fields, or the defaults that at least one persona of the run carries."""
    if run_info is None or not run_info.personas:
        return []
    if requested is not None:
        return list(requested)
    present = []
    for name in DEFAULT_SEGMENT_FIELDS:
        keys = (name, *SEGMENT_FIELD_FALLBACKS.get(name, ()))
        if any(any(p.get(k) not in (None, "") for k in keys) for p in run_info.personas):
            present.append(name)
    return present


def summarize(
    trace: TraceReadResult | str | os.PathLike[str],
    run_info: RunInfo | None = None,
    *,
    segment_by: Sequence[str] | None = None,
) -> RunSummary:
    """Summarise a trace (a ``TraceReadResult`` or a run dir / trace path).

    With a path and no ``run_info``, ``run.json`` next to the trace is used when present.
    ``segment_by`` names persona fields to break rates down by (default: ``age_band`` and
    ``income`` where the run's personas have them).
    """
    if not isinstance(trace, TraceReadResult):
        path = Path(trace)
        trace = read_trace(path)
        if run_info is None:
            run_dir = path if path.is_dir() else path.parent
            if (run_dir / "run.json").is_file():
                run_info = load_run_info(run_dir)

    # Sessions known only from a session_end event (timed out before deciding) count too.
    session_ids = trace.session_ids
    n_sessions = len(session_ids)
    outcomes: Counter[str] = Counter({o: 0 for o in OUTCOMES})
    stage_counts: Counter[str] = Counter()
    abandonment: Counter[int] = Counter()
    per_session: dict[str, tuple[str, set[str], int, str | None]] = {}
    facts = session_facts(trace)
    for sid in session_ids:
        steps = trace.sessions.get(sid, [])
        end = trace.session_end(sid)
        outcome = trace.outcome(sid)
        stages = set(facts[sid].stages)  # "purchased" included when the outcome says so
        outcomes[outcome] += 1
        stage_counts.update(stages)
        if "purchased" not in stages:
            # The step index the session ended at: its last decision, or later when an end
            # event says it stopped while deciding the next one.
            last = steps[-1].step if steps else 0
            if end is not None and end.step is not None:
                last = max(last, end.step)
            abandonment[last] += 1
        persona_id = steps[0].persona_id if steps else (end.persona_id if end is not None else None)
        per_session[sid] = (outcome, stages, len(steps), persona_id)

    parse_errors = Counter(s.parse_error.code for s in trace.steps if s.parse_error is not None)
    exec_errors = Counter(s.exec_error.code for s in trace.steps if s.exec_error is not None)
    latencies = sorted(s.timings["policy_s"] for s in trace.steps if "policy_s" in s.timings)
    latency = LatencyStats(
        n=len(latencies),
        mean_s=statistics.fmean(latencies) if latencies else None,
        p50_s=_percentile(latencies, 0.5) if latencies else None,
        p90_s=_percentile(latencies, 0.9) if latencies else None,
    )

    segments: dict[str, list[SegmentRow]] = {}
    for name in _segment_fields(run_info, segment_by):
        groups: dict[str, list[tuple[str, set[str], int, str | None]]] = {}
        for rec in per_session.values():
            value = persona_field(run_info.persona(rec[3]) if run_info else None, name)
            groups.setdefault(value, []).append(rec)
        rows = []
        for value, recs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            bought = sum(1 for r in recs if "purchased" in r[1])
            carted = sum(1 for r in recs if "added_to_cart" in r[1])
            rows.append(SegmentRow(
                value=value, sessions=len(recs), purchased=bought, added_to_cart=carted,
                purchase_rate=_rate(bought, len(recs)), cart_rate=_rate(carted, len(recs)),
                mean_steps=statistics.fmean(r[2] for r in recs),
            ))
        segments[name] = rows

    if not outcomes.get("unfinished"):
        outcomes.pop("unfinished", None)
    session_list = list(facts.values())
    return RunSummary(
        run_id=(run_info.run_id if run_info else None) or (trace.run_ids[0] if trace.run_ids else None),
        sessions=n_sessions,
        steps=len(trace.steps),
        events=len(trace.events),
        outcomes=dict(outcomes),
        mean_steps_per_session=_rate(len(trace.steps), n_sessions),
        funnel=[FunnelStage(st, STAGE_LABELS[st], stage_counts[st], _rate(stage_counts[st], n_sessions))
                for st in FUNNEL_STAGES],
        abandonment_steps=dict(sorted(abandonment.items())),
        segments=segments,
        parse_errors=dict(parse_errors.most_common()),
        exec_errors=dict(exec_errors.most_common()),
        policy_latency=latency,
        tokens={"prompt": sum(s.tokens.prompt for s in trace.steps),
                "completion": sum(s.tokens.completion for s in trace.steps)},
        problems=[str(p) for p in trace.problems],
        started_at=run_info.started_at if run_info else None,
        ended_at=run_info.ended_at if run_info else None,
        policy=_policy_name(run_info),
        exit_pages=exit_pages(session_list),
        common_paths=common_paths(session_list),
        stage_timing=stage_timing(session_list),
        session_index=[SessionRow(f.session_id, f.persona_id, f.outcome, f.steps,
                                  [st for st in FUNNEL_STAGES if st in f.stages]) for f in session_list],
        trace=trace,
    )


def _policy_name(run_info: RunInfo | None) -> str | None:
    if run_info is None:
        return None
    cfg = run_info.config
    name = cfg.get("policy") or (cfg.get("policy_info") or {}).get("policy")
    model = cfg.get("model")
    if not name:
        return None
    return f"{name} ({model})" if model else str(name)


# --------------------------------------------------------------------------------------------
# Tables (shared by the console and the HTML rendering)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: tuple[bool, ...]


def _fmt_s(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} s"


def _tables(summary: RunSummary) -> list[_Table]:
    n = summary.sessions
    tables = [
        _Table("Run", ("what", "value"), [
            ("run", summary.run_id or "–"),
            ("policy", summary.policy or "–"),
            ("started", summary.started_at or "–"),
            ("ended", summary.ended_at or "– (not finished)"),
            ("sessions", str(summary.sessions)),
            ("steps", str(summary.steps)),
            ("mean steps / session", f"{summary.mean_steps_per_session:.2f}"),
            ("context events", str(summary.events)),
            ("policy latency mean / p50 / p90",
             f"{_fmt_s(summary.policy_latency.mean_s)} / {_fmt_s(summary.policy_latency.p50_s)} / "
             f"{_fmt_s(summary.policy_latency.p90_s)}"),
            ("tokens prompt / completion", f"{summary.tokens['prompt']} / {summary.tokens['completion']}"),
        ], (False, False)),
        _Table("Funnel", ("stage", "sessions", "% of sessions"),
               [(f.label, str(f.sessions), f"{100 * f.rate:.1f}%") for f in summary.funnel],
               (False, True, True)),
        _Table("Outcomes", ("outcome", "sessions", "% of sessions"),
               [(o, str(c), f"{100 * _rate(c, n):.1f}%") for o, c in summary.outcomes.items() if c],
               (False, True, True)),
        _Table("Abandonment (non-purchasing sessions: last step index)", ("step", "sessions"),
               [(str(k), str(v)) for k, v in summary.abandonment_steps.items()], (True, True)),
    ]
    for name, rows in summary.segments.items():
        tables.append(_Table(
            f"By persona {name}", (name, "sessions", "added to cart", "purchased", "mean steps"),
            [(r.value, str(r.sessions), f"{100 * r.cart_rate:.1f}%", f"{100 * r.purchase_rate:.1f}%",
              f"{r.mean_steps:.2f}") for r in rows],
            (False, True, True, True, True)))
    tables.append(_Table("Time and steps to each stage (sessions that reached it)",
                         ("stage", "sessions", "median step", "median seconds"),
                         [(t.label, str(t.sessions), "–" if t.median_step is None else f"{t.median_step:g}",
                           "–" if t.median_seconds is None else f"{t.median_seconds:.1f}") for t in summary.stage_timing],
                         (False, True, True, True)))
    errors = [("parse", c, k) for c, k in summary.parse_errors.items()]
    errors += [("exec", c, k) for c, k in summary.exec_errors.items()]
    tables.append(_Table("Errors by code", ("source", "code", "steps"),
                         [(src, code, str(k)) for src, code, k in errors], (False, False, True)))
    if summary.problems:
        tables.append(_Table("Trace problems (lines skipped)", ("problem",),
                             [(p,) for p in summary.problems], (False,)))
    return tables


def _short(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def render_console(summary: RunSummary, console: Console | None = None) -> None:
    """Print the report as rich tables."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    for t in _tables(summary):
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


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def svg_img(draw, alt: str, size: tuple[float, float] = (6.0, 3.0)) -> str:
    """Render a matplotlib drawing to an inline base64 SVG ``<img>``.

    Uses a bare ``Figure`` (no pyplot global state) so it is safe off the main thread.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "shop-r1", "svg.fonttype": "path"}):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasSVG(fig)
        draw(fig.add_subplot())
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _charts(summary: RunSummary) -> list[str]:
    from matplotlib.ticker import MaxNLocator

    def funnel(ax) -> None:
        labels = [f.label for f in summary.funnel][::-1]
        values = [f.sessions for f in summary.funnel][::-1]
        bars = ax.barh(labels, values, color="#4c78a8")
        ax.bar_label(bars, padding=3)
        ax.set_xlabel("sessions")
        ax.set_title("Funnel")
        ax.set_xlim(0, max([summary.sessions, 1]) * 1.15)

    def outcomes(ax) -> None:
        items = [(o, c) for o, c in summary.outcomes.items() if c] or [("none", 0)]
        bars = ax.bar([o for o, _ in items], [c for _, c in items], color="#f58518")
        ax.bar_label(bars, padding=2)
        ax.set_ylabel("sessions")
        ax.set_title("Outcomes")
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_ylim(0, max(c for _, c in items) * 1.2 + 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    def abandonment(ax) -> None:
        steps = list(summary.abandonment_steps)
        ax.bar(steps, [summary.abandonment_steps[s] for s in steps], color="#e45756", width=0.8)
        ax.set_xlabel("last step index of non-purchasing sessions")
        ax.set_ylabel("sessions")
        ax.set_title("Abandonment")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    return [
        svg_img(funnel, "funnel: sessions reaching each stage"),
        svg_img(outcomes, "session outcomes"),
        svg_img(abandonment, "abandonment step histogram"),
    ]


def _html_table(t: _Table) -> str:
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


# --------------------------------------------------------------------------------------------
# Sessions, for people: every step with its page, rationale, action and errors
# --------------------------------------------------------------------------------------------

PAGE_EXCERPT_CHARS = 700


def session_anchor(session_id: str, prefix: str = "s") -> str:
    """The HTML id of a session's block (ids allow a narrower alphabet than session ids)."""
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "_", session_id)


def _screenshot(step: TraceStep) -> str:
    """A screenshot kept with the step (``screenshot``: base64 PNG or a data: URI), inline."""
    shot = step.extra.get("screenshot")
    if not isinstance(shot, str) or not shot:
        return ""
    uri = shot if shot.startswith("data:image/") else f"data:image/png;base64,{shot}"
    if not re.fullmatch(r"data:image/(?:png|jpeg|webp);base64,[A-Za-z0-9+/=\s]+", uri):
        return ""
    return f'<img class="shot" alt="screenshot of step {step.step}" src="{html.escape(uri)}">'


def _action_text(step: TraceStep) -> str:
    a = step.action
    if a is None:
        return "(no action)"
    if isinstance(a, Click):
        el = step.element(a.name)
        return f"click {a.name}" + (f" “{el.text.strip()[:80]}”" if el is not None and el.text.strip() else "")
    if isinstance(a, TypeAndSubmit):
        return f"type_and_submit {a.name} ← “{a.text}”"
    if isinstance(a, Terminate):
        return "terminate"
    return str(a)


def render_session(steps: Sequence[TraceStep], facts: SessionFacts, anchor: str, heading: str = "") -> str:
    """One session as a collapsible block: a row per step, the page excerpt one click away."""
    e = html.escape
    rows = []
    for s, kind in zip(steps, facts.kinds):
        errors = []
        if s.parse_error is not None:
            errors.append(f"parse {s.parse_error.code}: {s.parse_error.message}")
        if s.exec_error is not None:
            errors.append(f"exec {s.exec_error.code}: {s.exec_error.message}")
        excerpt = s.simplified_html[:PAGE_EXCERPT_CHARS] + ("…" if len(s.simplified_html) > PAGE_EXCERPT_CHARS else "")
        rows.append(
            f'<tr><td class="num">{s.step}</td><td>{e(kind)}<br><span class="url">{e(s.url)}</span>'
            f'<details class="page"><summary>page</summary><p class="ptitle">{e(s.title)}</p>'
            f'<pre>{e(excerpt)}</pre>{_screenshot(s)}</details></td>'
            f'<td class="rationale">{e(s.rationale) or "–"}</td><td>{e(_action_text(s))}</td>'
            f'<td class="err">{"<br>".join(e(x) for x in errors) or ""}</td></tr>'
        )
    stages = ", ".join(STAGE_LABELS[st].lower() for st in FUNNEL_STAGES if st in facts.stages) or "no stage"
    title = heading or f"{facts.session_id} · persona {facts.persona_id or '–'}"
    end = f" — ended: {facts.end_reason}" if facts.end_reason else ""
    body = "".join(rows) or '<tr><td colspan="5" class="empty">no steps recorded</td></tr>'
    return (
        f'<details class="session" id="{e(anchor)}"><summary><b>{e(title)}</b> · {e(facts.outcome)} · '
        f'{facts.steps} steps · {e(stages)}</summary><p class="end">{e(end)}</p>'
        f'<table class="steps"><thead><tr><th>step</th><th>page</th><th>rationale</th><th>action</th>'
        f'<th>errors</th></tr></thead><tbody>{body}</tbody></table></details>'
    )


def _people_sections(summary: RunSummary) -> str:
    """Exit pages with quotes, common paths, time per stage, and every session (linked)."""
    e = html.escape
    out = []
    exits = "".join(
        f'<tr><td>{e(x.kind)}</td><td class="num">{x.exits}</td><td class="num">{x.visits}</td>'
        f'<td class="num">{100 * x.exit_rate:.0f}%</td><td>{e(", ".join(x.example_paths))}</td><td>'
        + "".join(f'<blockquote>“{e(q)}” — <a href="#{e(session_anchor(sid))}">{e(sid)}</a></blockquote>'
                  for sid, q in x.quotes)
        + "</td></tr>" for x in summary.exit_pages
    ) or '<tr><td colspan="6" class="empty">none</td></tr>'
    out.append('<section class="wide"><h2>Exit pages (where non-purchasing sessions ended)</h2><table><thead><tr>'
               '<th>page</th><th>exits</th><th>sessions on it</th><th>exit rate</th><th>paths</th>'
               f'<th>in the shoppers\' words</th></tr></thead><tbody>{exits}</tbody></table></section>')
    paths = "".join(
        f'<tr><td>{e(r.path)}</td><td class="num">{r.sessions}</td><td class="num">{100 * r.share:.0f}%</td>'
        f'<td class="num">{r.carted}</td><td>'
        + " ".join(f'<a href="#{e(session_anchor(sid))}">{e(sid)}</a>' for sid in r.example_sessions)
        + "</td></tr>" for r in summary.common_paths
    ) or '<tr><td colspan="5" class="empty">none</td></tr>'
    out.append('<section class="wide"><h2>Common paths</h2><table><thead><tr><th>pages visited</th>'
               '<th>sessions</th><th>share</th><th>added to cart</th><th>sessions</th></tr></thead>'
               f'<tbody>{paths}</tbody></table></section>')
    if summary.trace is not None:
        facts = session_facts(summary.trace)
        index = "".join(
            f'<tr><td><a href="#{e(session_anchor(r.session_id))}">{e(r.session_id)}</a></td>'
            f'<td>{e(r.persona_id or "–")}</td><td>{e(r.outcome)}</td><td class="num">{r.steps}</td>'
            f'<td>{e(", ".join(r.stages))}</td></tr>' for r in summary.session_index
        ) or '<tr><td colspan="5" class="empty">none</td></tr>'
        blocks = "".join(render_session(summary.trace.sessions.get(sid, []), f, session_anchor(sid))
                         for sid, f in facts.items())
        out.append('<section class="wide"><h2>Sessions</h2><table><thead><tr><th>session</th><th>persona</th>'
                   f'<th>outcome</th><th>steps</th><th>stages</th></tr></thead><tbody>{index}</tbody></table>'
                   f'<div class="sessions">{blocks}</div></section>')
    return "\n".join(out)


def render_html(summary: RunSummary) -> str:
    """The whole report as one HTML string (all text escaped, charts inline)."""
    rules = "".join(
        f"<li><b>{html.escape(STAGE_LABELS[k])}</b>: {html.escape(v)}</li>" for k, v in STAGE_RULES.items()
    )
    return _template().substitute(
        title=html.escape(f"shop-r1 run {summary.run_id or ''}".strip()),
        generated=html.escape(datetime.now(timezone.utc).isoformat(timespec="seconds")),
        charts="\n".join(_charts(summary)),
        tables="\n".join(_html_table(t) for t in _tables(summary)),
        people=summary.tasks_html + _people_sections(summary)
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


class ReportError(RuntimeError):
    """The report cannot be built (no readable trace) or written (disk full); names the file."""


def build_report(
    run_dir: str | os.PathLike[str],
    console: Console | None = None,
    *,
    segment_by: Sequence[str] | None = None,
    strict: bool = False,
) -> RunSummary:
    """Read a run directory, write ``report.html`` there, optionally print it; returns the summary.

    Reads leniently by default (``strict=False``): a report of a damaged trace is still useful,
    and the skipped lines are listed in it.
    """
    run_dir = Path(run_dir)
    trace = read_trace(run_dir, strict=strict)
    if not trace.steps and not trace.events and (trace.problems or not (run_dir / "run.json").is_file()):
        # A run folder whose run.json says a run happened may hold zero records (every shopper
        # stopped before a step): that report is all zeros. Anything else is not a trace.
        where = run_dir / "trace.jsonl" if run_dir.is_dir() else run_dir
        detail = f"; {len(trace.problems)} line(s) unreadable, first: {trace.problems[0]}" if trace.problems else \
            " (the file is empty)"
        raise ReportError(f"{where} holds no trace records{detail}")
    info = load_run_info(run_dir) if (run_dir / "run.json").is_file() else None
    summary = summarize(trace, info, segment_by=segment_by)
    summary.realism = (info.summary.get("realism") if info is not None else None) or \
        realism_block(trace, run_intents(run_dir, trace))
    task_run = read_task_run(run_dir)
    if task_run is not None:
        summary.tasks_html = task_outcomes_html(verdicts(task_run, trace, session_facts(trace)))
    write_html(summary, run_dir / "report.html")
    if console is not None:
        render_console(summary, console)
    return summary


__all__ = [
    "ADD_TO_CART_RE", "CHECKOUT_RE", "DEFAULT_SEGMENT_FIELDS", "FUNNEL_STAGES", "PLACE_ORDER_RE",
    "PRODUCT_URL_RE", "STAGE_LABELS", "STAGE_RULES", "FunnelStage", "LatencyStats", "RunSummary",
    "ReportError", "SegmentRow", "build_report", "is_product_page", "render_console", "render_html",
    "session_stages", "summarize", "write_html",
]
