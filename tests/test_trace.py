"""The trace format: write through the public API, read back, and survive crashes and corruption."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from shop_r1.envs.actions import Click, ParseError, Terminate, TypeAndSubmit
from shop_r1.envs.observation import ActionError, Element, Observation, StepResult
from shop_r1.simulator.records.exchange import PolicyResponse
from shop_r1.simulator.records.trace import (
    SCHEMA_VERSION,
    TraceFormatError,
    TraceStep,
    TraceWriter,
    iter_sessions,
    load_run_info,
    observation_from_step,
    read_trace,
    step_from_row,
    step_record,
    to_hf_dataset,
    to_parquet,
)

ELEMENTS = [
    {"name": "search_input", "kind": "input", "text": ""},
    {"name": "search_button", "kind": "clickable", "text": "Search"},
    {"name": "red_mug.view_product", "kind": "clickable", "text": "Red mug"},
]


def _step(session: str, step: int, **kw) -> dict:
    rec = {
        "session_id": session,
        "step": step,
        "persona_id": "p1",
        "url": f"http://127.0.0.1:8000/{session}/{step}",
        "title": f"page {step}",
        "simplified_html": f"<html><body>step {step}</body></html>",
        "action": {"type": "click", "name": "red_mug.view_product"},
        "rationale": "I want to see the mug.",
        "raw_output": '{"rationale": "...", "action": {"type": "click"}}',
        "timings": {"policy_s": 0.5, "action_ms": 120.0, "observe_ms": 80.0},
        "tokens": {"prompt": 1000, "completion": 40},
        "elements": ELEMENTS,
        "blocked_requests": 2,
    }
    rec.update(kw)
    return rec


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_sessions_round_trip_in_step_order(tmp_path: Path) -> None:
    personas = [{"id": "p1", "age_band": "25-34", "income": "$50k"}]
    with TraceWriter(tmp_path, "run-1", {"policy": "scripted", "max_steps": 5}, seed=7, personas=personas) as w:
        # Interleaved and out of order, as concurrent sessions write them.
        w.write_step(_step("b", 0, action=TypeAndSubmit(name="search_input", text="red mug")))
        w.write_step(_step("a", 1, action=Terminate(), done=True, outcome="abandoned", end_reason="policy terminated"))
        w.write_step(_step("a", 0))
        w.write_event("b", "scroll", step=1, url="http://127.0.0.1:8000/b/0", data={"dy": 400})
        w.write_step(_step("b", 1, action=None, parse_error={"code": "bad_json", "message": "no JSON object"},
                           done=True, outcome="policy_error"))
        mid = load_run_info(tmp_path)
        assert mid.ended_at is None and mid.run_id == "run-1"  # written at start: a crash leaves one

    result = read_trace(tmp_path)
    assert result.problems == []
    assert list(result.sessions) == ["b", "a"]
    assert [s.step for s in result.sessions["a"]] == [0, 1]
    assert [s.step for s in result.sessions["b"]] == [0, 1]
    first = result.sessions["b"][0]
    assert first.action.to_json() == {"type": "type_and_submit", "name": "search_input", "text": "red mug"}
    assert first.action == TypeAndSubmit(name="search_input", text="red mug")
    assert first.schema_version == SCHEMA_VERSION and first.run_id == "run-1"
    assert first.element("search_input").kind == "input"
    assert first.timings["policy_s"] == 0.5 and first.tokens.prompt == 1000
    last = result.sessions["b"][1]
    assert last.action is None and last.parse_error.code == "bad_json" and last.outcome == "policy_error"
    assert [e.event for e in result.events_for("b")] == ["scroll"]
    assert result.events[0].data == {"dy": 400}
    assert [sid for sid, _ in iter_sessions(tmp_path / "trace.jsonl")] == ["b", "a"]

    info = load_run_info(tmp_path)
    assert info.config == {"policy": "scripted", "max_steps": 5} and info.seed == 7
    assert info.personas == personas and info.persona("p1") == personas[0]
    assert {"python", "shop-r1", "playwright"} <= set(info.versions)
    assert info.ended_at is not None and info.ended_at >= info.started_at
    assert info.summary == {"sessions": 2, "steps": 4, "events": 1,
                            "outcomes": {"abandoned": 1, "policy_error": 1}}
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files


def test_each_line_is_one_self_describing_record(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r") as w:
        w.write_step(_step("s", 0, exec_error=ActionError("unknown_name", "no element 'x'", "x", ("red_mug.view_product",)).to_json()))
    (line,) = _lines(tmp_path / "trace.jsonl")
    data = json.loads(line)
    for key in ("schema_version", "run_id", "session_id", "step", "persona_id", "url", "title",
                "simplified_html", "action", "rationale", "raw_output", "parse_error", "exec_error",
                "timings", "tokens", "elements", "blocked_requests", "ts", "done", "outcome", "end_reason"):
        assert key in data, key
    assert data["exec_error"] == {"code": "unknown_name", "message": "no element 'x'", "name": "x",
                                  "suggestions": ["red_mug.view_product"]}


def test_truncated_last_line_is_reported_and_skipped(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r") as w:
        for i in range(3):
            w.write_step(_step("s", i))
    path = tmp_path / "trace.jsonl"
    full = _lines(path)[-1]
    with path.open("a", encoding="utf-8") as fh:  # what a crash mid-write leaves
        fh.write(full[: len(full) // 2])
    result = read_trace(path)  # strict: still not fatal
    assert [s.step for s in result.steps] == [0, 1, 2]
    (problem,) = result.problems
    assert problem.line == 4 and problem.file == str(path)
    assert str(problem).startswith(f"{path}:4: truncated last line")


def test_bad_middle_line_names_file_and_line(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r") as w:
        w.write_step(_step("s", 0))
    path = tmp_path / "trace.jsonl"
    good = _lines(path)[0]
    bad_json = good[:40]
    bad_field = json.dumps({**json.loads(good), "step": "1"})
    bad_action = json.dumps({**json.loads(good), "step": 2, "action": {"type": "fly"}})
    path.write_text("\n".join([good, bad_json, bad_field, bad_action, good.replace('"step":0', '"step":3')]) + "\n")

    with pytest.raises(TraceFormatError) as exc:
        read_trace(tmp_path)
    assert str(exc.value).startswith(f"{path}:2: not valid JSON")
    assert exc.value.line == 2

    lenient = read_trace(tmp_path, strict=False)
    assert [s.step for s in lenient.steps] == [0, 3]
    assert [p.line for p in lenient.problems] == [2, 3, 4]
    assert "step: Input should be a valid integer" in lenient.problems[1].message
    assert "action" in lenient.problems[2].message and "'fly'" in lenient.problems[2].message


def test_unknown_major_version_is_an_error_naming_file_line(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r") as w:
        w.write_step(_step("s", 0))
    path = tmp_path / "trace.jsonl"
    good = json.loads(_lines(path)[0])
    newer_minor = {**good, "step": 1, "schema_version": "shop-r1.trace/2.4", "cursor": {"x": 3}}
    newer_major = {**good, "step": 2, "schema_version": "shop-r1.trace/3"}
    path.write_text("\n".join(json.dumps(d) for d in (good, newer_minor, newer_major)) + "\n")
    for strict in (True, False):
        with pytest.raises(TraceFormatError, match=rf"^{path}:3: .*major version 3"):
            read_trace(path, strict=strict)

    path.write_text("\n".join(json.dumps(d) for d in (good, newer_minor)) + "\n")
    result = read_trace(path)
    assert result.steps[1].extra == {"cursor": {"x": 3}}  # unknown keys of a newer minor are kept
    assert result.steps[1].to_json()["cursor"] == {"x": 3}

    run = tmp_path / "run.json"
    run.write_text(json.dumps({**json.loads(run.read_text()), "schema_version": "shop-r1.run/9"}))
    with pytest.raises(TraceFormatError, match=rf"^{run}: .*major version 9"):
        load_run_info(tmp_path)


def test_zero_step_run(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "run", "empty", {"sessions": 0}):
        pass
    assert (tmp_path / "run" / "trace.jsonl").read_bytes() == b""
    result = read_trace(tmp_path / "run")
    assert result.steps == [] and result.sessions == {} and result.problems == []
    info = load_run_info(tmp_path / "run")
    assert info.summary["steps"] == 0 and info.ended_at is not None
    empty = to_hf_dataset(result)
    assert len(empty) == 0 and "simplified_html" in empty.column_names


def test_one_megabyte_page_round_trips(tmp_path: Path) -> None:
    body = "".join(f'<div name="item_{i}">Ünïcode “quotes” \\ "escaped" {i}</div>\n' for i in range(20_000))
    html = f"<html><body>{body}</body></html>"
    assert len(html.encode()) > 1_000_000
    with TraceWriter(tmp_path, "big") as w:
        w.write_step(_step("s", 0, simplified_html=html))
        w.write_step(_step("s", 1, done=True, outcome="max_steps"))
    result = read_trace(tmp_path)
    assert result.sessions["s"][0].simplified_html == html
    assert len(_lines(tmp_path / "trace.jsonl")) == 2


async def test_concurrent_async_writers_keep_lines_intact(tmp_path: Path) -> None:
    big = "x" * 300_000  # larger than any pipe/page buffer: interleaving would show
    sessions, steps = 40, 6

    with TraceWriter(tmp_path, "conc", fsync=False) as writer:
        async def shopper(i: int) -> None:
            for k in range(steps):
                await asyncio.sleep(0)
                html = big if (i + k) % 5 == 0 else f"<p>{i}-{k}</p>"
                record = _step(f"s{i}", k, simplified_html=html)
                if k % 2:  # some from worker threads, as a runner offloading big pages would
                    await asyncio.to_thread(writer.write_step, record)
                else:
                    writer.write_step(record)
                if k % 3 == 0:
                    writer.write_event(f"s{i}", "navigate", step=k, url=f"http://127.0.0.1/{i}")

        await asyncio.gather(*(shopper(i) for i in range(sessions)))

    lines = _lines(tmp_path / "trace.jsonl")
    assert len(lines) == sessions * steps + sessions * 2
    for line in lines:
        json.loads(line)  # every line is one whole record
    result = read_trace(tmp_path)
    assert result.problems == []
    assert len(result.sessions) == sessions
    for i in range(sessions):
        got = result.sessions[f"s{i}"]
        assert [s.step for s in got] == list(range(steps))
        assert [len(s.simplified_html) for s in got] == [
            len(big) if (i + k) % 5 == 0 else len(f"<p>{i}-{k}</p>") for k in range(steps)
        ]
    assert writer.counts["steps"] == sessions * steps


def test_threads_share_one_writer(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "threads") as w:
        def worker(i: int) -> None:
            for k in range(25):
                w.write_step(_step(f"t{i}", k, simplified_html="y" * (70_000 + i)))
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    result = read_trace(tmp_path)
    assert len(result.steps) == 200 and result.problems == []
    assert all(len(s.simplified_html) == 70_000 + int(s.session_id[1:]) for s in result.steps)


def test_parquet_export_round_trips_via_datasets(tmp_path: Path) -> None:
    import datasets

    with TraceWriter(tmp_path / "run", "pq") as w:
        w.write_step(_step("a", 0, action=TypeAndSubmit(name="search_input", text="red mug")))
        w.write_step(_step("a", 1, action=None, parse_error={"code": "no_json", "message": "plain text"},
                           exec_error=None, future_field=[1, 2]))
        w.write_step(_step("a", 2, action=Click(name="x"),
                           exec_error={"code": "unknown_name", "message": "no x", "name": "x", "suggestions": ["y"]}))
        w.write_step(_step("b", 0, action=Terminate(), elements=[], timings={}, done=True,
                           outcome="abandoned", end_reason="not worth it"))
    trace = read_trace(tmp_path / "run")
    out = to_parquet(trace, tmp_path / "export" / "steps.parquet")
    ds = datasets.Dataset.from_parquet(str(out))
    assert len(ds) == 4
    assert ds[0]["action"] == {"type": "type_and_submit", "name": "search_input", "text": "red mug"}
    assert ds[0]["elements"][0] == {"name": "search_input", "kind": "input", "text": "", "tag": "", "input_type": "",
                                    "options": [], "disabled": False, "in_viewport": True, "covered": False}
    assert ds.features["simplified_html"].dtype in ("large_string", "string")
    back = [step_from_row(row) for row in ds]
    assert back == trace.steps
    assert back[1].extra == {"future_field": [1, 2]}


def test_write_step_rejects_bad_records_and_writes_nothing(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r") as w:
        with pytest.raises(ValueError, match="outcome"):
            w.write_step(_step("s", 0, done=True))
        with pytest.raises(ValueError, match="outcome"):
            w.write_step(_step("s", 0, done=True, outcome="bought_it"))
        with pytest.raises(ValueError, match="'jump'"):
            w.write_step(_step("s", 0, action={"type": "jump"}))
        with pytest.raises(ValueError, match="elements.0.kind"):
            w.write_step(_step("s", 0, elements=[{"name": "a", "kind": "link", "text": ""}]))
        with pytest.raises(ValueError, match="differs"):
            w.write_step(_step("s", 0, run_id="other"))
    assert (tmp_path / "trace.jsonl").read_bytes() == b""


def test_writer_refuses_to_mix_runs_but_can_append(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r1") as w:
        w.write_step(_step("s", 0))
    with pytest.raises(FileExistsError, match="already holds a trace"):
        TraceWriter(tmp_path, "r2")
    with pytest.raises(ValueError, match="mix two runs"):
        TraceWriter(tmp_path, "r2", append=True)
    with TraceWriter(tmp_path, "r1", append=True) as w:
        w.write_step(_step("s", 1, done=True, outcome="max_steps"))
    assert [s.step for s in read_trace(tmp_path).steps] == [0, 1]


def test_crash_inside_the_context_records_status(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with TraceWriter(tmp_path, "r") as w:
            w.write_step(_step("s", 0))
            raise RuntimeError("browser died")
    info = load_run_info(tmp_path)
    assert info.summary["status"] == "error" and "browser died" in info.summary["error"]
    assert info.summary["steps"] == 1


def test_step_record_from_live_objects(tmp_path: Path) -> None:
    obs = Observation(
        url="http://127.0.0.1:9/search?q=mug", title="Results", simplified_html="<main/>",
        elements=(Element("search_input", "input", "", selector="[data-sr1-name=search_input]"),
                  Element("red_mug.view_product", "clickable", "Red mug")),
        timings={"observe_ms": 42}, blocked_requests=3,
    )
    resp = PolicyResponse(action=Click(name="red_mug.view_product"), rationale="Looks right.",
                          raw_text='{"rationale":"Looks right."}', prompt_tokens=900,
                          completion_tokens=30, latency_s=1.25)
    err = ActionError("not_visible", "hidden behind a banner", "red_mug.view_product", ("a", "b"))
    bad = PolicyResponse(action=None, raw_text="I think I'd click",
                         error=ParseError(code="no_json", message="no JSON object found"))
    with TraceWriter(tmp_path, "live") as w:
        step = w.write_step(step_record(run_id="live", session_id="s", step=0, observation=obs, response=resp,
                                        result=StepResult(observation=None, error=err), persona_id="p9",
                                        timings={"action_ms": 300}))
        w.write_step(step_record(run_id="live", session_id="s", step=1, observation=obs, response=bad,
                                 outcome="policy_error", end_reason="3 unparsable answers"))
    assert step.elements[0].model_dump() == {"name": "search_input", "kind": "input", "text": "", "tag": "",
                                             "input_type": "", "options": [], "disabled": False, "in_viewport": True,
                                             "covered": False}
    assert step.timings == {"observe_ms": 42.0, "policy_s": 1.25, "action_ms": 300.0}
    assert step.tokens.prompt == 900 and step.blocked_requests == 3
    assert step.exec_error.suggestions == ["a", "b"]
    second = read_trace(tmp_path).sessions["s"][1]
    assert second.parse_error.code == "no_json" and second.parse_error.message == "no JSON object found"
    assert second.raw_output == "I think I'd click" and second.done


def test_trace_step_model_is_strict(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tokens.prompt"):
        TraceStep.model_validate({"run_id": "r", "session_id": "s", "step": 0, "url": "u",
                                  "tokens": {"prompt": "12", "completion": 0}})
    with pytest.raises(ValueError, match="ISO 8601"):
        TraceStep.model_validate({"run_id": "r", "session_id": "s", "step": 0, "url": "u", "ts": "yesterday"})
    with pytest.raises(FileNotFoundError, match="no trace at"):
        read_trace(tmp_path / "nowhere")


def test_session_end_event_closes_a_session_without_a_final_step(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "r") as w:
        w.write_step(_step("s", 0))
        # The shape the runner writes when a session stops between decisions.
        w.write_event({"session_id": "s", "step": 1, "persona_id": "p1", "event": "session_end",
                       "url": None, "done": True, "outcome": "interrupted", "end_reason": "the run was stopped"})
        w.write_event("t", "session_end", step=0, outcome="browser_error", end_reason="TargetClosedError")
        w.write_step(_step("u", 0))
        with pytest.raises(ValueError, match="outcome"):
            w.write_event({"session_id": "s", "event": "session_end", "done": True})
    result = read_trace(tmp_path)
    assert result.session_ids == ["s", "u", "t"]
    assert result.outcome("s") == "interrupted" and result.session_end("s").end_reason == "the run was stopped"
    assert result.outcome("t") == "browser_error" and "t" not in result.sessions
    assert result.outcome("u") == "unfinished" and result.session_end("u") is None
    assert load_run_info(tmp_path).summary["outcomes"] == {"interrupted": 1, "browser_error": 1}


# ---------------------------------------------------------------------------------------------
# Schema 2: the whole element table; schema 1 still reads
# ---------------------------------------------------------------------------------------------

FULL_TABLE = [
    Element("search_input", "input", "Search", selector="[data-sr1-name=search_input]", tag="input",
            input_type="search"),
    Element("sort", "select", "Sort by", selector="[data-sr1-name=sort]", tag="select", options=("Price", "New")),
    Element("sort.price", "clickable", "Price", tag="option"),
    Element("buy", "clickable", "Buy now", selector="[data-sr1-name=buy]", tag="button", disabled=True,
            in_viewport=False),
]


def test_schema2_step_round_trips_its_full_element_table(tmp_path: Path) -> None:
    obs = Observation(url="http://127.0.0.1:9/p/1", title="Mug", simplified_html="<main/>",
                      elements=tuple(FULL_TABLE))
    resp = PolicyResponse(action=Click(name="sort.price"), rationale="Cheapest first.", raw_text="{}")
    with TraceWriter(tmp_path, "full") as w:
        written = w.write_step(step_record(run_id="full", session_id="s", step=0, observation=obs, response=resp))
    line = json.loads(_lines(tmp_path / "trace.jsonl")[0])
    assert line["schema_version"] == "shop-r1.trace/2"
    assert line["elements"][1] == {"name": "sort", "kind": "select", "text": "Sort by", "tag": "select",
                                   "input_type": "", "options": ["Price", "New"], "disabled": False,
                                   "in_viewport": True, "covered": False}
    (step,) = read_trace(tmp_path).steps
    assert step == written
    back = observation_from_step(step)
    # Everything but the live selector comes back, with no HTML to parse (the page is "<main/>").
    assert back.elements == tuple(replace(el, selector="") for el in FULL_TABLE)
    ds = to_hf_dataset([step])
    assert step_from_row(ds[0]) == step


def test_schema1_line_still_reads_with_its_table_rebuilt(tmp_path: Path) -> None:
    html = ('<main><input name="q" type="search" placeholder="Search"><select name="sort"><option>Price</option>'
            '<option>New</option></select><button name="buy" disabled>Buy now</button></main>')
    v1 = {"kind": "step", "schema_version": "shop-r1.trace/1", "run_id": "old", "session_id": "s", "step": 0,
          "url": "http://127.0.0.1:9/", "simplified_html": html,
          "action": {"type": "type_and_submit", "name": "q", "text": "mug"},
          "elements": [{"name": "q", "kind": "input", "text": "Search"},
                       {"name": "sort", "kind": "select", "text": ""},
                       {"name": "buy", "kind": "clickable", "text": "Buy now"}],
          "ts": "2026-01-15T10:42:07.311+00:00"}
    v1_error = {**v1, "step": 1, "action": None, "parse_error": {"code": "timeout", "message": "took 120 s"},
                "elements": []}
    v1_event = {"kind": "event", "schema_version": "shop-r1.trace/1", "run_id": "old", "session_id": "s",
                "step": 2, "event": "session_end", "done": True, "outcome": "timeout", "end_reason": "slow",
                "ts": "2026-01-15T10:42:09.311+00:00"}
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in (v1, v1_error, v1_event)) + "\n", encoding="utf-8")
    result = read_trace(path)
    first, second = result.steps
    assert first.schema_version == SCHEMA_VERSION  # converted once, at the read edge
    assert first.action == TypeAndSubmit(name="q", text="mug")
    q, sort, buy = first.elements
    assert (q.name, q.kind, q.text, q.tag, q.input_type) == ("q", "input", "Search", "input", "search")
    assert (sort.tag, sort.options, sort.text) == ("select", ["Price", "New"], "")  # recorded text kept
    assert (buy.tag, buy.disabled) == ("button", True)
    # A schema-1 step without a table gets the whole table from its page.
    assert [e.name for e in second.elements] == ["q", "sort", "buy"]
    assert second.parse_error.code == "timeout" and second.parse_error.detail == {}
    assert result.outcome("s") == "timeout"
    # Written back, the record is a schema-2 line that reads the same without the HTML.
    with TraceWriter(tmp_path / "again", "old") as w:
        for s in result.steps:
            w.write_step(s)
    again = read_trace(tmp_path / "again").steps
    assert again == result.steps
