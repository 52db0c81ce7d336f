"""The report's tables as rows of text, shared by the console and the HTML rendering."""

from __future__ import annotations

from dataclasses import dataclass

from shop_r1.simulator.analysis.report.summary import RunSummary, rate


@dataclass(frozen=True)
class ReportTable:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: tuple[bool, ...]


def _fmt_s(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} s"


def report_tables(summary: RunSummary) -> list[ReportTable]:
    n = summary.sessions
    tables = [
        ReportTable("Run", ("what", "value"), [
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
        ReportTable("Funnel", ("stage", "sessions", "% of sessions"),
               [(f.label, str(f.sessions), f"{100 * f.rate:.1f}%") for f in summary.funnel],
               (False, True, True)),
        ReportTable("Outcomes", ("outcome", "sessions", "% of sessions"),
               [(o, str(c), f"{100 * rate(c, n):.1f}%") for o, c in summary.outcomes.items() if c],
               (False, True, True)),
        ReportTable("Abandonment (non-purchasing sessions: last step index)", ("step", "sessions"),
               [(str(k), str(v)) for k, v in summary.abandonment_steps.items()], (True, True)),
    ]
    for name, rows in summary.segments.items():
        tables.append(ReportTable(
            f"By persona {name}", (name, "sessions", "added to cart", "purchased", "mean steps"),
            [(r.value, str(r.sessions), f"{100 * r.cart_rate:.1f}%", f"{100 * r.purchase_rate:.1f}%",
              f"{r.mean_steps:.2f}") for r in rows],
            (False, True, True, True, True)))
    tables.append(ReportTable("Time and steps to each stage (sessions that reached it)",
                         ("stage", "sessions", "median step", "median seconds"),
                         [(t.label, str(t.sessions), "–" if t.median_step is None else f"{t.median_step:g}",
                           "–" if t.median_seconds is None else f"{t.median_seconds:.1f}") for t in summary.stage_timing],
                         (False, True, True, True)))
    errors = [("parse", c, k) for c, k in summary.parse_errors.items()]
    errors += [("exec", c, k) for c, k in summary.exec_errors.items()]
    tables.append(ReportTable("Errors by code", ("source", "code", "steps"),
                         [(src, code, str(k)) for src, code, k in errors], (False, False, True)))
    if summary.problems:
        tables.append(ReportTable("Trace problems (lines skipped)", ("problem",),
                             [(p,) for p in summary.problems], (False,)))
    return tables
