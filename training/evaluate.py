"""Evaluation: run any policy on recorded steps and score it as the paper does (Tables 2 and 3).

Each RL row (see :mod:`shop_r1.training.data`) becomes one :class:`~shop_r1.simulator.agent.policies.base.PolicyRequest`
carrying the row's recorded context: ``messages`` is the row's ``prompt`` (every earlier page and
action, then the current page -- exactly what a model-backed policy is trained on), and
``observation``/``persona`` are the recorded page and shopper (what an observation-reading policy
such as the scripted shopper needs). Requests go to the policy in batches, rows of one session in
step order (a stateful policy sees a session unfold as it did).

Scoring is :func:`shop_r1.simulator.scoring.compute_metrics` (the one owner of the metrics): exact action
accuracy, action-type accuracy, action-type macro-F1 and the per-type table.

What counts as a prediction: the *answer*, not its executability. A backend rejects an answer
whose ``name`` is not on the page (``unknown_name``) or types into a link (``wrong_kind``); for
the metrics the answer is re-read without those page checks, so a well-formed click on the wrong
element still counts as a (type-correct, not exact) click, as in the paper. The format rule is
the rewards' own (``config.strict_format``: strict by default, ``--lenient`` relaxes the reward
and the evaluation together): an answer the reward would give 0 for its format counts as
unparsed here, wrong everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_r1.envs.actions import Action
from shop_r1.envs.observation import Element, Observation
from shop_r1.personas.model import Persona
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.trace.run import persona_from_record
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.analysis.compare import RecordedStep, score_policy
from shop_r1.simulator.scoring import DEFAULT_CONFIG, MetricsReport, RewardConfig, coerce_label, stated_action

log = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("prompt", "label", "session_id", "step")

ProgressFn = Callable[[int, int], None]


class EvaluationDataError(ValueError):
    """A row that cannot be evaluated; the message names the row (index, session, step)."""


def _where(index: int, row: Mapping[str, Any]) -> str:
    return f"row {index} (session {row.get('session_id')!r} step {row.get('step')!r})"


def _persona(text: Any, where: str) -> Persona | None:
    """The row's persona column (JSON text, as the dataset builder writes it), validated: the
    edge where dataset text becomes a persona again."""
    if not text:
        return None
    data = json.loads(text) if isinstance(text, str) else dict(text)
    return persona_from_record(data, where)


def request_for_row(row: Mapping[str, Any], index: int = 0) -> PolicyRequest:
    """The policy request for one RL row (see module doc); raises :class:`EvaluationDataError`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise EvaluationDataError(f"{_where(index, row)}: missing column(s) {', '.join(missing)}; "
                                  "is this an RL split built by `shop-r1 data build`?")
    elements_raw = row.get("elements")
    if elements_raw:
        elements = tuple(Element(name=e["name"], kind=e["kind"], text=e.get("text") or "") for e in elements_raw)
    else:  # a dataset with names only: kinds unknown, every name is offered as clickable
        elements = tuple(Element(name=n, kind="clickable") for n in row.get("names") or [])
    obs = Observation(url=row.get("url") or "", title=row.get("title") or "",
                      simplified_html=row.get("simplified_html") or "", elements=elements)
    messages = [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
    try:
        persona = _persona(row.get("persona"), _where(index, row))
    except json.JSONDecodeError as exc:
        raise EvaluationDataError(f"{_where(index, row)}: persona column is not JSON: {exc}") from None
    return PolicyRequest(session_id=str(row["session_id"]), observation=obs, history=(), persona=persona,
                         messages=messages, step=int(row["step"]))


def prediction_of(response: PolicyResponse, config: RewardConfig = DEFAULT_CONFIG) -> Action | None:
    """The action an answer states, judged by the rewards' format rule and without the page checks
    (see module doc). A policy that answers in text is read by
    :func:`shop_r1.simulator.scoring.answer_action` -- what earns a reward is what counts here --
    and one that returns a structured action without text (the scripted shopper) is taken as is.
    """
    return stated_action(response.raw_text, response.action, config)


@dataclass
class Evaluation:
    """An evaluation's report plus the per-row predictions (for inspection and ``--json``)."""

    report: MetricsReport
    predictions: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self, with_predictions: bool = False) -> dict[str, Any]:
        data = {**self.report.to_json(), "wall_s": round(self.wall_s, 3)}
        if with_predictions:
            data["predictions"] = self.predictions
        return data


async def aevaluate(
    policy: Policy,
    rl_dataset_rows: Sequence[Mapping[str, Any]] | Any,
    *,
    batch_size: int = 8,
    limit: int | None = None,
    config: RewardConfig = DEFAULT_CONFIG,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Run ``policy`` on every row (batched) and score the answers against the labels, with the
    loop replay's comparison uses (:func:`shop_r1.simulator.analysis.compare.score_policy`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rows = [dict(r) for r in rl_dataset_rows]
    if limit is not None:
        rows = rows[: max(0, limit)]
    if not rows:
        raise EvaluationDataError("no rows to evaluate (empty split?)")
    order = sorted(range(len(rows)), key=lambda i: (str(rows[i].get("session_id")), int(rows[i].get("step", 0)), i))
    items: list[RecordedStep] = []
    for i in order:
        try:
            label = coerce_label(rows[i]["label"])
        except (KeyError, ValueError) as exc:
            raise EvaluationDataError(f"{_where(i, rows[i])}: bad label: {exc}") from None
        items.append(RecordedStep(request=request_for_row(rows[i], i), label=label))
    batches = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
    report = await score_policy(policy, batches, config=config,
                                progress=(lambda done: progress(done, len(items))) if progress is not None else None)
    assert report.metrics is not None  # there was at least one row
    details = [
        {"session_id": c.session_id, "step": c.step, "label": c.recorded_action.to_json(),
         "prediction": c.stated.to_json() if c.stated is not None else None,
         "error": c.error.model_dump() if c.error is not None else None,
         "raw_output": c.raw_output, "reward": c.reward["total"]}
        for c in report.steps
    ]
    metrics = report.metrics
    log.info("evaluated %d steps with %s in %.1f s: exact %.3f, type %.3f, type macro-F1 %.3f",
             metrics.n_steps, policy.name, report.wall_s, metrics.exact_accuracy, metrics.type_accuracy,
             metrics.type_macro_f1)
    return Evaluation(report=metrics, predictions=details, wall_s=report.wall_s)


def evaluate(policy: Policy, rl_dataset_rows: Sequence[Mapping[str, Any]] | Any, **kwargs: Any) -> MetricsReport:
    """Synchronous :func:`aevaluate` returning the metrics only (call from code without a loop)."""
    return asyncio.run(aevaluate(policy, rl_dataset_rows, **kwargs)).report


__all__ = ["Evaluation", "EvaluationDataError", "aevaluate", "evaluate", "prediction_of", "request_for_row"]
