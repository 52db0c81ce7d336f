"""Opening a recorded run: the trace, its ``run.json`` and its personas, read once.

Replay, the report's task verdicts, training's datasets and the A/B analysis all need the same
three things from a run folder. :func:`open_run` reads them and validates each persona once
(into :class:`~shop_r1.personas.model.Persona`), so that what follows works with typed personas
and never coerces dicts again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from shop_r1.personas.model import Persona
from shop_r1.simulator.records.trace.reader import TraceFormatError, TraceProblem, TraceReadResult, load_run_info, read_trace
from shop_r1.simulator.records.trace.schema import RUN_FILE, TRACE_FILE
from shop_r1.simulator.records.trace.views import RunInfo

log = logging.getLogger(__name__)


@dataclass
class OpenedRun:
    """A run folder (or a bare ``trace.jsonl``) as read: records, run info, typed personas."""

    source: Path  # as given: a run folder or a trace file
    result: TraceReadResult
    run_info: RunInfo | None = None
    #: persona_id -> Persona, for every persona the run recorded (None where run.json's entry is
    #: not a valid persona: it is logged once, and prompts leave it out).
    personas: dict[str, Persona | None] = field(default_factory=dict)

    @property
    def trace_path(self) -> Path:
        return self.result.path

    @property
    def run_dir(self) -> Path:
        return self.result.path.parent

    @property
    def problems(self) -> list[TraceProblem]:
        return self.result.problems

    def persona(self, persona_id: str | None) -> Persona | None:
        return self.personas.get(persona_id) if persona_id is not None else None

    def describe(self) -> dict[str, Any]:
        """Provenance of this trace for a dataset manifest: path, content hash, run ids, sizes."""
        return {
            "path": str(self.result.path),
            "sha256": _sha256(self.result.path),
            "run_ids": self.result.run_ids,
            "sessions": len(self.result.sessions),
            "steps": len(self.result.steps),
            "problems": len(self.result.problems),
        }


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def persona_from_record(data: Any, where: str) -> Persona | None:
    """A persona recorded in run.json (a dict), validated; None (logged) when it is not one."""
    if not data:
        return None
    try:  # run.json may carry more than a persona (an importer's raw profile fields): keep the fields
        return Persona.model_validate({k: v for k, v in dict(data).items() if k in Persona.model_fields})
    except (ValidationError, TypeError, ValueError) as exc:
        pid = data.get("persona_id", data.get("id")) if isinstance(data, dict) else None
        reason = exc.errors()[0].get("msg") if isinstance(exc, ValidationError) else str(exc)
        log.warning("%s: persona %r is not a valid persona (%s); it is left out", where, pid, reason)
        return None


def open_run(source: str | os.PathLike[str], *, strict: bool = True,
             bad_run_info: Literal["raise", "warn"] = "raise") -> OpenedRun:
    """Read a run folder or a ``trace.jsonl``, its ``run.json`` (when there is one) and its personas.

    ``strict``: a broken line in the middle of the trace raises (``file:line``); otherwise it is
    kept in ``problems`` and skipped (a truncated last line is always skipped). A missing trace
    raises :class:`FileNotFoundError` naming the path. ``bad_run_info``: an unreadable run.json
    raises :class:`TraceFormatError`, or (``warn``) is logged and the run is read without it.
    """
    path = Path(source)
    trace_file = path / TRACE_FILE if path.is_dir() else path
    if not trace_file.exists():
        raise FileNotFoundError(f"{trace_file}: no trace here (give a run directory or a {TRACE_FILE} file)")
    result = read_trace(trace_file, strict=strict)
    run_file = trace_file.parent / RUN_FILE
    info: RunInfo | None = None
    if run_file.is_file():
        try:
            info = load_run_info(run_file)
        except TraceFormatError as exc:
            if bad_run_info == "raise":
                raise
            log.warning("%s; personas and config are unknown", exc)
    else:
        log.info("%s: no %s next to the trace; personas and config are unknown", trace_file, RUN_FILE)
    run = OpenedRun(source=path, result=result, run_info=info)
    if info is not None:
        for record in info.personas:
            pid = record.get("persona_id", record.get("id")) if isinstance(record, dict) else None
            if pid is not None and str(pid) not in run.personas:
                run.personas[str(pid)] = persona_from_record(record, str(run_file))
    return run


__all__ = ["OpenedRun", "open_run", "persona_from_record"]
