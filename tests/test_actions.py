"""The action space is defined once: the JSON schema, the prompt's action list and the decoding
grammar are all rendered from the models in ``shop_r1.envs.actions``."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from shop_r1.envs.actions import (
    ACTION_MODELS,
    ACTION_TYPES,
    ActionBase,
    action_json_schema,
    describe_actions,
)
from shop_r1.simulator.agent.policies.constrained import RATIONALE_PREFIX, Choice, _State, action_grammar
from shop_r1.simulator.agent.prompt import SYSTEM_PROMPT, render_system_prompt


class Scroll(ActionBase):
    """Scroll the page to see more of it."""

    type: Literal["scroll"] = "scroll"
    direction: Literal["up", "down"]


class Hover(ActionBase):
    """Point at an element to see its tooltip."""

    target_kind = "clickable"

    type: Literal["hover"] = "hover"
    name: str


EXTENDED = (*ACTION_MODELS, Scroll)


def _variants(schema: dict) -> dict[str, dict]:
    return {v["properties"]["type"]["const"]: v for v in schema["properties"]["action"]["anyOf"]}


def test_schema_of_the_project_action_space() -> None:
    """What schema-constrained decoding accepts, spelled out: the hand-written schema this replaces."""
    schema = action_json_schema(["b", "a", "b"], ["search_input"])
    assert schema["required"] == ["rationale", "action"] and schema["additionalProperties"] is False
    assert schema["properties"]["rationale"] == {"type": "string", "minLength": 1, "maxLength": 400}
    by_type = _variants(schema)
    assert list(by_type) == list(ACTION_TYPES)
    assert by_type["click"]["properties"]["name"] == {"type": "string", "enum": ["a", "b"]}
    assert by_type["type_and_submit"]["properties"]["name"] == {"type": "string", "enum": ["search_input"]}
    assert by_type["type_and_submit"]["properties"]["text"] == {"type": "string", "minLength": 1, "maxLength": 120}
    assert [v["required"] for v in by_type.values()] == [["type", "name"], ["type", "name", "text"], ["type"]]
    assert all(v["additionalProperties"] is False for v in by_type.values())
    # without the page's names, any non-empty name; a kind without names drops its action
    assert _variants(action_json_schema())["click"]["properties"]["name"] == {"type": "string", "minLength": 1}
    assert list(_variants(action_json_schema([], ["s"]))) == ["type_and_submit", "terminate"]
    assert list(_variants(action_json_schema([], []))) == ["terminate"]
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)


def test_prompt_lists_the_models() -> None:
    assert describe_actions() in SYSTEM_PROMPT
    assert "There are exactly three actions:" in SYSTEM_PROMPT
    assert '2. {"type": "type_and_submit", "name": "<name>", "text": "<text>"} -- type a few words into an input field' \
           in SYSTEM_PROMPT
    assert "type_and_submit needs the name of an input field." in SYSTEM_PROMPT


def test_a_fourth_action_shows_up_in_schema_prompt_and_grammar() -> None:
    # schema
    scroll = _variants(action_json_schema(["a"], ["s"], models=EXTENDED))["scroll"]
    assert scroll["properties"]["direction"] == {"type": "string", "enum": ["up", "down"]}
    assert scroll["required"] == ["type", "direction"] and scroll["additionalProperties"] is False
    # prompt
    prompt = render_system_prompt(EXTENDED)
    assert "There are exactly four actions:" in prompt
    assert '4. {"type": "scroll", "direction": "<direction>"} -- scroll the page to see more of it.' in prompt
    assert prompt.replace(describe_actions(EXTENDED), describe_actions()) == SYSTEM_PROMPT
    # grammar: the new alternative is there and decodes exactly its own values
    grammar = action_grammar(["a"], ["s"], models=EXTENDED)
    types = grammar.root[2]
    assert isinstance(types, Choice) and 'scroll", "direction": "' in types.options

    def decodes(action: dict) -> bool:
        text = json.dumps({"rationale": "I want to see more of the page.", "action": action})
        state = _State(tuple(grammar.root))
        for ch in text:
            state.advance(ch)
        return state.done and not state.broken

    assert grammar.root[0] == Choice((RATIONALE_PREFIX,), ((),))
    assert decodes({"type": "scroll", "direction": "down"})
    assert not decodes({"type": "scroll", "direction": "left"})
    assert decodes({"type": "click", "name": "a"}) and not decodes({"type": "click", "name": "b"})
    assert decodes({"type": "type_and_submit", "name": "s", "text": "red shoes"})
    assert decodes({"type": "terminate"})


def test_a_targeted_action_follows_the_page_names() -> None:
    models = (*ACTION_MODELS, Hover)
    hover = _variants(action_json_schema(["x", "y"], [], models=models))["hover"]
    assert hover["properties"]["name"] == {"type": "string", "enum": ["x", "y"]}
    assert "hover" not in _variants(action_json_schema([], ["s"], models=models))  # nothing to point at
    types = action_grammar(["x"], [], models=models).root[2]
    assert 'hover", "name": "' in types.options
    assert 'hover", "name": "' not in action_grammar([], ["s"], models=models).root[2].options


def test_grammar_rejects_a_field_it_cannot_decode() -> None:
    class Wait(ActionBase):
        """Wait a few seconds."""

        type: Literal["wait"] = "wait"
        seconds: int

    with pytest.raises(ValueError, match=r"Wait\.seconds"):
        action_grammar(["a"], [], models=(*ACTION_MODELS, Wait))


def test_an_action_model_without_docstring_is_refused_by_the_prompt() -> None:
    class Mute(ActionBase):
        type: Literal["mute"] = "mute"

    Mute.__doc__ = None
    with pytest.raises(ValueError, match="Mute needs a docstring"):
        describe_actions((*ACTION_MODELS, Mute))
