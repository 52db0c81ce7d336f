"""Datasets from a REAL simulate trace: scripted shoppers on the bundled shop in real Chromium."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.actions import parse_action
from shop_r1.simulator.agent.prompt import parse_output
from shop_r1.simulator.records.trace import TraceWriter, read_trace
from shop_r1.training.data import (
    DatasetBuildError,
    build_dataset_dir,
    build_rl_dataset,
    build_sft_dataset,
    load_split,
    target_skip_reason,
)
from shop_r1.training.splits import SplitError, assign_groups, group_key, split, split_sizes


def simulate(shop_url: str, out: Path, shoppers: int, steps: int, seed: int = 1) -> Path:
    """Run the scripted shopper through the real runner on the real bundled shop."""
    from shop_r1.personas.sampler import sample
    from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
    from shop_r1.simulator.loop.runner import RunConfig, run_simulation

    cfg = RunConfig(shop_url=shop_url, shoppers=shoppers, concurrency=shoppers, max_steps=steps, seed=0,
                    out_dir=out)
    asyncio.run(run_simulation(cfg, ScriptedPolicy(seed=0), sample(shoppers, seed=seed)))
    return out


@pytest.fixture(scope="module")
def run_dir(shop_url, tmp_path_factory) -> Path:
    out = simulate(shop_url, tmp_path_factory.mktemp("sim") / "run", shoppers=4, steps=6)
    trace = read_trace(out)
    assert len(trace.sessions) == 4 and len(trace.steps) >= 8
    return out


def _targets(run_dir: Path):
    return [s for s in read_trace(run_dir).steps if target_skip_reason(s) is None]


def _parquet_rows(path: Path) -> list[dict]:
    from shop_r1.training.data import read_parquet

    return read_parquet(path).to_list()


# -- RL rows ---------------------------------------------------------------------------------


def test_rl_rows_are_the_recorded_steps_with_their_context(run_dir):
    ds = build_rl_dataset(run_dir, token_budget=200_000)  # nothing collapsed: all history in full
    rows = ds.to_list()
    targets = _targets(run_dir)
    assert len(rows) == len(targets) > 0
    by_key = {(s.session_id, s.step): s for s in targets}
    trace = read_trace(run_dir)
    for row in rows:
        step = by_key[(row["session_id"], row["step"])]
        assert parse_action(row["label"]) == step.action
        assert row["label_type"] == step.action.type
        assert row["names"] == [e.name for e in step.elements]
        assert row["elements"] == [e.model_dump(mode="json") for e in step.elements]  # the whole table
        if step.target_name:
            assert step.target_name in row["names"]
        assert row["persona_id"] == step.persona_id
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        user = row["prompt"][1]["content"]
        assert f"URL: {step.url}" in user  # the current page block
        # the shopper's persona and goal are in the system prompt, as at simulate time
        assert "Your goal:" in row["prompt"][0]["content"]
        # every earlier step that had an action is in the history (the paper's RL context)
        earlier = [s for s in trace.sessions[row["session_id"]] if s.step < step.step and s.action is not None]
        for prev in earlier:
            assert json.dumps(prev.action.to_json(), ensure_ascii=False) in user
        assert row["rationale"] == step.rationale
    # under the default budget the prompt module collapses/drops old history, never the current page
    for row in build_rl_dataset(run_dir).to_list():
        assert row["prompt"][1]["content"].rstrip().endswith('"action": {...}}')
        assert f"URL: {row['url']}" in row["prompt"][1]["content"]


def test_sft_rows_are_the_rl_prompts_plus_the_answer(run_dir):
    """Issue 9 fix 5: one row per target step, its context the RL row's, then the canonical answer."""
    sft = build_sft_dataset(run_dir).to_list()
    rl = {(r["session_id"], r["step"]): r for r in build_rl_dataset(run_dir).to_list()}
    targets = _targets(run_dir)
    assert len(sft) == len(targets) == len(rl)
    by_key = {(s.session_id, s.step): s for s in targets}
    for row in sft:
        key = (row["session_id"], row["step"])
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"][:-1] == rl[key]["prompt"]
        answer = parse_output(row["messages"][-1]["content"])
        assert answer.strict and answer.action == by_key[key].action
        assert answer.rationale == by_key[key].rationale.strip()


def test_sft_row_cap_drops_and_counts(run_dir):
    from shop_r1.envs.tokens import count_tokens
    from shop_r1.training.data import BuildStats, sft_rows

    stats = BuildStats()
    budget = 2500
    rows = sft_rows(run_dir, max_tokens=budget, stats=stats)
    for row in rows:
        assert sum(count_tokens(m["content"]) + 8 for m in row["messages"]) <= budget
    assert stats.skipped["sft_step_over_budget"] > 0
    assert len(rows) + stats.skipped["sft_step_over_budget"] == len(_targets(run_dir))


#: Large enough that no history is dropped: the failed step must be visible in the later prompts.
BYTES_BUDGET = 50_000


def _with_a_failed_step(run_dir: Path, out: Path) -> tuple[Path, tuple[str, int]]:
    """The real trace, with the first step of a session of >= 3 steps turned into a failed action."""
    trace = read_trace(run_dir)
    sid = next(sid for sid, steps in trace.sessions.items() if len(steps) >= 3)
    failed = trace.sessions[sid][0]
    with TraceWriter(out, run_id=trace.run_ids[0]) as w:
        for s in trace.steps:
            data = s.to_json()
            if (s.session_id, s.step) == (sid, failed.step):
                data["exec_error"] = {"code": "not_visible", "message": "the element is hidden"}
            w.write_step(data)
    return out, (sid, failed.step)


def test_sft_rl_eval_and_simulator_contexts_are_byte_identical(run_dir, tmp_path):
    """Issue 9 fix 5: for the same step, SFT's, RL's, evaluation's and the live policy's context are the
    same bytes -- and a failed action stays in everyone's history."""
    import shutil

    from shop_r1.simulator.agent.prompt import build_messages
    from shop_r1.simulator.records.trace import history_item, load_run_info, observation_from_step
    from shop_r1.personas.model import Persona
    from shop_r1.training.evaluate import request_for_row

    out, (sid, failed_step) = _with_a_failed_step(run_dir, tmp_path / "failed")
    shutil.copy(run_dir / "run.json", out / "run.json")
    ds = build_dataset_dir([out], tmp_path / "ds", val=0.0, test=0.5, seed=0, token_budget=BYTES_BUDGET)
    assert ds.manifest["rl"]["skipped"].get("exec_error", 0) >= 1
    info = load_run_info(out)
    trace = read_trace(out)
    failed = next(s for s in trace.sessions[sid] if s.step == failed_step)
    failed_json = json.dumps(failed.action.to_json(), ensure_ascii=False)
    keys: set[tuple[str, int]] = set()
    after_failure = 0
    for split_name in ("train", "test"):
        rl = {(r["session_id"], r["step"]): r for r in load_split(tmp_path / "ds", "rl", split_name).to_list()}
        sft = {(r["session_id"], r["step"]): r for r in load_split(tmp_path / "ds", "sft", split_name).to_list()}
        assert set(sft) == set(rl)
        keys |= set(rl)
        for key, row in rl.items():
            sft_context = sft[key]["messages"][:-1]
            eval_context = request_for_row(row).messages
            # what a policy reads live: the simulator's history (every earlier step with an action)
            steps = trace.sessions[key[0]]
            step = next(s for s in steps if s.step == key[1])
            history = [history_item(s) for s in steps if s.step < step.step and s.action is not None]
            persona = Persona.model_validate(info.persona(step.persona_id))
            live = build_messages(observation_from_step(step), history, persona, token_budget=BYTES_BUDGET)
            assert len(sft_context) == len(row["prompt"]) == len(eval_context) == len(live) == 2
            for i in range(2):
                assert sft_context[i]["content"].encode() == row["prompt"][i]["content"].encode() \
                    == eval_context[i]["content"].encode() == live[i]["content"].encode()
            if key[0] == sid and key[1] > failed_step:
                # the failed action stays in the history of both SFT and RL
                assert failed_json in row["prompt"][1]["content"] and failed_json in sft_context[1]["content"]
                after_failure += 1
    assert (sid, failed_step) not in keys  # the failed action itself is no target
    assert after_failure >= 1


def test_missing_rationales_are_named_or_skipped(run_dir, tmp_path):
    trace = read_trace(run_dir)
    out = tmp_path / "bare"
    with TraceWriter(out, run_id=trace.run_ids[0]) as w:
        for s in trace.steps:
            w.write_step({**s.to_json(), "rationale": ""})
    with pytest.raises(DatasetBuildError, match=r"session .* step \d+") as err:
        build_sft_dataset(out)
    assert "shop-r1 data rationales" in str(err.value)
    assert build_sft_dataset(out, missing_rationale="skip").num_rows == 0
    assert build_rl_dataset(out).num_rows == len(_targets(run_dir))  # RL needs no rationale


# -- splits ----------------------------------------------------------------------------------


def _split_sessions(out: Path, kind: str) -> dict[str, set[str]]:
    return {name: {r["session_id"] for r in _parquet_rows(out / kind / f"{name}.parquet")}
            for name in ("train", "validation", "test")}


def test_build_writes_splits_without_session_leakage(run_dir, tmp_path):
    out = tmp_path / "ds"
    manifest = build_dataset_dir([run_dir], out, by="session", seed=3, val=0.25, test=0.25).manifest
    for kind in ("sft", "rl"):
        parts = _split_sessions(out, kind)
        assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["validation"])
        assert not (parts["validation"] & parts["test"])
        for name in parts:
            assert manifest["counts"][kind][name] == len(_parquet_rows(out / kind / f"{name}.parquet"))
    # the SFT chat and the RL steps of a session land in the same split
    sft, rl = _split_sessions(out, "sft"), _split_sessions(out, "rl")
    for name in sft:
        assert sft[name] <= rl[name] | set()
    assert all(rl[name] for name in rl), "4 sessions with 25%/25% give every split a session"
    assert manifest["split"] == {"by": "session", "seed": 3, "val": 0.25, "test": 0.25,
                                 "groups": {"train": 2, "validation": 1, "test": 1}}
    assert manifest["sources"][0]["sessions"] == 4 and manifest["bad_rows"] == 0
    assert load_split(out, "rl", "test").num_rows == manifest["counts"]["rl"]["test"]


def _assert_same_datasets(trace_a: Path, trace_b: Path, tmp_path: Path) -> None:
    """Both traces built with the same seed give the same rows in every split, row for row."""
    a, b = tmp_path / "a", tmp_path / "b"
    build_dataset_dir([trace_a], a, seed=7, val=0.25, test=0.25)
    build_dataset_dir([trace_b], b, seed=7, val=0.25, test=0.25)
    for kind in ("sft", "rl"):
        for name in ("train", "validation", "test"):
            assert _parquet_rows(a / kind / f"{name}.parquet") == _parquet_rows(b / kind / f"{name}.parquet")


def test_build_is_deterministic_under_the_seed(run_dir, tmp_path):
    _assert_same_datasets(run_dir, run_dir, tmp_path)
    plans = {tuple(sorted(assign_groups([f"s{i}" for i in range(20)], seed=s).items())) for s in range(5)}
    assert len(plans) > 1  # the seed does change the plan


def test_rows_do_not_depend_on_the_order_sessions_were_recorded_in(run_dir, tmp_path):
    """Concurrent shoppers finish in a different order each run; the same steps must give the
    same datasets, row for row (the order is where SFT's seeded shuffle starts)."""
    trace = read_trace(run_dir)
    reordered = tmp_path / "reordered"
    personas = json.loads((run_dir / "run.json").read_text())["personas"]
    with TraceWriter(reordered, run_id=trace.run_ids[0], personas=personas) as w:
        for sid in reversed(list(trace.sessions)):
            for s in trace.sessions[sid]:
                w.write_step(s.to_json())
    assert list(read_trace(reordered).sessions) != list(trace.sessions)
    _assert_same_datasets(run_dir, reordered, tmp_path)


def test_split_by_persona_keeps_each_persona_in_one_split(run_dir, tmp_path):
    # Two shoppers share each persona id (same real steps, persona ids re-mapped).
    trace = read_trace(run_dir)
    sessions = sorted(trace.sessions)
    remap = {sid: f"shared-{i % 2}" for i, sid in enumerate(sessions)}
    out = tmp_path / "shared"
    with TraceWriter(out, run_id=trace.run_ids[0]) as w:
        for s in trace.steps:
            w.write_step({**s.to_json(), "persona_id": remap[s.session_id]})
    ds = tmp_path / "ds"
    build_dataset_dir([out], ds, by="persona", seed=0, val=0.0, test=0.5)
    personas = {name: {r["persona_id"] for r in _parquet_rows(ds / "rl" / f"{name}.parquet")}
                for name in ("train", "validation", "test")}
    assert personas["train"] and personas["test"] and not (personas["train"] & personas["test"])
    assert personas["validation"] == set()


def test_split_function_groups_rows_and_checks_its_input():
    rows = [{"session_id": f"s{i // 3}", "persona_id": f"p{i // 6}", "step": i % 3} for i in range(30)]
    parts = split(rows, val=0.2, test=0.2, by="session", seed=1)
    assert sum(len(v) for v in parts.values()) == 30
    seen = {name: {r["session_id"] for r in v} for name, v in parts.items()}
    assert not (seen["train"] & seen["test"]) and len(seen["test"]) == 2 and len(seen["validation"]) == 2
    assert split(rows, val=0.2, test=0.2, by="session", seed=1) == parts
    assert split_sizes(3, 0.1, 0.2) == (1, 1, 1)
    assert split_sizes(1, 0.1, 0.2) == (1, 0, 0)
    assert group_key({"session_id": "s", "persona_id": None}, "persona") == "session:s"
    with pytest.raises(SplitError, match="val \\+ test"):
        split(rows, val=0.5, test=0.5)
    with pytest.raises(SplitError, match="by must be"):
        split(rows, by="user")  # type: ignore[arg-type]
    with pytest.raises(SplitError, match="no session_id"):
        split([{"step": 0}])


# -- bad rows ----------------------------------------------------------------------------------


def test_bad_trace_rows_are_reported_with_file_and_line(run_dir, tmp_path):
    lines = (run_dir / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad"
    bad.mkdir()
    broken = json.loads(lines[1])
    broken["step"] = "two"  # wrong type: a validation error on line 2
    corrupted = [lines[0], json.dumps(broken), *lines[2:], '{"kind": "step", "schema_ver']
    (bad / "trace.jsonl").write_text("\n".join(corrupted), encoding="utf-8")
    (bad / "run.json").write_text((run_dir / "run.json").read_text(encoding="utf-8"), encoding="utf-8")
    path = bad / "trace.jsonl"

    result = CliRunner().invoke(_cli(), ["data", "build", str(bad), "--out", str(tmp_path / "ds"), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["bad_rows"] == 2
    assert manifest["problems"][0].startswith(f"{path}:2: ")
    assert manifest["problems"][1].startswith(f"{path}:{len(corrupted)}: ")
    assert manifest["sources"][0]["steps"] == len(lines) - 1

    table = CliRunner().invoke(_cli(), ["data", "build", str(bad), "--out", str(tmp_path / "ds2")])
    assert table.exit_code == 0 and f"{path}:2:" in table.output.replace("\n", "")


def _cli():
    from shop_r1.simulator.cli.main import main

    return main
