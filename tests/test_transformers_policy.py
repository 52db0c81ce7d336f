"""The transformers backend and its constrained decoding, on real models and real shop pages.

Tiny random models make the constrained/unconstrained contrast sharp: random weights never write
valid JSON on their own, so every valid answer under constraints is the grammar's doing.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

import pytest

from shop_r1.envs.observation import Element, Observation
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.policies.constrained import (
    ConstrainedRows,
    TokenTable,
    action_grammar,
    executable_names,
    grammar_for_observation,
)
from shop_r1.simulator.agent.policies.transformers_policy import TransformersPolicy
from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny() -> str:
    return str(tiny_model_dir(seed=0))


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    """SmolLM2's real 49k BPE (the project's counting tokenizer), without the slow model conversion."""
    from transformers import PreTrainedTokenizerFast

    from shop_r1.envs.tokens import tokenizer_path

    return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_path()), eos_token="<|im_end|>",
                                   pad_token="<|im_end|>")


async def _shop_pages(shop_url: str) -> list[Observation]:
    """Three real pages of the bundled shop: home, search results, a product page."""
    from shop_r1.envs.browser import BrowserPool

    async with BrowserPool() as pool:
        session = await pool.new_session("obs")
        home = await session.reset(shop_url)
        search = next(el.name for el in home.elements if el.kind == "input")
        results = await session.step({"type": "type_and_submit", "name": search, "text": "running shoes"})
        assert results.error is None and results.observation is not None
        product_link = next(el.name for el in results.observation.elements if el.name.endswith("view_product"))
        product = await session.step({"type": "click", "name": product_link})
        assert product.error is None and product.observation is not None
        return [home, results.observation, product.observation]


@pytest.fixture(scope="module")
def shop_pages(shop_url: str) -> list[Observation]:
    pages = asyncio.run(_shop_pages(shop_url))
    assert len({p.url for p in pages}) == 3
    return pages


def _hand_page() -> Observation:
    els = (
        Element("header.search", "input", input_type="search"),
        Element("header.cart", "clickable", "Cart (0)"),
        Element('weird."quoted"\\name', "clickable", "odd"),
        Element("results.item_1.view_product", "clickable", "Trail running shoes"),
        Element("results.item_2.view_product", "clickable", "Wireless earbuds", disabled=True),
        Element("sort_by", "select", options=("Price: low to high", "Newest")),
    )
    html = "".join(f'<a name="{e.name}">{e.text}</a>' for e in els)
    return Observation(url="http://127.0.0.1:1/search?q=shoes", title="Results", simplified_html=html, elements=els)


def _assert_executable(resp: PolicyResponse, obs: Observation) -> None:
    """The answer is strict JSON and an action this page can execute."""
    assert resp.error is None, (resp.error, resp.raw_text)
    assert resp.action is not None and resp.rationale.strip()
    obj = json.loads(resp.raw_text)
    assert set(obj) == {"rationale", "action"} and obj["action"] == resp.action.to_json()
    clickable, inputs = executable_names(obs)
    if resp.action.type == "click":
        assert resp.action.name in clickable
    elif resp.action.type == "type_and_submit":
        assert resp.action.name in inputs and resp.action.text.strip()
    assert resp.prompt_tokens > 0 and resp.completion_tokens > 0 and resp.latency_s > 0


# -- the grammar --------------------------------------------------------------------------------
def test_grammar_offers_only_what_the_page_supports() -> None:
    no_inputs = action_grammar(["a", "b"], [])
    assert [o.split('"')[0] for o in no_inputs.root[2].options] == ["click", "terminate"]
    nothing = action_grammar([], [])
    assert nothing.root[2].options == ('terminate"}}',)
    page = _hand_page()
    clickable, inputs = executable_names(page)
    assert "results.item_2.view_product" not in clickable  # disabled
    assert "sort_by" not in clickable  # a bare click on a select is a wrong_kind error
    assert inputs == ["header.search"]
    g = grammar_for_observation(page)
    names = g.root[2].then[0][0].options
    assert 'weird.\\"quoted\\"\\\\name"}}' in names  # JSON-escaped inside the string
    assert g.max_tokens() > len('{"rationale": "", "action": {"type": "type_and_submit"}}')


def _sample_with_random_logits(tokenizer, pages: Sequence[Observation], seed: int, vocab: int) -> list[str]:
    """Drive ConstrainedRows with random logits (no model) and return the decoded texts."""
    import torch

    table = TokenTable(tokenizer, vocab_size=vocab)
    grammars = [grammar_for_observation(p) for p in pages]
    max_new = max(g.max_tokens() for g in grammars)
    prompt = torch.zeros((len(pages), 3), dtype=torch.long)
    rows = ConstrainedRows(table, grammars, prompt_len=3, max_new_tokens=max_new)
    gen = torch.Generator().manual_seed(seed)
    ids = prompt
    finished = [False] * len(pages)
    for _ in range(max_new):
        scores = rows(ids, torch.randn((len(pages), vocab), generator=gen) * 3)
        assert torch.isfinite(scores).any(dim=-1).all(), "a row was left with no allowed token"
        probs = torch.softmax(scores, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=gen)
        for r in range(len(pages)):
            if finished[r]:
                nxt[r, 0] = table.eos_ids[0]
            finished[r] = finished[r] or nxt[r, 0].item() in table.eos_ids
        ids = torch.cat([ids, nxt], dim=1)
        if all(finished):
            break
    assert all(finished), "the grammar bound let a row run out of tokens"
    return [tokenizer.decode([t for t in row if t not in table.eos_ids]) for row in ids[:, 3:].tolist()]


@pytest.mark.parametrize("which", ["tiny_tokenizer", "smollm2_tokenizer"])
def test_random_logits_always_spell_a_valid_answer(which: str, request: pytest.FixtureRequest) -> None:
    from shop_r1.simulator.agent.prompt import parse_output_for

    tokenizer = request.getfixturevalue(which)
    pages = [_hand_page()] * 6
    texts = _sample_with_random_logits(tokenizer, pages, seed=11, vocab=len(tokenizer) + 5)
    seen_types = set()
    for text, page in zip(texts, pages):
        parsed = parse_output_for(text, page)
        assert parsed.ok and parsed.strict, (parsed.error, text)
        obj = json.loads(text)
        assert obj["action"]["type"] in ("click", "type_and_submit", "terminate")
        assert len(obj["rationale"]) <= 300
        seen_types.add(obj["action"]["type"])
    assert len(seen_types) >= 2  # the grammar does not collapse onto one action type


# -- the policy on the tiny model --------------------------------------------------------------
async def test_constrained_batch_of_three_on_real_shop_pages(tiny: str, shop_pages: list[Observation]) -> None:
    policy = TransformersPolicy(tiny, constrained=True, temperature=1.0, top_p=1.0, seed=5, num_threads=1)
    requests = [PolicyRequest(session_id=f"s{i}", observation=obs, step=i) for i, obs in enumerate(shop_pages)]
    responses = await policy.act(requests)
    assert len(responses) == 3
    for resp, obs in zip(responses, shop_pages):
        _assert_executable(resp, obs)
        assert resp.extra["batch_size"] == 3 and resp.extra["constrained"] is True
        assert resp.extra["strict_json"] is True
    # one generate call for the batch: every row reports the batch's wall time
    assert len({r.latency_s for r in responses}) == 1


@pytest.mark.parametrize("constrained", [True, False])
async def test_prefilling_prompts_apart_writes_the_same_tokens(tiny: str, shop_pages: list[Observation],
                                                               constrained: bool) -> None:
    """The unpadded prefill is a speed-up only: token for token the padded batch's answers."""
    from shop_r1.simulator.agent.llm.prefill import prefill_apart

    requests = [PolicyRequest(session_id=f"s{i}", observation=obs, step=i) for i, obs in enumerate(shop_pages)]
    answers = {}
    for apart in (True, False):
        policy = TransformersPolicy(tiny, constrained=constrained, temperature=1.0 if constrained else 0.0,
                                    top_p=1.0, seed=5, num_threads=1, max_new_tokens=40, prefill_apart=apart)
        answers[apart] = [(r.raw_text, r.completion_tokens) for r in await policy.act(requests)]
    assert answers[True] == answers[False]
    assert len({len(r.observation.simplified_html) for r in requests}) == 3  # really padded: three lengths

    loaded = policy.loaded
    prompts = [[5, 6, 7, 8, 9], [5, 6, 7]]
    (cache,) = prefill_apart(loaded.model, prompts, padded_length=5).values()
    assert cache.get_seq_length() == 4  # the last column is left to generate
    assert cache.layers[0].keys.shape[0] == 2 and not cache.layers[0].keys[1, :, :2].any()  # left padding


def test_prefilled_padded_batch_runs_each_distinct_prompt_once(tiny: str) -> None:
    """GRPO's rollouts repeat each prompt G times: one prefill per prompt, the same sampled tokens."""
    import torch

    from shop_r1.simulator.agent.llm.loader import load_for_generation
    from shop_r1.simulator.agent.llm.prefill import prefilled

    loaded = load_for_generation(tiny, device="cpu")
    model, tok = loaded.model, loaded.tokenizer
    prompts = [list(range(10, 40)), list(range(50, 62))] * 2  # two prompts, each twice
    batch = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
    calls = []
    hook = model.register_forward_pre_hook(lambda _m, args, kwargs: calls.append(kwargs["input_ids"].shape),
                                           with_kwargs=True)
    try:
        extra = prefilled(model, batch["input_ids"], batch["attention_mask"])
    finally:
        hook.remove()
    assert calls == [torch.Size([1, 29]), torch.Size([1, 11])]  # each distinct prompt, minus its last token
    outputs = []
    for kwargs in (extra, {}):
        torch.manual_seed(3)
        with torch.inference_mode():
            outputs.append(model.generate(**batch, **kwargs, max_new_tokens=12, do_sample=True, top_k=0,
                                          pad_token_id=tok.pad_token_id))
    assert torch.equal(outputs[0], outputs[1])
    right_padded = {"input_ids": batch["input_ids"].flip(1), "attention_mask": batch["attention_mask"].flip(1)}
    assert prefilled(model, **right_padded) == {}  # only left padding is stitched


async def test_constrained_answers_stay_valid_across_seeds(tiny: str) -> None:
    page = _hand_page()
    policy = TransformersPolicy(tiny, constrained=True, temperature=1.3, top_p=1.0, seed=0, num_threads=1,
                                batch_size=4)
    requests = [PolicyRequest(session_id=f"s{i}", observation=page, step=i,
                              messages=[{"role": "user", "content": page.simplified_html}]) for i in range(8)]
    responses = await policy.act(requests)
    assert [r.extra["batch_size"] for r in responses] == [4] * 8
    for resp in responses:
        _assert_executable(resp, page)


async def test_unconstrained_random_model_fails_to_parse_without_raising(tiny: str) -> None:
    page = _hand_page()
    policy = TransformersPolicy(tiny, constrained=False, max_new_tokens=48, temperature=1.0, seed=1, num_threads=1)
    requests = [PolicyRequest(session_id=f"s{i}", observation=page, step=0) for i in range(2)]
    responses = await policy.act(requests)
    for resp in responses:
        assert resp.action is None
        assert resp.error and resp.error.code in ("empty", "no_json", "invalid_json", "missing_rationale",
                                                  "missing_action", "invalid_action", "unknown_name")
        assert resp.error.message
        assert 0 < resp.completion_tokens <= 48


async def test_same_seed_repeats_and_seeds_differ(tiny: str) -> None:
    page = _hand_page()
    reqs = [PolicyRequest(session_id=f"s{i}", observation=page, step=0,
                          messages=[{"role": "user", "content": "shop"}]) for i in range(3)]

    async def texts(seed: int) -> list[str]:
        policy = TransformersPolicy(tiny, constrained=True, temperature=1.0, seed=seed, num_threads=1)
        return [r.raw_text for r in await policy.act(reqs)]

    first, again, other = await texts(7), await texts(7), await texts(8)
    assert first == again
    assert first != other


async def test_event_loop_keeps_running_during_generation(tiny: str) -> None:
    page = _hand_page()
    policy = TransformersPolicy(tiny, constrained=True, temperature=1.0, seed=2, num_threads=1)
    policy.load()
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    responses = await policy.act([PolicyRequest(session_id="s", observation=page) for _ in range(2)])
    stop.set()
    await task
    assert all(r.action is not None for r in responses)
    assert ticks >= 3, "generation blocked the event loop"


async def test_oversized_prompt_is_an_error_response_not_an_exception(tiny: str) -> None:
    page = _hand_page()
    huge = " ".join(random.Random(0).choice(["shoes", "price", "4.5", "<div>", "cart"]) for _ in range(6000))
    policy = TransformersPolicy(tiny, constrained=True, seed=3, num_threads=1)
    responses = await policy.act([
        PolicyRequest(session_id="big", observation=page, messages=[{"role": "user", "content": huge}]),
        PolicyRequest(session_id="ok", observation=page),
    ])
    assert responses[0].action is None and responses[0].error.code == "generation_failed"
    assert responses[0].error.detail["reason"] == "prompt_too_long"
    _assert_executable(responses[1], page)


def test_describe_and_bad_settings(tiny: str) -> None:
    policy = TransformersPolicy(tiny, constrained=False)
    info = policy.describe()
    assert info["policy"] == "transformers" and info["model"] == tiny and info["constrained"] is False
    with pytest.raises(ValueError, match="top_p"):
        TransformersPolicy(tiny, top_p=0)
    with pytest.raises(ValueError, match="batch_size"):
        TransformersPolicy(tiny, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        TransformersPolicy(tiny, dtype="float7").load()


# -- the embedded default model ----------------------------------------------------------------
@pytest.mark.slow
async def test_default_model_takes_an_executable_step_on_the_real_shop(shop_url: str) -> None:
    """SmolLM2-135M (converted once, ~30 s) chooses an action that the real browser executes."""
    from shop_r1.envs.browser import BrowserPool
    from shop_r1.simulator.agent.llm.models import default_model_dir

    model_dir = default_model_dir()
    # a 1,200-token prompt budget keeps CPU prefill short; the grammar still offers every name
    policy = TransformersPolicy(None, seed=0, num_threads=1, token_budget=1200)
    assert policy.constrained is True and policy.model_dir == model_dir
    assert policy.describe()["model_source"]["upstream"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    async with BrowserPool() as pool:
        session = await pool.new_session("smollm2")
        obs = await session.reset(shop_url)
        [resp] = await policy.act([PolicyRequest(session_id="smollm2", observation=obs)])
        _assert_executable(resp, obs)
        result = await session.step(resp.action)
        assert result.error is None, (resp.action, result.error)
        if resp.action.type == "terminate":
            assert result.done
        else:
            assert result.observation is not None


# -- a prompt sized to the model's speed here ----------------------------------------------------
def test_prompt_budget_follows_the_measured_speed() -> None:
    from shop_r1.simulator.agent.llm.speed import MIN_PROMPT_TOKENS, ModelSpeed, prompt_budget_for

    fast = ModelSpeed(prefill_tokens_per_s=4000.0, decode_s_per_step=0.02, batch=4, measured_s=1.0)
    slow = ModelSpeed(prefill_tokens_per_s=400.0, decode_s_per_step=0.2, batch=4, measured_s=1.0)
    kw = {"seconds": 40.0, "batch": 4, "new_tokens": 80, "ceiling": 6000}
    # fast: (40 - 80 * 0.02) s * 0.8 * 4000 tokens/s / 4 prompts = 30,720 -> the ceiling
    assert prompt_budget_for(fast, **kw) == 6000
    # slow: (40 - 16) s * 0.8 * 400 / 4 = 1,920 tokens
    assert prompt_budget_for(slow, **kw) == 1920
    # twice the batch, half the prompt each; decoding slower than the step: the floor
    assert prompt_budget_for(slow, **{**kw, "batch": 8}) < prompt_budget_for(slow, **kw) / 2 + 1
    assert prompt_budget_for(slow, **{**kw, "seconds": 10.0}) == MIN_PROMPT_TOKENS
    assert prompt_budget_for(slow, **{**kw, "seconds": 10.0}, floor=956) == 956


async def test_policy_sizes_its_prompt_and_page_from_its_speed(tiny: str) -> None:
    sized = TransformersPolicy(tiny, constrained=True, seed=0, num_threads=1, batch_size=2, step_seconds=30.0)
    sized.load()
    speed = sized.speed
    assert speed is not None and speed.prefill_tokens_per_s > 0 and speed.decode_s_per_step > 0
    budget = sized.describe()["prompt_budget"]
    assert budget == sized._budget(100) and 956 <= budget <= sized.context_length
    assert sized.page_budget("s") == budget - 700
    # The same model given a tenth of the time reads a shorter page (unless both sit at a bound).
    hurried = TransformersPolicy(tiny, constrained=True, seed=0, num_threads=1, batch_size=2, step_seconds=0.5)
    hurried.load()
    assert hurried.describe()["prompt_budget"] <= budget
    # Both sit at a bound when this machine is fast enough to fill the context in either time
    # (the ceiling leaves room for a sized answer, not for the 100 tokens asked above).
    assert hurried.describe()["prompt_budget"] < budget or budget == sized.sizing_ceiling(), (
        budget, sized.sizing_ceiling(), speed)
    # An explicit budget wins and nothing is measured.
    fixed = TransformersPolicy(tiny, constrained=True, num_threads=1, token_budget=700, step_seconds=30.0)
    fixed.load()
    assert fixed.speed is None and fixed._budget(100) == 700 and fixed.page_budget("s") is None
    [resp] = await sized.act([PolicyRequest(session_id="s", observation=_hand_page())])
    _assert_executable(resp, _hand_page())


async def test_a_batch_stops_decoding_at_its_deadline(tiny: str) -> None:
    """A batch past its time is answered by nobody: generate stops itself (max_time) rather than
    hold the model while the next batches wait and time out in turn."""
    import time

    policy = TransformersPolicy(tiny, constrained=False, seed=0, num_threads=1, token_budget=700, max_new_tokens=4000,
                                step_seconds=0.05)
    policy.load()
    t0 = time.perf_counter()
    [resp] = await policy.act([PolicyRequest(session_id="late", observation=_hand_page())])
    elapsed = time.perf_counter() - t0
    assert resp.extra["max_time_s"] == 1.0  # 2.5 x 0.05 s, floored at 1 s
    assert resp.completion_tokens < 4000 and elapsed < 30, (resp.completion_tokens, elapsed)
    # Without a step time there is no deadline.
    free = TransformersPolicy(tiny, constrained=False, seed=0, num_threads=1, token_budget=700, max_new_tokens=8)
    [resp] = await free.act([PolicyRequest(session_id="free", observation=_hand_page())])
    assert "max_time_s" not in resp.extra
