"""The record models of a trace (schema 2): what one line of ``trace.jsonl`` and ``run.json`` hold.

Known fields validate strictly (no ``"3"`` for ``3``) and unknown keys are kept, so a reader
round-trips what a newer minor version added. A step's ``action`` is the ``shop_r1.envs.actions``
model itself: it was validated where text became an action (the parser, or the JSON line at the
read edge) and is never turned back into a dict to be validated again.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shop_r1.envs.actions import Action, Click, ParseError, TypeAndSubmit
from shop_r1.envs.observation import ActionError
from shop_r1.envs.text import strip_controls
from shop_r1.simulator.records.trace.schema import (
    RUN_MAJOR,
    RUN_SCHEMA,
    RUN_SCHEMA_VERSION,
    SCHEMA_VERSION,
    TRACE_MAJOR,
    TRACE_SCHEMA,
    check_iso,
    now_iso,
    version_major,
)

Outcome = Literal[
    "purchased",
    "added_to_cart",
    "abandoned",
    "max_steps",
    "timeout",
    "policy_error",
    "browser_error",
    "interrupted",
    "host_lost",
    "shop_error",
    "shop_unreachable",
    "order_placed",
    "bot_wall",
    "stuck",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
#: What a step's action caused, recorded on the step (``TraceStep.events``).
StepEvent = Literal["order_placed"]
#: Outcomes that are not the shopper's choice: the run exits non-zero past ``--max-failed``.
#: ``bot_wall`` (a CAPTCHA, challenge or "access denied" page) is the shop's doing, not behaviour.
FAILED_OUTCOMES: tuple[str, ...] = ("timeout", "policy_error", "browser_error", "host_lost", "shop_error",
                                    "shop_unreachable", "bot_wall")
#: An order went through although purchases were not allowed: the run always exits non-zero,
#: whatever ``--max-failed`` says, because the purchase guard missed and a person must look.
ORDER_PLACED: str = "order_placed"


def _without_controls(value: Any) -> Any:
    """``value`` with control characters dropped from every string in it (dicts and lists walked)."""
    if isinstance(value, str):
        return strip_controls(value)
    if isinstance(value, dict):
        return {k: _without_controls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_controls(v) for v in value]
    return value


class _Strict(BaseModel):
    """Known fields validate strictly; unknown keys are kept (written by a newer minor).

    Every string is stripped of control characters on the way in, whether a record is being
    written or read (an older trace, or one written by another tool): page text is data, never
    terminal control (``shop_r1.envs.text``), and a trace is where replay, reports and datasets
    read it from.
    """

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _text_is_data(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or (info.context or {}).get(NO_CONTROLS):
            return data
        return _without_controls(data)


#: Validation context key: the caller has checked that the data holds no control character (the
#: trace reader scans each raw line once), so the per-string walk is skipped.
NO_CONTROLS = "no_controls"


class TraceParseError(_Strict):
    """``shop_r1.envs.actions.ParseError`` as stored: the same three fields.

    ``code`` is any identifier here, not the parser's closed list, so that a trace written with
    a code added later (or a schema-1 trace's ``timeout``) still reads.
    """

    code: str = Field(min_length=1)
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ExecErrorInfo(_Strict):
    """``shop_r1.envs.observation.ActionError``: why the browser could not execute the action."""

    code: str = Field(min_length=1)
    message: str
    name: str | None = None
    suggestions: list[str] = Field(default_factory=list)


class Tokens(_Strict):
    prompt: int = Field(default=0, ge=0)
    completion: int = Field(default=0, ge=0)


class TraceElement(_Strict):
    """One row of the page's element table: ``shop_r1.envs.observation.Element`` without its live
    selector, so that replay, training and the importer never re-parse the page to get it back."""

    name: str = Field(min_length=1)
    kind: Literal["clickable", "input", "select"]
    text: str = ""
    tag: str = ""
    input_type: str = ""
    options: list[str] = Field(default_factory=list)
    disabled: bool = False
    in_viewport: bool = True
    covered: bool = False  # under an open modal dialog (envs.observation.Element.covered); absent in old traces


class _Record(_Strict):
    """What every trace line shares: the current major schema version and an ISO timestamp."""

    @field_validator("schema_version", check_fields=False)
    @classmethod
    def _valid_version(cls, v: str) -> str:
        version_major(v, TRACE_SCHEMA, (TRACE_MAJOR,))
        return v

    @field_validator("ts", check_fields=False)
    @classmethod
    def _valid_ts(cls, v: str) -> str:
        return check_iso(v)

    @model_validator(mode="after")
    def _outcome_only_when_done(self) -> _Record:
        done, outcome, kind = getattr(self, "done"), getattr(self, "outcome"), getattr(self, "kind")
        if done and outcome is None:
            raise ValueError(f"a{'n event' if kind == 'event' else ' step'} with done=true must carry an outcome")
        if outcome is not None and not done:
            raise ValueError(f"outcome {outcome!r} given on a{'n event' if kind == 'event' else ' step'} "
                             "with done=false")
        return self

    @property
    def extra(self) -> dict[str, Any]:
        """Keys this version does not know (written by a newer minor version)."""
        return dict(self.__pydantic_extra__ or {})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


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
    action: Action | None = None
    rationale: str = ""
    raw_output: str = ""
    parse_error: TraceParseError | None = None
    exec_error: ExecErrorInfo | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    tokens: Tokens = Field(default_factory=Tokens)
    elements: list[TraceElement] = Field(default_factory=list)
    blocked_requests: int = Field(default=0, ge=0)
    # Optional since 2.x (older schema-2 lines read with the defaults): what the allow-list
    # blocked, and how the page's main document arrived -- so an outage is never taken for a page.
    blocked_urls: list[str] = Field(default_factory=list)
    http_status: int | None = Field(default=None, ge=100, le=999)
    net_error: str | None = None
    scripts_stopped: bool = False
    # Optional since 2.x: the viewport as the shopper saw it (a JPEG beside the trace, relative
    # to the run directory; `simulate --screenshots`), input fields masked when redacting.
    screenshot: str | None = None
    # Optional since 2.x: what this step's action caused that is a fact about the shop, not a
    # choice: ``order_placed`` (the page it led to reads as an order confirmation).
    events: list[StepEvent] = Field(default_factory=list)
    ts: str = Field(default_factory=now_iso)
    done: bool = False
    outcome: Outcome | None = None
    end_reason: str | None = None

    @field_validator("parse_error", mode="before")
    @classmethod
    def _from_parser(cls, v: Any) -> Any:
        # The parser's own object: the same fields, no string in between.
        return v.model_dump() if isinstance(v, ParseError) else v

    @field_validator("exec_error", mode="before")
    @classmethod
    def _from_executor(cls, v: Any) -> Any:
        if isinstance(v, ActionError):
            return {"code": v.code, "message": v.message, "name": v.name, "suggestions": list(v.suggestions)}
        if isinstance(v, dict) and isinstance(v.get("suggestions"), tuple):  # ActionError.to_json()
            return {**v, "suggestions": list(v["suggestions"])}
        return v

    @property
    def error_page(self) -> bool:
        """The page was an outage (5xx, a network error, the browser's own error page), not a
        page of the shop; also true of older traces that recorded ``chrome-error://`` pages."""
        return (self.net_error is not None or self.url.startswith("chrome-error://")
                or (self.http_status is not None and self.http_status >= 500))

    @property
    def target_name(self) -> str | None:
        """The element the action names (None for ``terminate`` or no action)."""
        return self.action.name if isinstance(self.action, (Click, TypeAndSubmit)) else None

    def element(self, name: str) -> TraceElement | None:
        for el in self.elements:
            if el.name == name:
                return el
        return None


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
    ts: str = Field(default_factory=now_iso)
    done: bool = False
    outcome: Outcome | None = None
    end_reason: str | None = None


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
        version_major(v, RUN_SCHEMA, (RUN_MAJOR,))
        return v

    @field_validator("started_at")
    @classmethod
    def _valid_started(cls, v: str) -> str:
        return check_iso(v)

    def persona(self, persona_id: str | None) -> dict[str, Any] | None:
        """The persona dict whose ``id`` (or ``persona_id``) is ``persona_id``."""
        if persona_id is None:
            return None
        for p in self.personas:
            if str(p.get("id", p.get("persona_id"))) == persona_id:
                return p
        return None
