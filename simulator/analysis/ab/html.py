"""``ab.html``: the experiment for people, in one self-contained file, rendered from
``simulator/analysis/templates/ab.html`` (Jinja2, autoescape on, as ``report.html``).

Two funnels side by side and the differences with their intervals (matplotlib charts inlined as
SVG), the metric table, segments, the pages where paired sessions first diverged and the pages
whose exit rate changed most — each row linking to the sessions behind it, which are inside the
same file (steps, page excerpts, rationales, actions, errors), A and B side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from shop_r1.simulator.analysis.ab.analysis import MEAN_METRICS, RATE_METRICS, ABResult, ExitChange
from shop_r1.simulator.analysis.ab.stats import Metric
from shop_r1.simulator.analysis.report import (
    STAGE_LABELS,
    SessionFacts,
    render_session,
    report_css,
    session_anchor,
    session_facts,
    svg_img,
)
from shop_r1.simulator.analysis.report.shots import INLINE_BUDGET_BYTES, Screenshots
from shop_r1.simulator.records.trace import read_trace

MEAN_LABELS = {"mean_steps": "Steps per session", "session_seconds": "Session length (s)",
               "steps_to_cart": "Steps to add to cart"}
RULES = (
    "Paired design: every persona + intent shopped on both builds; a rate difference rests on the pairs "
    "whose outcomes differ (exact McNemar p-value, Newcombe's paired score interval).",
    "Between design: different, trait-balanced personas per build (Newcombe interval, score test).",
    "MDE: the smallest true difference this many shoppers would detect with 80 % power at the 5 % level. "
    "An interval containing 0 with a large MDE means 'too few shoppers to tell', not 'no effect'.",
    "Segments: p-values are Holm-corrected within each metric (many segments, many chances of a fluke).",
    "First divergence: the first step where the paired sessions were on a different kind of page or did "
    "a different thing; shoppers sample their choices, so some divergence happens on identical builds too.",
)


def _label(name: str) -> str:
    return STAGE_LABELS.get(name) or MEAN_LABELS.get(name, name)


def pair_anchor(pair_id: str) -> str:
    return session_anchor(pair_id, prefix="pair")


def _fmt(m: Metric, v: float) -> str:
    return f"{100 * v:.1f}%" if m.kind == "rate" else f"{v:.2f}"


def _fmt_diff(m: Metric, v: float) -> str:
    return f"{100 * v:+.1f} pp" if m.kind == "rate" else f"{v:+.2f}"


def _charts(result: ABResult) -> list[str]:
    rates = [n for n in RATE_METRICS if n in result.metrics]

    def funnels(ax) -> None:
        ys = list(range(len(rates)))[::-1]
        a = [100 * result.metrics[n].a for n in rates]
        b = [100 * result.metrics[n].b for n in rates]
        ax.barh([y + 0.2 for y in ys], a, height=0.4, color="#4c78a8", label="A")
        ax.barh([y - 0.2 for y in ys], b, height=0.4, color="#f58518", label="B")
        ax.set_yticks(ys, [_label(n) for n in rates])
        ax.set_xlabel("% of sessions")
        ax.set_xlim(0, 105)
        ax.set_title("Funnel, A and B")
        ax.legend(loc="lower right")

    def forest(ax) -> None:
        ys = list(range(len(rates)))[::-1]
        diffs = [100 * result.metrics[n].diff for n in rates]
        lo = [100 * (result.metrics[n].diff - result.metrics[n].ci95[0]) for n in rates]
        hi = [100 * (result.metrics[n].ci95[1] - result.metrics[n].diff) for n in rates]
        ax.errorbar(diffs, ys, xerr=[lo, hi], fmt="o", color="#222", ecolor="#888", capsize=4)
        ax.axvline(0, color="#e45756", linewidth=1)
        ax.set_yticks(ys, [_label(n) for n in rates])
        ax.set_xlabel("B − A, percentage points (95 % interval)")
        ax.set_title("Differences")

    return [svg_img(funnels, "funnels of A and B side by side", (6.0, 3.2)),
            svg_img(forest, "differences B minus A with 95% intervals", (6.0, 3.2))]


def _metric_rows(result: ABResult) -> list[tuple[str, str, Metric, str, str]]:
    """(name, label, metric, class of its difference, MDE) for each metric there is, rates first."""
    rows = []
    for name in (*RATE_METRICS, *MEAN_METRICS):
        m = result.metrics.get(name)
        if m is None:
            continue
        sig = m.ci95[0] > 0 or m.ci95[1] < 0
        cls = ("pos" if m.diff > 0 else "neg") if sig else ""
        mde = "–" if m.mde is None else _fmt_diff(m, m.mde).lstrip("+")
        rows.append((name, _label(name), m, cls, mde))
    return rows


def _pair_links(pair_ids: list[str]) -> list[tuple[str, str]]:
    """(anchor, text) of each pair's block further down the file."""
    return [(pair_anchor(p), p) for p in pair_ids]


def _exit_links(result: ABResult, x: ExitChange) -> list[tuple[str, str]]:
    if result.design == "paired":
        return _pair_links(x.pair_ids)
    return [(session_anchor(s, prefix=arm), f"{arm.upper()} {s}") for arm in ("a", "b") for s in x.sessions[arm]]


@dataclass(frozen=True)
class _PairBlock:
    anchor: str
    pair_id: str
    where: str
    sessions: list[tuple[str, Markup]]  # (arm, its session as report/sessions.py renders it)


def _sessions(result: ABResult, html_dir: Path) -> tuple[list[_PairBlock], list[tuple[str, list[Markup]]]]:
    """Every session, inside the file: (paired design) both sessions of each pair side by side, or
    (between design) each arm's sessions. ``render_session`` builds them as HTML, escaping as it goes."""
    traces = {k: read_trace(Path(getattr(result, k).run_dir), strict=False) for k in ("a", "b")}
    facts = {k: session_facts(t) for k, t in traces.items()}
    shots = {k: Screenshots(t.path.parent, html_dir, INLINE_BUDGET_BYTES // 2) for k, t in traces.items()}

    def session(k: str, sid: str, f: SessionFacts) -> Markup:
        return Markup(render_session(traces[k].sessions.get(sid, []), f, session_anchor(sid, prefix=k),
                                     shots=shots[k]))

    if result.design == "paired":
        blocks = []
        for p in result.pairs:
            where = ("never diverged" if p.first_divergence is None
                     else f"first diverged at step {p.first_divergence} ({p.divergence_kind})")
            cols = [(k.upper(), session(k, sid, facts[k][sid]))
                    for k, sid in (("a", p.a_session), ("b", p.b_session)) if sid in facts[k]]
            blocks.append(_PairBlock(pair_anchor(p.pair_id), p.pair_id, where, cols))
        return blocks, []
    return [], [(k.upper(), [session(k, sid, f) for sid, f in facts[k].items()]) for k in ("a", "b")]


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """ab.html as a Jinja2 template with autoescape on: a value is escaped unless marked safe."""
    text = resources.files("shop_r1.simulator.analysis").joinpath("templates/ab.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals.update(fmt=_fmt, fmt_diff=_fmt_diff, metric_label=_label)
    return env.from_string(text)


def render_ab_html(result: ABResult, html_dir: Path | None = None) -> str:
    """``html_dir``: where the file will be (screenshots past the inline budget are linked from there)."""
    pairs, arm_sessions = _sessions(result, html_dir or Path.cwd())
    return _template().render(
        title=f"shop-r1 A/B: {result.a.target} vs {result.b.target}",
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        design=result.design, paired=result.design == "paired", shoppers=result.shoppers, wall_s=result.wall_s,
        weights=result.weights,  # the metrics below are weighted; say so above everything
        arms=[("A", result.a), ("B", result.b)], notes=result.notes,
        # Built as HTML elsewhere, escaped there: the stylesheet (ours), the charts (SVG from matplotlib)
        # and the sessions (report/sessions.py).
        style=Markup(report_css()),
        charts=[Markup(c) for c in _charts(result)],
        metrics=_metric_rows(result),
        divergence=[(d, _pair_links(d.pair_ids)) for d in result.divergence],
        exit_changes=[(x, _exit_links(result, x)) for x in result.exit_changes],
        segments=result.segments,
        pairs=pairs, arm_sessions=arm_sessions,
        rules=RULES,
    )


def write_ab_html(result: ABResult, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_ab_html(result, path.parent), encoding="utf-8")
    os.replace(tmp, path)
    return path
