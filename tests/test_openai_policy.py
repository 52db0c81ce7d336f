"""OpenAIPolicy / HTTPChatPolicy against a fake OpenAI-compatible server on 127.0.0.1.

The real OpenAI API is paid and unreachable here, so a small aiohttp server in the test stands in
for it. Everything else is real: the openai SDK client with its retries, back-off and
Retry-After handling, the prompt builder and the output parser.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.observation import Element, Observation
from shop_r1.simulator.records.exchange import HistoryItem, PolicyRequest
from shop_r1.simulator.agent.llm.chat import ChatClient
from shop_r1.simulator.agent.llm.sampling import SamplingParams, derive_seed
from shop_r1.simulator.agent.policies.openai_policy import OpenAIPolicy

API_KEY = "sk-test-123"

PAGE = Observation(
    url="http://127.0.0.1:8000/search?q=shirt",
    title="Search: shirt",
    simplified_html=(
        '<html><body><input name="search_input" type="search" value="shirt"/>'
        '<button name="search_button">Search</button>'
        '<a name="refinements.customer_reviews">4 stars &amp; up</a>'
        '<div><a name="columbia_shirt.view_product">Columbia Men\'s Shirt</a> $29.99</div>'
        '<button name="add_to_cart.buy_now" disabled>Buy now</button></body></html>'
    ),
    elements=(
        Element(name="search_input", kind="input", text="shirt", input_type="search"),
        Element(name="search_button", kind="clickable", text="Search", tag="button"),
        Element(name="refinements.customer_reviews", kind="clickable", text="4 stars & up", tag="a"),
        Element(name="columbia_shirt.view_product", kind="clickable", text="Columbia Men's Shirt", tag="a"),
        Element(name="add_to_cart.buy_now", kind="clickable", text="Buy now", tag="button", disabled=True),
    ),
)

GOOD = {"rationale": "The Columbia shirt looks right, I want to see its details.",
        "action": {"type": "click", "name": "columbia_shirt.view_product"}}


def completion(content: str, prompt_tokens: int = 123, completion_tokens: int = 45) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


@dataclass
class FakeOpenAI:
    """Behaviour per model name, so one server serves every scenario."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_flight: int = 0
    peak: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        model = body["model"]
        # One counter per (model, user text): concurrent tests of one scenario stay independent.
        key = f"{model}|{body['messages'][-1]['content'][:40]}"
        self.calls[key] += 1
        n = self.calls[key]
        if model == "canned":
            return web.json_response(completion(json.dumps(GOOD)))
        if model == "flaky429":
            if n == 1:
                return web.json_response({"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"})
            return web.json_response(completion(json.dumps(GOOD)))
        if model == "wait429":
            if n == 1:
                return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "1"})
            return web.json_response(completion(json.dumps(GOOD), prompt_tokens=200, completion_tokens=30))
        if model == "dead500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if model == "bad400":
            return web.json_response({"error": {"message": "unknown parameter"}}, status=400)
        if model == "prose":
            return web.json_response(completion("Sure! I would click on the Columbia shirt to see it."))
        if model == "unknown-name":
            return web.json_response(completion(json.dumps(
                {"rationale": "Go to cart.", "action": {"type": "click", "name": "nav.cart_link"}})))
        if model == "type-into-link":
            return web.json_response(completion(json.dumps(
                {"rationale": "Search.", "action": {"type": "type_and_submit", "name": "search_button", "text": "x"}})))
        if model == "not-a-completion":
            return web.json_response({"hello": "world"})
        if model == "slow-echo":
            # Counts requests in flight at the server: the concurrency limit as the server sees it.
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(0.15)
            finally:
                self.in_flight -= 1
            # Answer with the session marker of the prompt so the test can check response order.
            marker = body["messages"][-1]["content"].split("#", 1)[1]
            action = {"type": "terminate"} if int(marker) % 2 else {"type": "type_and_submit", "name": "search_input", "text": f"shirt {marker}"}
            return web.json_response(completion(json.dumps({"rationale": f"session {marker}", "action": action})))
        return web.json_response({"error": {"message": f"no such model {model}"}}, status=404)


@pytest.fixture
async def fake_openai():
    fake = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()


def request(i: int = 0, text: str = "What do you do next?") -> PolicyRequest:
    messages = [{"role": "system", "content": "You are a shopper. Answer with one JSON object."},
                {"role": "user", "content": f"{PAGE.simplified_html}\n{text}"}]
    return PolicyRequest(session_id=f"s{i}", observation=PAGE, messages=messages, step=i)


def policy(fake: FakeOpenAI, model: str, **kw: Any) -> OpenAIPolicy:
    return OpenAIPolicy(model, base_url=fake.url, api_key=API_KEY, **kw)


async def test_canned_completion_and_request_body(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "canned", json_mode=True, sampling=SamplingParams(temperature=0.3, top_p=0.9, max_tokens=77, seed=5))
    req = request(3)
    try:
        [resp] = await pol.act([req])
    finally:
        await pol.close()
    assert resp.error is None, resp.error
    assert resp.action == Click(name="columbia_shirt.view_product")
    assert resp.rationale == GOOD["rationale"]
    assert json.loads(resp.raw_text) == GOOD
    assert (resp.prompt_tokens, resp.completion_tokens) == (123, 45)
    assert resp.latency_s > 0
    [body] = fake_openai.bodies
    assert body["model"] == "canned"
    assert body["messages"] == req.messages
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 77)
    assert body["seed"] == derive_seed(5, "s3", 3)
    assert fake_openai.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert "api_key" not in json.dumps(pol.describe()) and API_KEY not in json.dumps(pol.describe())


async def test_no_response_format_unless_json_mode(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "canned", max_tokens_field="max_completion_tokens")
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.action is not None
    [body] = fake_openai.bodies
    assert "response_format" not in body
    assert "max_tokens" not in body and body["max_completion_tokens"] == SamplingParams().max_tokens


async def test_retries_after_429(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "flaky429", max_retries=2)
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.error is None, resp.error
    assert resp.action == Click(name="columbia_shirt.view_product")
    assert resp.extra["attempts"] == 2
    assert len(fake_openai.bodies) == 2
    assert pol.client.stats.retries == 1


async def test_429_waits_retry_after_then_succeeds(fake_openai: FakeOpenAI) -> None:
    """The SDK's own first back-off is at most 0.5 s; a 1 s wait shows Retry-After was honoured."""
    pol = policy(fake_openai, "wait429", max_retries=2)
    t0 = time.perf_counter()
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    elapsed = time.perf_counter() - t0
    assert resp.error is None, resp.error
    assert resp.action == Click(name="columbia_shirt.view_product")
    assert len(fake_openai.bodies) == 2 and resp.extra["attempts"] == 2
    assert 1.0 <= elapsed < 5.0
    assert resp.latency_s >= 1.0  # latency counts the wait
    stats = pol.client.stats
    assert (stats.requests, stats.attempts, stats.retries, stats.failures) == (1, 2, 1, 0)
    # usage of the successful attempt reaches the response and the counters
    assert (resp.prompt_tokens, resp.completion_tokens) == (200, 30)
    assert (stats.prompt_tokens, stats.completion_tokens) == (200, 30)


async def test_500_forever_gives_error_not_exception(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "dead500", max_retries=3)
    t0 = time.perf_counter()
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.action is None
    assert resp.error is not None and resp.error.code == "generation_failed"
    assert resp.error.detail["reason"] == "http_500"
    assert "boom" in resp.error.message and "4 attempts" in resp.error.message
    assert resp.error.detail["attempts"] == 4 and resp.extra["attempts"] == 4
    assert len(fake_openai.bodies) == 4  # 1 try + 3 retries, then it stops
    assert time.perf_counter() - t0 < 5  # bounded back-off
    assert pol.client.stats.failures == 1


async def test_400_is_not_retried(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "bad400", max_retries=3)
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.action is None and resp.error is not None
    assert resp.error.detail["reason"] == "http_400" and "unknown parameter" in resp.error.message
    assert len(fake_openai.bodies) == 1


@pytest.mark.parametrize(
    ("model", "code"),
    [("prose", "no_json"), ("unknown-name", "unknown_name"), ("type-into-link", "wrong_kind")],
)
async def test_bad_model_output_is_recorded(fake_openai: FakeOpenAI, model: str, code: str) -> None:
    pol = policy(fake_openai, model)
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.action is None
    assert resp.error is not None and resp.error.code == code, resp.error
    assert resp.error.message
    assert resp.raw_text  # the model's text is kept for the trace
    assert resp.completion_tokens == 45


async def test_response_that_is_not_a_completion(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "not-a-completion")
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.action is None and resp.error is not None and resp.error.detail["reason"] == "bad_response"


async def test_wrong_key_is_an_error(fake_openai: FakeOpenAI) -> None:
    pol = OpenAIPolicy("canned", base_url=fake_openai.url, api_key="sk-wrong", max_retries=3)
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.error is not None and resp.error.detail["reason"] == "http_401"
    assert len(fake_openai.bodies) == 1


async def test_concurrency_limit_and_order(fake_openai: FakeOpenAI) -> None:
    pol = policy(fake_openai, "slow-echo", max_concurrency=3)
    reqs = [request(i, text=f"session #{i}") for i in range(10)]
    t0 = time.perf_counter()
    try:
        resps = await pol.act(reqs)
    finally:
        await pol.close()
    elapsed = time.perf_counter() - t0
    assert fake_openai.peak == 3  # never more than the limit, and the limit is used
    assert pol.client.stats.peak_in_flight == 3
    assert elapsed >= 4 * 0.15 * 0.9  # ceil(10/3) waves of 0.15 s
    assert [r.rationale for r in resps] == [f"session {i}" for i in range(10)]
    for i, r in enumerate(resps):
        assert r.error is None, r.error
        expected = Terminate() if i % 2 else TypeAndSubmit(name="search_input", text=f"shirt {i}")
        assert r.action == expected


async def test_connection_refused_is_an_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pol = OpenAIPolicy("m", base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=1)
    try:
        [resp] = await pol.act([request()])
    finally:
        await pol.close()
    assert resp.action is None and resp.error is not None and resp.error.detail["reason"] == "connection"
    assert resp.extra["attempts"] == 2


async def test_messages_built_by_prompt_module(fake_openai: FakeOpenAI) -> None:
    from shop_r1.simulator.agent.prompt import build_messages

    history = [HistoryItem(url="http://127.0.0.1:8000/", simplified_html='<input name="search_input"/>',
                           action={"type": "type_and_submit", "name": "search_input", "text": "shirt"},
                           rationale="I need a shirt.")]
    req = PolicyRequest(session_id="s0", observation=PAGE, history=history, step=1)
    pol = policy(fake_openai, "canned")
    try:
        [resp] = await pol.act([req])
    finally:
        await pol.close()
    assert resp.action is not None
    [body] = fake_openai.bodies
    assert body["messages"] == build_messages(PAGE, history, None, token_budget=pol.token_budget)
    assert body["messages"][0]["role"] == "system"
    assert "columbia_shirt.view_product" in json.dumps(body["messages"])


def test_env_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    pol = OpenAIPolicy("gpt-x")
    assert pol.base_url == "http://127.0.0.1:9/v1"
    assert pol.client.endpoint.api_key == "sk-env"
    pol = OpenAIPolicy("gpt-x", base_url="http://127.0.0.1:10/v1", api_key="sk-arg")
    assert pol.base_url == "http://127.0.0.1:10/v1"
    assert pol.client.endpoint.api_key == "sk-arg"
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIPolicy("gpt-x")


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatClient("127.0.0.1:8000/v1", "m")
    with pytest.raises(ValueError, match="max_concurrency"):
        ChatClient("http://127.0.0.1:8000/v1", "m", max_concurrency=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)


def test_derived_seeds_differ_per_session_and_repeat() -> None:
    assert derive_seed(None, "s0", 0) is None
    assert derive_seed(1, "s0", 0) == derive_seed(1, "s0", 0)
    assert len({derive_seed(1, f"s{i}", 0) for i in range(50)}) == 50
    assert derive_seed(1, "s0", 0) != derive_seed(1, "s0", 1) != derive_seed(2, "s0", 1)
