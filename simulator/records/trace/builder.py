"""Step and event records built from the runner's live objects: the one place that does it.

The runner, its tests and any other producer call these, so a record always carries the same
fields, derived the same way (timings merged, typed secrets redacted, the parser's error object
kept whole). The action stays the model the parser validated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shop_r1.envs.actions import Action, ParseError, TypeAndSubmit
from shop_r1.envs.observation import ActionError, Observation, StepResult
from shop_r1.simulator.records.exchange import PolicyResponse
from shop_r1.simulator.records.safety import Redactor, redact_text
from shop_r1.simulator.records.trace.convert import trace_elements
from shop_r1.simulator.records.trace.views import ExecErrorInfo, Outcome, TraceEvent, TraceStep, Tokens

#: Recorded when a policy returns neither an action nor a reason.
NO_ACTION = ParseError(code="missing_action", message="the policy returned no action and no error")


#: Record fields that are identifiers or numbers we made, never page or model text.
_NOT_SCRUBBED = frozenset({"kind", "schema_version", "run_id", "session_id", "step", "persona_id", "ts",
                           "timings", "tokens", "done", "outcome", "blocked_requests",
                           "http_status", "net_error", "scripts_stopped", "screenshot"})


def redacted_action(action: Action, observation: Observation, redactor: Redactor | None = None) -> Action:
    """The action as it may be stored: text typed into a secret field (password, card) masked;
    with a session's ``redactor`` the secret is also remembered, to be scrubbed from later pages."""
    if not isinstance(action, TypeAndSubmit):
        return action
    element = observation.element(action.name)
    text = (redactor.typed(action.text, element, action.name) if redactor is not None
            else redact_text(action.text, element, action.name))
    return action if text == action.text else action.model_copy(update={"text": text})


def _scrubbed(record: TraceStep | TraceEvent, redactor: Redactor | None) -> Any:
    """Every page or model string of the record with the session's secrets masked (see safety)."""
    if redactor is None or not redactor.enabled:
        return record
    data = record.model_dump(mode="json")
    clean = {k: (v if k in _NOT_SCRUBBED else redactor.scrub_value(v)) for k, v in data.items()}
    return record if clean == data else type(record).model_validate_json(json.dumps(clean))


def _exec_error(error: ActionError | None) -> ExecErrorInfo | None:
    """The executor's error as the trace stores it (its suggestions a list)."""
    if error is None:
        return None
    return ExecErrorInfo(code=error.code, message=error.message, name=error.name, suggestions=list(error.suggestions))


def step_record(
    *,
    run_id: str,
    session_id: str,
    step: int,
    observation: Observation,
    response: PolicyResponse | None = None,
    result: StepResult | None = None,
    persona_id: str | None = None,
    timings: Mapping[str, float] | None = None,
    outcome: Outcome | None = None,
    end_reason: str | None = None,
    redactor: Redactor | None = None,
    **extra: Any,
) -> TraceStep:
    """The step record of one decision.

    ``timings`` merge over the observation's own; ``policy_s`` defaults to the response's
    latency. ``outcome`` marks the session's last step. Extra keyword arguments become extra
    fields (kept by readers like a newer minor's keys). With the session's ``redactor`` every
    string that came from the page or the model is scrubbed of secrets typed so far (this step's
    included) and of secret-looking values; without one only the typed text is masked.
    """
    merged: dict[str, float] = {k: float(v) for k, v in observation.timings.items()}
    if response is not None and response.latency_s:
        merged.setdefault("policy_s", float(response.latency_s))
    merged.update({k: float(v) for k, v in (timings or {}).items()})
    fields: dict[str, Any] = {}
    if response is not None:
        action = response.action
        fields = {
            "action": redacted_action(action, observation, redactor) if action is not None else None,
            "rationale": response.rationale,
            "raw_output": response.raw_text,
            "parse_error": (response.error or NO_ACTION) if action is None else None,
            "tokens": Tokens(prompt=response.prompt_tokens, completion=response.completion_tokens),
        }
    return _scrubbed(TraceStep(
        run_id=run_id, session_id=session_id, step=step, persona_id=persona_id,
        url=observation.url, title=observation.title, simplified_html=observation.simplified_html,
        elements=trace_elements(observation.elements), blocked_requests=observation.blocked_requests,
        blocked_urls=list(observation.blocked_urls), http_status=observation.http_status,
        net_error=observation.net_error,
        scripts_stopped=observation.scripts_stopped or (result is not None and result.scripts_stopped),
        timings=merged, exec_error=_exec_error(result.error) if result is not None else None,
        done=outcome is not None, outcome=outcome, end_reason=end_reason or None,
        **fields, **extra,
    ), redactor)


def session_end_event(*, run_id: str, session_id: str, step: int | None, outcome: Outcome, end_reason: str,
                      persona_id: str | None = None, url: str | None = None,
                      redactor: Redactor | None = None) -> TraceEvent:
    """The end marker of a session that stopped between decisions (timeout, crash, Ctrl-C)."""
    return _scrubbed(TraceEvent(run_id=run_id, session_id=session_id, step=step, persona_id=persona_id,
                                event="session_end", url=url, done=True, outcome=outcome,
                                end_reason=end_reason), redactor)
