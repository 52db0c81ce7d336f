"""What the demo's model shopper reads and may write, and one run holding two policies.

A 135M model copies what the prompt shows it, so the prompt shows only placeholders and states
the goal again right before the answer; constrained decoding lets it type only short queries
made of the intent's words. MixedPolicy puts the embedded model and scripted shoppers in one run
on the real bundled shop (real Chromium), and says which shopper each policy drove.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from shop_r1.envs.actions import TypeAndSubmit
from shop_r1.envs.observation import Element, Observation
from shop_r1.envs.tokens import count_tokens
from shop_r1.personas.library import load_library
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.constrained import (
    ConstrainedRows,
    TokenTable,
    grammar_for_observation,
    search_queries,
)
from shop_r1.simulator.agent.policies.factory import PolicyConfigError, PolicySpec, open_policy
from shop_r1.simulator.agent.policies.mixed import session_index
from shop_r1.simulator.agent.prompt import ANSWER_REMINDER, SYSTEM_PROMPT, build_messages, parse_output_for
from shop_r1.simulator.analysis.realism import realism
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.simulator.records.trace import read_trace


# -- the prompt --------------------------------------------------------------------------------

def test_system_prompt_values_are_all_placeholders():
    values = re.findall(r'"(?:rationale|name|text)": "([^"]*)"', SYSTEM_PROMPT)
    assert len(values) >= 4  # the three action templates and the example answer
    assert all(v.startswith("<") and v.endswith(">") for v in values), values


def test_goal_is_restated_right_before_the_answer():
    persona = load_library().personas[0].with_intent("trail running shoes")
    page = "<input name='search'>\n<a name='home'>Home</a>"
    user = build_messages(page, [], persona, token_budget=10_000)[1]["content"]
    assert user.endswith(f"{page}\n\nYour goal: trail running shoes\n{ANSWER_REMINDER}")
    assert build_messages(page, [], persona, intent="a kettle", token_budget=10_000)[1]["content"].endswith(
        f"Your goal: a kettle\n{ANSWER_REMINDER}")
    browsing = build_messages(page, [], persona.with_intent(None), token_budget=10_000)[1]["content"]
    assert "Your goal" not in browsing and browsing.endswith("\n" + ANSWER_REMINDER)


# -- typed text from the intent ----------------------------------------------------------------

def test_search_queries_are_short_runs_of_the_intents_words():
    qs = search_queries("I am looking for noise cancelling headphones, and price lower than 200.00 dollars")
    assert qs[0] == "noise cancelling headphones"
    assert {"headphones", "noise cancelling", "cancelling headphones"} <= set(qs)
    assert all(1 <= len(q.split()) <= 3 for q in qs) and len(set(qs)) == len(qs)
    assert not any(w in q for q in qs for w in ("looking", "price", "200", "dollars"))
    assert search_queries(None) == () and search_queries("") == ()


def _page() -> Observation:
    names = [("header.search", "input"), ("nav.home", "clickable"), ("results.item_1.view_product", "clickable")]
    html = "\n".join(f'<a name="{n}">{n}</a>' for n, _ in names)
    return Observation(url="http://127.0.0.1:1/s", title="s", simplified_html=html,
                       elements=tuple(Element(name=n, kind=k) for n, k in names))


def test_random_logits_type_only_offered_queries_and_never_a_placeholder():
    """Decoding driven by random logits (the worst a model could do) through the real SmolLM2
    tokenizer: every typed text is one of the offered queries, no free text holds '<' or '>'."""
    import torch  # optional heavy dependency: the constrained decoder's masks
    from transformers import PreTrainedTokenizerFast  # optional heavy dependency

    from shop_r1.envs.tokens import tokenizer_path

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_path()), eos_token="<|im_end|>",
                                        pad_token="<|im_end|>")
    queries = search_queries("waterproof hiking boots")
    page = _page()
    rows_n = 16
    grammars = [grammar_for_observation(page, choices={"text": queries}) for _ in range(rows_n)]
    table = TokenTable(tokenizer)
    max_new = max(g.max_tokens() for g in grammars)
    rows = ConstrainedRows(table, grammars, prompt_len=1, max_new_tokens=max_new)
    gen = torch.Generator().manual_seed(3)
    ids = torch.zeros((rows_n, 1), dtype=torch.long)
    for _ in range(max_new):
        scores = rows(ids, torch.randn((rows_n, table.vocab_size), generator=gen) * 3)
        nxt = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=gen)
        ids = torch.cat([ids, nxt], dim=1)
        if all(rows.complete):
            break
    typed = []
    for text in rows.texts:
        parsed = parse_output_for(text, page)
        assert parsed.ok and parsed.strict, (parsed.error, text)
        assert "<" not in parsed.rationale and ">" not in parsed.rationale
        if isinstance(parsed.action, TypeAndSubmit):
            typed.append(parsed.action.text)
    assert typed and all(t in queries for t in typed), typed


# -- one run, two policies ---------------------------------------------------------------------

def test_mixed_spec_needs_parts_and_says_what_each_is():
    with pytest.raises(PolicyConfigError, match="needs parts"):
        PolicySpec(name="mixed")
    with pytest.raises(PolicyConfigError, match="takes no parts"):
        PolicySpec(name="scripted", parts=(PolicySpec(name="scripted"),))
    spec = PolicySpec(name="mixed", parts=(PolicySpec(name="transformers", model="default"), PolicySpec(name="scripted")))
    line = spec.describe_line()
    assert "SmolLM2-135M-Instruct" in line and "scripted: a rule-based shopper" in line
    assert session_index("20260101-abc-0007") == 7 and session_index("no-index-here") is None


def test_mixed_run_on_the_real_shop_routes_shoppers_and_records_both(shop_url: str, tmp_path: Path):
    """Shoppers 0 and 2: a real (tiny) transformers model, constrained; 1 and 3: scripted.
    One run, one trace; run.json's policy_info names both; each session was decided by its part."""
    parts = (PolicySpec(name="transformers", model="tiny", constrained=True, seed=0, prompt_budget=1200,
                        page_budget=800, extra={"grammar_bounds": {"rationale_max_tokens": 12}}),
             PolicySpec(name="scripted", seed=0))
    spec = PolicySpec(name="mixed", parts=parts)
    out = tmp_path / "run"
    config = RunConfig(shop_url=shop_url, shoppers=4, concurrency=4, max_steps=4, out_dir=out, policy="mixed",
                       step_timeout_s=600, session_timeout_s=1800)
    personas = sample(4, seed=0)

    async def run():
        async with open_policy(spec) as policy:
            return await Runner(config, policy, personas).run()

    result = asyncio.run(run())
    assert len(result.sessions) == 4
    info = json.loads((out / "run.json").read_text())
    policy_info = info["config"]["policy_info"]
    assert policy_info["policy"] == "mixed"
    assert [p["policy"] for p in policy_info["parts"]] == ["transformers", "scripted"]
    assert policy_info["parts"][0]["label"] == parts[0].describe_line()
    assert policy_info["parts"][0]["query_choices"] is True
    trace = read_trace(out)
    by_part: dict[int, list] = {0: [], 1: []}
    for step in trace.steps:
        by_part[session_index(step.session_id) % 2].append(step)
    assert by_part[0] and by_part[1]
    # the model's steps have a prompt the model read; the scripted shopper reads no prompt
    assert all(s.tokens.prompt > 0 for s in by_part[0])
    assert all(s.tokens.prompt == 0 for s in by_part[1])
    # the scripted shoppers got somewhere on the shop in the same run
    assert any(s.action is not None and s.action.type == "type_and_submit" for s in by_part[1])
    # each part read pages of its own size: the model short ones, the scripted shoppers whole ones
    assert max(count_tokens(s.simplified_html) for s in by_part[0]) <= 800
    assert max(count_tokens(s.simplified_html) for s in by_part[1]) > 800
    assert realism(by_part[1]).funnel["product"] > 0  # they opened products (pages classified by content)
