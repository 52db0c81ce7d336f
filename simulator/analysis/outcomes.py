"""``task_outcomes(run_dir)``: the verdicts of a ``--tasks`` run, straight from its directory.

Apart from ``verdicts`` because it computes the report's session facts itself, so it imports the
report (which may itself import ``verdicts``).
"""

from __future__ import annotations

from pathlib import Path

from shop_r1.simulator.analysis.report import session_facts
from shop_r1.personas.tasks import TASKS_FILE
from shop_r1.simulator.analysis.verdicts import SessionVerdict, TaskOutcome, read_task_run, task_outcomes_html, verdicts
from shop_r1.simulator.records.trace import read_trace

__all__ = ["SessionVerdict", "TaskOutcome", "task_outcomes", "task_outcomes_html"]


def task_outcomes(run_dir: str | Path) -> list[TaskOutcome]:
    """Per task of ``run_dir/tasks.json``, whether each of its sessions met its success condition.

    Raises FileNotFoundError when the run had no tasks.
    """
    run = read_task_run(run_dir)
    if run is None:
        raise FileNotFoundError(f"{Path(run_dir) / TASKS_FILE}: this run had no --tasks")
    trace = read_trace(run_dir, strict=False)
    return verdicts(run, trace, session_facts(trace))
