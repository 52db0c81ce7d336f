"""The action schema: the one place that says what a shopper may do.

Every other module goes through this one, so adding an action type is a change here plus its
executor. The models below are the single source of the action space: the JSON schema a
server constrains answers with (:func:`action_json_schema`), the prompt's list of actions
(:func:`describe_actions`; each model's docstring is its line in the prompt, BrowserGym-style)
and the local decoding grammar (``shop_r1.simulator.agent.policies.constrained``) are all rendered
from them. Validation is strict at this edge: an action that reaches the browser is always well
formed.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from shop_r1.envs.text import one_line

#: Schema-only caps for constrained decoding (vLLM ``response_format``). They bound what a
#: constrained model may generate; validation does not enforce them, so a recorded answer with
#: a longer rationale (a human's, a teacher's) stays valid.
RATIONALE_MAX_CHARS = 400
TEXT_MAX_CHARS = 120

TargetKind = Literal["clickable", "input"]


class ActionBase(BaseModel):
    """Common base of the action models: frozen, no extra keys.

    A subclass's docstring is its line in the prompt (its first paragraph, as an instruction to
    the shopper), its fields after ``type`` are what an answer writes, and ``target_kind`` names the group of page elements (``Observation.executable_names``) whose
    names the action's ``name`` field takes; it lets the schema, the grammar and the parser
    restrict ``name`` per page without knowing the action types by heart.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_kind: ClassVar[TargetKind | None] = None

    def to_json(self) -> dict[str, Any]:
        """The paper's JSON shape, e.g. ``{"type": "click", "name": "x"}``."""
        return self.model_dump()


def _strip_name(v: str) -> str:
    v = one_line(v).strip()  # a model's output is text, never terminal control (envs/text.py)
    if not v:
        raise ValueError("name must not be blank")
    return v


def _typed_text(v: str) -> str:
    return one_line(v)


class Click(ActionBase):
    """Click a link, button, tab or option: open a product or a category, pick a filter or option, add to cart."""

    target_kind: ClassVar[TargetKind | None] = "clickable"

    type: Literal["click"] = "click"
    name: str = Field(min_length=1)

    _strip = field_validator("name")(_strip_name)


class TypeAndSubmit(ActionBase):
    """Type a few words into an input field (such as the search box) and press Enter."""

    target_kind: ClassVar[TargetKind | None] = "input"

    type: Literal["type_and_submit"] = "type_and_submit"
    name: str = Field(min_length=1)
    text: str = Field(json_schema_extra={"minLength": 1, "maxLength": TEXT_MAX_CHARS})

    _strip = field_validator("name")(_strip_name)
    _text = field_validator("text")(_typed_text)


class Terminate(ActionBase):
    """Close the browser: you found what you came for, or you give up."""

    type: Literal["terminate"] = "terminate"


# The one exported union: annotate with ``Action`` everywhere (pydantic fields discriminate on
# ``type``); ``ACTION_MODELS`` is the same set for ``isinstance`` and for the renderers below.
Action = Annotated[Union[Click, TypeAndSubmit, Terminate], Field(discriminator="type")]
ACTION_MODELS: tuple[type[Click], type[TypeAndSubmit], type[Terminate]] = (Click, TypeAndSubmit, Terminate)
_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def action_type(model: type[ActionBase]) -> str:
    """The ``type`` value of an action model (its ``Literal`` default)."""
    return str(model.model_fields["type"].default)


ACTION_TYPES: tuple[str, ...] = tuple(action_type(m) for m in ACTION_MODELS)

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


def parse_action(data: Any) -> Action:
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


# --------------------------------------------------------------------------------------------
# Renderings of the action space: JSON schema, prompt text
# --------------------------------------------------------------------------------------------


def action_fields(model: type[ActionBase]) -> list[str]:
    """The model's fields after ``type``, in the order an answer writes them."""
    return [name for name in model.model_fields if name != "type"]


def _union(models: Sequence[type[ActionBase]]) -> Any:
    return Annotated[Union[tuple(models)], Field(discriminator="type")]


class _AnswerSchema(BaseModel):
    """The shape of a whole answer, for the schema only (the parser checks answers itself, with
    one error code per way an answer can fail)."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(json_schema_extra={"minLength": 1, "maxLength": RATIONALE_MAX_CHARS})
    action: Any


_DROPPED_KEYS = frozenset({"title", "description", "default", "discriminator"})


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """Resolve ``$ref`` and simplify pydantic's output to what a decoding grammar compiles well:
    no titles/defaults, ``anyOf`` for the union, every property of an object required (an
    answer always writes all of an action's fields)."""
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs":
            continue
        out["anyOf" if key == "oneOf" else key] = _inline(value, defs)
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
    return out


def action_json_schema(
    clickable: Sequence[str] | None = None, inputs: Sequence[str] | None = None,
    *, models: Sequence[type[ActionBase]] = ACTION_MODELS,
) -> dict[str, Any]:
    """JSON schema of the policy's whole answer ``{"rationale", "action"}``, from the models.

    With the page's names given, ``name`` becomes an enum of the names of the action's
    ``target_kind`` (clickable or input), so that schema-constrained decoding can only produce
    executable actions; an action whose kind has no names on the page is left out. ``models``
    is the action space (all of :data:`ACTION_MODELS` unless a caller narrows or extends it).
    """
    names_by_kind: dict[str, Sequence[str] | None] = {"clickable": clickable, "input": inputs}
    kept = tuple(m for m in models
                 if m.target_kind is None or names_by_kind[m.target_kind] is None or names_by_kind[m.target_kind])
    schema = copy.deepcopy(_answer_schema(kept))
    for model, variant in zip(kept, schema["properties"]["action"]["anyOf"]):
        names = names_by_kind[model.target_kind] if model.target_kind else None
        if names:
            variant["properties"]["name"] = {"type": "string", "enum": sorted(set(names))}
    return schema


@lru_cache(maxsize=32)
def _answer_schema(models: tuple[type[ActionBase], ...]) -> dict[str, Any]:
    """The page-independent schema for this action space (built once: a vLLM policy asks for
    a schema on every step, and building a pydantic model takes milliseconds)."""

    class Answer(_AnswerSchema):
        action: _union(models)  # type: ignore[valid-type]

    raw = Answer.model_json_schema()
    schema = _inline(raw, raw.get("$defs", {}))
    action = schema["properties"]["action"]
    schema["properties"]["action"] = {"anyOf": action.get("anyOf") or [action]}  # one model: no union
    return schema


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def action_template(model: type[ActionBase]) -> str:
    """The action's JSON with placeholders, e.g. ``{"type": "click", "name": "<name>"}``."""
    parts = [f'"type": {json.dumps(action_type(model))}']
    for name in action_fields(model):
        parts.append(f'"{name}": "<{name}>"')
    return "{" + ", ".join(parts) + "}"


def action_summary(model: type[ActionBase]) -> str:
    """The docstring's first paragraph as a phrase (first letter lower-cased): the prompt's line."""
    doc = inspect.cleandoc(model.__doc__ or "").split("\n\n", 1)[0].replace("\n", " ").strip()
    if not doc:
        raise ValueError(f"action model {model.__name__} needs a docstring: it is its line in the prompt")
    return doc[0].lower() + doc[1:]


def describe_actions(models: Sequence[type[ActionBase]] = ACTION_MODELS) -> str:
    """The prompt's list of actions, one numbered line per model."""
    n = len(models)
    count = _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)
    lines = [f"There are exactly {count} actions:"]
    lines += [f"{i}. {action_template(m)} -- {action_summary(m)}" for i, m in enumerate(models, 1)]
    return "\n".join(lines)


def describe_name_rule(models: Sequence[type[ActionBase]] = ACTION_MODELS) -> str:
    """The prompt's rule on ``name``: which names are valid, and which actions need an input."""
    rule = '"name" must be exactly one of the `name` attributes on the current page'
    needs_input = [action_type(m) for m in models if m.target_kind == "input"]
    if needs_input:
        rule += f"; {' and '.join(needs_input)} {'needs' if len(needs_input) == 1 else 'need'} the name of an input field"
    return rule + "."


def answer_json(rationale: str, action: ActionBase) -> str:
    """One answer as JSON text, rationale first: the canonical layout (SFT targets, the prompt's example)."""
    return json.dumps({"rationale": rationale, "action": action.to_json()}, ensure_ascii=False)
