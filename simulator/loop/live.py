"""The rich live view of a run: progress, steps/s and outcomes as they happen."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shop_r1.envs.actions import Action
from shop_r1.simulator.loop.runner import RunObserver, SessionEnd
from shop_r1.simulator.records.trace import FAILED_OUTCOMES

_OUTCOME_STYLE = {"purchased": "green", "added_to_cart": "cyan", "abandoned": "yellow", "max_steps": "magenta"}


class LiveView(RunObserver):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]shoppers"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console)
        self.task = self.progress.add_task("sessions", total=1)
        self.steps = 0
        self.errors: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.t0 = time.perf_counter()
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> "LiveView":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)

    def _render(self) -> Group:
        elapsed = max(time.perf_counter() - self.t0, 1e-6)
        stats = Table.grid(padding=(0, 2))
        stats.add_row(f"steps [bold]{self.steps}[/]", f"steps/s [bold]{self.steps / elapsed:.2f}[/]",
                      "errors " + (", ".join(f"{k} {v}" for k, v in self.errors.most_common(4)) or "none"))
        outcomes = " ".join(f"[{_OUTCOME_STYLE.get(k, 'red')}]{k} {v}[/]" for k, v in sorted(self.outcomes.items()))
        return Group(self.progress, stats, outcomes or "[dim]no session finished yet[/]")

    def on_start(self, total: int) -> None:
        self.progress.update(self.task, total=total)
        self.t0 = time.perf_counter()

    def on_step(self, session_id: str, step: int, action: Action | None, error_code: str | None) -> None:
        self.steps += 1
        if error_code:
            self.errors[error_code] += 1
        self.live.update(self._render())

    def on_session_end(self, end: SessionEnd) -> None:
        self.outcomes[end.outcome] += 1
        if end.outcome in FAILED_OUTCOMES:  # a session lost to the shop, browser or policy is an error too
            self.errors[end.outcome] += 1
        self.progress.advance(self.task)
        self.live.update(self._render())
