"""Evaluation on the RL split of a REAL simulate trace: the scripted policy and a tiny real
transformers model, through the API and the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.actions import ACTION_TYPES
from shop_r1.simulator.scoring import MetricsReport
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.training.data import build_dataset_dir, load_split
from shop_r1.training.evaluate import EvaluationDataError, aevaluate, request_for_row


@pytest.fixture(scope="module")
def dataset(shop_url, tmp_path_factory) -> Path:
    from shop_r1.personas.sampler import sample
    from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
    from shop_r1.simulator.loop.runner import RunConfig, run_simulation

    base = tmp_path_factory.mktemp("eval")
    cfg = RunConfig(shop_url=shop_url, shoppers=3, concurrency=3, max_steps=5, seed=0, out_dir=base / "run")
    asyncio.run(run_simulation(cfg, ScriptedPolicy(seed=0), sample(3, seed=3)))
    # A small prompt budget keeps the tiny model's forward passes short on CPU.
    build_dataset_dir([base / "run"], base / "ds", test=0.34, val=0.0, seed=0, token_budget=700)
    assert load_split(base / "ds", "rl", "test").num_rows >= 2
    return base / "ds"


def _check(report: MetricsReport, n: int) -> None:
    assert report.n_steps == n
    for value in (report.exact_accuracy, report.type_accuracy, report.type_macro_f1):
        assert 0.0 <= value <= 1.0
    assert [r.action_type for r in report.per_type] == list(ACTION_TYPES)
    assert sum(r.support for r in report.per_type) == n


async def test_scripted_policy_on_the_rl_split(dataset):
    from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy

    rows = load_split(dataset, "rl", "test")
    result = await aevaluate(ScriptedPolicy(seed=0), rows, batch_size=3)
    _check(result.report, rows.num_rows)
    assert result.report.n_unparsed == 0  # the scripted shopper always answers with an action
    # it is given the recorded page and persona, so it acts on them: same policy, same numbers
    again = await aevaluate(ScriptedPolicy(seed=0), rows, batch_size=5)
    assert again.report.to_json() == result.report.to_json()
    assert [p["label"] for p in result.predictions] == [json.loads(r["label"]) for r in
                                                         sorted(rows, key=lambda r: (r["session_id"], r["step"]))]


async def test_requests_carry_the_recorded_context(dataset):
    row = load_split(dataset, "rl", "test")[0]
    req = request_for_row(row)
    assert req.messages == row["prompt"]
    assert req.observation.url == row["url"] and req.observation.names == row["names"]
    assert {e.kind for e in req.observation.elements} <= {"clickable", "input", "select"}
    assert req.persona is not None and req.persona.persona_id == row["persona_id"]
    with pytest.raises(EvaluationDataError, match=r"row 0 .*missing column\(s\) label"):
        request_for_row({k: v for k, v in row.items() if k != "label"})


class _Echo(Policy):
    """Answers with a fixed text: checks how answers are read, independent of any model."""

    name = "echo"

    def __init__(self, text: str) -> None:
        self.text = text

    async def act(self, requests: list[PolicyRequest]) -> list[PolicyResponse]:
        from shop_r1.simulator.agent.prompt import parse_output_for

        out = []
        for r in requests:
            parsed = parse_output_for(self.text, r.observation)
            out.append(PolicyResponse(action=parsed.action, rationale=parsed.rationale, raw_text=self.text,
                                      error=parsed.error))
        return out


async def test_answers_are_judged_not_their_executability(dataset):
    rows = load_split(dataset, "rl", "test")
    n = rows.num_rows
    # a well-formed click on a name that is on no page: type-correct for click labels, never exact
    report = (await aevaluate(_Echo('{"rationale": "I click.", "action": {"type": "click", "name": "nowhere"}}'),
                              rows)).report
    clicks = report.row("click").support
    assert report.n_unparsed == 0 and report.exact_correct == 0 and report.type_correct == clicks
    # always terminate: exact exactly on the terminate labels
    term = (await aevaluate(_Echo('{"rationale": "I stop.", "action": {"type": "terminate"}}'), rows)).report
    assert term.exact_correct == term.row("terminate").support
    garbage = (await aevaluate(_Echo("not json at all"), rows)).report
    assert garbage.n_unparsed == n and garbage.type_accuracy == 0.0


async def test_tiny_transformers_model_on_the_rl_split(dataset):
    from shop_r1.simulator.agent.policies.transformers_policy import TransformersPolicy
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    rows = load_split(dataset, "rl", "test")
    policy = TransformersPolicy(tiny_model_dir(), constrained=False, temperature=0.0, max_new_tokens=24)
    try:
        result = await aevaluate(policy, rows, batch_size=4, limit=4)
    finally:
        await policy.close()
    _check(result.report, min(4, rows.num_rows))
    assert all(p["raw_output"] is not None for p in result.predictions)


def test_cli_json_for_scripted_and_tiny_model(dataset):
    from shop_r1.simulator.cli.main import main

    scripted = CliRunner().invoke(main, ["evaluate", "--policy", "scripted", "--data", str(dataset), "--json"])
    assert scripted.exit_code == 0, scripted.output
    data = json.loads(scripted.stdout)
    assert data["n_steps"] == load_split(dataset, "rl", "test").num_rows
    assert set(data["per_type"]) == set(ACTION_TYPES) and 0 <= data["type_macro_f1"] <= 1
    assert data["policy"] == "scripted" and data["split"] == "test"

    tiny = CliRunner().invoke(main, ["evaluate", "--model", "tiny", "--data", str(dataset / "rl" / "test.parquet"),
                                     "--limit", "2", "--json"])
    assert tiny.exit_code == 0, tiny.output
    data = json.loads(tiny.stdout)
    assert data["policy"] == "transformers" and data["n_steps"] == 2 and data["constrained"] is False
    assert data["top_p"] == 1.0  # a sampled evaluation samples as GRPO's rollouts do (top-p 1)

    table = CliRunner().invoke(main, ["evaluate", "--policy", "scripted", "--data", str(dataset)])
    assert table.exit_code == 0 and "exact acc %" in table.output and "Per action type" in table.output

    missing = CliRunner().invoke(main, ["evaluate", "--data", str(dataset)])
    assert missing.exit_code != 0 and "--model" in missing.output
    nosplit = CliRunner().invoke(main, ["evaluate", "--policy", "scripted", "--data", str(dataset / "sft")])
    assert nosplit.exit_code != 0 and "no rl/test split" in nosplit.output


_TERMINATE = '{"rationale": "I stop.", "action": {"type": "terminate"}}'
#: Ways a model writes (or fails to write) the answer: strict JSON, fenced, embedded in prose,
#: extra keys, a trailing comma, two objects, truncated, not JSON.
ANSWER_VARIANTS = [
    _TERMINATE,
    "\n  " + _TERMINATE + "\n",
    "```json\n" + _TERMINATE + "\n```",
    "Here is my answer: " + _TERMINATE,
    _TERMINATE + " I hope that helps.",
    '{"rationale": "I stop.", "action": {"type": "terminate"}, "confidence": 0.9}',
    '{"rationale": "I stop.", "action": {"type": "terminate"},}',
    _TERMINATE + "\n" + _TERMINATE,
    '{"rationale": "I stop.", "action": {"type": "termin',
    '{"rationale": "", "action": {"type": "terminate"}}',
    "terminate",
]


@pytest.mark.parametrize("lenient", [False, True])
async def test_reward_and_evaluation_accept_the_same_answers(dataset, lenient):
    from shop_r1.simulator.scoring import RewardConfig, action_reward, binary_reward

    rows = load_split(dataset, "rl", "test")
    config = RewardConfig(strict_format=not lenient)
    accepted = 0
    for text in ANSWER_VARIANTS:
        report = (await aevaluate(_Echo(text), rows, config=config)).report
        for row in rows:
            rewarded = action_reward(text, row["label"], config).format > 0
            # the evaluation counts the answer as a prediction exactly when the reward pays its format
            assert (report.n_unparsed == 0) is rewarded, (lenient, text)
            assert (report.n_unparsed == report.n_steps) is (not rewarded), (lenient, text)
            # and its exact verdict is the binary reward's
            assert binary_reward(text, row["label"], config) == float(rewarded and row["label_type"] == "terminate")
        assert report.exact_correct == (report.row("terminate").support if report.n_unparsed == 0 else 0)
        accepted += report.n_unparsed == 0
    # strict takes the two whitespace-padded objects; lenient also the fenced, embedded (before or after
    # prose), extra-key, repaired and first-of-two ones; neither takes truncated, blank-rationale or bare text
    assert accepted == (8 if lenient else 2)


def test_cli_lenient_switch(dataset):
    from shop_r1.simulator.cli.main import main

    fenced = dataset / "fenced.txt"
    fenced.write_text("```json\n" + _TERMINATE + "\n```")
    strict = CliRunner().invoke(main, ["reward", "--prediction", f"@{fenced}", "--label", '{"type": "terminate"}',
                                       "--json"])
    lenient = CliRunner().invoke(main, ["reward", "--prediction", f"@{fenced}", "--label", '{"type": "terminate"}',
                                        "--json", "--lenient"])
    assert json.loads(strict.stdout)["total"] == 0.0 and json.loads(lenient.stdout)["exact"] is True
    assert "--lenient" in CliRunner().invoke(main, ["evaluate", "--help"]).output
