"""Live re-execution: replay recorded actions in a real browser and report where the site diverged.

This is how a team sees what a new storefront build breaks for yesterday's shoppers: every
recorded session is replayed in its own Chromium context against the shop (the recorded origin,
or another one such as a staging build: the recorded URLs' origin is rewritten), and before each
recorded action the live page is compared with the recorded one:

* ``same`` -- the page offers exactly the recorded element names;
* ``changed`` -- the recorded target is there, but names were added or removed (listed);
* ``target_missing`` -- the element the shopper acted on is gone (the closest live names are
  suggested, with the executor's own :func:`~shop_r1.envs.executor.suggest_names`);
* ``failed`` -- the page could not be opened, or the recorded action failed live where it had
  worked when recorded (the error is given).

The recorded action is then executed whatever the verdict (a missing target fails with the
executor's ``unknown_name``), so the replay follows the shopper as far as the site allows.
``resync=True`` reopens the recorded URL whenever the live page is elsewhere, so later steps
are still compared page for page after an early divergence.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shop_r1.envs.actions import Terminate
from shop_r1.envs.browser import SESSION_HEADER, BrowserPool, SessionCrashed, SessionOptions
from shop_r1.envs.outages import ResetError
from shop_r1.envs.executor import suggest_names
from shop_r1.envs.hops import origin_of
from shop_r1.envs.observation import Observation
from shop_r1.simulator.records.replay import ReplaySession, ReplayTrace
from shop_r1.simulator.records.trace import TraceStep, step_names

log = logging.getLogger(__name__)

Verdict = Literal["same", "changed", "target_missing", "failed"]
VERDICTS: tuple[Verdict, ...] = ("same", "changed", "target_missing", "failed")
_VERDICT_STYLE = {"same": "green", "changed": "yellow", "target_missing": "bold red", "failed": "bold magenta"}
#: How many added/removed names a text line lists before "… and N more".
_LIST_NAMES = 8


def rewrite_origin(url: str, origin: str | None) -> str:
    """``url`` with its scheme and host:port replaced by ``origin`` (path, query, fragment kept)."""
    if not origin:
        return url
    new = urlsplit(origin_of(origin))
    parts = urlsplit(url)
    return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))


@dataclass
class StepVerdict:
    """What one recorded step looked like live."""

    session_id: str
    step: int
    verdict: Verdict
    recorded_url: str
    live_url: str | None
    target: str | None = None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "execute_step", **asdict(self)}


@dataclass
class SessionDivergence:
    session_id: str
    steps_recorded: int
    verdicts: list[StepVerdict] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(v.verdict for v in self.verdicts)
        return {k: c.get(k, 0) for k in VERDICTS}

    @property
    def first_divergent_step(self) -> int | None:
        return next((v.step for v in self.verdicts if v.verdict != "same"), None)

    @property
    def steps_replayed(self) -> int:
        return len(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "execute_session", "session_id": self.session_id, "steps_recorded": self.steps_recorded,
                "steps_replayed": self.steps_replayed, "first_divergent_step": self.first_divergent_step,
                "counts": self.counts}


@dataclass
class ExecutionReport:
    shop_origin: str | None
    sessions: list[SessionDivergence] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in self.sessions:
            total.update(s.counts)
        return {k: total.get(k, 0) for k in VERDICTS}

    @property
    def diverged(self) -> bool:
        return any(s.first_divergent_step is not None for s in self.sessions)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "divergence_summary", "shop": self.shop_origin, "sessions": len(self.sessions),
                "diverged_sessions": sum(s.first_divergent_step is not None for s in self.sessions),
                "counts": self.counts, "wall_s": round(self.wall_s, 2)}

    def render(self, console: Console) -> None:
        table = Table(title=f"divergence summary · {self.shop_origin or 'recorded shop'}")
        table.add_column("session")
        table.add_column("replayed", justify="right")
        table.add_column("first divergent step", justify="right")
        for v in VERDICTS:
            table.add_column(v, justify="right", style=_VERDICT_STYLE[v])
        for s in self.sessions:
            first = s.first_divergent_step
            table.add_row(s.session_id, f"{s.steps_replayed}/{s.steps_recorded}",
                          "-" if first is None else str(first), *(str(s.counts[v]) for v in VERDICTS))
        totals = self.counts
        table.add_row(Text("all", style="bold"), str(sum(s.steps_replayed for s in self.sessions)),
                      f"{sum(s.first_divergent_step is not None for s in self.sessions)} diverged",
                      *(str(totals[v]) for v in VERDICTS))
        console.print(table)


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LIST_NAMES])
    return shown + (f" … and {len(names) - _LIST_NAMES} more" if len(names) > _LIST_NAMES else "")


def step_line(v: StepVerdict) -> Text:
    """One line per replayed step for a person watching."""
    line = Text(f"{v.session_id} step {v.step:>2} ")
    line.append(f"{v.verdict:<14}", style=_VERDICT_STYLE[v.verdict])
    if v.target:
        line.append(f" {v.target}", style="bold")
    if v.suggestions:
        line.append(f"  closest: {', '.join(v.suggestions)}", style="cyan")
    if v.removed:
        line.append(f"  removed: {_listed(v.removed)}", style="red")
    if v.added:
        line.append(f"  added: {_listed(v.added)}", style="green")
    if v.error:
        line.append(f"  error: {v.error}", style="magenta")
    for note in v.notes:
        line.append(f"  ({note})", style="dim")
    return line


def compare_page(recorded: TraceStep, live: Observation) -> StepVerdict:
    """The verdict on the live page before the recorded action (execution is judged separately)."""
    rec_names = step_names(recorded)
    live_names = list(live.names)
    rec_set, live_set = set(rec_names), set(live_names)
    target = recorded.target_name
    v = StepVerdict(session_id=recorded.session_id, step=recorded.step, verdict="same",
                    recorded_url=recorded.url, live_url=live.url, target=target,
                    added=[n for n in live_names if n not in rec_set],
                    removed=[n for n in rec_names if n not in live_set])
    # A target that was not on the recorded page either (the policy named a wrong element) is
    # not a divergence of the site.
    if target and target not in live_set and (target in rec_set or not rec_set):
        v.verdict = "target_missing"
        v.suggestions = list(suggest_names(target, live_names)) if live_names else []
    elif v.added or v.removed:
        v.verdict = "changed"
    return v


async def _replay_session(pool: Any, session: ReplaySession, *, origin: str | None, allow_purchase: bool,
                          resync: bool, on_step: Callable[[StepVerdict], None] | None) -> SessionDivergence:
    result = SessionDivergence(session.session_id, len(session.steps))
    if not session.steps:
        return result

    def emit(v: StepVerdict) -> None:
        result.verdicts.append(v)
        if on_step is not None:
            on_step(v)

    replay_id = f"replay-{uuid.uuid4().hex[:8]}-{session.session_id}"
    browser = await pool.new_session(replay_id, extra_headers={SESSION_HEADER: replay_id},
                                     options=SessionOptions(allow_purchase=allow_purchase))
    try:
        first = session.steps[0]
        start = rewrite_origin(first.url, origin)
        try:
            live = await browser.reset(start)
        except (ResetError, SessionCrashed) as exc:
            emit(StepVerdict(session.session_id, first.step, "failed", first.url, None,
                             target=first.target_name, error=str(exc)))
            return result
        for step in session.steps:
            want = rewrite_origin(step.url, origin)
            notes: list[str] = []
            if live.url != want:
                if resync:
                    try:
                        live = await browser.reset(want)
                        notes.append("reopened the recorded URL")
                    except (ResetError, SessionCrashed) as exc:
                        emit(StepVerdict(session.session_id, step.step, "failed", step.url, live.url,
                                         target=step.target_name, error=str(exc)))
                        return result
                else:
                    notes.append(f"live page is {live.url}")
            v = compare_page(step, live)
            v.notes.extend(notes)
            action = step.action
            if action is None:
                v.notes.append("no recorded action (the policy's answer did not parse)")
                emit(v)
                continue
            if isinstance(action, Terminate):
                emit(v)
                break
            res = await browser.step(action)
            recorded_code = step.exec_error.code if step.exec_error else None
            live_code = res.error.code if res.error else None
            if res.error is not None and live_code != recorded_code:
                if v.verdict != "target_missing":
                    v.verdict = "failed"
                v.error = f"{live_code}: {res.error.message}"
            elif res.error is None and recorded_code is not None:
                v.notes.append(f"recorded error {recorded_code} did not happen live")
                if v.verdict == "same":
                    v.verdict = "changed"
            emit(v)
            if res.done or res.observation is None:
                break
            live = res.observation
    except Exception as exc:  # one broken session must not stop the others
        log.warning("replaying %s failed: %s", session.session_id, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        done = {v.step for v in result.verdicts}
        nxt = next((s for s in session.steps if s.step not in done), None)
        if nxt is not None:
            emit(StepVerdict(session.session_id, nxt.step, "failed", nxt.url, None,
                             target=nxt.target_name, error=f"{type(exc).__name__}: {exc}"))
    finally:
        await browser.close()
    return result


async def execute_trace(trace: ReplayTrace, sessions: Sequence[ReplaySession] | None = None, *,
                        shop_url: str | None = None, concurrency: int = 2, allow_purchase: bool = False,
                        resync: bool = False, browser_path: str | None = None, headless: bool = True,
                        on_step: Callable[[StepVerdict], None] | None = None) -> ExecutionReport:
    """Replay ``sessions`` (default: all) live and compare every page with the recorded one.

    ``shop_url``: run against this origin instead of the recorded one (recorded URLs keep their
    path and query). Sessions run ``concurrency`` at a time, each in its own browser context;
    the report keeps the trace's session order.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    origin = origin_of(shop_url) if shop_url else None
    chosen = list(sessions if sessions is not None else trace.sessions)
    report = ExecutionReport(shop_origin=origin or trace.recorded_origin)
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(concurrency)
    async with BrowserPool(browser_path=browser_path, headless=headless) as pool:
        async def one(s: ReplaySession) -> SessionDivergence:
            async with sem:
                return await _replay_session(pool, s, origin=origin, allow_purchase=allow_purchase,
                                             resync=resync, on_step=on_step)

        report.sessions = list(await asyncio.gather(*(one(s) for s in chosen)))
    report.wall_s = time.perf_counter() - t0
    return report


__all__ = [
    "VERDICTS", "ExecutionReport", "SessionDivergence", "StepVerdict", "Verdict", "compare_page",
    "execute_trace", "rewrite_origin", "step_line",
]
