"""Writing a run directory: ``trace.jsonl`` appended line by line, ``run.json`` replaced atomically.

Why JSON Lines: a crash mid-run must lose at most the line being written. Every record is
written with a single ``write`` on an ``O_APPEND`` descriptor while a lock is held, so lines
from many concurrent sessions never interleave.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from shop_r1.simulator.records.trace.reader import load_run_info
from shop_r1.simulator.records.trace.schema import RUN_FILE, TRACE_FILE, now_iso, screenshot_path
from shop_r1.simulator.records.trace.views import RunInfo, TraceEvent, TraceStep

log = logging.getLogger(__name__)


def collect_versions() -> dict[str, str]:
    """Versions worth recording: python, shop-r1, playwright, and torch/transformers if loaded.

    torch and transformers are only reported when already imported, so that recording a run's
    versions never costs the ~10 s import.
    """
    versions = {"python": platform.python_version()}
    for dist in ("shop-r1", "playwright"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    for mod in ("torch", "transformers", "trl"):
        if mod in sys.modules:
            versions[mod] = str(getattr(sys.modules[mod], "__version__", "unknown"))
    return versions


def _atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to a temp file in the same directory, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TraceWriter:
    """Appends records to ``run_dir/trace.jsonl`` and keeps ``run_dir/run.json`` up to date.

    One writer serves every concurrent session of a run: ``write_step``/``write_event`` take a
    lock and issue one ``os.write`` per line on an ``O_APPEND`` descriptor (no user-space
    buffer), so a line is either fully on disk or is the single truncated last line a crash can
    leave. They never ``await``, so they are also safe to call from many asyncio tasks.
    ``fsync=True`` additionally forces each line to stable storage (slower; for long runs on
    machines that may lose power).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        run_id: str | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        personas: Sequence[Mapping[str, Any]] = (),
        versions: Mapping[str, str] | None = None,
        fsync: bool = False,
        append: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.trace_path = self.run_dir / TRACE_FILE
        self.run_path = self.run_dir / RUN_FILE
        self.fsync = fsync
        self._lock = threading.Lock()
        self._finished = False
        self._steps = 0
        self._events = 0
        self._sessions: set[str] = set()
        self._outcomes: Counter[str] = Counter()

        if self.trace_path.exists() and self.trace_path.stat().st_size > 0 and not append:
            raise FileExistsError(
                f"{self.trace_path} already holds a trace; use a new run directory "
                "(or append=True to continue the same run)"
            )
        if append and self.run_path.exists():
            previous = load_run_info(self.run_dir)
            if run_id is not None and run_id != previous.run_id:
                raise ValueError(
                    f"{self.run_path}: run_id {previous.run_id!r} differs from {run_id!r}; "
                    "appending would mix two runs in one trace"
                )
            self.info = previous.model_copy(update={"ended_at": None})
        else:
            self.info = RunInfo(
                run_id=run_id or uuid.uuid4().hex[:12],
                config=json.loads(json.dumps(dict(config or {}), default=str)),
                versions=dict(versions) if versions is not None else collect_versions(),
                seed=seed,
                personas=[json.loads(json.dumps(dict(p), default=str)) for p in personas],
                started_at=now_iso(),
            )
        self.run_id = self.info.run_id
        _atomic_write_json(self.run_path, self.info.model_dump(mode="json"))
        self._fd: int | None = os.open(
            self.trace_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644
        )
        log.info("tracing run %s to %s", self.run_id, self.trace_path)

    # -- records ------------------------------------------------------------------------------

    def _own(self, record: TraceStep | TraceEvent) -> None:
        if record.run_id != self.run_id:
            raise ValueError(f"record run_id {record.run_id!r} differs from the writer's {self.run_id!r}")

    def _validated(self, record: Mapping[str, Any], model: type[TraceStep] | type[TraceEvent]) -> Any:
        """A dict record (an edge: imported logs, tests) validated once, ``run_id`` filled in."""
        data = dict(record)
        data.setdefault("run_id", self.run_id)
        data["kind"] = model.model_fields["kind"].default
        built = model.model_validate(data)
        self._own(built)
        return built

    def write_step(self, record: Mapping[str, Any] | TraceStep) -> TraceStep:
        """Append one step; returns it.

        A ``TraceStep`` (what ``builder.step_record`` returns) is written as it is -- it was
        validated when it was built. A dict is validated first (``run_id``/``schema_version``/
        ``ts`` filled in); a bad one raises ``ValueError`` (a pydantic ``ValidationError``)
        naming the field, and nothing is written.
        """
        if isinstance(record, TraceStep):
            self._own(record)
            step = record
        else:
            step = self._validated(record, TraceStep)
        self._append(step.to_json())
        with self._lock:
            self._steps += 1
            self._sessions.add(step.session_id)
            if step.outcome is not None:
                self._outcomes[step.outcome] += 1
        return step

    def write_screenshot(self, session_id: str, step: int, data: bytes) -> str:
        """Store one step's screenshot beside the trace; returns its path relative to the run dir.

        Written to a temporary name and renamed, so a reader never sees half an image.
        """
        rel = screenshot_path(session_id, step)
        target = self.run_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return rel

    def write_event(
        self,
        session_id: str | Mapping[str, Any] | TraceEvent,
        event: str | None = None,
        *,
        step: int | None = None,
        persona_id: str | None = None,
        url: str | None = None,
        title: str | None = None,
        data: Mapping[str, Any] | None = None,
        ts: str | None = None,
        outcome: str | None = None,
        end_reason: str | None = None,
    ) -> TraceEvent:
        """Append an event; pass a ``TraceEvent``, a dict, or the fields as arguments.

        Giving ``outcome`` marks the event as the session's end (``done=true``).
        """
        if isinstance(session_id, TraceEvent):
            self._own(session_id)
            ev = session_id
        elif isinstance(session_id, Mapping):
            ev = self._validated(session_id, TraceEvent)
        else:
            raw = {"session_id": session_id, "event": event, "step": step,
                   "persona_id": persona_id, "url": url, "title": title, "data": dict(data or {}),
                   "done": outcome is not None, "outcome": outcome, "end_reason": end_reason}
            if ts is not None:
                raw["ts"] = ts
            ev = self._validated(raw, TraceEvent)
        self._append(ev.to_json())
        with self._lock:
            self._events += 1
            self._sessions.add(ev.session_id)
            if ev.outcome is not None:
                self._outcomes[ev.outcome] += 1
        return ev

    def _append(self, data: dict[str, Any]) -> None:
        # Serialise outside the lock (a page can be a megabyte); write under it.
        line = (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise RuntimeError(f"trace writer for {self.trace_path} is closed")
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def counts(self) -> dict[str, Any]:
        """What this writer has written so far (sessions, steps, events, outcomes)."""
        with self._lock:
            return {"sessions": len(self._sessions), "steps": self._steps, "events": self._events,
                    "outcomes": dict(self._outcomes)}

    def finish(self, summary: Mapping[str, Any] | None = None) -> RunInfo:
        """Close the trace and rewrite run.json with ``ended_at`` and the summary.

        The summary is the writer's own counts updated with ``summary``. Idempotent.
        """
        if self._finished:
            return self.info
        merged = self.counts
        merged.update(json.loads(json.dumps(dict(summary or {}), default=str)))
        self.close()
        self.info = self.info.model_copy(update={"ended_at": now_iso(), "summary": merged})
        _atomic_write_json(self.run_path, self.info.model_dump(mode="json"))
        self._finished = True
        log.info("run %s finished: %s steps in %s sessions", self.run_id, merged.get("steps"), merged.get("sessions"))
        return self.info

    def close(self) -> None:
        """Close the file without touching run.json (``finish`` is the normal end)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            status = "interrupted" if issubclass(exc_type, (KeyboardInterrupt, SystemExit)) else "error"
            self.finish({"status": status, "error": f"{exc_type.__name__}: {exc}"})

    def __del__(self) -> None:  # pragma: no cover - safety net only
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)  # type: ignore[arg-type]
            except OSError:
                pass


def add_to_summary(run_dir: str | os.PathLike[str], fields: Mapping[str, Any]) -> RunInfo:
    """Add ``fields`` to a finished run's ``run.json`` summary (rewritten atomically): what is
    computed from the trace after the run (the realism block) is kept beside the run's counts."""
    path = Path(run_dir) / RUN_FILE
    info = load_run_info(path)
    summary = {**info.summary, **json.loads(json.dumps(dict(fields), default=str))}
    info = info.model_copy(update={"summary": summary})
    _atomic_write_json(path, info.model_dump(mode="json"))
    return info
