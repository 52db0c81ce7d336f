"""The Shop-R1 metrics on a hand-made evaluation set whose numbers are worked out by hand."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.simulator.scoring import MetricsReport, compute_metrics, is_exact
from shop_r1.simulator.scoring import RewardConfig

SEARCH = "search_input"

# (label, prediction) -- the comment says what the step counts as
STEPS = [
    (Click(name="a.view"), Click(name="a.view")),                      # exact, type ok
    (Click(name="b.view"), Click(name="c.view")),                      # type ok only
    (Click(name="d.view"), Terminate()),                               # wrong type
    (Click(name="e.view"), None),                                      # unparseable
    (TypeAndSubmit(name=SEARCH, text="wireless noise cancelling headphones"),
     TypeAndSubmit(name=SEARCH, text="wireless noise cancelling earbuds")),  # ROUGE-L F = 0.75: exact
    (TypeAndSubmit(name=SEARCH, text="red running shoes"),
     TypeAndSubmit(name=SEARCH, text="blue jacket")),                  # type ok only
    (TypeAndSubmit(name=SEARCH, text="x y"), Click(name=SEARCH)),      # wrong type
    (Terminate(), Terminate()),                                        # exact
    (Terminate(), Click(name="f.view")),                               # wrong type
    (Terminate(), Terminate()),                                        # exact
]
LABELS = [label for label, _ in STEPS]
PREDICTIONS = [pred for _, pred in STEPS]


@pytest.fixture(scope="module")
def report() -> MetricsReport:
    return compute_metrics(PREDICTIONS, LABELS)


def test_overall_numbers(report: MetricsReport) -> None:
    assert report.n_steps == 10 and report.n_unparsed == 1
    assert report.exact_accuracy == pytest.approx(4 / 10)
    assert report.type_accuracy == pytest.approx(6 / 10)
    # click P 2/4 R 2/4 F 1/2; type_and_submit P 2/2 R 2/3 F 4/5; terminate P 2/3 R 2/3 F 2/3
    assert report.type_macro_f1 == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)  # = 59/90


def test_per_type_rows(report: MetricsReport) -> None:
    click, tas, term = report.row("click"), report.row("type_and_submit"), report.row("terminate")
    assert (click.support, click.predicted, click.type_correct, click.exact_correct) == (4, 4, 2, 1)
    assert (tas.support, tas.predicted, tas.type_correct, tas.exact_correct) == (3, 2, 2, 1)
    assert (term.support, term.predicted, term.type_correct, term.exact_correct) == (3, 3, 2, 2)
    assert click.exact_accuracy == pytest.approx(0.25)
    assert tas.precision == 1.0 and tas.recall == pytest.approx(2 / 3) and tas.f1 == pytest.approx(0.8)
    assert term.f1 == pytest.approx(2 / 3)
    with pytest.raises(KeyError, match="scroll"):
        report.row("scroll")


def test_to_json_is_plain_json(report: MetricsReport) -> None:
    data = json.loads(json.dumps(report.to_json()))
    assert data["exact_accuracy"] == pytest.approx(0.4)
    assert data["type_macro_f1"] == pytest.approx(59 / 90)
    assert data["per_type"]["type_and_submit"] == {
        "support": 3, "predicted": 2, "exact_accuracy": pytest.approx(1 / 3),
        "type_precision": 1.0, "type_recall": pytest.approx(2 / 3), "type_f1": pytest.approx(0.8),
    }


def test_render_table_shows_percentages(report: MetricsReport) -> None:
    console = Console(record=True, width=120)
    report.render_table(console)
    out = console.export_text()
    for figure in ("40.00", "60.00", "65.56", "25.00", "33.33", "80.00", "66.67"):
        assert figure in out
    assert "type_and_submit" in out and "terminate" in out


def test_text_similarity_rule_follows_config() -> None:
    label, pred = STEPS[4]
    assert is_exact(pred, label)
    assert not is_exact(pred, label, RewardConfig(threshold_inclusive=False))
    assert compute_metrics(PREDICTIONS, LABELS, RewardConfig(threshold_inclusive=False)).exact_accuracy == pytest.approx(0.3)
    assert not is_exact(TypeAndSubmit(name="other", text="x y"), TypeAndSubmit(name=SEARCH, text="x y"))
    assert not is_exact(None, Terminate())


def test_macro_f1_skips_types_absent_from_labels_and_predictions() -> None:
    labels = [Click(name="a"), Terminate()]
    preds = [Click(name="a"), Click(name="b")]
    r = compute_metrics(preds, labels)
    # click P 1/2 R 1 F 2/3; terminate P 0 R 0 F 0; type_and_submit absent -> not averaged
    assert r.type_macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)
    all_unparsed = compute_metrics([None, None], labels)
    assert (all_unparsed.exact_accuracy, all_unparsed.type_accuracy, all_unparsed.type_macro_f1) == (0.0, 0.0, 0.0)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 labels"):
        compute_metrics([None, None], [Terminate()])
    with pytest.raises(ValueError, match="empty"):
        compute_metrics([], [])
    with pytest.raises(TypeError, match=r"labels\[0\] is dict"):
        compute_metrics([None], [{"type": "terminate"}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"predictions\[0\] is str"):
        compute_metrics(["terminate"], [Terminate()])  # type: ignore[list-item]
