"""A run folder in, its report out: read the trace, summarise, attach realism and task verdicts,
write ``report.html``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from shop_r1.simulator.analysis.realism import realism_block, run_intents, run_policies
from shop_r1.simulator.analysis.report.console import render_console
from shop_r1.simulator.analysis.report.errors import ReportError
from shop_r1.simulator.analysis.report.facts import session_facts
from shop_r1.simulator.analysis.report.html import write_html
from shop_r1.simulator.analysis.report.summary import RunSummary, summarize
from shop_r1.simulator.analysis.verdicts import read_task_run, task_outcomes_html, verdicts
from shop_r1.simulator.records.trace import load_run_info, read_trace


def build_report(
    run_dir: str | os.PathLike[str],
    console: Console | None = None,
    *,
    segment_by: Sequence[str] | None = None,
    strict: bool = False,
) -> RunSummary:
    """Read a run directory, write ``report.html`` there, optionally print it; returns the summary.

    Reads leniently by default (``strict=False``): a report of a damaged trace is still useful,
    and the skipped lines are listed in it.
    """
    run_dir = Path(run_dir)
    trace = read_trace(run_dir, strict=strict)
    if not trace.steps and not trace.events and (trace.problems or not (run_dir / "run.json").is_file()):
        # A run folder whose run.json says a run happened may hold zero records (every shopper
        # stopped before a step): that report is all zeros. Anything else is not a trace.
        where = run_dir / "trace.jsonl" if run_dir.is_dir() else run_dir
        detail = f"; {len(trace.problems)} line(s) unreadable, first: {trace.problems[0]}" if trace.problems else \
            " (the file is empty)"
        raise ReportError(f"{where} holds no trace records{detail}")
    info = load_run_info(run_dir) if (run_dir / "run.json").is_file() else None
    summary = summarize(trace, info, segment_by=segment_by)
    summary.realism = (info.summary.get("realism") if info is not None else None) or \
        realism_block(trace, run_intents(run_dir, trace), run_policies(run_dir, trace))
    task_run = read_task_run(run_dir)
    if task_run is not None:
        summary.tasks_html = task_outcomes_html(verdicts(task_run, trace, session_facts(trace)))
    write_html(summary, run_dir / "report.html")
    if console is not None:
        render_console(summary, console)
    return summary
