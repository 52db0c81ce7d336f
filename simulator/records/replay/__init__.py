"""Replay: recorded sessions, opened for people (the step view), browsers (live re-execution) and
policies (policy versus recorded).

This module holds what the three modes share, so that each conversion exists once:

* :func:`open_trace` reads a run directory (or a ``trace.jsonl``) and its ``run.json`` into
  :class:`ReplaySession` objects (steps, context events, persona, intent, outcome), with a clear
  :class:`ReplayError` naming ``file:line`` for anything that cannot be replayed.
* the conversions of a recorded step to what a policy reads (``observation_from_step``,
  ``history_before``) live in :mod:`shop_r1.simulator.records.trace.convert`, shared with training and
  the runner, so a replayed page is built the way the live one was recorded.

The submodules: :mod:`shop_r1.simulator.records.replay.view` (terminal view), :mod:`shop_r1.simulator.records.replay.execute`
(live re-execution and divergence), :mod:`shop_r1.simulator.analysis.compare` (policy versus recorded).
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shop_r1.personas.model import Persona
from shop_r1.simulator.records.trace import (
    TraceEvent,
    TraceFormatError,
    TraceProblem,
    TraceReadResult,
    TraceStep,
)
from shop_r1.simulator.records.trace.run import OpenedRun, open_run
from shop_r1.simulator.records.trace.views import RunInfo

log = logging.getLogger(__name__)

class ReplayError(Exception):
    """A trace (or a part of it) that cannot be replayed; the message says which and where."""


@dataclass
class ReplaySession:
    """One recorded shopper session, with everything the views need to show it."""

    session_id: str
    steps: list[TraceStep]
    events: list[TraceEvent]
    persona: Persona | None  # validated once, by open_run
    persona_id: str | None
    outcome: str
    end_reason: str | None = None
    #: run.json's persona entry as recorded (an importer may keep fields no Persona has): shown
    #: by the step view and its JSON, never read as a persona.
    persona_record: dict[str, Any] | None = None

    @property
    def intent(self) -> str | None:
        value = self.persona.intent if self.persona is not None else (self.persona_record or {}).get("intent")
        return str(value) if value else None

    def events_before(self, step: int) -> list[TraceEvent]:
        """Context events recorded just before decision ``step`` (not the session end marker)."""
        return [e for e in self.events if e.step == step and e.event != "session_end"]

    def events_after_last(self) -> list[TraceEvent]:
        last = self.steps[-1].step if self.steps else -1
        return [e for e in self.events if e.event != "session_end" and (e.step is None or e.step > last)]

    def index_of(self, step: int) -> int:
        """Position in ``steps`` of the step numbered ``step`` (or the first one after it)."""
        for i, s in enumerate(self.steps):
            if s.step >= step:
                return i
        raise ReplayError(
            f"session {self.session_id} has no step {step} (its steps are "
            f"{self.steps[0].step}..{self.steps[-1].step})" if self.steps else
            f"session {self.session_id} has no steps"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "persona_id": self.persona_id,
            "intent": self.intent,
            "steps": len(self.steps),
            "events": len([e for e in self.events if e.event != "session_end"]),
            "outcome": self.outcome,
            "end_reason": self.end_reason,
        }


@dataclass
class ReplayTrace:
    """A trace opened for replay: its sessions in file order, and what was skipped while reading."""

    path: Path
    run_info: RunInfo | None
    sessions: list[ReplaySession]
    problems: list[TraceProblem] = field(default_factory=list)
    read: TraceReadResult | None = None

    def session(self, session_id: str) -> ReplaySession:
        for s in self.sessions:
            if s.session_id == session_id:
                return s
        close = difflib.get_close_matches(session_id, [s.session_id for s in self.sessions], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ReplayError(f"{self.path}: no session {session_id!r} in the trace "
                          f"({len(self.sessions)} sessions){hint}")

    @property
    def recorded_origin(self) -> str | None:
        """The storefront the trace was recorded against (run config, else the first step's URL)."""
        url = str((self.run_info.config.get("shop_url") if self.run_info else None) or "")
        if not url:
            for s in self.sessions:
                if s.steps:
                    url = s.steps[0].url
                    break
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def open_trace(source: str | os.PathLike[str], *, strict: bool = True) -> ReplayTrace:
    """Read a run directory or a ``trace.jsonl`` for replay.

    A truncated last line (a crashed run) is skipped and kept in ``problems``; a broken line
    elsewhere, an unknown major schema version or a missing file raise :class:`ReplayError`
    whose message starts with ``file:line``. ``strict=False`` skips broken middle lines too.
    Sessions known only from events (a shopper that crashed before deciding anything, an
    imported session with only scrolls) are kept, with zero steps.
    """
    try:
        run = open_run(source, strict=strict)
    except FileNotFoundError as exc:
        raise ReplayError(str(exc)) from exc
    except TraceFormatError as exc:
        raise ReplayError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{source}: cannot read the trace: {exc}") from exc
    return replay_of(run)


def replay_of(run: OpenedRun) -> ReplayTrace:
    """The sessions of an opened run, in file order, with their context events and personas."""
    result, run_info, path = run.result, run.run_info, run.trace_path
    for problem in result.problems:
        log.warning("%s", problem)

    ids = list(dict.fromkeys([*result.session_ids, *(e.session_id for e in result.events)]))
    events_by: dict[str, list[TraceEvent]] = {}
    for e in result.events:
        events_by.setdefault(e.session_id, []).append(e)
    sessions: list[ReplaySession] = []
    for sid in ids:
        steps = result.sessions.get(sid, [])
        events = events_by.get(sid, [])
        persona_id = next((s.persona_id for s in steps if s.persona_id), None) or next(
            (e.persona_id for e in events if e.persona_id), None)
        end = result.session_end(sid)
        sessions.append(ReplaySession(
            session_id=sid, steps=steps, events=events, persona=run.persona(persona_id), persona_id=persona_id,
            outcome=result.outcome(sid), end_reason=end.end_reason if end is not None else None,
            persona_record=run_info.persona(persona_id) if run_info is not None else None,
        ))
    return ReplayTrace(path=path, run_info=run_info, sessions=sessions, problems=list(result.problems), read=result)


__all__ = ["ReplayError", "ReplaySession", "ReplayTrace", "open_trace", "replay_of"]
