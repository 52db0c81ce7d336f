"""Replay on real traces: a real `simulate` run (scripted shoppers, bundled shop, real Chromium)
and an imported OPeRA-schema fixture. View (non-interactive, JSON, interactive), live
re-execution against the bundled shop (v1: no divergence; v2: the changed layout is detected)
and the scripted policy compared against the recording."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.opera_builder import SESSION_A, SESSION_B, SESSION_C, write_opera_fixture
from rich.console import Console

from shop_r1.simulator.cli.main import main
from shop_r1.simulator.records.replay import ReplayError, open_trace
from shop_r1.simulator.records.replay.view import (
    CONTEXT_LINES,
    ReplayViewer,
    command_for,
    page_excerpt,
    read_key,
    read_line_command,
)
from shop_r1.simulator.scoring import action_reward
from shop_r1.simulator.records.trace import elements_from_html, observation_from_step, read_trace

ROOT = Path(__file__).resolve().parents[1]
SHOP_R1 = str(ROOT / ".venv" / "bin" / "shop-r1")


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory) -> Path:
    """A real simulated run: 3 scripted shoppers on the bundled shop (v1, seed 0)."""
    from shop_r1.envs.shop.server import run_in_thread
    from shop_r1.personas.sampler import sample
    from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
    from shop_r1.simulator.loop.runner import RunConfig, run_simulation

    out = tmp_path_factory.mktemp("sim") / "run"
    with run_in_thread(seed=0, port=0) as shop:
        config = RunConfig(shop_url=shop.url, shoppers=3, concurrency=3, max_steps=4, seed=0, out_dir=out)
        result = asyncio.run(run_simulation(config, ScriptedPolicy(seed=0), sample(3, seed=0)))
    assert result.steps > 0
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    from shop_r1.simulator.records.opera_import import import_opera, load_users, read_rows

    files = write_opera_fixture(tmp_path_factory.mktemp("opera_src"))
    out = tmp_path_factory.mktemp("opera") / "run"
    import_opera(read_rows(files.jsonl), out, users=load_users(files.users))
    return out


def cli(args: list[str], **kwargs):
    """The real command in-process; rich output 200 columns wide so nothing wraps mid-word."""
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, args, **kwargs)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# Opening traces, observations
# ---------------------------------------------------------------------------------------------


def test_open_trace_sessions_personas_and_observations(sim_run: Path) -> None:
    trace = open_trace(sim_run)
    raw = read_trace(sim_run)
    assert [s.session_id for s in trace.sessions] == raw.session_ids
    for s in trace.sessions:
        assert s.persona is not None and s.persona.persona_id == s.persona_id
        assert s.intent and s.outcome == raw.outcome(s.session_id)
    step = trace.sessions[0].steps[0]
    obs = observation_from_step(step)
    assert [e.name for e in obs.elements] == [e.name for e in step.elements]
    # Tag and input type come from the trace's own element table (schema 2 stores it whole).
    search = obs.element(step.target_name)
    assert search is not None and search.tag == "input" and search.input_type == "search"
    assert obs.url == step.url and obs.simplified_html == step.simplified_html


def test_elements_from_html_kinds() -> None:
    els = {e.name: e for e in elements_from_html(
        '<form><input name="q" placeholder="Search"><input name="go" type="submit" value="Go">'
        '<select name="sort"><option>Price</option><option>New</option></select>'
        '<textarea name="note"></textarea><a name="a.b"> Some  link </a><a name="a.b">dup</a></form>')}
    assert {n: e.kind for n, e in els.items()} == {"q": "input", "go": "clickable", "sort": "select",
                                                   "note": "input", "a.b": "clickable"}
    assert els["q"].text == "Search" and els["a.b"].text == "Some link" and els["sort"].options == ("Price", "New")


# ---------------------------------------------------------------------------------------------
# The view: non-interactive, JSON
# ---------------------------------------------------------------------------------------------


def test_no_interactive_prints_every_step(sim_run: Path) -> None:
    trace = open_trace(sim_run)
    session = max(trace.sessions, key=lambda s: len(s.steps))
    res = cli(["replay", str(sim_run), "--session", session.session_id, "--no-interactive"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "recorded session" in res.output and session.intent[:30] in res.output
    for s in session.steps:
        assert f"step {s.step} ({s.step + 1}/{len(session.steps)})" in res.output
        assert s.rationale[:40] in res.output
        if s.target_name:
            assert s.target_name in res.output
    # --from skips the earlier steps.
    res = cli(["replay", str(sim_run), "--session", session.session_id, "--no-interactive",
                                    "--from", "1"])
    assert "step 0 (1/" not in res.output and "step 1 (2/" in res.output


def test_listing_without_session(sim_run: Path) -> None:
    res = cli(["replay", str(sim_run), "--list", "--format", "json"])
    rows = _json_lines(res.stdout)
    trace = open_trace(sim_run)
    assert [(r["session_id"], r["steps"], r["outcome"]) for r in rows] == [
        (s.session_id, len(s.steps), s.outcome) for s in trace.sessions]


def test_json_mode_emits_the_recorded_steps(sim_run: Path) -> None:
    trace = open_trace(sim_run)
    session = trace.sessions[0]
    res = cli(["replay", str(sim_run), "--session", session.session_id, "--format", "json"])
    assert res.exit_code == 0, res.output
    lines = _json_lines(res.stdout)
    assert [(d["session_id"], d["step"]) for d in lines] == [(session.session_id, s.step) for s in session.steps]
    for d, s in zip(lines, session.steps):
        assert d["action"] == (s.action.to_json() if s.action else None)
        assert d["simplified_html"] == s.simplified_html
        if s.target_name:
            assert d["target"]["on_page"] is True and d["target"]["kind"] in ("input", "clickable", "select")


def test_json_mode_in_a_real_subprocess(sim_run: Path) -> None:
    proc = subprocess.run([SHOP_R1, "replay", str(sim_run), "--format", "json"], check=False, capture_output=True,
                          text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    lines = _json_lines(proc.stdout)
    trace = read_trace(sim_run)
    assert [d["session_id"] for d in lines if d["kind"] == "session"] == trace.session_ids
    assert len([d for d in lines if d["kind"] == "step"]) == len(trace.steps)


def test_view_of_the_imported_trace(imported: Path) -> None:
    res = cli(["replay", str(imported), "--no-interactive"])
    assert res.exit_code == 0, res.output
    assert "results.anker_q30.view_product" in res.output and "I need new headphones" in res.output
    assert "no recorded steps" in res.output  # session C: context events only
    assert "context before this step: navigate" in res.output
    res = cli(["replay", str(imported), "--session", SESSION_C, "--format", "json"])
    assert res.exit_code == 0 and res.stdout.strip() == ""
    res = cli(["replay", str(imported), "--session", SESSION_A, "--format", "json"])
    steps = _json_lines(res.stdout)
    assert [d["action"]["type"] for d in steps] == ["type_and_submit", "click", "click", "terminate"]
    assert steps[1]["events_before"][0]["event"] == "scroll"


# ---------------------------------------------------------------------------------------------
# Pages: excerpts, huge pages
# ---------------------------------------------------------------------------------------------


def test_page_excerpt_centres_on_the_target() -> None:
    page = "\n".join(f'<a name="item_{i}">Item {i}</a>' for i in range(200))
    ex = page_excerpt(page, "item_100")
    assert ex.target_line == 101 and ex.start == 101 - CONTEXT_LINES and ex.end == 101 + CONTEXT_LINES
    assert 'name="item_100"' in ex.code.splitlines()[100]
    full = page_excerpt(page, "item_100", full=True)
    assert (full.start, full.end) == (1, 200)
    assert page_excerpt(page, None).start == 1 and page_excerpt(page, "gone").target_line is None


def test_huge_one_line_page_replays_briefly(tmp_path: Path, sim_run: Path) -> None:
    """A 3 MB page on one line: broken at tags, shown around the target, bounded output."""
    src = read_trace(sim_run).steps[0].to_json()
    filler = "".join(f'<div><a name="filler_{i}">Filler product number {i}</a></div>' for i in range(40_000))
    src["simplified_html"] = filler + '<input name="big.search" type="search">' + filler
    src["action"] = {"type": "type_and_submit", "name": "big.search", "text": "x"}
    src.update(session_id="huge", step=0, done=False, outcome=None, end_reason=None, elements=[])
    path = tmp_path / "trace.jsonl"
    path.write_text(json.dumps(src) + "\n", encoding="utf-8")
    assert len(src["simplified_html"]) > 3_000_000
    t0 = time.perf_counter()
    res = cli(["replay", str(path), "--session", "huge", "--no-interactive"])
    assert res.exit_code == 0, res.output
    assert 'name="big.search"' in res.output and "lines above" in res.output
    assert len(res.output) < 20_000
    assert time.perf_counter() - t0 < 60


# ---------------------------------------------------------------------------------------------
# Robustness: crashed runs, unknown versions, corruption, zero-step sessions
# ---------------------------------------------------------------------------------------------


def _copy_lines(sim_run: Path, dest: Path) -> list[str]:
    dest.mkdir()
    (dest / "run.json").write_text((sim_run / "run.json").read_text())
    return (sim_run / "trace.jsonl").read_text().splitlines(keepends=True)


def test_truncated_last_line_still_replays(tmp_path: Path, sim_run: Path) -> None:
    lines = _copy_lines(sim_run, tmp_path / "crashed")
    (tmp_path / "crashed" / "trace.jsonl").write_text("".join(lines) + lines[0][: len(lines[0]) // 2])
    res = cli(["replay", str(tmp_path / "crashed"), "--format", "json"])
    assert res.exit_code == 0
    assert "truncated last line skipped" in res.stderr and f"trace.jsonl:{len(lines) + 1}" in res.stderr
    assert len([d for d in _json_lines(res.stdout) if d["kind"] == "step"]) == len(lines)


def test_unknown_schema_version_names_file_and_line(tmp_path: Path, sim_run: Path) -> None:
    lines = _copy_lines(sim_run, tmp_path / "future")
    record = json.loads(lines[1])
    record["schema_version"] = "shop-r1.trace/9"
    lines[1] = json.dumps(record) + "\n"
    (tmp_path / "future" / "trace.jsonl").write_text("".join(lines))
    res = cli(["replay", str(tmp_path / "future"), "--no-interactive"])
    assert res.exit_code == 1
    assert f"{tmp_path / 'future' / 'trace.jsonl'}:2:" in res.output and "major version 9" in res.output
    with pytest.raises(ReplayError, match=r"trace\.jsonl:2: .*upgrade shop-r1"):
        open_trace(tmp_path / "future")


def test_corrupt_middle_line_fails_or_is_skipped_with_lenient(tmp_path: Path, sim_run: Path) -> None:
    lines = _copy_lines(sim_run, tmp_path / "corrupt")
    lines[2] = '{"kind": "step", "schema_version": "shop-r1.trace/1", "step": "three"}\n'
    (tmp_path / "corrupt" / "trace.jsonl").write_text("".join(lines))
    res = cli(["replay", str(tmp_path / "corrupt"), "--list"])
    assert res.exit_code == 1 and "trace.jsonl:3: invalid step record" in res.output
    res = cli(["replay", str(tmp_path / "corrupt"), "--list", "--lenient"])
    assert res.exit_code == 0 and "trace.jsonl:3" in res.stderr


def test_zero_step_session_and_missing_files(tmp_path: Path, sim_run: Path) -> None:
    lines = _copy_lines(sim_run, tmp_path / "zero")
    run_id = json.loads(lines[0])["run_id"]
    end = {"kind": "event", "schema_version": "shop-r1.trace/1", "run_id": run_id, "session_id": "never-started",
           "step": 0, "event": "session_end", "done": True, "outcome": "timeout", "end_reason": "no first page"}
    (tmp_path / "zero" / "trace.jsonl").write_text("".join(lines) + json.dumps(end) + "\n")
    res = cli(["replay", str(tmp_path / "zero"), "--session", "never-started",
                                    "--no-interactive"])
    assert res.exit_code == 0, res.output
    assert "timeout" in res.output and "no recorded steps" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "trace.jsonl").write_text("")
    res = cli(["replay", str(empty)])
    assert res.exit_code == 1 and "holds no sessions" in res.output and str(empty) in res.output


# ---------------------------------------------------------------------------------------------
# Interactive mode
# ---------------------------------------------------------------------------------------------


def test_viewer_follows_fed_keys(sim_run: Path) -> None:
    trace = open_trace(sim_run)
    out = io.StringIO()
    viewer = ReplayViewer(trace, Console(file=out, width=140), clear=False)
    first = trace.sessions[0]
    keys = iter([("next", None), ("next", None), ("prev", None), ("jump", 0), ("jump", 99), ("session", None),
                 ("quit", None)])
    seen: list[tuple[int, int]] = []
    original = viewer.handle

    def spy(cmd, arg=None):
        ok = original(cmd, arg)
        seen.append((viewer.session_index, viewer.index))
        return ok

    viewer.handle = spy  # type: ignore[method-assign]
    viewer.run(lambda: next(keys))
    assert seen[:5] == [(0, 1), (0, 2 if len(first.steps) > 2 else 1), (0, 1 if len(first.steps) > 2 else 0),
                        (0, 0), (0, 0)]
    assert seen[5] == (1, 0)
    text = out.getvalue()
    assert "no step 99 in this session" in text
    assert trace.sessions[1].session_id in text


def test_key_reading_from_a_pseudo_terminal() -> None:
    master, slave = pty.openpty()
    try:
        for sent, command in ((b"\x1b[C", "next"), (b"\x1b[D", "prev"), (b"j", "jump"), (b"s", "session"),
                              (b"q", "quit"), (b"n", "next")):
            os.write(master, sent)
            assert command_for(read_key(slave)) == command
    finally:
        os.close(master)
        os.close(slave)
    assert read_line_command(io.StringIO("j 3\n")) == ("jump", 3)
    assert read_line_command(io.StringIO("\n")) == ("next", None)
    assert read_line_command(io.StringIO("")) == ("quit", None)


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_interactive_replay_in_a_pseudo_terminal(sim_run: Path) -> None:
    """The real command on a pty: pick a session, step forward with 'n', quit with 'q'."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "140", "LINES": "60", "TERM": "xterm"}
    proc = subprocess.Popen([SHOP_R1, "replay", str(sim_run)], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    try:
        out = _read_until(master, b"session to replay", 90)
        assert b"session to replay" in out, out[-2000:]
        os.write(master, b"1\n")
        out = _read_until(master, b"n/\xe2\x86\x92 next", 60)
        assert b"step 0 (1/" in out
        os.write(master, b"n")
        out = _read_until(master, b"n/\xe2\x86\x92 next", 60)
        assert b"step 1 (2/" in out
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


# ---------------------------------------------------------------------------------------------
# Policy versus recorded
# ---------------------------------------------------------------------------------------------


def test_scripted_policy_against_its_own_recording(sim_run: Path) -> None:
    """Same seed, same sessions, same recorded pages: the scripted policy must agree everywhere."""
    res = cli(["replay", str(sim_run), "--policy", "scripted", "--seed", "0",
                                    "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = _json_lines(res.stdout)
    steps = [d for d in lines if d["kind"] == "compare_step"]
    trace = read_trace(sim_run)
    assert len(steps) == len([s for s in trace.steps if s.action is not None])
    for d in steps:
        assert d["exact"] is True and d["predicted"]["action"] == d["recorded"]["action"]
        assert d["reward"] == action_reward(d["predicted"]["raw_output"], d["recorded"]["action"]).to_json()
    metrics = lines[-1]
    assert metrics["kind"] == "metrics" and metrics["metrics"]["exact_accuracy"] == 1.0
    assert metrics["metrics"]["type_macro_f1"] == 1.0


def test_compare_text_view_on_the_imported_trace(imported: Path) -> None:
    res = cli(["replay", str(imported), "--policy", "scripted"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "recorded" in res.output and "policy" in res.output and "reward" in res.output
    assert "Policy versus recorded (Shop-R1 metrics)" in res.output
    res = cli(["replay", str(imported), "--policy", "scripted", "--format", "json"])
    lines = _json_lines(res.stdout)
    metrics = lines[-1]["metrics"]
    assert metrics["n_steps"] == 6  # 4 + 2 imported decisions; session C has none
    assert metrics["per_type"]["terminate"]["support"] == 1
    # The scripted shopper searches first on the home page, like the recorded shopper did.
    first_a = next(d for d in lines if d.get("session_id") == SESSION_A and d.get("step") == 0)
    assert first_a["predicted"]["action"]["type"] == "type_and_submit"
    assert first_a["reward"]["type"] == pytest.approx(0.3)


# ---------------------------------------------------------------------------------------------
# Live re-execution
# ---------------------------------------------------------------------------------------------


def test_live_reexecution_against_the_same_layout_is_all_same(sim_run: Path) -> None:
    from shop_r1.envs.shop.server import run_in_thread

    with run_in_thread(seed=0, port=0, layout="v1") as shop:  # a new port: recorded URLs are rewritten
        res = cli(["replay", str(sim_run), "--execute", "--shop", shop.url, "--format", "json",
                                        "--concurrency", "3"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = _json_lines(res.stdout)
    verdicts = [d for d in lines if d["kind"] == "execute_step"]
    trace = read_trace(sim_run)
    assert len(verdicts) == len(trace.steps)
    assert {d["verdict"] for d in verdicts} == {"same"}, [d for d in verdicts if d["verdict"] != "same"]
    assert all(d["live_url"].startswith(shop.url) for d in verdicts)
    summary = lines[-1]
    assert summary["kind"] == "divergence_summary" and summary["diverged_sessions"] == 0
    assert summary["counts"]["same"] == len(trace.steps)


def test_live_reexecution_detects_the_changed_layout(sim_run: Path) -> None:
    from shop_r1.envs.shop.server import run_in_thread

    with run_in_thread(seed=0, port=0, layout="v2") as shop:
        res = cli(["replay", str(sim_run), "--execute", "--shop", shop.url, "--format", "json",
                                        "--fail-on-divergence", "--concurrency", "3"], catch_exceptions=False)
        text = cli(["replay", str(sim_run), "--execute", "--shop", shop.url,
                                         "--session", read_trace(sim_run).session_ids[0]])
    assert res.exit_code == 1  # --fail-on-divergence
    lines = _json_lines(res.stdout)
    verdicts = [d for d in lines if d["kind"] == "execute_step"]
    # Every shopper starts by searching: v2 moved and renamed the search box.
    firsts = [d for d in verdicts if d["step"] == 0]
    assert firsts and all(d["verdict"] == "target_missing" for d in firsts)
    assert all(any("search" in s for s in d["suggestions"]) for d in firsts)
    assert all("header.search_bar.search" in d["removed"] and d["added"] for d in firsts)
    sessions = [d for d in lines if d["kind"] == "execute_session"]
    assert all(s["first_divergent_step"] == 0 for s in sessions)
    assert lines[-1]["diverged_sessions"] == len(sessions) > 0
    assert text.exit_code == 0, text.output
    assert "divergence summary" in text.output and "target_missing" in text.output and "closest:" in text.output


def test_live_reexecution_of_the_imported_trace(imported: Path) -> None:
    """Imported sessions replay against the bundled shop: session A's search box exists there
    (names around it differ: changed), session B's OPeRA-style names do not (target_missing)."""
    from shop_r1.envs.shop.server import run_in_thread
    from shop_r1.simulator.records.replay.execute import execute_trace

    trace = open_trace(imported)
    with run_in_thread(seed=0, port=0) as shop:
        report = asyncio.run(execute_trace(trace, shop_url=shop.url, concurrency=2))
    by_session = {s.session_id: s for s in report.sessions}
    a0 = by_session[SESSION_A].verdicts[0]
    assert a0.verdict == "changed" and a0.target == "header.search_bar.search" and a0.live_url.startswith(shop.url)
    b0 = by_session[SESSION_B].verdicts[0]
    assert b0.verdict == "target_missing" and b0.target == "search_input" and b0.suggestions
    assert by_session[SESSION_C].steps_replayed == 0
    assert report.diverged


def test_a_model_policy_versus_recorded(sim_run: Path) -> None:
    """A real transformers backend (tiny random Qwen2, constrained decoding) scored step by step."""
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    session = open_trace(sim_run).sessions[0]
    res = cli(["replay", str(sim_run), "--session", session.session_id, "--policy", "transformers",
               "--model", str(tiny_model_dir()), "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = _json_lines(res.stdout)
    steps = [d for d in lines if d["kind"] == "compare_step"]
    assert [d["step"] for d in steps] == [s.step for s in session.steps if s.action is not None]
    for d in steps:
        assert d["reward"] == action_reward(d["predicted"]["raw_output"], d["recorded"]["action"]).to_json()
    metrics = lines[-1]["metrics"]
    assert metrics["n_steps"] == len(steps)
    assert metrics["exact_accuracy"] == sum(d["exact"] for d in steps) / len(steps)
