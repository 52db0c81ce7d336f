"""Reading a run directory: every consumer (replay, evaluation, datasets, reports) starts here.

The reader treats a broken *last* line as the expected outcome of a crash (reported, skipped)
and a broken line in the *middle* as corruption (an error naming ``file:line``). Schema-1 lines
are converted to schema 2 here (:mod:`shop_r1.simulator.records.trace.schema1`), once, so nothing
after this edge knows schema 1 existed; an unknown major is refused with the file and line.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shop_r1.simulator.records.trace import schema1
from shop_r1.simulator.records.trace.schema import RUN_FILE, TRACE_FILE, TRACE_MAJORS_READ, TRACE_SCHEMA, version_major
from shop_r1.simulator.records.trace.views import NO_CONTROLS, RunInfo, TraceEvent, TraceRecord, TraceStep

log = logging.getLogger(__name__)


class TraceFormatError(ValueError):
    """A trace or run file that cannot be read; the message starts with ``file:line``."""

    def __init__(self, file: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.reason = message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TraceProblem:
    """A line that was skipped (or a suspicious record), with where it was."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class TraceReadResult:
    path: Path
    steps: list[TraceStep] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)
    sessions: dict[str, list[TraceStep]] = field(default_factory=dict)
    problems: list[TraceProblem] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return sorted({s.run_id for s in self.steps} | {e.run_id for e in self.events})

    def events_for(self, session_id: str) -> list[TraceEvent]:
        return [e for e in self.events if e.session_id == session_id]

    @property
    def session_ids(self) -> list[str]:
        """Sessions with steps, then sessions known only from a ``session_end`` event (a
        shopper that timed out or crashed before its first decision), in file order."""
        ids = dict.fromkeys(self.sessions)
        ids.update(dict.fromkeys(e.session_id for e in self.events if e.done))
        return list(ids)

    def session_end(self, session_id: str) -> TraceStep | TraceEvent | None:
        """The record that ended the session: its done step, else its last done event."""
        for s in reversed(self.sessions.get(session_id, [])):
            if s.done:
                return s
        ends = [e for e in self.events if e.session_id == session_id and e.done]
        return ends[-1] if ends else None

    def outcome(self, session_id: str) -> str:
        """The session's outcome, or ``"unfinished"`` when nothing ended it (a killed run)."""
        end = self.session_end(session_id)
        return end.outcome if end is not None and end.outcome else "unfinished"


def _resolve_trace_path(source: str | os.PathLike[str]) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / TRACE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no trace at {path}")
    return path


def _format_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


# A JSON line that may hold a control character: escaped as JSON writes them (\u001b, \r, \b,
# \f) or raw (a writer with ensure_ascii off). Newline and tab escapes are text and stay.
_CONTROL_IN_JSON = re.compile(rb"\\u00(?:[01][0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])|\\[bfr]|[\x00-\x08\x0b-\x1f\x7f]"
                              rb"|\xc2[\x80-\x9f]")


def parse_record(data: Any, *, raw: bytes | None = None) -> TraceRecord:
    """Validate one decoded JSON line as a step or an event (``ValueError`` says why).

    A schema-1 line is converted to schema 2 first (its element table completed). ``raw``, the
    line as read, lets validation skip the control-character walk when the line holds none.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a trace line must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if not isinstance(version, str):
        raise ValueError("missing schema_version")
    if version_major(version, TRACE_SCHEMA, TRACE_MAJORS_READ) == 1:
        data = schema1.upgrade(data)
    kind = data.get("kind", "step")
    models: dict[str, type[TraceStep] | type[TraceEvent]] = {"step": TraceStep, "event": TraceEvent}
    model = models.get(kind)
    if model is None:
        raise ValueError(f"unknown record kind {kind!r} (expected 'step' or 'event')")
    try:
        clean = raw is not None and _CONTROL_IN_JSON.search(raw) is None
        return model.model_validate(data, context={NO_CONTROLS: clean})
    except ValidationError as exc:
        raise ValueError(f"invalid {kind} record: {_format_validation(exc)}") from None


def read_trace(source: str | os.PathLike[str], *, strict: bool = True) -> TraceReadResult:
    """Read and validate a trace (a run directory or the ``.jsonl`` path).

    * A broken last line (a crash mid-write) is recorded in ``problems`` and skipped.
    * A bad line anywhere else raises ``TraceFormatError`` naming ``file:line``; with
      ``strict=False`` it is recorded in ``problems`` and skipped instead.
    * An unknown MAJOR ``schema_version`` always raises: skipping it would silently drop every
      record a newer writer produced.
    * A repeated (session_id, step) keeps the first record and is recorded as a problem.
    """
    path = _resolve_trace_path(source)
    result = TraceReadResult(path=path)
    with path.open("rb") as fh:
        raw_lines = fh.read().split(b"\n")
    # split() yields a final b"" when the file ends with a newline; a non-empty final chunk is a
    # line that was not terminated, which only a crash mid-write produces.
    last_index = max((i for i, b in enumerate(raw_lines) if b.strip()), default=-1)
    seen: dict[tuple[str, int], int] = {}
    for index, raw in enumerate(raw_lines):
        if not raw.strip():
            continue
        lineno = index + 1
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if index == last_index:
                result.problems.append(
                    TraceProblem(str(path), lineno, f"truncated last line skipped ({len(raw)} bytes): {exc}")
                )
                log.warning("%s:%d: truncated last line skipped", path, lineno)
                continue
            _bad(result, path, lineno, f"not valid JSON: {exc}", strict)
            continue
        if isinstance(data, dict) and isinstance(data.get("schema_version"), str):
            try:
                version_major(data["schema_version"], TRACE_SCHEMA, TRACE_MAJORS_READ)
            except ValueError as exc:
                raise TraceFormatError(path, lineno, str(exc)) from None
        try:
            record = parse_record(data, raw=raw)
        except ValueError as exc:
            _bad(result, path, lineno, str(exc), strict)
            continue
        if isinstance(record, TraceEvent):
            result.events.append(record)
            continue
        key = (record.session_id, record.step)
        if key in seen:
            result.problems.append(TraceProblem(
                str(path), lineno,
                f"session {record.session_id!r} step {record.step} repeats line {seen[key]}; kept the first",
            ))
            continue
        seen[key] = lineno
        result.steps.append(record)
        result.sessions.setdefault(record.session_id, []).append(record)
    for steps in result.sessions.values():
        steps.sort(key=lambda s: s.step)
    return result


def _bad(result: TraceReadResult, path: Path, lineno: int, message: str, strict: bool) -> None:
    if strict:
        raise TraceFormatError(path, lineno, message)
    result.problems.append(TraceProblem(str(path), lineno, message))
    log.warning("%s:%d: %s", path, lineno, message)


def iter_sessions(
    trace: TraceReadResult | str | os.PathLike[str], *, strict: bool = True
) -> Iterator[tuple[str, list[TraceStep]]]:
    """``(session_id, steps in step order)`` in the order sessions first appear in the file."""
    result = trace if isinstance(trace, TraceReadResult) else read_trace(trace, strict=strict)
    yield from result.sessions.items()


def load_run_info(run_dir: str | os.PathLike[str]) -> RunInfo:
    """Read and validate ``run.json`` (a run directory or the file itself)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no run info at {path}") from None
    except json.JSONDecodeError as exc:
        raise TraceFormatError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise TraceFormatError(path, 1, "run.json must hold a JSON object")
    try:
        return RunInfo.model_validate(data)
    except ValidationError as exc:
        raise TraceFormatError(path, None, f"invalid run info: {_format_validation(exc)}") from None
