"""Per task of a ``--tasks`` run, whether each of its sessions met the task's success condition.

Judged from the report's own per-session facts (``report.SessionFacts``: page kinds by content,
"added to cart" as the report counts it), handed in by the caller, so a task's verdict and the
report's funnel cannot disagree. This module does not import the report, so the report can
import it (``read_task_run`` + ``verdicts`` + ``task_outcomes_html``) without a cycle;
``outcomes.task_outcomes(run_dir)`` does the whole thing from a run directory.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shop_r1.envs.pagetype import classify
from shop_r1.personas.tasks import TASKS_FILE, TaskFileError, TaskRun
from shop_r1.simulator.records.trace import TraceReadResult
from shop_r1.simulator.records.trace.convert import observation_from_step


class SessionVerdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    persona_id: str | None
    outcome: str
    succeeded: bool | None  # None: the task gave no success condition
    evidence: str


class TaskOutcome(BaseModel):
    """One task's verdict over the sessions that ran it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    intent: str
    condition: str | None
    sessions: list[SessionVerdict]

    @property
    def succeeded(self) -> int:
        return sum(1 for s in self.sessions if s.succeeded)

    @property
    def verdict(self) -> str:
        if self.condition is None:
            return "no success condition given"
        if not self.sessions:
            return "not run"
        return f"succeeded in {self.succeeded} of {len(self.sessions)}"


def read_task_run(run_dir: str | Path) -> TaskRun | None:
    """``run_dir/tasks.json``, or None when the run had no tasks."""
    path = Path(run_dir) / TASKS_FILE
    if not path.is_file():
        return None
    try:
        return TaskRun.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise TaskFileError(f"{path}: not a tasks record: {exc.errors()[0]['msg']}") from exc


def verdicts(run: TaskRun, trace: TraceReadResult, facts: Mapping[str, Any]) -> list[TaskOutcome]:
    """Every task's sessions judged; ``facts`` is ``report.session_facts(trace)``."""
    sessions: dict[str, list[SessionVerdict]] = {t.id: [] for t in run.tasks}
    by_id = {t.id: t for t in run.tasks}
    for sid, fact in facts.items():
        task_id = run.shoppers.get(fact.persona_id or "")
        if task_id is None:
            continue
        cond = by_id[task_id].success
        titles = [classify(observation_from_step(step)).heading or step.title
                  for step, kind in zip(trace.sessions.get(sid, []), fact.kinds) if kind == "product"]
        carted = "added_to_cart" in fact.stages
        ok: bool | None = None
        notes = [f"{len(titles)} product page(s)", "added to cart" if carted else "nothing added to cart"]
        if cond is not None:
            ok = True
            if cond.product_title_matches is not None:
                hit = next((t for t in titles if re.search(cond.product_title_matches, t, re.I)), None)
                ok = hit is not None
                notes.insert(0, f"matched {hit!r}" if hit else "no product title matched")
            if cond.added_to_cart is not None:
                ok = ok and carted == cond.added_to_cart
        sessions[task_id].append(SessionVerdict(session_id=sid, persona_id=fact.persona_id, outcome=fact.outcome,
                                                succeeded=ok, evidence="; ".join(notes)))
    return [TaskOutcome(task_id=t.id, intent=t.intent, condition=t.success.describe() if t.success else None,
                        sessions=sessions[t.id]) for t in run.tasks]


def task_outcomes_html(outcomes: Sequence[TaskOutcome]) -> str:
    """The report's "Tasks" section: one row per task, its condition and its verdict."""
    rows = "".join(
        f"<tr><td>{html.escape(o.task_id)}</td><td>{html.escape(o.intent)}</td>"
        f"<td>{html.escape(o.condition or '—')}</td><td>{html.escape(o.verdict)}</td></tr>" for o in outcomes)
    return ("<section id='tasks'><h2>Tasks</h2><table><thead><tr><th>task</th><th>intent</th>"
            f"<th>success means</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table></section>")
