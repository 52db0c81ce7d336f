"""The report's sections for people: exit pages with the shoppers' words, common paths, and
every session step by step (page, rationale, action, errors), each linkable by anchor."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.simulator.analysis.report.facts import FUNNEL_STAGES, STAGE_LABELS, SessionFacts, session_facts
from shop_r1.simulator.analysis.report.shots import Screenshots
from shop_r1.simulator.analysis.report.summary import RunSummary
from shop_r1.simulator.records.trace import TraceStep

PAGE_EXCERPT_CHARS = 700


def session_anchor(session_id: str, prefix: str = "s") -> str:
    """The HTML id of a session's block (ids allow a narrower alphabet than session ids)."""
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "_", session_id)


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


def render_session(steps: Sequence[TraceStep], facts: SessionFacts, anchor: str, heading: str = "",
                   shots: Screenshots | None = None) -> str:
    """One session as a collapsible block: a row per step, the page excerpt (and screenshot) one click away."""
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
            f'<pre>{e(excerpt)}</pre>{shots.img(s) if shots else ""}</details></td>'
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


def people_sections(summary: RunSummary) -> str:
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
        run_dir = summary.trace.path.parent  # the report is written beside the trace
        shots = Screenshots(run_dir, run_dir)
        blocks = "".join(render_session(summary.trace.sessions.get(sid, []), f, session_anchor(sid), shots=shots)
                         for sid, f in facts.items())
        out.append('<section class="wide"><h2>Sessions</h2><table><thead><tr><th>session</th><th>persona</th>'
                   f'<th>outcome</th><th>steps</th><th>stages</th></tr></thead><tbody>{index}</tbody></table>'
                   f'<div class="sessions">{blocks}</div></section>')
    return "\n".join(out)
