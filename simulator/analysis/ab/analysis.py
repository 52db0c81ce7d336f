"""From the two arms' run directories to the experiment's result (``ab.json``).

Everything is read back from the ordinary run directories (trace + run.json), so an experiment
can be re-analysed, or two runs made separately compared, without re-running anything. Per
session facts come from the run report (``shop_r1.simulator.analysis.report.session_facts``), so a funnel
stage means the same in a single-run report and in an A/B comparison.

With ``weights`` (a demographic mix), ``metrics`` are weighted to the mix's cohort shares
(``weights.py``) and the plain ones are kept in ``metrics_unweighted``; segments, divergence and
exit pages stay unweighted (they are read per segment or per page, not as the population's effect).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from shop_r1.envs.actions import Click, TypeAndSubmit
from shop_r1.envs.controls import control_label
from shop_r1.personas.sampler import DemographicMix
from shop_r1.simulator.analysis.ab import stats, weights as cohort
from shop_r1.simulator.analysis.ab.stats import Metric, SegmentTest
from shop_r1.simulator.analysis.ab.weights import WeightsInfo
from shop_r1.simulator.analysis.report import (
    DEFAULT_SEGMENT_FIELDS,
    FUNNEL_STAGES,
    SessionFacts,
    persona_field,
    session_facts,
)
from shop_r1.simulator.records.trace import RunInfo, TraceReadResult, TraceStep, load_run_info, read_trace

log = logging.getLogger(__name__)

RATE_METRICS: tuple[str, ...] = FUNNEL_STAGES
MEAN_METRICS: tuple[str, ...] = ("mean_steps", "session_seconds", "steps_to_cart")
SEGMENT_METRICS: tuple[str, ...] = ("added_to_cart", "purchased")
MAX_ROWS = 8


class ArmInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    url: str
    run_dir: str
    run_id: str
    sessions: int
    outcomes: dict[str, int]


class PairInfo(BaseModel):
    """Both sessions of one persona + intent, and where they first took different steps."""

    model_config = ConfigDict(extra="forbid")

    pair_id: str
    a_session: str
    b_session: str
    first_divergence: int | None  # step index; None: the sessions never differed
    divergence_kind: str | None  # page kind (in A) of that step


class DivergenceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    pairs: int
    share: float
    a_actions: list[str]
    b_actions: list[str]
    pair_ids: list[str]


class ExitChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    a_exits: int
    a_visits: int
    b_exits: int
    b_visits: int
    a_rate: float
    b_rate: float
    diff: float
    pair_ids: list[str]  # pairs (paired) whose exit on this page differs between builds
    sessions: dict[str, list[str]]  # arm -> sessions that exited here (between design)


class ABResult(BaseModel):
    """``ab.json``."""

    model_config = ConfigDict(extra="forbid")

    design: str
    shoppers: int
    a: ArmInfo
    b: ArmInfo
    metrics: dict[str, Metric]
    segments: list[SegmentTest]
    divergence: list[DivergenceRow]
    exit_changes: list[ExitChange]
    pairs: list[PairInfo]
    wall_s: float | None = None
    notes: list[str] = []
    # With --weights: ``metrics`` are weighted; these are the plain ones, and how the weights came out.
    metrics_unweighted: dict[str, Metric] | None = None
    weights: WeightsInfo | None = None


def _rate_value(f: SessionFacts, name: str) -> bool:
    return name in f.stages


def _mean_value(f: SessionFacts, name: str) -> float | None:
    if name == "mean_steps":
        return float(f.steps)
    if name == "session_seconds":
        return f.seconds
    if name == "steps_to_cart":
        hit = f.first_reached.get("added_to_cart")
        return None if hit is None else float(hit[0] + 1)
    raise KeyError(name)


def _action_key(step: TraceStep | None) -> str:
    """An action in words that compare across builds (element names may differ between them)."""
    if step is None:
        return "(ended)"
    a = step.action
    if a is None:
        return "(no action)"
    if isinstance(a, Click):
        el = step.element(a.name)
        return "click " + control_label(a.name, el.text if el is not None else "").lower()[:60]
    if isinstance(a, TypeAndSubmit):
        return f"search {a.text.lower()[:40]}"
    return a.type


def first_divergence(a_steps: Sequence[TraceStep], b_steps: Sequence[TraceStep], a_facts: SessionFacts,
                     b_facts: SessionFacts) -> tuple[int | None, str | None]:
    """The first step index where the paired sessions were on different kinds of page or acted
    differently; the page kind is A's (the build being compared against)."""
    for i in range(max(len(a_steps), len(b_steps))):
        sa = a_steps[i] if i < len(a_steps) else None
        sb = b_steps[i] if i < len(b_steps) else None
        ka = a_facts.kinds[i] if sa is not None else "(ended)"
        kb = b_facts.kinds[i] if sb is not None else "(ended)"
        if ka != kb or _action_key(sa) != _action_key(sb):
            return i, ka if sa is not None else kb
    return None, None


class _Arm:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.trace: TraceReadResult = read_trace(run_dir, strict=False)
        self.info: RunInfo | None = load_run_info(run_dir) if (run_dir / "run.json").is_file() else None
        self.facts = session_facts(self.trace)
        self.by_persona: dict[str, SessionFacts] = {}
        for f in self.facts.values():
            if f.persona_id is None:
                continue
            if f.persona_id in self.by_persona:
                raise ValueError(f"{run_dir}: persona {f.persona_id!r} shopped twice; pairs need unique persona ids")
            self.by_persona[f.persona_id] = f

    def persona(self, pid: str | None) -> dict[str, Any] | None:
        return self.info.persona(pid) if self.info is not None else None

    def describe(self, target: str, url: str) -> ArmInfo:
        return ArmInfo(target=target, url=url, run_dir=str(self.run_dir),
                       run_id=(self.info.run_id if self.info else (self.trace.run_ids or ["?"])[0]),
                       sessions=len(self.facts), outcomes=dict(Counter(f.outcome for f in self.facts.values())))


def _metrics_paired(pairs: Sequence[tuple[SessionFacts, SessionFacts]]) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name in RATE_METRICS:
        out[name] = stats.paired_rate([_rate_value(a, name) for a, _ in pairs],
                                      [_rate_value(b, name) for _, b in pairs])
    for name in MEAN_METRICS:
        both = [(va, vb) for a, b in pairs
                if (va := _mean_value(a, name)) is not None and (vb := _mean_value(b, name)) is not None]
        out[name] = stats.paired_mean([x for x, _ in both], [y for _, y in both])
    return out


def _metrics_between(a: Sequence[SessionFacts], b: Sequence[SessionFacts]) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name in RATE_METRICS:
        out[name] = stats.unpaired_rate([_rate_value(f, name) for f in a], [_rate_value(f, name) for f in b])
    for name in MEAN_METRICS:
        va = [v for f in a if (v := _mean_value(f, name)) is not None]
        vb = [v for f in b if (v := _mean_value(f, name)) is not None]
        out[name] = stats.unpaired_mean(va, vb)
    return out


def _metrics_paired_weighted(pairs: Sequence[tuple[SessionFacts, SessionFacts]], w: Sequence[float]
                              ) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name in RATE_METRICS:
        out[name] = cohort.paired("rate", [float(_rate_value(a, name)) for a, _ in pairs],
                                  [float(_rate_value(b, name)) for _, b in pairs], w)
    for name in MEAN_METRICS:
        both = [(va, vb, wi) for (a, b), wi in zip(pairs, w)
                if (va := _mean_value(a, name)) is not None and (vb := _mean_value(b, name)) is not None]
        out[name] = cohort.paired("mean", [x for x, _, _ in both], [y for _, y, _ in both], [z for *_, z in both])
    return out


def _metrics_between_weighted(a: Sequence[SessionFacts], wa: Sequence[float], b: Sequence[SessionFacts],
                              wb: Sequence[float]) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name in RATE_METRICS:
        out[name] = cohort.between("rate", [float(_rate_value(f, name)) for f in a], wa,
                                   [float(_rate_value(f, name)) for f in b], wb)
    for name in MEAN_METRICS:
        va = [(v, w) for f, w in zip(a, wa) if (v := _mean_value(f, name)) is not None]
        vb = [(v, w) for f, w in zip(b, wb) if (v := _mean_value(f, name)) is not None]
        out[name] = cohort.between("mean", [v for v, _ in va], [w for _, w in va], [v for v, _ in vb],
                                   [w for _, w in vb])
    return out


def _weights_note(info: WeightsInfo, units: int, design: str) -> str:
    what = "pairs" if design == "paired" else "sessions"
    text = (f"metrics weighted to the cohort shares in {info.source} ({', '.join(info.fields)}): effective n "
            f"{info.effective_n:.1f} of {units} {what}{' (smaller arm)' if design == 'between' else ''}, weights "
            f"{info.min:.2f}–{info.max:.2f}; unweighted metrics in metrics_unweighted; segments, divergence "
            f"and exit pages unweighted")
    if info.zero_weight:
        text += (f"; {info.zero_weight} {what} weight 0 (a value the mix gives 0 % or does not list, "
                 f"'unknown' included)")
    return text


def _segments(design: str, arm_a: _Arm, arm_b: _Arm, pairs: Sequence[tuple[SessionFacts, SessionFacts]]
              ) -> list[SegmentTest]:
    rows: list[SegmentTest] = []
    for metric in SEGMENT_METRICS:
        family: list[tuple[str, str, Metric]] = []
        for field in DEFAULT_SEGMENT_FIELDS:
            if design == "paired":
                groups: dict[str, list[tuple[SessionFacts, SessionFacts]]] = {}
                for fa, fb in pairs:
                    groups.setdefault(persona_field(arm_a.persona(fa.persona_id), field), []).append((fa, fb))
                if len(groups) < 2:
                    continue
                for value, members in sorted(groups.items()):
                    family.append((field, value, stats.paired_rate([_rate_value(x, metric) for x, _ in members],
                                                                   [_rate_value(y, metric) for _, y in members])))
            else:
                ga: dict[str, list[SessionFacts]] = {}
                gb: dict[str, list[SessionFacts]] = {}
                for f in arm_a.facts.values():
                    ga.setdefault(persona_field(arm_a.persona(f.persona_id), field), []).append(f)
                for f in arm_b.facts.values():
                    gb.setdefault(persona_field(arm_b.persona(f.persona_id), field), []).append(f)
                if len(set(ga) | set(gb)) < 2:
                    continue
                for value in sorted(set(ga) & set(gb)):
                    family.append((field, value, stats.unpaired_rate([_rate_value(x, metric) for x in ga[value]],
                                                                     [_rate_value(y, metric) for y in gb[value]])))
        adjusted = stats.holm([m.p_value for _, _, m in family])
        for (field, value, m), p_holm in zip(family, adjusted):
            rows.append(SegmentTest(field=field, value=value, metric=metric, n=m.n, a=m.a, b=m.b, diff=m.diff,
                                    ci95=m.ci95, p_value=m.p_value, p_holm=p_holm))
    return rows


def _exit_changes(a: Sequence[SessionFacts], b: Sequence[SessionFacts],
                  pair_of: Callable[[SessionFacts], str | None]) -> list[ExitChange]:
    def exits(facts: Sequence[SessionFacts]) -> tuple[Counter[str], Counter[str], dict[str, list[SessionFacts]]]:
        visits: Counter[str] = Counter()
        ended: dict[str, list[SessionFacts]] = {}
        for f in facts:
            visits.update(set(f.kinds))
            if "purchased" not in f.stages and f.kinds:
                ended.setdefault(f.last_kind, []).append(f)
        return visits, Counter({k: len(v) for k, v in ended.items()}), ended

    va, ea, la = exits(a)
    vb, eb, lb = exits(b)
    rows = []
    for kind in sorted(set(va) | set(vb)):
        ra = ea[kind] / va[kind] if va[kind] else 0.0
        rb = eb[kind] / vb[kind] if vb[kind] else 0.0
        pa = {pair_of(f) for f in la.get(kind, [])}
        pb = {pair_of(f) for f in lb.get(kind, [])}
        rows.append(ExitChange(kind=kind, a_exits=ea[kind], a_visits=va[kind], b_exits=eb[kind], b_visits=vb[kind],
                               a_rate=ra, b_rate=rb, diff=rb - ra,
                               pair_ids=sorted(p for p in pa ^ pb if p is not None)[:MAX_ROWS * 2],
                               sessions={"a": [f.session_id for f in la.get(kind, [])][:MAX_ROWS],
                                         "b": [f.session_id for f in lb.get(kind, [])][:MAX_ROWS]}))
    rows.sort(key=lambda r: (-abs(r.diff), r.kind))
    return rows


def analyse(a_dir: Path, b_dir: Path, *, design: str, targets: tuple[str, str] = ("a", "b"),
            urls: tuple[str, str] = ("", ""), wall_s: float | None = None,
            weights: DemographicMix | None = None) -> ABResult:
    """Compare two run directories (paired by persona id, or as independent arms).

    ``weights``: weight pairs (sessions) to this mix's cohort shares (``weights.py``); raises
    ``WeightsError`` when the sample cannot reach them."""
    arm_a, arm_b = _Arm(Path(a_dir)), _Arm(Path(b_dir))
    notes: list[str] = []
    unweighted: dict[str, Metric] | None = None
    winfo: WeightsInfo | None = None
    pair_infos: list[PairInfo] = []
    divergence: list[DivergenceRow] = []
    if design == "paired":
        common = [pid for pid in arm_a.by_persona if pid in arm_b.by_persona]
        lost = (len(arm_a.by_persona) - len(common)) + (len(arm_b.by_persona) - len(common))
        if lost:
            notes.append(f"{lost} sessions had no partner in the other arm and are left out of the paired analysis")
        # A session that never made a decision (the start page did not load, the policy never
        # answered) measured the machine, not the build; its pair is left out, and said so.
        blind = [pid for pid in common if arm_a.by_persona[pid].steps == 0 or arm_b.by_persona[pid].steps == 0]
        if blind:
            common = [pid for pid in common if pid not in set(blind)]
            notes.append(f"{len(blind)} pairs left out: a session of the pair made no decision "
                         f"({', '.join(blind[:5])}{'…' if len(blind) > 5 else ''})")
        pairs = [(arm_a.by_persona[p], arm_b.by_persona[p]) for p in common]
        metrics = _metrics_paired(pairs)
        if weights is not None:
            raked = cohort.rake([arm_a.persona(p) for p in common], weights)
            winfo = cohort.info(weights, raked)
            unweighted, metrics = metrics, _metrics_paired_weighted(pairs, raked.weights.tolist())
            notes.append(_weights_note(winfo, len(pairs), design))
        groups: dict[str, list[tuple[str, str, str]]] = {}
        for pid, (fa, fb) in zip(common, pairs):
            at, kind = first_divergence(arm_a.trace.sessions.get(fa.session_id, []),
                                        arm_b.trace.sessions.get(fb.session_id, []), fa, fb)
            pair_infos.append(PairInfo(pair_id=pid, a_session=fa.session_id, b_session=fb.session_id,
                                       first_divergence=at, divergence_kind=kind))
            if at is not None and kind is not None:
                sa = arm_a.trace.sessions.get(fa.session_id, [])
                sb = arm_b.trace.sessions.get(fb.session_id, [])
                groups.setdefault(kind, []).append((pid, _action_key(sa[at] if at < len(sa) else None),
                                                    _action_key(sb[at] if at < len(sb) else None)))
        for kind, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            divergence.append(DivergenceRow(
                kind=kind, pairs=len(members), share=len(members) / len(pairs) if pairs else 0.0,
                a_actions=[k for k, _ in Counter(m[1] for m in members).most_common(3)],
                b_actions=[k for k, _ in Counter(m[2] for m in members).most_common(3)],
                pair_ids=[m[0] for m in members][:MAX_ROWS * 2]))
        n = len(pairs)
        a_facts, b_facts = [x for x, _ in pairs], [y for _, y in pairs]
        exit_changes = _exit_changes(a_facts, b_facts, lambda f: f.persona_id)
    else:
        a_facts, b_facts = list(arm_a.facts.values()), list(arm_b.facts.values())
        metrics = _metrics_between(a_facts, b_facts)
        if weights is not None:
            # Each arm is weighted to the mix on its own: both then stand for the same population.
            ra = cohort.rake([arm_a.persona(f.persona_id) for f in a_facts], weights)
            rb = cohort.rake([arm_b.persona(f.persona_id) for f in b_facts], weights)
            winfo = cohort.info(weights, ra, rb, arms=("a", "b"))
            unweighted, metrics = metrics, _metrics_between_weighted(a_facts, ra.weights.tolist(), b_facts,
                                                                     rb.weights.tolist())
            notes.append(_weights_note(winfo, min(len(a_facts), len(b_facts)), design))
        n = min(len(a_facts), len(b_facts))
        exit_changes = _exit_changes(a_facts, b_facts, lambda f: None)
    return ABResult(design=design, shoppers=n, a=arm_a.describe(targets[0], urls[0]),
                    b=arm_b.describe(targets[1], urls[1]), metrics=metrics,
                    segments=_segments(design, arm_a, arm_b, pairs if design == "paired" else []),
                    divergence=divergence, exit_changes=exit_changes, pairs=pair_infos, wall_s=wall_s, notes=notes,
                    metrics_unweighted=unweighted, weights=winfo)
