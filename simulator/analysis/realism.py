"""How much a run's shoppers behave like real people: the realism block of run.json and the report.

The product exists to simulate human shoppers, so every run is measured against human reference
data shipped in ``simulator/analysis/data/realism_reference.json`` (OPeRA's action mix and first queries,
WebShop's typed queries; each figure names its source there). Each item reports the run's value,
the reference, one distance and — where the project set one — whether the target is met, so a
reader sees at a glance which way the run departs from people.

Funnel stages are decided by page content (``envs.pagetype``), never by URL paths, so the funnel
counts product pages on any storefront.

Three items answer issue 24 (shoppers more willing and more repetitive than people):

- ``repeated_action_rate``, per policy: the share of consecutive step pairs whose action repeats
  the previous one exactly. A person changes course after a failure or two; a policy that retries
  shows up here (a trained policy repeated itself in 29 % of pairs).
- ``funnel_vs_people``: the run's add-to-cart share and cart abandonment next to published human
  figures for all e-commerce sessions (6.4–7.9 % add to cart; 70.22 % of carts abandoned,
  Baymard). They are population-level references — real traffic includes every bounce and every
  visitor with no need — so the item has no target and says so.
- ``first_query_rouge_own`` / ``_goal``: ROUGE-L between each first query and the need the
  shopper was given (own words: the person's own query; written goals: the goal people wrote).
"""

from __future__ import annotations

import html
import json
import logging
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from shop_r1.envs.actions import Click, TypeAndSubmit
from shop_r1.envs.controls import control_label
from shop_r1.envs.funnel import step_events
from shop_r1.envs.pagetype import classify
from shop_r1.personas.intent_words import intent_kind
from shop_r1.personas.missions import split_mission
from shop_r1.simulator.records.trace.writer import add_to_summary
from shop_r1.simulator.records.trace import TraceReadResult, TraceStep, load_run_info, observation_from_step, read_trace

log = logging.getLogger(__name__)

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "realism_reference.json"
ACTION_TYPES = ("click", "type_and_submit", "terminate")
FUNNEL_STAGES = ("searched", "listing", "product", "added_to_cart", "cart", "checkout", "purchased")


class RealismItem(BaseModel):
    """One comparison: the run's figure, the human one, how far apart, and against what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: Any
    reference: Any = None
    distance: float | None = None
    metric: str = ""
    target: str | None = None
    met: bool | None = None
    source: str = ""


class RealismBlock(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sessions: int
    actions: int
    action_mix: dict[str, float]
    session_length: dict[str, float]
    first_query_words: dict[str, dict[str, float]]  # per intent kind: n, median, mean
    funnel: dict[str, float]
    items: list[RealismItem]
    # per policy label: consecutive step pairs, how many repeat the previous action, the share
    repeated_actions: dict[str, dict[str, float]] = {}
    # the run's funnel beside the population-level human figures (see people_funnel)
    people_funnel: dict[str, Any] = {}


def repeated_actions(sessions: Mapping[str, list[TraceStep]],
                     policies: Mapping[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Per policy: ``pairs`` (consecutive steps that both acted), ``repeats`` (the second repeats
    the first: same type, target and typed text) and ``rate``. Steps without an action (a parse
    or policy error) break a pair; a session's policy is ``policies[sid]``, else ``"run"``."""
    counts: dict[str, list[int]] = {}
    for sid, steps in sessions.items():
        label = (policies or {}).get(sid, "run")
        pairs = repeats = 0
        prev: dict[str, Any] | None = None
        for step in steps:
            cur = step.action.to_json() if step.action is not None else None
            if prev is not None and cur is not None:
                pairs += 1
                repeats += cur == prev
            prev = cur
        c = counts.setdefault(label, [0, 0])
        c[0] += pairs
        c[1] += repeats
    return {label: {"pairs": p, "repeats": r, "rate": round(r / p, 4) if p else 0.0}
            for label, (p, r) in sorted(counts.items())}


def people_funnel(sessions: Mapping[str, list[TraceStep]], stages: Mapping[str, set[str]],
                  ref: Mapping[str, Any]) -> dict[str, Any]:
    """The run's add-to-cart share and cart abandonment beside the published human figures."""
    n = len(sessions)
    added = sum(1 for sid in sessions if "added_to_cart" in stages[sid])
    bought = sum(1 for sid in sessions if "added_to_cart" in stages[sid] and "purchased" in stages[sid])
    people = ref["people_funnel"]
    atc, ab = people["add_to_cart_rate"], people["cart_abandonment_rate"]
    return {
        "scope": people["scope"],
        "add_to_cart_rate": {"run": round(added / n, 4) if n else 0.0, "people_low": atc["low"],
                             "people_high": atc["high"], "what": atc["what"], "source": atc["source"]},
        "cart_abandonment_rate": {"run": round((added - bought) / added, 4) if added else None,
                                  "people": ab["value"], "what": ab["what"], "source": ab["source"]},
    }


def first_query_rouge(sessions: Mapping[str, list[TraceStep]], intents: Mapping[str, str]) -> dict[str, list[float]]:
    """Per intent kind, each session's ROUGE-L F between its first query and its need (the
    intent without a mission lead-in). Sessions without an intent or a query are left out."""
    from shop_r1.simulator.scoring.similarity import rouge_l  # rouge-score is imported on first use

    out: dict[str, list[float]] = {"own": [], "goal": []}
    for sid, steps in sessions.items():
        intent = intents.get(sid)
        query = next((s.action.text for s in steps if isinstance(s.action, TypeAndSubmit)), None)
        if not intent or query is None:
            continue
        need = split_mission(intent)[1]
        out[intent_kind(need)].append(rouge_l(need, query))
    return out


@lru_cache(maxsize=1)
def load_reference(path: Path = REFERENCE_FILE) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"realism reference {path} is unreadable: {exc}") from exc


def _sessions(trace_or_steps: TraceReadResult | Iterable[TraceStep]) -> dict[str, list[TraceStep]]:
    if isinstance(trace_or_steps, TraceReadResult):
        groups = {sid: list(steps) for sid, steps in trace_or_steps.sessions.items()}
    else:
        groups = {}
        for step in trace_or_steps:
            if not isinstance(step, TraceStep):
                raise TypeError(f"realism_block wants TraceStep records, got {type(step).__name__}")
            groups.setdefault(step.session_id, []).append(step)
    return {sid: sorted(steps, key=lambda s: s.step) for sid, steps in groups.items()}


# Realism names the page stages by the page (its reference figures do); the events are the funnel's.
_STAGE_OF_EVENT = {"viewed_listing": "listing", "viewed_product": "product", "viewed_cart": "cart",
                   "reached_checkout": "checkout"}


def _stages(steps: list[TraceStep]) -> set[str]:
    """The funnel stages one session reached, from what its pages were and what its clicks did."""
    reached: set[str] = set()
    for step in steps:
        page = classify(observation_from_step(step))
        act = step.action
        el = step.element(act.name) if isinstance(act, Click) else None
        label = control_label(act.name, el.text if el else "") if isinstance(act, Click) else ""
        events = step_events(act, label, executed=act is not None and step.exec_error is None, page_kind=page.type,
                             confirmation=page.confirmation, order_placed="order_placed" in step.events)
        reached |= {_STAGE_OF_EVENT.get(e, e) for e in events}
    if "added_to_cart" not in reached:
        reached.discard("cart")  # looking at an empty cart is not a funnel stage
    return reached


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    qs = statistics.quantiles(values, n=10) if len(values) > 1 else [values[0]] * 9
    return {"n": len(values), "median": float(statistics.median(values)), "mean": round(statistics.fmean(values), 2),
            "p10": round(qs[0], 2), "p90": round(qs[-1], 2), "min": min(values), "max": max(values)}


def realism(trace_or_steps: TraceReadResult | Iterable[TraceStep],
            intents: Mapping[str, str] | None = None, policies: Mapping[str, str] | None = None) -> RealismBlock:
    """The realism figures of one run.

    ``intents`` maps session id to the shopper's intent; it decides which people a session's
    first query is compared with (own short intents → OPeRA, written goals → WebShop). Without
    it a session counts as "own" (an intent typed by the shopper), which is how shoppers arrive
    on a real site.
    """
    ref = load_reference()
    sessions = _sessions(trace_or_steps)
    counts: Counter[str] = Counter()
    lengths: list[int] = []
    first_query: dict[str, list[int]] = {"own": [], "goal": []}
    funnel: Counter[str] = Counter()
    reached: dict[str, set[str]] = {}
    for sid, steps in sessions.items():
        acted = [s.action for s in steps if s.action is not None]
        lengths.append(len(acted))
        for a in acted:
            counts[a.type] += 1
        query = next((a.text for a in acted if isinstance(a, TypeAndSubmit)), None)
        if query is not None:
            kind = intent_kind(intents[sid]) if intents and sid in intents else "own"
            first_query[kind].append(len(query.split()))
        reached[sid] = _stages(steps)
        funnel.update(reached[sid])
    total = sum(counts.values())
    mix = {t: round(counts[t] / total, 4) if total else 0.0 for t in ACTION_TYPES}
    n = len(sessions)
    funnel_share = {stage: round(funnel[stage] / n, 4) if n else 0.0 for stage in FUNNEL_STAGES}

    items: list[RealismItem] = []
    ref_mix = ref["action_mix"]["value"]
    tv = 0.5 * sum(abs(mix[t] - ref_mix[t]) for t in ACTION_TYPES)
    limit = ref["action_mix"]["target_abs_diff"]
    items.append(RealismItem(
        name="action_mix", value=mix, reference=ref_mix, distance=round(tv, 4), metric="total variation distance",
        target=f"each share within {limit} of the reference",
        met=bool(total) and all(abs(mix[t] - ref_mix[t]) <= limit for t in ACTION_TYPES),
        source=ref["action_mix"]["source"]))
    ref_len = ref["session_length"]["value"]["mean_actions"]
    length_stats = _stats(lengths)
    items.append(RealismItem(
        name="session_length", value=length_stats, reference={"mean_actions": ref_len},
        distance=round(abs(length_stats["mean"] - ref_len) / ref_len, 4) if lengths else None,
        metric="relative difference of the mean", source=ref["session_length"]["source"]))
    q_ref = ref["first_query_words"]
    q_limit = q_ref["target_abs_diff"]
    for kind in ("own", "goal"):
        values = first_query[kind]
        if not values:
            continue
        median = statistics.median(values)
        people = q_ref[kind]
        distance = abs(median - people["median"])
        metric = "absolute difference of medians (words)"
        if "histogram" in people:
            # scipy.stats takes ~1.5 s to import: paid when a realism block is computed, not
            # whenever the simulate command loads (its --help included).
            from scipy.stats import wasserstein_distance

            human = [int(k) for k, c in people["histogram"].items() for _ in range(c)]
            distance_w = wasserstein_distance(values, human)
            metric = f"absolute difference of medians (words); Wasserstein-1 to the human lengths: {distance_w:.3f}"
        items.append(RealismItem(
            name=f"first_query_words_{kind}", value={"median": median, "n": len(values)},
            reference={"median": people["median"]}, distance=float(distance), metric=metric,
            target=f"median within {q_limit} words", met=distance <= q_limit, source=people["source"]))
    items.append(RealismItem(name="funnel", value=funnel_share, reference=None, distance=None,
                             metric="share of sessions reaching each stage", source=ref["funnel"]["source"]))
    people = people_funnel(sessions, reached, ref)
    atc, ab = people["add_to_cart_rate"], people["cart_abandonment_rate"]
    items.append(RealismItem(
        name="funnel_vs_people", value={"add_to_cart": atc["run"], "cart_abandonment": ab["run"]},
        reference={"add_to_cart": f"{atc['people_low']:.1%}–{atc['people_high']:.1%}",
                   "cart_abandonment": f"{ab['people']:.2%}"},
        distance=None, metric="population-level references (all sessions of real shops), not targets",
        source=f"{atc['source']} {ab['source']}"))
    repeats = repeated_actions(sessions, policies)
    items.append(RealismItem(
        name="repeated_action_rate", value={k: v["rate"] for k, v in repeats.items()}, reference=None,
        distance=None, metric="share of consecutive step pairs repeating the previous action, per policy",
        source=ref["repeated_actions"]["source"]))
    rouge = first_query_rouge(sessions, intents or {})
    r_ref = ref["first_query_rouge"]
    for kind in ("own", "goal"):
        if not rouge[kind]:
            continue
        mean = round(statistics.fmean(rouge[kind]), 4)
        target = r_ref[kind].get("target")
        items.append(RealismItem(
            name=f"first_query_rouge_{kind}", value={"mean": mean, "n": len(rouge[kind])},
            reference={"people": r_ref[kind]["people"]} if "people" in r_ref[kind] else None,
            distance=round(abs(mean - r_ref[kind]["people"]), 4) if "people" in r_ref[kind] else None,
            metric=r_ref["metric"], target=f">= {target}" if target is not None else None,
            met=(mean >= target) if target is not None else None, source=r_ref[kind]["source"]))
    return RealismBlock(
        sessions=n, actions=total, action_mix=mix, session_length=length_stats,
        first_query_words={k: _stats(v) for k, v in first_query.items() if v},
        funnel=funnel_share, items=items, repeated_actions=repeats, people_funnel=people)


def realism_block(trace_or_steps: TraceReadResult | Iterable[TraceStep],
                  intents: Mapping[str, str] | None = None, policies: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``realism`` block of run.json (plain JSON)."""
    return realism(trace_or_steps, intents, policies).model_dump(mode="json")


def run_intents(run_dir: Path, trace: TraceReadResult) -> dict[str, str]:
    """Each session's intent, from run.json's personas (matched by the steps' persona id)."""
    info = load_run_info(run_dir)
    out: dict[str, str] = {}
    for sid, steps in trace.sessions.items():
        persona = info.persona(steps[0].persona_id) if steps else None
        if persona and persona.get("intent"):
            out[sid] = str(persona["intent"])
    return out


def run_policies(run_dir: Path, trace: TraceReadResult) -> dict[str, str]:
    """Each session's policy label from run.json: a mixed policy's part (shopper ``i`` uses part
    ``i % n``, ``i`` being the session id's last number), else the run's policy (and model)."""
    try:
        cfg = load_run_info(run_dir).config
    except Exception:  # noqa: BLE001 - no run.json: one unnamed policy
        return {}
    info = cfg.get("policy_info") or {}
    name = str(info.get("policy") or cfg.get("policy") or "run")  # what ran, not the CLI's choice word
    label = f"{name} ({cfg['model']})" if cfg.get("model") else name
    parts = info.get("parts") or []
    out: dict[str, str] = {}
    for sid in trace.sessions:
        index = sid.rsplit("-", 1)[-1]
        if parts and index.isdigit():
            part = parts[int(index) % len(parts)]
            out[sid] = str(part.get("label") or part.get("policy") or label)
        else:
            out[sid] = label
    return out


def realism_of_run(run_dir: Path) -> dict[str, Any]:
    """The realism block of a run directory (trace.jsonl + run.json): the one call run.json needs."""
    trace = read_trace(run_dir)
    return realism_block(trace, run_intents(Path(run_dir), trace), run_policies(Path(run_dir), trace))


def realism_html(block: Mapping[str, Any]) -> str:
    """The report's "Realism" section: one row per item, the run next to people, with the source.

    Kept here (not in the report module) so the figures and their presentation cannot drift.
    """
    def cell(v: Any) -> str:
        if isinstance(v, dict):
            v = ", ".join(f"{k} {x}" for k, x in v.items())
        return html.escape("—" if v is None else str(v))

    rows = "".join(
        f"<tr><td>{cell(i['name'])}</td><td>{cell(i['value'])}</td><td>{cell(i['reference'])}</td>"
        f"<td>{cell(i['distance'])}</td><td>{cell(i['metric'])}</td>"
        f"<td>{'—' if i['met'] is None else ('met' if i['met'] else 'missed')}"
        f"{' (' + cell(i['target']) + ')' if i['target'] else ''}</td>"
        f"<td><small>{cell(i['source'])}</small></td></tr>"
        for i in block.get("items", []))
    return ("<section id='realism'><h2>Realism</h2><p>How this run's shoppers compare with real people "
            f"({int(block.get('sessions', 0))} sessions, {int(block.get('actions', 0))} actions).</p>"
            "<table><thead><tr><th>item</th><th>this run</th><th>people</th><th>distance</th><th>metric</th>"
            f"<th>target</th><th>reference</th></tr></thead><tbody>{rows}</tbody></table>"
            f"{_people_funnel_html(block.get('people_funnel') or {})}"
            f"{_repeats_html(block.get('repeated_actions') or {})}</section>")


def _pct(v: Any) -> str:
    return "—" if v is None else f"{float(v):.1%}"


def _people_funnel_html(people: Mapping[str, Any]) -> str:
    """The run's funnel beside people's, marked as population-level references."""
    if not people:
        return ""
    atc, ab = people["add_to_cart_rate"], people["cart_abandonment_rate"]
    return ("<h3 id='funnel-vs-people'>Funnel beside people (population-level references)</h3>"
            f"<p><small>{html.escape(people['scope'])}</small></p><table><thead><tr><th>measure</th><th>this run</th>"
            "<th>people</th><th>source</th></tr></thead><tbody>"
            f"<tr><td>{html.escape(atc['what'])}</td><td>{_pct(atc['run'])}</td>"
            f"<td>{_pct(atc['people_low'])}–{_pct(atc['people_high'])}</td><td><small>{html.escape(atc['source'])}</small></td></tr>"
            f"<tr><td>{html.escape(ab['what'])}</td><td>{_pct(ab['run'])}</td><td>{float(ab['people']):.2%}</td>"
            f"<td><small>{html.escape(ab['source'])}</small></td></tr></tbody></table>")


def _repeats_html(repeats: Mapping[str, Mapping[str, Any]]) -> str:
    """Repeated-action rate per policy."""
    if not repeats:
        return ""
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{_pct(r['rate'])}</td><td>{int(r['repeats'])} of "
                   f"{int(r['pairs'])}</td></tr>" for label, r in repeats.items())
    return ("<h3 id='repeated-actions'>Repeated actions per policy</h3><p>Share of consecutive steps whose action "
            "repeats the previous one exactly (people change course after a failure or two).</p>"
            "<table><thead><tr><th>policy</th><th>repeated-action rate</th><th>pairs</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def record_realism(run_dir: Path) -> dict[str, Any] | None:
    """Compute the run's realism block and keep it in run.json's summary (the report reads it
    from there). None, logged, when the trace cannot give one: a report about realism must never
    cost the run its summary."""
    try:
        block = realism_of_run(run_dir)
        add_to_summary(run_dir, {"realism": block})
        return block
    except Exception as exc:  # noqa: BLE001 - any failure here is reported, not raised
        log.warning("no realism block for %s: %s", run_dir, exc)
        return None
