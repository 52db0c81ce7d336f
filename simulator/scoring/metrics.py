"""The Shop-R1 evaluation metrics: exact action accuracy, action-type accuracy and action-type
macro-F1, micro-averaged over steps, with the per-type breakdown of the paper's Table 3.

Why this lives in ``simulator/``: the simulator's replay compares a policy against recorded
steps and reports these numbers, and imports point downward only (training -> simulator ->
envs/personas); ``training/`` evaluation imports them from here so both report the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from shop_r1.envs.actions import ACTION_MODELS, ACTION_TYPES, Action
from shop_r1.simulator.scoring.config import DEFAULT_CONFIG, RewardConfig
from shop_r1.simulator.scoring.exact import is_exact


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass(frozen=True)
class TypeRow:
    """Counts for one action type. ``support``: steps whose label has this type;
    ``predicted``: steps predicted as this type; ``type_correct``: both."""

    action_type: str
    support: int
    predicted: int
    type_correct: int
    exact_correct: int

    @property
    def exact_accuracy(self) -> float:
        return _ratio(self.exact_correct, self.support)

    @property
    def precision(self) -> float:
        return _ratio(self.type_correct, self.predicted)

    @property
    def recall(self) -> float:
        return _ratio(self.type_correct, self.support)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def present(self) -> bool:
        """Whether the type occurs among labels or predictions (it enters the macro average)."""
        return self.support > 0 or self.predicted > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "support": self.support,
            "predicted": self.predicted,
            "exact_accuracy": self.exact_accuracy,
            "type_precision": self.precision,
            "type_recall": self.recall,
            "type_f1": self.f1,
        }


@dataclass(frozen=True)
class MetricsReport:
    """The metrics of one evaluation: overall (Table 2) and per type (Table 3). Fractions in
    [0, 1]; :meth:`render_table` shows percentages."""

    n_steps: int
    n_unparsed: int
    exact_correct: int
    type_correct: int
    per_type: tuple[TypeRow, ...]

    @property
    def exact_accuracy(self) -> float:
        return _ratio(self.exact_correct, self.n_steps)

    @property
    def type_accuracy(self) -> float:
        return _ratio(self.type_correct, self.n_steps)

    @property
    def type_macro_f1(self) -> float:
        """Unweighted mean of per-type F1 over the types that occur among labels or
        predictions -- scikit-learn's ``f1_score(average="macro")`` convention -- so an
        evaluation set without, say, any type_and_submit step is not charged a 0 for it."""
        rows = [row for row in self.per_type if row.present]
        return sum(row.f1 for row in rows) / len(rows) if rows else 0.0

    def row(self, action_type: str) -> TypeRow:
        for r in self.per_type:
            if r.action_type == action_type:
                return r
        raise KeyError(f"unknown action type {action_type!r}; known: {', '.join(ACTION_TYPES)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "n_unparsed": self.n_unparsed,
            "exact_accuracy": self.exact_accuracy,
            "type_accuracy": self.type_accuracy,
            "type_macro_f1": self.type_macro_f1,
            "per_type": {row.action_type: row.to_json() for row in self.per_type},
        }

    def render_table(self, console: Console | None = None, title: str = "Shop-R1 metrics") -> None:
        """Print the overall numbers and the per-type table, percentages with 2 decimals."""
        console = console or Console()
        overall = Table(title=title)
        overall.add_column("steps", justify="right")
        overall.add_column("exact acc %", justify="right")
        overall.add_column("type acc %", justify="right")
        overall.add_column("type macro-F1 %", justify="right")
        overall.add_column("unparsed", justify="right")
        overall.add_row(
            str(self.n_steps), f"{100 * self.exact_accuracy:.2f}", f"{100 * self.type_accuracy:.2f}",
            f"{100 * self.type_macro_f1:.2f}", str(self.n_unparsed),
        )
        per_type = Table(title="Per action type")
        per_type.add_column("type", no_wrap=True)
        for name in ("support", "exact acc %", "type P %", "type R %", "type F1 %"):
            per_type.add_column(name, justify="right")
        for r in self.per_type:
            per_type.add_row(
                r.action_type, str(r.support), f"{100 * r.exact_accuracy:.2f}", f"{100 * r.precision:.2f}",
                f"{100 * r.recall:.2f}", f"{100 * r.f1:.2f}",
            )
        console.print(overall)
        console.print(per_type)


def compute_metrics(
    predictions: Sequence[Action | None], labels: Sequence[Action], config: RewardConfig = DEFAULT_CONFIG
) -> MetricsReport:
    """Score predicted actions against labelled ones, step by step.

    A None prediction (the answer could not be parsed) is wrong everywhere: not exact, not
    type-correct, and it lowers the recall of its label's type without counting as a
    prediction of any type. ``config`` supplies the text-similarity rule of exact accuracy.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels: they must pair up step by step")
    if not labels:
        raise ValueError("no steps to score: metrics over an empty set are undefined")
    for i, label in enumerate(labels):
        if not isinstance(label, ACTION_MODELS):
            raise TypeError(f"labels[{i}] is {type(label).__name__}, not an action (use shop_r1.envs.actions.parse_action)")
    for i, pred in enumerate(predictions):
        if pred is not None and not isinstance(pred, ACTION_MODELS):
            raise TypeError(f"predictions[{i}] is {type(pred).__name__}, not an action or None")

    support = dict.fromkeys(ACTION_TYPES, 0)
    predicted = dict.fromkeys(ACTION_TYPES, 0)
    type_hits = dict.fromkeys(ACTION_TYPES, 0)
    exact_hits = dict.fromkeys(ACTION_TYPES, 0)
    n_unparsed = 0
    for pred, label in zip(predictions, labels):
        support[label.type] += 1
        if pred is None:
            n_unparsed += 1
            continue
        predicted[pred.type] += 1
        if pred.type == label.type:
            type_hits[label.type] += 1
        if is_exact(pred, label, config):
            exact_hits[label.type] += 1
    rows = tuple(
        TypeRow(t, support[t], predicted[t], type_hits[t], exact_hits[t]) for t in ACTION_TYPES
    )
    return MetricsReport(
        n_steps=len(labels),
        n_unparsed=n_unparsed,
        exact_correct=sum(exact_hits.values()),
        type_correct=sum(type_hits.values()),
        per_type=rows,
    )
