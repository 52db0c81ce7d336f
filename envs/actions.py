"""The action schema: the one place that says what a shopper may do.

Every other module (the executor, the prompt parser, the trace format, the rewards) goes through
this module, so a change to the action space is a change to one file. Validation is strict at
this edge: an action that reaches the browser is always well formed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

ACTION_TYPES: tuple[str, ...] = ("click", "type_and_submit", "terminate")


class _ActionBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The paper's JSON shape, e.g. ``{"type": "click", "name": "x"}``."""
        return self.model_dump()


class Click(_ActionBase):
    type: Literal["click"] = "click"
    name: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("name must not be blank")
        return v


class TypeAndSubmit(_ActionBase):
    type: Literal["type_and_submit"] = "type_and_submit"
    name: str = Field(min_length=1)
    text: str

    @field_validator("name")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("name must not be blank")
        return v


class Terminate(_ActionBase):
    type: Literal["terminate"] = "terminate"


# The one exported union: annotate with ``Action`` everywhere (pydantic fields discriminate on
# ``type``); ``ACTION_MODELS`` is the same set for ``isinstance``.
Action = Annotated[Union[Click, TypeAndSubmit, Terminate], Field(discriminator="type")]
ACTION_MODELS: tuple[type[_ActionBase], ...] = (Click, TypeAndSubmit, Terminate)
_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)

ParseErrorCode = Literal["empty", "no_json", "invalid_json", "missing_rationale", "missing_action",
                         "invalid_action", "unknown_name", "wrong_kind", "generation_failed"]


class ParseError(BaseModel):
    """Why a policy's text gave no executable action: one object from the parser to the trace.

    ``code`` is machine-readable (reports count by it), ``message`` is for people, ``detail``
    holds what a tool needs to act on it (the unknown name, suggested names, the JSON position).
    Nothing downstream joins or splits these into a string.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ParseErrorCode
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ActionValidationError(ValueError):
    """An action that does not fit the schema; the message says which field and why."""


def parse_action(data: Any) -> Click | TypeAndSubmit | Terminate:
    """Validate a decoded JSON value (dict) or a JSON string as one action."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ActionValidationError(f"action is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ActionValidationError(f"action must be a JSON object, got {type(data).__name__}")
    if data.get("type") not in ACTION_TYPES:
        raise ActionValidationError(
            f"action type {data.get('type')!r} is not one of {', '.join(ACTION_TYPES)}"
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'action'}: {e['msg']}" for e in exc.errors()
        )
        raise ActionValidationError(f"invalid {data['type']} action: {problems}") from exc


def action_json_schema(
    clickable: list[str] | None = None, inputs: list[str] | None = None
) -> dict[str, Any]:
    """JSON schema of the policy's whole answer ``{"rationale", "action"}``.

    With the page's names given, ``name`` becomes an enum so that schema-constrained decoding
    (vLLM ``response_format``) can only produce executable actions.
    """

    def name_schema(names: list[str] | None) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(set(names))} if names else {"type": "string", "minLength": 1}

    variants: list[dict[str, Any]] = []
    if clickable is None or clickable:
        variants.append({
            "type": "object",
            "properties": {"type": {"const": "click"}, "name": name_schema(clickable)},
            "required": ["type", "name"], "additionalProperties": False,
        })
    if inputs is None or inputs:
        variants.append({
            "type": "object",
            "properties": {"type": {"const": "type_and_submit"}, "name": name_schema(inputs),
                           "text": {"type": "string", "minLength": 1, "maxLength": 120}},
            "required": ["type", "name", "text"], "additionalProperties": False,
        })
    variants.append({
        "type": "object", "properties": {"type": {"const": "terminate"}},
        "required": ["type"], "additionalProperties": False,
    })
    return {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "minLength": 1, "maxLength": 400},
            "action": {"anyOf": variants},
        },
        "required": ["rationale", "action"],
        "additionalProperties": False,
    }
