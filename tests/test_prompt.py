"""The prompt format: system prompt, one-step prompts under a budget, SFT sessions, answers."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import pytest

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.observation import Element, Observation
from shop_r1.envs.tokens import count_tokens
from shop_r1.personas.library import load_library
from shop_r1.simulator.records.exchange import HistoryItem
from shop_r1.simulator.agent.prompt import (
    OMITTED_MARKER,
    PARSE_ERROR_CODES,
    SYSTEM_PROMPT,
    approximate_tokens,
    build_messages,
    build_prompt,
    format_answer,
    parse_output,
    parse_output_for,
    system_prompt,
    truncate_to_tokens,
)

KINDS = {"search_input": "input", "search_button": "clickable", "refinements.brand_sony": "clickable",
         "sony_wh1000.view_product": "clickable", "sort_by": "select"}


def _page(tag: str, products: int = 20) -> str:
    rows = "\n".join(f'<a name="{tag}_item_{i}.view_product">{tag} product {i}: wireless headphones, $ {10 + i}.99</a>'
                     for i in range(products))
    return (f'<html><title>{tag}</title><body>\n<input name="search_input" type="search">\n'
            f'<button name="search_button">Search</button>\n{rows}\n</body></html>')


def _observation(tag: str = "current", products: int = 20) -> Observation:
    html = _page(tag, products)
    names = re.findall(r'name="([^"]+)"', html)
    elements = tuple(Element(name=n, kind="input" if n == "search_input" else "clickable") for n in names)
    return Observation(url=f"http://127.0.0.1:8000/{tag}", title=tag, simplified_html=html, elements=elements)


def _history(n: int, products: int = 20) -> list[HistoryItem]:
    return [HistoryItem(url=f"http://127.0.0.1:8000/h{i}", simplified_html=_page(f"hist{i}", products),
                        action={"type": "click", "name": f"hist{i}_item_0.view_product"},
                        rationale=f"I open the first product of page {i}.") for i in range(n)]


def _total(messages: list[dict[str, str]]) -> int:
    return sum(count_tokens(m["content"]) for m in messages)


# -- system prompt ----------------------------------------------------------------------------

def test_system_prompt_states_the_task_and_exactly_three_actions():
    for snippet in ('{"type": "click", "name": "<name>"}',
                    '{"type": "type_and_submit", "name": "<name>", "text": "<text>"}',
                    '{"type": "terminate"}', "single JSON object", "nothing else", "`name` attributes"):
        assert snippet in SYSTEM_PROMPT
    assert len(re.findall(r'"type": "(\w+)"', SYSTEM_PROMPT.split("Example answer")[0])) == 3
    example = SYSTEM_PROMPT.split("Example answer (replace each <...> by what it describes):\n", 1)[1]
    parsed = parse_output(example)
    assert parsed.ok and parsed.strict and isinstance(parsed.action, Click)
    # no value a small model could copy as it is: every free value is a <placeholder>
    assert parsed.rationale.startswith("<") and parsed.action.name.startswith("<")
    assert "headphones" not in SYSTEM_PROMPT and "search_input" not in SYSTEM_PROMPT
    assert system_prompt(None) == SYSTEM_PROMPT


def test_system_prompt_with_persona_and_goal():
    persona = load_library().personas[0].with_intent("noise cancelling headphones under $200")
    text = system_prompt(persona)
    assert text.startswith(SYSTEM_PROMPT)
    assert f"You are shopping as: {persona.to_prompt_block()}" in text
    assert text.endswith("Your goal: noise cancelling headphones under $200")
    assert system_prompt(persona, intent="a kettle").endswith("Your goal: a kettle")
    assert "Your goal" not in system_prompt(persona.with_intent(None))
    assert system_prompt(None, intent="socks").endswith("Your goal: socks")
    assert system_prompt(persona.model_dump()) == text  # a persona read back from a trace


# -- one decision -----------------------------------------------------------------------------

def test_build_messages_orders_history_before_the_current_page():
    obs, hist = _observation(), _history(3)
    messages = build_messages(obs, hist, token_budget=100_000)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    positions = [user.index(h.simplified_html) for h in hist] + [user.index(obs.simplified_html)]
    assert positions == sorted(positions)
    for i, h in enumerate(hist):
        assert f"### Step {i + 1} -- URL: {h.url}" in user
        assert f"Action: {json.dumps(h.action)}" in user and f"Rationale: {h.rationale}" in user
    assert f"## Current page (step 4) -- URL: {obs.url}" in user
    assert user.rstrip().endswith('"action": {...}}')


def test_build_messages_accepts_simplified_html_text():
    messages = build_messages("<html><a name='x'>x</a></html>", [], token_budget=10_000)
    assert "<a name='x'>x</a>" in messages[1]["content"] and "Earlier in this session" not in messages[1]["content"]


def _layout(user: str, n: int) -> list[str]:
    """Per history step: full, collapsed or dropped, as rendered."""
    modes = []
    for i in range(n):
        head = f"### Step {i + 1} -- URL: http://127.0.0.1:8000/h{i}"
        if head + " (page omitted)" in user:
            modes.append("collapsed")
        elif head in user:
            modes.append("full")
        else:
            modes.append("dropped")
    return modes


def test_budget_collapses_then_drops_the_oldest_history_and_keeps_the_page(caplog):
    obs, hist = _observation(), _history(6)
    # budgets are kept in the sum of the parts' counts (the joined text counts a little less)
    page_only = build_prompt(obs, [], token_budget=100_000).report.total_tokens
    full = build_prompt(obs, hist, token_budget=100_000).report.total_tokens
    assert _total(build_messages(obs, hist, token_budget=100_000)) <= full
    seen = set()
    previous = None
    budgets = [*range(full, page_only + 30, -(full - page_only) // 25), page_only + 30]
    with caplog.at_level(logging.INFO, logger="shop_r1.simulator.agent.prompt"):
        for budget in budgets:
            prompt = build_prompt(obs, hist, token_budget=budget)
            user = prompt.messages[1]["content"]
            assert obs.simplified_html in user  # the current page is always whole here
            assert _total(prompt.messages) <= budget
            modes = _layout(user, len(hist))
            seen.add(tuple(modes))
            # oldest first: dropped ones, then collapsed ones, then full ones -- never out of order
            rank = {"dropped": 0, "collapsed": 1, "full": 2}
            assert [rank[m] for m in modes] == sorted(rank[m] for m in modes), modes
            r = prompt.report
            assert (modes.count("full"), modes.count("collapsed"), modes.count("dropped")) == \
                   (r.history_full, r.history_collapsed, r.history_dropped)
            if r.history_dropped:
                assert OMITTED_MARKER.format(n=r.history_dropped) in user
            if previous is not None:  # a smaller budget never shows more steps in full
                assert r.history_full <= previous.history_full
            previous = r
    assert any("full" in s and "collapsed" in s for s in seen)
    assert any("collapsed" in s and "dropped" in s for s in seen)
    assert ("full",) * 6 in seen and any(s.count("dropped") == 6 for s in seen)
    assert "prompt budget" in caplog.text and "collapsed to actions" in caplog.text


def test_page_alone_over_budget_is_cut_with_a_marker():
    obs = _observation(products=400)
    page_tokens = count_tokens(obs.simplified_html.strip() + "\n")  # the page as rendered
    prompt = build_prompt(obs, _history(3), token_budget=2000)
    user = prompt.messages[1]["content"]
    assert prompt.report.page_truncated and prompt.report.history_dropped == 3
    assert page_tokens > 2000 and _total(prompt.messages) <= 2000
    assert f"of {page_tokens} tokens kept" in user
    kept = user.split("\n", 4)[-1]
    assert obs.simplified_html[:500] in kept  # the start of the page is what survives
    assert _total(prompt.messages) > 1800  # and it uses the room it has


def test_truncate_to_tokens_prefers_line_ends_and_handles_one_long_line():
    text = "\n".join(f"<li name='row_{i}'>row {i}</li>" for i in range(200))
    cut = truncate_to_tokens(text, 300, count_tokens)
    assert text.startswith(cut) and cut.endswith("\n") and count_tokens(cut) <= 300
    assert count_tokens(text[: len(cut) + 40]) > 300
    one_line = text.replace("\n", " ")
    cut = truncate_to_tokens(one_line, 300, count_tokens)
    assert one_line.startswith(cut) and 250 < count_tokens(cut) <= 300
    assert truncate_to_tokens("short", 300, count_tokens) == "short"
    assert truncate_to_tokens("short", 0, count_tokens) == ""


def test_custom_token_counter_is_used():
    calls = []

    def counter(text: str) -> int:
        calls.append(len(text))
        return approximate_tokens(text)

    prompt = build_prompt(_observation(), _history(2), token_budget=50_000, count_tokens=counter)
    assert calls and prompt.report.history_full == 2


# -- the one context format ------------------------------------------------------------------

def test_the_one_context_format_is_one_user_turn_with_the_session_inline():
    """Issue 9 fix 5: SFT, RL, evaluation and the simulator all read build_messages; there is no
    second (multi-turn) session format to drift from it."""
    import shop_r1.simulator.agent.prompt as P

    assert not hasattr(P, "build_chat_session")
    history = [HistoryItem(url="http://127.0.0.1:8000/", simplified_html=_page("home"),
                           action={"type": "type_and_submit", "name": "search_input", "text": "sony headphones"},
                           rationale="I search for the headphones I want."),
               HistoryItem(url="http://127.0.0.1:8000/search", simplified_html=_page("results"),
                           action={"type": "click", "name": "nope"}, rationale="I open a product.")]
    messages = build_messages(_page("results"), history, token_budget=100_000, url="http://127.0.0.1:8000/search")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    # the failed click stays in the history, in order, before the current page
    assert user.index("### Step 1") < user.index("### Step 2") < user.index('"name": "nope"') \
        < user.index("## Current page (step 3)")


# -- answers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("action", [
    Click(name="search_button"), TypeAndSubmit(name="search_input", text="sony wh-1000xm5"), Terminate(),
    {"type": "click", "name": "refinements.brand_sony"},
])
def test_format_answer_round_trips_through_parse_output(action):
    text = format_answer("  I want Sony.  ", action)
    assert list(json.loads(text)) == ["rationale", "action"]
    parsed = parse_output(text, kinds=KINDS)
    assert parsed.ok and parsed.strict and parsed.how == "json" and parsed.rationale == "I want Sony."
    assert parsed.action.to_json() == (action if isinstance(action, dict) else action.to_json())


def test_format_answer_rejects_bad_input():
    with pytest.raises(ValueError, match="rationale"):
        format_answer(" ", Terminate())
    with pytest.raises(ValueError, match="not one of"):
        format_answer("r", {"type": "scroll"})


GOOD = '{"rationale": "I search.", "action": {"type": "type_and_submit", "name": "search_input", "text": "sony"}}'


@pytest.mark.parametrize("text, code, how", [
    (GOOD, None, "json"),
    (f"```json\n{GOOD}\n```", None, "fenced"),
    (f"```\n{GOOD}", None, "fenced"),  # an unclosed fence
    (f"Sure! Here is my answer:\n{GOOD}\nLet me know if you need more.", None, "embedded"),
    (f"I think {{maybe}} this: {GOOD}", None, "embedded"),
    ('{"rationale": "r", "action": {"type": "terminate",},}', None, "repaired"),
    ('[' + GOOD + ']', None, "embedded"),
    ("", "empty", None),
    ("   \n ", "empty", None),
    (None, "empty", None),
    ("I would click the search button.", "no_json", None),
    ("[1, 2, 3]", "no_json", None),
    ('"just a string"', "no_json", None),
    (GOOD[:-25], "invalid_json", None),  # truncated mid-way
    ('{"rationale": "r", "action": {"type": "terminate"}', "invalid_json", None),  # last brace missing
    ("{'rationale': 'r', 'action': {'type': 'terminate'}}", "invalid_json", None),  # Python, not JSON
    ('{"rationale": "r" "action": {"type": "terminate"}}', "invalid_json", None),  # missing comma
    ('{"action": {"type": "terminate"}}', "missing_rationale", "json"),
    ('{"type": "click", "name": "search_button"}', "missing_rationale", "json"),  # a bare action
    ('{"rationale": ["a"], "action": {"type": "terminate"}}', "missing_rationale", "json"),
    ('{"rationale": "  ", "action": {"type": "terminate"}}', "missing_rationale", "json"),
    ('{"rationale": "r"}', "missing_action", "json"),
    ('{"rationale": "r", "action": null}', "missing_action", "json"),
    ('{"rationale": "r", "action": "click search_button"}', "invalid_action", "json"),
    ('{"rationale": "r", "action": {"type": "scroll"}}', "invalid_action", "json"),
    ('{"rationale": "r", "action": {"type": "click"}}', "invalid_action", "json"),
    ('{"rationale": "r", "action": {"type": "click", "name": 7}}', "invalid_action", "json"),
    ('{"rationale": "r", "action": {"type": "type_and_submit", "name": "search_input"}}', "invalid_action", "json"),
    ('{"rationale": "r", "action": {"type": "terminate", "reason": "done"}}', "invalid_action", "json"),
    ('{"rationale": "r", "action": {"type": "click", "name": "serch_button"}}', "unknown_name", "json"),
    ('{"rationale": "r", "action": {"type": "type_and_submit", "name": "sony_wh1000.view_product", '
     '"text": "x"}}', "wrong_kind", "json"),
    ('{"rationale": "r", "action": {"type": "type_and_submit", "name": "sort_by", "text": "x"}}', "wrong_kind", "json"),
])
def test_parse_output_cases(text, code, how):
    parsed = parse_output(text, kinds=KINDS)
    assert (parsed.error.code if parsed.error else None) == code, parsed.error
    assert parsed.how == how
    assert (parsed.action is None) == (code is not None)
    if code is not None:
        assert parsed.error.code == code and parsed.error.message
    # strict: the whole text is one JSON object with exactly the two keys, whatever came after
    assert parsed.strict == (how == "json" and set(json.loads(text)) == {"rationale", "action"})


def test_parse_output_messages_help():
    parsed = parse_output('{"rationale": "r", "action": {"type": "click", "name": "serch_button"}}', KINDS.keys())
    assert "'serch_button'" in parsed.error.message and "did you mean 'search_button'" in parsed.error.message
    assert parsed.rationale == "r"  # kept for the trace even though the action is unusable
    parsed = parse_output('{"rationale": "r", "action": {"type": "type_and_submit", "name": "sort_by", "text": "x"}}',
                          kinds=KINDS)
    assert "needs an input field" in parsed.error.message and "select" in parsed.error.message
    # without names or kinds, any well-formed action is accepted
    assert parse_output('{"rationale": "r", "action": {"type": "type_and_submit", "name": "z", "text": "x"}}').ok
    # extra top-level keys are tolerated but not strict
    parsed = parse_output('{"rationale": "r", "thought": "hm", "action": {"type": "terminate"}}')
    assert parsed.ok and not parsed.strict
    # a click on an input (focusing it) is allowed
    assert parse_output('{"rationale": "r", "action": {"type": "click", "name": "search_input"}}', kinds=KINDS).ok


def test_parse_output_for_an_observation():
    obs = _observation()
    ok = parse_output_for('{"rationale": "r", "action": {"type": "click", "name": "current_item_3.view_product"}}', obs)
    assert ok.ok and ok.action == Click(name="current_item_3.view_product")
    bad = parse_output_for('{"rationale": "r", "action": {"type": "type_and_submit", "name": "search_button", '
                           '"text": "x"}}', obs)
    assert bad.error.code == "wrong_kind"


def test_parse_output_never_raises_on_garbage():
    rng = random.Random(0)
    alphabet = '{}[]":,\\ abcnrt\n`01-'
    pieces = [GOOD, '{"rationale":', '"action":', '{"type": "click"', '```json', "}", "{", '"', "\\"]
    codes = set()
    for _ in range(400):
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        else:
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        parsed = parse_output(text, kinds=KINDS)
        assert parsed.error is None or parsed.error.code in PARSE_ERROR_CODES
        codes.add(parsed.error.code if parsed.error else None)
    assert len(codes) >= 4
    assert parse_output("[" * 50_000).error.code == "no_json"
    assert parse_output("{" * 50_000).error.code == "invalid_json"


def test_system_prompt_text_is_the_shipped_file_not_python() -> None:
    """The prompt's prose is package data (simulator/agent/prompt/system.md), filled in from the action
    models; the Python module that renders it holds none of it."""
    from importlib import resources

    import shop_r1.simulator.agent.prompt.render as render

    text = resources.files("shop_r1.simulator.agent.prompt").joinpath("system.md").read_text(encoding="utf-8")
    assert text.count("$actions") == text.count("$name_rule") == text.count("$answer_format") == 1
    assert SYSTEM_PROMPT.startswith(text.split("$", 1)[0]) and SYSTEM_PROMPT.endswith(render.ANSWER_FORMAT)
    assert "You are a human shopper" not in Path(render.__file__).read_text(encoding="utf-8")
