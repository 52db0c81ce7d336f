"""Policy versus recorded: the paper's evaluation setting, step by step, in front of a person.

At every recorded step the policy gets exactly the recorded context -- the earlier recorded
pages and actions (not its own), the current recorded page, the session's persona -- and its
answer is put beside the recorded one with the Shop-R1 reward components
(:func:`shop_r1.simulator.scoring.action_reward`) and the exact-match verdict
(:func:`shop_r1.simulator.scoring.is_exact`). The run ends with the metrics of the paper's Table 2/3
(:func:`shop_r1.simulator.scoring.compute_metrics`). Rewards and metrics are imported, never
re-implemented, so this view and training can never disagree.

Policies answer in batches: step ``k`` of every session is asked together, sessions advance in
lock-step (a stateful policy such as the scripted one sees each session's steps in order).

:func:`score_policy` is the one loop that asks a policy about recorded steps and scores the
answers: replay's comparison (:func:`compare_policy`, steps from a trace) and training's
evaluation (``shop_r1.training.evaluate``, rows of an RL dataset) both call it, so the two can
never disagree on what a prediction is or how it is scored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shop_r1.envs.actions import Action, ParseError
from shop_r1.simulator.scoring import MetricsReport, compute_metrics, is_exact
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.prompt import format_answer
from shop_r1.simulator.records.replay import ReplaySession
from shop_r1.simulator.records.trace import history_before, observation_from_step
from shop_r1.simulator.records.replay.view import action_text
from shop_r1.simulator.scoring import DEFAULT_CONFIG, RewardConfig, action_reward, stated_action
from shop_r1.simulator.records.trace import TraceStep

log = logging.getLogger(__name__)


@dataclass
class ComparedStep:
    """One recorded step with the policy's answer and its score."""

    session_id: str
    step: int
    recorded_action: Action
    recorded_rationale: str
    predicted_action: Action | None
    predicted_rationale: str
    raw_output: str
    error: ParseError | None
    reward: dict[str, float]
    reward_notes: dict[str, str]
    exact: bool
    latency_s: float
    #: The action the answer states, read by the rewards' format rule without the page checks
    #: (a well-formed click on a name not on the page is still a click): what the metrics count.
    stated: Action | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": "compare_step", "session_id": self.session_id, "step": self.step,
                "recorded": {"action": self.recorded_action.to_json(), "rationale": self.recorded_rationale},
                "predicted": {"action": self.predicted_action.to_json() if self.predicted_action else None,
                              "rationale": self.predicted_rationale, "raw_output": self.raw_output,
                              "error": self.error.model_dump(mode="json") if self.error else None},
                "reward": self.reward, "reward_notes": self.reward_notes, "exact": self.exact,
                "latency_s": round(self.latency_s, 4)}


@dataclass
class CompareReport:
    policy: dict[str, Any]
    steps: list[ComparedStep] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "session step N: why"
    metrics: MetricsReport | None = None
    wall_s: float = 0.0

    @property
    def mean_reward(self) -> float:
        return sum(s.reward["total"] for s in self.steps) / len(self.steps) if self.steps else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"kind": "metrics", "policy": self.policy, "steps": len(self.steps), "skipped": self.skipped,
                "mean_reward": self.mean_reward,
                "metrics": self.metrics.to_json() if self.metrics is not None else None,
                "wall_s": round(self.wall_s, 2)}


def answer_text(response: PolicyResponse) -> str:
    """The text the reward scores: the raw answer; a policy without raw text (rule-based
    backends written elsewhere) is scored on the canonical answer of its action."""
    if response.raw_text:
        return response.raw_text
    if response.action is not None:
        return format_answer(response.rationale or "", response.action)
    return ""


def score_step(step: TraceStep, response: PolicyResponse, config: RewardConfig = DEFAULT_CONFIG) -> ComparedStep:
    """A recorded step's answer scored against its recorded action."""
    assert step.action is not None, "only steps with a recorded action are scored"
    return score_answer(RecordedStep(request=PolicyRequest(session_id=step.session_id, observation=observation_from_step(step),
                                                           step=step.step),
                                     label=step.action, rationale=step.rationale), response, config)


@dataclass(frozen=True)
class RecordedStep:
    """One recorded step to ask a policy about: the request carrying the recorded context, the
    recorded action (the label) and the recorded rationale."""

    request: PolicyRequest
    label: Action
    rationale: str = ""


def score_answer(item: RecordedStep, response: PolicyResponse, config: RewardConfig = DEFAULT_CONFIG) -> ComparedStep:
    """The answer beside the label: reward components, the stated action and the exact verdict."""
    breakdown = action_reward(answer_text(response), item.label, config)
    stated = stated_action(response.raw_text, response.action, config)
    return ComparedStep(
        session_id=item.request.session_id, step=item.request.step, recorded_action=item.label,
        recorded_rationale=item.rationale,
        predicted_action=response.action,
        predicted_rationale=response.rationale, raw_output=response.raw_text, error=response.error,
        reward=breakdown.to_json(), reward_notes=dict(breakdown.notes),
        exact=is_exact(stated, item.label, config), latency_s=response.latency_s, stated=stated,
    )


async def score_policy(policy: Policy, batches: Iterable[Sequence[RecordedStep]], *,
                       config: RewardConfig = DEFAULT_CONFIG, on_step: Callable[[ComparedStep], None] | None = None,
                       progress: Callable[[int], None] | None = None) -> CompareReport:
    """Ask ``policy`` about each batch of recorded steps in turn, score every answer, and compute
    the paper's metrics over the stated actions (the one owner of this loop, see module doc).

    ``progress`` gets the number of steps answered so far after each batch. Steps are reported
    in the order given.
    """
    report = CompareReport(policy=policy.describe())
    t0 = time.perf_counter()
    for batch in batches:
        if not batch:
            continue
        requests = [item.request for item in batch]
        t1 = time.perf_counter()
        responses = await policy.act(requests)
        elapsed = time.perf_counter() - t1
        if len(responses) != len(requests):
            raise RuntimeError(f"policy {policy.name!r} answered {len(responses)} of {len(requests)} requests")
        for item, resp in zip(batch, responses):
            if not resp.latency_s:
                resp.latency_s = elapsed / len(batch)
            scored = score_answer(item, resp, config)
            report.steps.append(scored)
            if on_step is not None:
                on_step(scored)
        if progress is not None:
            progress(len(report.steps))
    if report.steps:
        report.metrics = compute_metrics([c.stated for c in report.steps], [c.recorded_action for c in report.steps],
                                         config)
    report.wall_s = time.perf_counter() - t0
    return report


async def compare_policy(policy: Policy, sessions: Sequence[ReplaySession], *, from_step: int = 0,
                         config: RewardConfig = DEFAULT_CONFIG,
                         on_step: Callable[[ComparedStep], None] | None = None) -> CompareReport:
    """Ask ``policy`` at every recorded step (>= ``from_step``) and score it against the recording.

    Steps without a recorded action (the recorded policy's answer did not parse) have no label
    and are listed in ``skipped``. Metrics are computed over the scored steps.
    """
    skipped: list[str] = []
    depth = max((len(s.steps) for s in sessions), default=0)
    batches: list[list[RecordedStep]] = []
    for k in range(depth):
        batch: list[RecordedStep] = []
        for s in sessions:
            if k >= len(s.steps) or s.steps[k].step < from_step:
                continue
            step = s.steps[k]
            if step.action is None:
                skipped.append(f"{s.session_id} step {step.step}: no recorded action (no label)")
                continue
            request = PolicyRequest(session_id=s.session_id, observation=observation_from_step(step),
                                    history=tuple(history_before(s.steps, k)), persona=s.persona, step=step.step)
            batch.append(RecordedStep(request=request, label=step.action, rationale=step.rationale))
        batches.append(batch)
    report = await score_policy(policy, batches, config=config, on_step=on_step)
    report.skipped = skipped
    order = {s.session_id: n for n, s in enumerate(sessions)}
    report.steps.sort(key=lambda c: (order[c.session_id], c.step))
    return report


def render_compared(c: ComparedStep) -> RenderableType:
    """Recorded and predicted side by side, with the reward components and the verdict."""
    grid = Table(show_header=True, header_style="bold", expand=True, box=None)
    grid.add_column("", style="bold", width=10)
    grid.add_column("recorded", ratio=1)
    grid.add_column("policy", ratio=1)
    grid.add_row("action", action_text(c.recorded_action), action_text(c.predicted_action))
    pred_rationale = Text(c.predicted_rationale or "(none)", style="italic")
    if c.error:
        pred_rationale.append(f"\n{c.error.message} ({c.error.code})", style="red")
    grid.add_row("rationale", Text(c.recorded_rationale or "(none)", style="italic"), pred_rationale)
    r = c.reward
    reward = Text.assemble(
        ("reward  ", "bold"), f"format {r['format']:g} · type {r['type']:g} · attribute {r['attribute']:g} · "
        f"value {r['value']:g} · ", (f"total {r['total']:g}", "bold"), "   ",
        ("exact ✓" if c.exact else "exact ✗", "bold green" if c.exact else "bold red"))
    notes = Text("; ".join(f"{k}: {v}" for k, v in c.reward_notes.items() if k in ("type", "value")), style="dim")
    return Panel(Group(grid, reward, notes), title=f"{c.session_id} · step {c.step}", title_align="left",
                 border_style="green" if c.exact else "red")


def render_summary(report: CompareReport, console: Console) -> None:
    if report.skipped:
        console.print(Text(f"{len(report.skipped)} steps without a recorded action were not scored: "
                           + "; ".join(report.skipped[:5]) + (" …" if len(report.skipped) > 5 else ""),
                           style="yellow"))
    if report.metrics is None:
        console.print("[yellow]no recorded step had an action to score[/]")
        return
    console.print(f"policy {report.policy} · {len(report.steps)} steps · mean reward {report.mean_reward:.3f}")
    report.metrics.render_table(console, title="Policy versus recorded (Shop-R1 metrics)")


__all__ = ["CompareReport", "ComparedStep", "RecordedStep", "answer_text", "compare_policy", "render_compared",
           "render_summary", "score_answer", "score_policy", "score_step"]
