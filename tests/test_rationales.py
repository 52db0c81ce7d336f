"""Rationale synthesis on a REAL simulate trace, with the OpenAI teacher talking to a small fake
OpenAI-compatible server on 127.0.0.1 (a paid API is the one thing these tests may fake)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from shop_r1.simulator.records.trace import TraceWriter, read_trace
from shop_r1.training.rationales import (
    RATIONALE_PROMPT,
    OpenAITeacher,
    RationaleCache,
    TeacherError,
    TemplateTeacher,
    clean_rationale,
    rate_limiter,
    synthesize,
)


@pytest.fixture(scope="module")
def bare_trace(shop_url, tmp_path_factory) -> Path:
    """A real scripted-shopper trace with every rationale removed (what real logs look like)."""
    from shop_r1.personas.sampler import sample
    from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
    from shop_r1.simulator.loop.runner import RunConfig, run_simulation

    base = tmp_path_factory.mktemp("rat")
    cfg = RunConfig(shop_url=shop_url, shoppers=2, concurrency=2, max_steps=4, seed=0, out_dir=base / "run")
    asyncio.run(run_simulation(cfg, ScriptedPolicy(seed=0), sample(2, seed=2)))
    trace = read_trace(base / "run")
    out = base / "bare"
    with TraceWriter(out, run_id=trace.run_ids[0]) as w:
        for s in trace.steps:
            w.write_step({**s.to_json(), "rationale": ""})
    assert sum(s.action is not None for s in read_trace(out).steps) >= 4
    return out


def _needed(trace: Path) -> int:
    return sum(s.action is not None for s in read_trace(trace).steps)


# Matches the prompt's line naming the step's OWN action; earlier searches also appear in the
# history part of later prompts, so matching the bare action JSON would refuse those steps too.
ACTION_IS_SEARCH = 'took on the current page: {"type": "type_and_submit"'


class FakeOpenAI:
    """POST /v1/chat/completions: answers one sentence; counts calls; can fail on cue."""

    def __init__(self, delay: float = 0.0, fail_when: str | None = None, fail_status: int = 400,
                 flaky_first: bool = False) -> None:
        self.delay = delay
        self.fail_when = fail_when
        self.fail_status = fail_status
        self.flaky_first = flaky_first
        self.calls = 0
        self.answered = 0
        self.times: list[float] = []
        self.bodies: list[dict] = []
        self._seen: set[str] = set()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        self.times.append(time.monotonic())
        self.bodies.append(body)
        content = body["messages"][-1]["content"]
        if self.flaky_first and content not in self._seen:
            self._seen.add(content)
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        if self.fail_when and self.fail_when in content:
            return web.json_response({"error": {"message": "this prompt is refused"}}, status=self.fail_status)
        if self.delay:
            await asyncio.sleep(self.delay)
        action = content.split("The action they took on the current page: ")[1].splitlines()[0]
        kind = json.loads(action)["type"]
        self.answered += 1
        return web.json_response({
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f'"I choose to {kind} here because it fits my goal."'}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18},
        })

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


def _teacher(server: FakeOpenAI, **kw) -> OpenAITeacher:
    return OpenAITeacher(server.url, "teacher-model", api_key="test", **kw)


async def test_openai_teacher_writes_rationales_and_caches_them(bare_trace, tmp_path):
    n = _needed(bare_trace)
    async with FakeOpenAI() as server:
        rep = await synthesize(bare_trace, tmp_path / "out", _teacher(server), cache=tmp_path / "cache")
        assert rep.ok and rep.needed == n and rep.calls == n == server.calls and rep.written == n
        out = read_trace(tmp_path / "out")
        for step in out.steps:
            if step.action is None:
                assert step.rationale == ""
            else:
                assert step.rationale == f"I choose to {step.action.type} here because it fits my goal."
                assert step.extra["rationale_source"] == "openai:teacher-model"
        # the teacher saw the one prompt template, the page and the recorded action
        first = server.bodies[0]["messages"][0]["content"]
        assert RATIONALE_PROMPT.splitlines()[0] in first and "## Current page" in first
        assert first.count("The action they took on the current page: {") == 1

        # second run, new output folder: everything from the cache, zero calls
        rep2 = await synthesize(bare_trace, tmp_path / "out2", _teacher(server), cache=tmp_path / "cache")
        assert rep2.calls == 0 and rep2.cached == n and server.calls == n
        assert [s.rationale for s in read_trace(tmp_path / "out2").steps] == [s.rationale for s in out.steps]
    # existing rationales are kept unless overwrite
    rep3 = await synthesize(tmp_path / "out", None, TemplateTeacher())
    assert rep3.needed == 0 and rep3.kept == n


async def test_a_killed_run_resumes_where_it_stopped(bare_trace, tmp_path):
    n = _needed(bare_trace)
    cache = tmp_path / "cache"
    async with FakeOpenAI(delay=0.15) as server:
        task = asyncio.create_task(synthesize(bare_trace, tmp_path / "out", _teacher(server, concurrency=1),
                                              concurrency=1, cache=cache))
        while server.answered < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not (tmp_path / "out").exists()  # no half-written output
        done = len(RationaleCache(cache))
        assert 1 <= done < n
        before = server.calls
        rep = await synthesize(bare_trace, tmp_path / "out", _teacher(server), cache=cache)
        assert rep.ok and rep.cached == done and rep.calls == n - done == server.calls - before
        assert all(s.rationale for s in read_trace(tmp_path / "out").steps if s.action is not None)


async def test_rate_limit_bounds_the_request_rate(bare_trace, tmp_path):
    n = _needed(bare_trace)
    rate = 8.0
    async with FakeOpenAI() as server:
        t0 = time.monotonic()
        rep = await synthesize(bare_trace, None, _teacher(server, concurrency=8), rate=rate, concurrency=8,
                               cache=tmp_path / "cache")
        elapsed = time.monotonic() - t0
    assert rep.calls == n
    assert elapsed >= (n - 1) / rate - 0.05  # one burst token, then one per 1/rate s
    assert elapsed < (n - 1) / rate + 10  # and bounded
    # the k-th request (0-based) cannot reach the server before k/rate seconds have passed
    for k, at in enumerate(sorted(server.times)):
        assert at - t0 >= k / rate - 0.03, (k, at - t0)


async def test_rate_limiter_allows_a_burst_then_the_rate():
    bucket = rate_limiter(rate=20, burst=3)
    t0 = time.monotonic()
    for _ in range(3):
        await bucket.acquire()
    assert time.monotonic() - t0 < 0.05
    for _ in range(4):
        await bucket.acquire()
    assert time.monotonic() - t0 >= 4 / 20 - 0.02
    with pytest.raises(ValueError, match="rate"):
        rate_limiter(rate=0)


async def test_failures_are_reported_and_retried_only_on_rerun(bare_trace, tmp_path):
    trace = read_trace(bare_trace)
    n = _needed(bare_trace)
    refused = [s for s in trace.steps if s.action is not None and s.action.type == "type_and_submit"]
    assert refused, "the scripted shopper always searches"
    async with FakeOpenAI(fail_when=ACTION_IS_SEARCH, flaky_first=True) as server:
        rep = await synthesize(bare_trace, tmp_path / "out", _teacher(server), cache=tmp_path / "cache")
        # 503s were retried (each prompt failed once first); the 400s are failures, reported by step
        assert len(rep.failures) == len(refused)
        assert {(f.session_id, f.step) for f in rep.failures} == {(s.session_id, s.step) for s in refused}
        assert all(f.code == "http_400" and "refused" in f.message for f in rep.failures)
        assert str(rep.failures[0]).startswith(f"session {rep.failures[0].session_id} step {rep.failures[0].step}: http_400")
        out = read_trace(tmp_path / "out")
        assert sum(bool(s.rationale) for s in out.steps) == n - len(refused)
        # a rerun (the endpoint fixed) asks only for the failed ones
        server.fail_when = None
        before = server.calls
        rep2 = await synthesize(bare_trace, tmp_path / "out2", _teacher(server), cache=tmp_path / "cache")
        assert rep2.ok and rep2.calls == len(refused) and rep2.cached == n - len(refused)
        assert server.calls - before == len(refused)


def test_cli_reports_failures_with_exit_status(bare_trace, tmp_path):
    from shop_r1.simulator.cli.main import main

    async def serve_and_run() -> tuple[int, str]:
        async with FakeOpenAI(fail_when=ACTION_IS_SEARCH) as server:
            args = ["data", "rationales", str(bare_trace), "--out", str(tmp_path / "out"), "--teacher", "openai",
                    "--base-url", server.url, "--model", "m", "--cache", str(tmp_path / "c"), "--max-retries", "0",
                    "--json"]
            result = await asyncio.to_thread(CliRunner().invoke, main, args)
            return result.exit_code, result.output

    code, output = asyncio.run(serve_and_run())
    assert code == 1
    report = json.loads(output[: output.rindex("}") + 1])
    assert report["failed"] >= 1 and "http_400" in report["failures"][0]
    assert "rerun the same command" in output


def test_template_teacher_via_cli(bare_trace, tmp_path):
    from shop_r1.simulator.cli.main import main

    result = CliRunner().invoke(main, ["data", "rationales", str(bare_trace), "--out", str(tmp_path / "t"),
                                       "--teacher", "template"])
    assert result.exit_code == 0, result.output
    steps = [s for s in read_trace(tmp_path / "t").steps if s.action is not None]
    first_person = {"i", "i'm", "i'll", "i've", "my", "me"}
    assert steps and all(s.rationale for s in steps)
    assert all(first_person & set(s.rationale.lower().replace(",", " ").replace(".", " ").replace(";", " ").split())
               for s in steps if s.action.type != "click" or "cart" not in s.rationale), \
        [s.rationale for s in steps]
    again = CliRunner().invoke(main, ["data", "rationales", str(bare_trace), "--out", str(tmp_path / "t2"),
                                      "--teacher", "template"])
    assert again.exit_code == 0
    assert [s.rationale for s in read_trace(tmp_path / "t2").steps] == [s.rationale for s in read_trace(tmp_path / "t").steps]
    exists = CliRunner().invoke(main, ["data", "rationales", str(bare_trace), "--out", str(tmp_path / "t"),
                                       "--teacher", "template"])
    assert exists.exit_code != 0 and "exists already" in exists.output


def test_clean_rationale_accepts_what_teachers_send():
    assert clean_rationale('"I want the cheaper one."') == "I want the cheaper one."
    assert clean_rationale("```\nRationale: I'll search first.\n```") == "I'll search first."
    assert clean_rationale('{"rationale": "I like it."}') == "I like it."
    assert clean_rationale("I like it. It is cheap. And red.") == "I like it. It is cheap."
    assert len(clean_rationale("I " + "really " * 200 + "want it.")) <= 400
    with pytest.raises(TeacherError) as err:
        clean_rationale("   ")
    assert err.value.code == "empty"


def test_clean_rationale_keeps_a_quoted_name_at_the_start():
    """The template teacher writes "'<product>' looks like a good match ..."; stripping quote
    characters from both ends left "<product>' looks like ..." with one stray quote."""
    said = "'Trail Running Shoes' looks like a good match for running, so I'll take a closer look."
    assert clean_rationale(said) == said
    assert clean_rationale("'I'll search first.'") == "I'll search first."
    assert clean_rationale("“Nice and cheap.”") == "Nice and cheap."
    assert clean_rationale("'Trail Shoes' look right for 'running'") == "'Trail Shoes' look right for 'running'"


@pytest.mark.parametrize("name,text,reads_reviews", [
    ("836_ratings", "836 ratings", True),                                # a product page's review count
    ("brooks_stability_running.1_209_ratings", "1,209 ratings", True),
    ("reviews_link", "See all reviews", True),
    ("acme_boots.2_558_ratings", "", True),                               # the name alone says it
    ("refinements.customer_reviews.4_stars_up", "4 Stars & Up", False),  # a rating filter
    ("refinements.price.under_25", "Under $25", False),
    ("size.xxl", "XXL", False),
])
def test_template_teacher_tells_a_review_link_from_a_rating_filter(name, text, reads_reviews):
    from shop_r1.envs.actions import Click
    from shop_r1.training.rationales.prompt import RationaleJob

    job = RationaleJob(session_id="s", step=3, action=Click(name=name), messages=[], target_text=text,
                       url="http://127.0.0.1/dp/B0X", title="Trail Running Shoes")
    said = TemplateTeacher().sentence(job)
    assert ("review" in said.lower()) is reads_reviews, said
    if name.startswith("size."):  # the product's own option, not a filter
        assert "XXL" in said and "filter" not in said.lower() and "narrow" not in said.lower(), said
    else:
        assert ("filtering by" in said.lower() or "narrow" in said.lower()) is not reads_reviews, said
