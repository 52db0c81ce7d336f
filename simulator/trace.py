"""The trace format: the one record of what simulated (or imported real) shoppers did.

A run directory holds two files:

* ``trace.jsonl`` -- one JSON object per line, appended and flushed the moment a step happens.
  Every consumer (replay, evaluation, SFT/GRPO data building, the run report) reads this file
  and nothing else, so this module is the only place that knows its shape.
* ``run.json`` -- what produced the trace (config, versions, seed, personas) and, at the end, a
  summary. Written atomically (temp file + rename) at start and again at the end, so a crashed
  run still leaves a valid ``run.json`` without ``ended_at``.

Why JSON Lines and not one JSON document: a crash mid-run must lose at most the line being
written. Every record is written with a single ``write`` on an ``O_APPEND`` descriptor while a
lock is held, so lines from many concurrent sessions never interleave; the reader treats a
broken *last* line as the expected outcome of a crash (reported, skipped) and a broken line in
the *middle* as corruption (an error naming ``file:line``).

Versioning: ``schema_version`` is ``"shop-r1.trace/MAJOR[.MINOR]"``. Minor versions only add
fields, so a reader keeps (and round-trips) unknown keys but validates known ones strictly; an
unknown MAJOR version is refused with the file and line that carried it. See
``docs/trace-format.md``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shop_r1.envs.actions import ActionValidationError, parse_action

if TYPE_CHECKING:  # pragma: no cover - typing only; datasets is imported lazily
    import datasets

    from shop_r1.envs.observation import ActionError, Observation
    from shop_r1.simulator.policies.base import PolicyResponse

log = logging.getLogger(__name__)

TRACE_SCHEMA = "shop-r1.trace"
RUN_SCHEMA = "shop-r1.run"
TRACE_MAJOR = 1
RUN_MAJOR = 1
SCHEMA_VERSION = f"{TRACE_SCHEMA}/{TRACE_MAJOR}"
RUN_SCHEMA_VERSION = f"{RUN_SCHEMA}/{RUN_MAJOR}"
TRACE_FILE = "trace.jsonl"
RUN_FILE = "run.json"

Outcome = Literal[
    "purchased",
    "added_to_cart",
    "abandoned",
    "max_steps",
    "timeout",
    "policy_error",
    "browser_error",
    "interrupted",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]

_VERSION_RE = re.compile(r"^(?P<schema>[a-z0-9_.\-]+)/(?P<major>\d+)(?:\.(?P<minor>\d+))?$")


class TraceFormatError(ValueError):
    """A trace or run file that cannot be read; the message starts with ``file:line``."""

    def __init__(self, file: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.reason = message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")


def _check_version(value: str, schema: str, major: int) -> str:
    """Accept ``schema/major[.minor]`` for the known major; anything else is a clear error."""
    m = _VERSION_RE.match(value)
    if not m or m.group("schema") != schema:
        raise ValueError(f"schema_version {value!r} is not a {schema!r} version (expected '{schema}/{major}')")
    if int(m.group("major")) != major:
        raise ValueError(
            f"schema_version {value!r} has major version {m.group('major')}, this reader knows "
            f"only {major}: upgrade shop-r1 to read it"
        )
    return value


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _check_iso(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from exc
    return value


# --------------------------------------------------------------------------------------------
# Record models
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    """Known fields validate strictly (no "3" for 3); unknown keys are kept (newer minor)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class ParseErrorInfo(_Strict):
    """Why the policy's text gave no executable action (bad JSON, unknown type, ...)."""

    code: str = Field(min_length=1)
    message: str

    @classmethod
    def from_text(cls, text: str, default_code: str = "parse_error") -> ParseErrorInfo:
        """Build from ``PolicyResponse.error`` (``"code: message"`` or a bare message)."""
        head, sep, tail = text.partition(":")
        if sep and re.fullmatch(r"[a-z][a-z0-9_]*", head.strip()):
            return cls(code=head.strip(), message=tail.strip())
        return cls(code=default_code, message=text.strip())


class ExecErrorInfo(_Strict):
    """``shop_r1.envs.observation.ActionError.to_json()``: why the browser could not execute it."""

    code: str = Field(min_length=1)
    message: str
    name: str | None = None
    suggestions: list[str] = Field(default_factory=list)


class Tokens(_Strict):
    prompt: int = Field(default=0, ge=0)
    completion: int = Field(default=0, ge=0)


class TraceElement(_Strict):
    """One row of the page's element table (what replay and the constrained check need)."""

    name: str = Field(min_length=1)
    kind: Literal["clickable", "input", "select"]
    text: str = ""


def _coerce_action(value: Any) -> Any:
    """Action model -> paper JSON; dict -> validated through the one action schema."""
    if value is None:
        return None
    if hasattr(value, "to_json") and callable(value.to_json):
        value = value.to_json()
    try:
        return parse_action(value).to_json()
    except ActionValidationError as exc:
        raise ValueError(str(exc)) from exc


class _Record(_Strict):
    """What every trace line shares: a known major schema version and an ISO timestamp."""

    @field_validator("schema_version", check_fields=False)
    @classmethod
    def _valid_version(cls, v: str) -> str:
        return _check_version(v, TRACE_SCHEMA, TRACE_MAJOR)

    @field_validator("ts", check_fields=False)
    @classmethod
    def _valid_ts(cls, v: str) -> str:
        return _check_iso(v)


class TraceStep(_Record):
    """One decision of one shopper: the page seen, what the policy said, what happened."""

    kind: Literal["step"] = "step"
    schema_version: str = SCHEMA_VERSION
    run_id: str = Field(min_length=1)
    session_id: str = Field(min_length=1)
    step: int = Field(ge=0)
    persona_id: str | None = None
    url: str
    title: str = ""
    simplified_html: str = ""
    action: dict[str, Any] | None = None
    rationale: str = ""
    raw_output: str = ""
    parse_error: ParseErrorInfo | None = None
    exec_error: ExecErrorInfo | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    tokens: Tokens = Field(default_factory=Tokens)
    elements: list[TraceElement] = Field(default_factory=list)
    blocked_requests: int = Field(default=0, ge=0)
    ts: str = Field(default_factory=_now_iso)
    done: bool = False
    outcome: Outcome | None = None
    end_reason: str | None = None

    @field_validator("action", mode="before")
    @classmethod
    def _valid_action(cls, v: Any) -> Any:
        return _coerce_action(v)

    @field_validator("exec_error", mode="before")
    @classmethod
    def _accept_action_error(cls, v: Any) -> Any:
        # ActionError (or its to_json(), whose suggestions are a tuple) is the producer's shape.
        if v is not None and not isinstance(v, (dict, BaseModel)) and callable(getattr(v, "to_json", None)):
            v = v.to_json()
        if isinstance(v, dict) and isinstance(v.get("suggestions"), tuple):
            v = {**v, "suggestions": list(v["suggestions"])}
        return v

    @field_validator("parse_error", mode="before")
    @classmethod
    def _accept_error_text(cls, v: Any) -> Any:
        return ParseErrorInfo.from_text(v) if isinstance(v, str) else v

    @field_validator("elements", mode="before")
    @classmethod
    def _accept_elements(cls, v: Any) -> Any:
        # envs Element objects carry selectors etc.; the trace keeps name, kind, text.
        if isinstance(v, (list, tuple)):
            return [
                {"name": e.name, "kind": e.kind, "text": e.text} if hasattr(e, "selector") else e for e in v
            ]
        return v

    @model_validator(mode="after")
    def _outcome_only_when_done(self) -> TraceStep:
        if self.done and self.outcome is None:
            raise ValueError("a step with done=true must carry an outcome")
        if self.outcome is not None and not self.done:
            raise ValueError(f"outcome {self.outcome!r} given on a step with done=false")
        return self

    @property
    def parsed_action(self):  # -> Click | TypeAndSubmit | Terminate | None
        """The action as an ``shop_r1.envs.actions`` model (None when the policy produced none)."""
        return None if self.action is None else parse_action(self.action)

    @property
    def extra(self) -> dict[str, Any]:
        """Keys this version does not know (written by a newer minor version)."""
        return dict(self.__pydantic_extra__ or {})

    def element(self, name: str) -> TraceElement | None:
        for el in self.elements:
            if el.name == name:
                return el
        return None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class TraceEvent(_Record):
    """Context-only happening (imported logs: scroll, navigate, tab_activate): not a decision.

    ``step`` is the index of the step the event happened before (None: unknown). The event
    ``session_end`` (with ``done``, ``outcome``, ``end_reason``) closes a session that stopped
    between decisions -- a timeout, a browser crash, Ctrl-C -- where no step could carry the
    outcome.
    """

    kind: Literal["event"] = "event"
    schema_version: str = SCHEMA_VERSION
    run_id: str = Field(min_length=1)
    session_id: str = Field(min_length=1)
    step: int | None = Field(default=None, ge=0)
    persona_id: str | None = None
    event: str = Field(min_length=1)
    url: str | None = None
    title: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    ts: str = Field(default_factory=_now_iso)
    done: bool = False
    outcome: Outcome | None = None
    end_reason: str | None = None

    @model_validator(mode="after")
    def _outcome_only_when_done(self) -> TraceEvent:
        if self.done and self.outcome is None:
            raise ValueError("an event with done=true must carry an outcome")
        if self.outcome is not None and not self.done:
            raise ValueError(f"outcome {self.outcome!r} given on an event with done=false")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


TraceRecord = Union[TraceStep, TraceEvent]


class RunInfo(_Strict):
    """``run.json``: what produced a trace, and its summary once the run ended."""

    schema_version: str = RUN_SCHEMA_VERSION
    run_id: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None
    personas: list[dict[str, Any]] = Field(default_factory=list)
    started_at: str
    ended_at: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _valid_version(cls, v: str) -> str:
        return _check_version(v, RUN_SCHEMA, RUN_MAJOR)

    @field_validator("started_at")
    @classmethod
    def _valid_started(cls, v: str) -> str:
        return _check_iso(v)

    def persona(self, persona_id: str | None) -> dict[str, Any] | None:
        """The persona dict whose ``id`` (or ``persona_id``) is ``persona_id``."""
        if persona_id is None:
            return None
        for p in self.personas:
            if str(p.get("id", p.get("persona_id"))) == persona_id:
                return p
        return None


# --------------------------------------------------------------------------------------------
# Building records from live objects
# --------------------------------------------------------------------------------------------


def elements_from_observation(observation: Observation) -> list[dict[str, str]]:
    """The element table as the trace stores it (name, kind, text)."""
    return [{"name": el.name, "kind": el.kind, "text": el.text} for el in observation.elements]


def step_record(
    *,
    session_id: str,
    step: int,
    observation: Observation,
    response: PolicyResponse | None = None,
    exec_error: ActionError | None = None,
    persona_id: str | None = None,
    timings: Mapping[str, float] | None = None,
    done: bool = False,
    outcome: str | None = None,
    end_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A step record (dict for ``TraceWriter.write_step``) from the runner's live objects.

    ``timings`` merges over the observation's own timings; ``policy_s`` is taken from the
    response's latency when not given. Extra keyword arguments become extra fields.
    """
    merged: dict[str, float] = {k: float(v) for k, v in observation.timings.items()}
    if response is not None and response.latency_s:
        merged.setdefault("policy_s", float(response.latency_s))
    merged.update({k: float(v) for k, v in (timings or {}).items()})
    record: dict[str, Any] = {
        "session_id": session_id,
        "step": step,
        "persona_id": persona_id,
        "url": observation.url,
        "title": observation.title,
        "simplified_html": observation.simplified_html,
        "elements": elements_from_observation(observation),
        "blocked_requests": observation.blocked_requests,
        "timings": merged,
        "exec_error": exec_error,
        "done": done,
        "outcome": outcome,
        "end_reason": end_reason,
    }
    if response is not None:
        record.update(
            action=response.action.to_json() if response.action is not None else None,
            rationale=response.rationale,
            raw_output=response.raw_text,
            parse_error=response.error if response.error and response.action is None else None,
            tokens={"prompt": response.prompt_tokens, "completion": response.completion_tokens},
        )
    record.update(extra)
    return record


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


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
                started_at=_now_iso(),
            )
        self.run_id = self.info.run_id
        _atomic_write_json(self.run_path, self.info.model_dump(mode="json"))
        self._fd: int | None = os.open(
            self.trace_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644
        )
        log.info("tracing run %s to %s", self.run_id, self.trace_path)

    # -- records ------------------------------------------------------------------------------

    def _complete(self, record: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
        data = record.model_dump(mode="json") if isinstance(record, BaseModel) else dict(record)
        data.setdefault("run_id", self.run_id)
        if data["run_id"] != self.run_id:
            raise ValueError(f"record run_id {data['run_id']!r} differs from the writer's {self.run_id!r}")
        return data

    def write_step(self, record: Mapping[str, Any] | TraceStep) -> TraceStep:
        """Validate one step record and append it; returns the validated step.

        Missing ``run_id``/``schema_version``/``ts`` are filled in. Raises ``ValueError`` (a
        pydantic ``ValidationError``) naming the bad field; nothing is written then.
        """
        data = self._complete(record)
        data["kind"] = "step"
        step = TraceStep.model_validate(data)
        self._append(step.to_json())
        with self._lock:
            self._steps += 1
            self._sessions.add(step.session_id)
            if step.outcome is not None:
                self._outcomes[step.outcome] += 1
        return step

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
        """Append an event; pass either a record or the fields as arguments.

        Giving ``outcome`` marks the event as the session's end (``done=true``).
        """
        if isinstance(session_id, (Mapping, BaseModel)):
            raw = self._complete(session_id)
        else:
            raw = {"run_id": self.run_id, "session_id": session_id, "event": event, "step": step,
                   "persona_id": persona_id, "url": url, "title": title, "data": dict(data or {}),
                   "done": outcome is not None, "outcome": outcome, "end_reason": end_reason}
            if ts is not None:
                raw["ts"] = ts
        raw["kind"] = "event"
        ev = TraceEvent.model_validate(raw)
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
        self.info = self.info.model_copy(update={"ended_at": _now_iso(), "summary": merged})
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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


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


def parse_record(data: Any) -> TraceRecord:
    """Validate one decoded JSON line as a step or an event (``ValueError`` says why)."""
    if not isinstance(data, dict):
        raise ValueError(f"a trace line must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if not isinstance(version, str):
        raise ValueError("missing schema_version")
    _check_version(version, TRACE_SCHEMA, TRACE_MAJOR)
    kind = data.get("kind", "step")
    model = {"step": TraceStep, "event": TraceEvent}.get(kind)
    if model is None:
        raise ValueError(f"unknown record kind {kind!r} (expected 'step' or 'event')")
    try:
        return model.model_validate(data)
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
                _check_version(data["schema_version"], TRACE_SCHEMA, TRACE_MAJOR)
            except ValueError as exc:
                raise TraceFormatError(path, lineno, str(exc)) from None
        try:
            record = parse_record(data)
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


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

# Nested fields with a fixed shape become Arrow structs; free-form dicts (timings, unknown extra
# keys) are stored as JSON text so that rows with different keys share one schema.
_JSON_COLUMNS = ("timings", "extra")


def _features():
    from datasets import Features, List, Value

    s = Value("string")
    return Features({
        "schema_version": s, "run_id": s, "session_id": s, "step": Value("int64"),
        "persona_id": s, "url": s, "title": s, "simplified_html": Value("large_string"),
        "action": {"type": s, "name": s, "text": s},
        "rationale": s, "raw_output": s,
        "parse_error": {"code": s, "message": s},
        "exec_error": {"code": s, "message": s, "name": s, "suggestions": List(s)},
        "timings": s,
        "tokens": {"prompt": Value("int64"), "completion": Value("int64")},
        "elements": List({"name": s, "kind": s, "text": s}),
        "blocked_requests": Value("int64"), "ts": s, "done": Value("bool"),
        "outcome": s, "end_reason": s, "extra": s,
    })


def step_to_row(step: TraceStep) -> dict[str, Any]:
    """One flat-ish row per step (the shape of the exported dataset)."""
    d = step.model_dump(mode="json", exclude={"kind"})
    extra = step.extra
    for k in step.extra:
        d.pop(k, None)
    if d["action"] is not None:
        d["action"] = {"type": d["action"]["type"], "name": d["action"].get("name"),
                       "text": d["action"].get("text")}
    if d["parse_error"] is not None:
        d["parse_error"] = {"code": d["parse_error"]["code"], "message": d["parse_error"]["message"]}
    if d["exec_error"] is not None:
        e = d["exec_error"]
        d["exec_error"] = {"code": e["code"], "message": e["message"], "name": e.get("name"),
                           "suggestions": list(e.get("suggestions") or [])}
    d["tokens"] = {"prompt": d["tokens"]["prompt"], "completion": d["tokens"]["completion"]}
    d["elements"] = [{"name": el["name"], "kind": el["kind"], "text": el["text"]} for el in d["elements"]]
    d["timings"] = json.dumps(d["timings"], sort_keys=True)
    d["extra"] = json.dumps(extra, sort_keys=True, ensure_ascii=False)
    return d


def step_from_row(row: Mapping[str, Any]) -> TraceStep:
    """Inverse of ``step_to_row``: a dataset/parquet row back to a validated ``TraceStep``."""
    d = dict(row)
    extra = json.loads(d.pop("extra") or "{}")
    d["timings"] = json.loads(d["timings"] or "{}")
    if d.get("action") is not None:
        d["action"] = {k: v for k, v in d["action"].items() if v is not None}
    if d.get("exec_error") is not None:
        d["exec_error"] = dict(d["exec_error"])
        d["exec_error"]["suggestions"] = list(d["exec_error"].get("suggestions") or [])
    d["elements"] = [dict(el) for el in d.get("elements") or []]
    d.update(extra)
    d["kind"] = "step"
    return TraceStep.model_validate(d)


def _steps_of(trace: TraceReadResult | Sequence[TraceStep] | str | os.PathLike[str]) -> list[TraceStep]:
    if isinstance(trace, TraceReadResult):
        return trace.steps
    if isinstance(trace, (str, os.PathLike)):
        return read_trace(trace).steps
    return list(trace)


def to_hf_dataset(trace: TraceReadResult | Sequence[TraceStep] | str | os.PathLike[str]) -> datasets.Dataset:
    """A ``datasets.Dataset`` with one row per step (events are context only and left out).

    ``timings`` and ``extra`` (unknown keys of a newer minor version) are JSON text columns;
    ``step_from_row`` turns a row back into a ``TraceStep``.
    """
    import datasets

    features = _features()
    rows = [step_to_row(s) for s in _steps_of(trace)]
    if not rows:  # from_list([]) would drop the columns; an empty export keeps the schema
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(rows, features=features)


def to_parquet(trace: TraceReadResult | Sequence[TraceStep] | str | os.PathLike[str],
               path: str | os.PathLike[str]) -> Path:
    """Write the step dataset to a Parquet file; returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    to_hf_dataset(trace).to_parquet(str(out))
    return out


__all__ = [
    "OUTCOMES", "Outcome", "RUN_FILE", "RUN_SCHEMA_VERSION", "SCHEMA_VERSION", "TRACE_FILE",
    "ExecErrorInfo", "ParseErrorInfo", "RunInfo", "Tokens", "TraceElement", "TraceEvent",
    "TraceFormatError", "TraceProblem", "TraceReadResult", "TraceStep", "TraceWriter",
    "collect_versions", "elements_from_observation", "iter_sessions", "load_run_info",
    "parse_record", "read_trace", "step_from_row", "step_record", "step_to_row",
    "to_hf_dataset", "to_parquet",
]
