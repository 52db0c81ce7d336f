"""Completion budgets are sized from and checked against the reference answers (issue 9: 64-token
budgets cut every 97-token answer of the reproduction, so nothing parsed and GRPO never moved)."""

from __future__ import annotations

import json
import logging

import pytest

from shop_r1.simulator.agent.prompt import format_answer, parse_output
from shop_r1.training.answer_length import (
    CompletionBudgetError,
    budget_report,
    check_budget,
    reference_lengths,
    suggested_budget,
)

ROWS = [
    {"label": json.dumps({"type": "type_and_submit", "name": "search", "text": "red running shoes"}),
     "rationale": "I want red running shoes, so I search for them."},
    {"label": json.dumps({"type": "click", "name": "results.item_1.view_product"}),
     "rationale": "The first result matches what I want."},
    {"label": json.dumps({"type": "terminate"}), "rationale": ""},
]


def words(text: str) -> int:
    return len(text.split())


def test_reference_lengths_measure_the_canonical_answer_plus_its_end_token():
    lengths = reference_lengths(ROWS, words)
    assert lengths[0] == words(format_answer(ROWS[0]["rationale"], json.loads(ROWS[0]["label"]))) + 1
    assert lengths[2] == words(json.dumps({"type": "terminate"})) + 1  # no rationale: the action alone
    # what is measured is what the trainer rewards: the reference parses
    assert parse_output(format_answer(ROWS[1]["rationale"], json.loads(ROWS[1]["label"]))).ok


def test_a_budget_that_cuts_most_answers_is_refused_with_the_fix_named():
    lengths = [90, 97, 100, 120]
    with pytest.raises(CompletionBudgetError) as err:
        check_budget(lengths, 64, what="--max-completion-length")
    msg = str(err.value)
    assert "--max-completion-length 64" in msg and "4 of 4" in msg and "longest 120" in msg
    assert f"at least {suggested_budget(lengths)}" in msg
    assert suggested_budget(lengths) == 160  # 1.25 x 120, rounded up to 16


def test_a_budget_that_cuts_a_few_answers_warns_and_one_that_holds_all_is_silent(caplog):
    with caplog.at_level(logging.WARNING, logger="shop_r1.training.answer_length"):
        report = check_budget([40, 50, 60, 200], 96, what="--max-completion-length")
    assert report["truncated"] == 1 and report["truncated_share"] == 0.25
    assert "1 of 4 reference answers" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shop_r1.training.answer_length"):
        report = check_budget([40, 50, 60], 64, what="x")
    assert report == budget_report([40, 50, 60], 64) and report["truncated"] == 0 and not caplog.text


def test_a_smoke_run_may_allow_truncation():
    report = check_budget([90, 97], 16, what="x", refuse=False)
    assert report["truncated"] == 2 and report["truncated_share"] == 1.0
