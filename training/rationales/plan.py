"""Which recorded steps need a rationale, each with the teacher's prompt already built."""

from __future__ import annotations

from shop_r1.simulator.records.exchange import HistoryItem
from shop_r1.simulator.records.trace import history_item
from shop_r1.training.data import LoadedTrace
from shop_r1.training.rationales.prompt import (
    TEACHER_CONTEXT_BUDGET,
    RationaleJob,
    teacher_messages,
)


def plan_jobs(trace: LoadedTrace, *, overwrite: bool = False,
              token_budget: int = TEACHER_CONTEXT_BUDGET) -> tuple[list[RationaleJob], dict[str, int]]:
    """The steps that need a rationale, in file order, and counts of the ones that do not."""
    jobs: list[RationaleJob] = []
    counts = {"steps": 0, "without_action": 0, "kept": 0}
    for sid, steps in trace.result.sessions.items():
        persona = trace.personas.get(steps[0].persona_id) if steps and steps[0].persona_id else None
        history: list[HistoryItem] = []
        for step in steps:
            counts["steps"] += 1
            action = step.action
            if action is None:
                counts["without_action"] += 1
                continue
            if step.rationale.strip() and not overwrite:
                counts["kept"] += 1
            else:
                name = getattr(action, "name", None)
                el = step.element(name) if name else None
                jobs.append(RationaleJob(
                    session_id=sid, step=step.step, action=action,
                    messages=teacher_messages(step, history, persona, token_budget=token_budget),
                    target_text=el.text if el is not None else "", url=step.url, title=step.title,
                    intent=(getattr(persona, "intent", None) or ""),
                ))
            history.append(history_item(step))
    return jobs, counts


__all__ = ["plan_jobs"]
