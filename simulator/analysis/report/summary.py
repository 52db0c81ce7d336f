"""The run summary: plain, JSON-able data computed once from a trace (stored in run.json).

The console, the HTML page and A/B runs all render this one object, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shop_r1.simulator.analysis.report.facts import (
    DEFAULT_SEGMENT_FIELDS,
    FUNNEL_STAGES,
    SEGMENT_FIELD_FALLBACKS,
    STAGE_LABELS,
    SessionFacts,
    session_facts,
)
from shop_r1.simulator.records.trace import ORDER_PLACED, OUTCOMES, RunInfo, TraceReadResult, load_run_info, read_trace


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
class OrderRow:
    """An order a session placed: the step whose action led to an order confirmation page.

    ``allowed`` is False when purchases were not allowed (the session then ended as
    ``order_placed``): the purchase guard missed, and the report says so first, in red.
    """

    session_id: str
    step: int
    url: str  # the page the ordering action was taken on
    allowed: bool
    evidence: str


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
    orders: list[OrderRow] = field(default_factory=list)
    # simulator.realism's block (run.json's, else computed from the trace): the run next to people.
    realism: dict[str, Any] | None = None
    # The --tasks verdicts (simulator.shopmodel.verdicts), rendered: did each scenario succeed?
    tasks_html: str = ""
    # The steps themselves, for the report's session pages; never stored in run.json.
    trace: TraceReadResult | None = field(default=None, repr=False, compare=False)

    @property
    def unallowed_orders(self) -> list[OrderRow]:
        """Orders placed although purchases were not allowed (each one fails the run)."""
        return [o for o in self.orders if not o.allowed]

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
                             exit_rate=rate(len(group), visits[kind]), example_paths=paths, quotes=quotes))
    return rows


def common_paths(facts: Sequence[SessionFacts]) -> list[PathRow]:
    groups: dict[str, list[SessionFacts]] = {}
    for f in facts:
        groups.setdefault(_collapse(f.kinds), []).append(f)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_PATH_ROWS]
    return [PathRow(path=p, sessions=len(g), share=rate(len(g), len(facts)),
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


def rate(n: int, d: int) -> float:
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
                purchase_rate=rate(bought, len(recs)), cart_rate=rate(carted, len(recs)),
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
        mean_steps_per_session=rate(len(trace.steps), n_sessions),
        funnel=[FunnelStage(st, STAGE_LABELS[st], stage_counts[st], rate(stage_counts[st], n_sessions))
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
        orders=[OrderRow(s.session_id, s.step, s.url, allowed=s.outcome != ORDER_PLACED,
                         evidence=s.end_reason or "the page after this step reads as an order confirmation")
                for s in trace.steps if "order_placed" in s.events],
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
