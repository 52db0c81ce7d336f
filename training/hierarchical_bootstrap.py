"""A hierarchical bootstrap for differences between trained settings: seeds, then test sessions,
then steps.

Why not resample test steps as if they were independent: in a small-scale training experiment the
largest source of variation is the training seed (one dataset's row order moved SFT's type
accuracy from 57 % to 86 %), and steps are clustered in sessions (a session's steps share a
persona, an intent and pages). An interval drawn from steps alone is conditional on the few
trained models and treats ~150 correlated steps as ~150 independent ones: too narrow, and a
verdict read from it says more than the data do.

The design is *crossed*: every seed's models are scored on the same test steps, and a difference
(arm - SFT) is paired within a seed. One bootstrap replicate therefore

1. draws S seeds with replacement from the S seeds;
2. draws C test sessions with replacement from the C sessions, and inside each drawn session as
   many steps as it has, with replacement (a two-stage cluster bootstrap);
3. scores every drawn seed's two settings on the same drawn steps (weights = how often each step
   was drawn) and averages the per-seed differences over the drawn seeds.

Sessions are drawn once per replicate and shared by the drawn seeds, not drawn anew for each seed:
the same test sessions face every seed, so their effect does not average out over seeds, and
drawing them per seed (the nested scheme) would shrink it by a factor S. The crossed scheme counts
the seed x session interaction twice, so it errs on the wide side.

The metric functions take per-step arrays and step weights, so non-linear metrics (macro-F1) are
computed from weighted counts in each replicate rather than averaged per step. Only numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: (predicted type, label type, exact) per step, and step weights -> the metric.
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]

#: Written into results beside each interval, so a reader knows how it was drawn.
METHOD = ("hierarchical percentile bootstrap, 95 %: per replicate seeds drawn with replacement, then test "
          "sessions with replacement (shared by the drawn seeds: every seed is scored on the same steps), then "
          "steps with replacement inside each drawn session; the statistic is the mean over drawn seeds of the "
          "paired per-seed difference")


@dataclass(frozen=True)
class Run:
    """One trained model's scores on the test steps (in the same step order for every run)."""

    pred_type: np.ndarray  # (n,) int, -1 when the answer did not parse
    label_type: np.ndarray  # (n,) int
    exact: np.ndarray  # (n,) bool


def step_weights(sessions: Sequence[Any], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` counts: how often each step is drawn by a two-stage cluster bootstrap
    (sessions with replacement, then each drawn session's steps with replacement)."""
    keys = list(sessions)
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    members = list(groups.values())
    c = len(members)
    session_counts = rng.multinomial(c, np.full(c, 1.0 / c), size=n_boot)  # (B, C)
    weights = np.zeros((n_boot, len(keys)))
    for j, idx in enumerate(members):
        m = len(idx)
        weights[:, idx] = rng.multinomial(session_counts[:, j] * m, np.full(m, 1.0 / m))
    return weights


def weighted_metrics(run: Run, weights: np.ndarray, metrics: Mapping[str, Metric]) -> dict[str, np.ndarray]:
    """Each metric of ``run`` under each row of step weights: ``{name: (B,)}``."""
    return {name: f(run.pred_type, run.label_type, run.exact, weights) for name, f in metrics.items()}


def seed_bootstrap(arms: Sequence[Run], bases: Sequence[Run], sessions: Sequence[Any], metrics: Mapping[str, Metric],
                   n_boot: int = 2000, seed: int = 12345) -> dict[str, dict[str, Any]]:
    """Paired differences ``arm - base`` per metric: point, per-seed values and the interval.

    ``arms[s]`` and ``bases[s]`` are seed s's two settings scored on the same steps, whose
    sessions are ``sessions`` (one key per step). Returns ``{metric: {"diff", "per_seed",
    "ci95", "method", "n_seeds", "n_sessions", "n_boot"}}``: ``diff`` is the mean of the per-seed
    differences on every test step, ``ci95`` the percentile interval of the replicates (module doc).
    """
    if len(arms) != len(bases) or not arms:
        raise ValueError(f"need one arm and one base run per seed, got {len(arms)} and {len(bases)}")
    n = len(sessions)
    for r in (*arms, *bases):
        if not (len(r.pred_type) == len(r.label_type) == len(r.exact) == n):
            raise ValueError(f"every run must score the {n} steps the sessions describe")
    rng = np.random.default_rng(seed)
    s = len(arms)
    weights = step_weights(sessions, n_boot, rng)  # (B, n)
    seed_counts = rng.multinomial(s, np.full(s, 1.0 / s), size=n_boot)  # (B, S)
    full = np.ones((1, n))
    out: dict[str, dict[str, Any]] = {}
    per_seed_boot = {m: np.zeros((n_boot, s)) for m in metrics}
    per_seed_point = {m: np.zeros(s) for m in metrics}
    for k, (a, b) in enumerate(zip(arms, bases)):
        boot_a, boot_b = weighted_metrics(a, weights, metrics), weighted_metrics(b, weights, metrics)
        point_a, point_b = weighted_metrics(a, full, metrics), weighted_metrics(b, full, metrics)
        for m in metrics:
            per_seed_boot[m][:, k] = boot_a[m] - boot_b[m]
            per_seed_point[m][k] = point_a[m][0] - point_b[m][0]
    for m in metrics:
        replicate = (per_seed_boot[m] * seed_counts).sum(1) / s
        out[m] = {"diff": float(per_seed_point[m].mean()), "per_seed": [float(v) for v in per_seed_point[m]],
                  "ci95": [float(np.percentile(replicate, 2.5)), float(np.percentile(replicate, 97.5))],
                  "method": METHOD, "n_seeds": s, "n_sessions": len(set(sessions)), "n_boot": n_boot}
    return out


def verdict(ci95: Sequence[float]) -> str:
    """``better`` / ``worse`` when the interval excludes 0, else ``not shown``."""
    lo, hi = ci95
    return "better" if lo > 0 else "worse" if hi < 0 else "not shown"


__all__ = ["METHOD", "Metric", "Run", "seed_bootstrap", "step_weights", "verdict", "weighted_metrics"]
