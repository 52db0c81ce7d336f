"""``ab.html``: the experiment for people, in one self-contained file.

Two funnels side by side and the differences with their intervals (matplotlib charts inlined as
SVG), the metric table, segments, the pages where paired sessions first diverged and the pages
whose exit rate changed most — each row linking to the sessions behind it, which are inside the
same file (steps, page excerpts, rationales, actions, errors), A and B side by side.
"""

from __future__ import annotations

import html
import os
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template

from shop_r1.simulator.analysis.ab.analysis import MEAN_METRICS, RATE_METRICS, ABResult
from shop_r1.simulator.analysis.ab.stats import Metric
from shop_r1.simulator.analysis.report import (
    STAGE_LABELS,
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


def _metrics_table(result: ABResult) -> str:
    e = html.escape
    rows = []
    for name in (*RATE_METRICS, *MEAN_METRICS):
        m = result.metrics.get(name)
        if m is None:
            continue
        sig = m.ci95[0] > 0 or m.ci95[1] < 0
        cls = ' class="pos"' if sig and m.diff > 0 else (' class="neg"' if sig else "")
        mde = "–" if m.mde is None else _fmt_diff(m, m.mde).lstrip("+")
        rows.append(
            f'<tr><td>{e(_label(name))} <span class="url">{e(name)}</span></td><td class="num">{_fmt(m, m.a)}</td>'
            f'<td class="num">{_fmt(m, m.b)}</td><td class="num"><span{cls}>{_fmt_diff(m, m.diff)}</span></td>'
            f'<td class="num">[{_fmt_diff(m, m.ci95[0])}, {_fmt_diff(m, m.ci95[1])}]</td>'
            f'<td class="num">{m.p_value:.3g}</td><td class="num">{mde}</td><td class="num">{m.n}</td>'
            f'<td class="url">{e(m.method)}</td></tr>')
    return ('<section class="wide"><h2>Metrics</h2><table><thead><tr><th>metric</th><th>A</th><th>B</th>'
            '<th>B − A</th><th>95% interval</th><th>p</th><th>MDE</th><th>n</th><th>method</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _segments_table(result: ABResult) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td>{e(s.field)}</td><td>{e(s.value)}</td><td>{e(_label(s.metric))}</td><td class="num">{s.n}</td>'
        f'<td class="num">{100 * s.a:.0f}%</td><td class="num">{100 * s.b:.0f}%</td>'
        f'<td class="num">{100 * s.diff:+.0f} pp</td><td class="num">[{100 * s.ci95[0]:+.0f}, {100 * s.ci95[1]:+.0f}]</td>'
        f'<td class="num">{s.p_value:.3g}</td><td class="num">{s.p_holm:.3g}</td></tr>' for s in result.segments
    ) or '<tr><td colspan="10" class="empty">no persona field with two or more values</td></tr>'
    return ('<section class="wide"><h2>By persona segment</h2><table><thead><tr><th>field</th><th>value</th>'
            '<th>metric</th><th>n</th><th>A</th><th>B</th><th>B − A</th><th>95% interval</th><th>p</th>'
            f'<th>p (Holm)</th></tr></thead><tbody>{rows}</tbody></table></section>')


def _links(pair_ids: list[str]) -> str:
    return " ".join(f'<a href="#{html.escape(pair_anchor(p))}">{html.escape(p)}</a>' for p in pair_ids)


def _divergence_table(result: ABResult) -> str:
    if result.design != "paired":
        return ""
    e = html.escape
    rows = "".join(
        f'<tr><td>{e(d.kind)}</td><td class="num">{d.pairs}</td><td class="num">{100 * d.share:.0f}%</td>'
        f'<td>{e("; ".join(d.a_actions))}</td><td>{e("; ".join(d.b_actions))}</td><td>{_links(d.pair_ids)}</td></tr>'
        for d in result.divergence
    ) or '<tr><td colspan="6" class="empty">no pair ever differed</td></tr>'
    return ('<section class="wide"><h2>Where paired sessions first diverged</h2><table><thead><tr><th>page (in A)</th>'
            '<th>pairs</th><th>share of pairs</th><th>A did</th><th>B did</th><th>pairs</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _exit_table(result: ABResult) -> str:
    e = html.escape

    def sessions(x) -> str:
        if result.design == "paired":
            return _links(x.pair_ids)
        return " ".join(f'<a href="#{e(session_anchor(s, prefix=arm))}">{arm.upper()} {e(s)}</a>'
                        for arm in ("a", "b") for s in x.sessions[arm])

    rows = "".join(
        f'<tr><td>{e(x.kind)}</td><td class="num">{x.a_exits}/{x.a_visits} ({100 * x.a_rate:.0f}%)</td>'
        f'<td class="num">{x.b_exits}/{x.b_visits} ({100 * x.b_rate:.0f}%)</td>'
        f'<td class="num">{100 * x.diff:+.0f} pp</td><td>{sessions(x)}</td></tr>' for x in result.exit_changes
    ) or '<tr><td colspan="5" class="empty">none</td></tr>'
    return ('<section class="wide"><h2>Exit rate by page (biggest change first)</h2><table><thead><tr><th>page</th>'
            '<th>A exits / sessions on it</th><th>B exits / sessions on it</th><th>B − A</th><th>sessions</th></tr>'
            f'</thead><tbody>{rows}</tbody></table></section>')


def _sessions(result: ABResult, html_dir: Path) -> str:
    traces = {k: read_trace(Path(getattr(result, k).run_dir), strict=False) for k in ("a", "b")}
    facts = {k: session_facts(t) for k, t in traces.items()}
    shots = {k: Screenshots(t.path.parent, html_dir, INLINE_BUDGET_BYTES // 2) for k, t in traces.items()}
    if result.design == "paired":
        blocks = []
        for p in result.pairs:
            where = ("never diverged" if p.first_divergence is None
                     else f"first diverged at step {p.first_divergence} ({p.divergence_kind})")
            cols = "".join(
                f'<div><h3>{k.upper()}</h3>'
                + render_session(traces[k].sessions.get(sid, []), facts[k][sid], session_anchor(sid, prefix=k),
                                 shots=shots[k])
                + "</div>" for k, sid in (("a", p.a_session), ("b", p.b_session)) if sid in facts[k])
            blocks.append(f'<details class="session" id="{html.escape(pair_anchor(p.pair_id))}"><summary>'
                          f'<b>pair {html.escape(p.pair_id)}</b> · {html.escape(where)}</summary>'
                          f'<div class="pair">{cols}</div></details>')
        return f'<section class="wide"><h2>Paired sessions</h2>{"".join(blocks)}</section>'
    out = []
    for k in ("a", "b"):
        sessions = "".join(render_session(traces[k].sessions.get(sid, []), f, session_anchor(sid, prefix=k),
                                          shots=shots[k])
                           for sid, f in facts[k].items())
        out.append(f'<section class="wide"><h2>Sessions on {k.upper()}</h2>{sessions}</section>')
    return "".join(out)


def render_ab_html(result: ABResult, html_dir: Path | None = None) -> str:
    """``html_dir``: where the file will be (screenshots past the inline budget are linked from there)."""
    e = html.escape
    arms = "".join(
        f'<li><b>{k.upper()}</b>: {e(arm.target)} <span class="url">{e(arm.url)}</span> — {arm.sessions} sessions, '
        f'run {e(arm.run_id)}</li>' for k, arm in (("a", result.a), ("b", result.b)))
    wall = f" · wall time {result.wall_s:.0f} s" if result.wall_s is not None else ""
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    if result.weights is not None:  # the metrics below are weighted; say so above everything
        w = result.weights
        wall += (f' · <b>metrics weighted</b> to the cohort shares in {e(w.source)} ({e(", ".join(w.fields))}), '
                 f'effective n {w.effective_n:.1f}')
    text = resources.files("shop_r1.simulator.analysis").joinpath("templates/ab.html").read_text(encoding="utf-8")
    return Template(text).substitute(
        title=e(f"shop-r1 A/B: {result.a.target} vs {result.b.target}"),
        generated=e(datetime.now(timezone.utc).isoformat(timespec="seconds")),
        style=report_css(),
        arms=f'<p>{e(result.design)} design, {result.shoppers} {"pairs" if result.design == "paired" else "sessions per arm"}'
             f'{wall}</p><ul>{arms}{notes}</ul>',
        charts="\n".join(_charts(result)),
        tables="\n".join([_metrics_table(result), _divergence_table(result), _exit_table(result),
                          _segments_table(result), _sessions(result, html_dir or Path.cwd())]),
        rules="".join(f"<li>{e(r)}</li>" for r in RULES),
    )


def write_ab_html(result: ABResult, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_ab_html(result, path.parent), encoding="utf-8")
    os.replace(tmp, path)
    return path
