"""Cohort weights for an A/B experiment (``shop-r1 ab --weights MIX.json``).

The shoppers of an experiment are rarely the store's buyers in the store's proportions: the
persona library leans young, a quota mix is rounded to N. Weighting every pair (paired design)
or session (between design) so that, for each field the mix sets, the weighted share of each
value equals the mix's, estimates the effect on *that* population instead of on the sample.

Why raking: a mix gives only marginals (one distribution per field, as ``--mix`` does), not the
joint table post-stratification would need, and at agent-experiment sizes most cells of a joint
table are empty anyway. Iterative proportional fitting scales the weights one field at a time
until every field's weighted shares match; it is the standard way to weight to marginals and
changes the weights as little as it can (it minimises the divergence from equal weights).

Two rules, both on purpose:

- a value the mix asks for (> 0 %) that no shopper in the sample has cannot be reached by any
  weights: that is an error naming the field and the value, never a silent mismatch;
- a shopper whose value the mix gives 0 % or does not list (including ``unknown``: a persona
  without that field) is outside the population the mix describes and gets weight 0.

Why the effective n: weighting makes some shoppers count more than others, so the estimate is
less precise than N equal shoppers would give. statsmodels' ``DescrStatsW`` reads weights as
frequency weights (a weight of 3 = three identical observations), which with raw weights would
claim as many observations as the weights sum to. The weights are therefore rescaled to sum to
Kish's effective n, (Σw)² / Σw², before the t interval and test are formed, so the interval
widens as the weights grow uneven (and is the plain t interval when they are all equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from shop_r1.personas.sampler import DemographicMix
from shop_r1.simulator.analysis.ab import stats
from shop_r1.simulator.analysis.ab.stats import ALPHA, Metric
from shop_r1.simulator.analysis.report import persona_field

TOLERANCE = 1e-6  # largest gap between a weighted share and the mix's share
MAX_SWEEPS = 500  # raking converges in a handful of sweeps when the mix is reachable at all


class WeightsError(ValueError):
    """Weights that cannot reach the mix; the message names the mix file, field and value."""


class WeightsInfo(BaseModel):
    """What ``ab.json`` records about the weights (``ABResult.weights``)."""

    model_config = ConfigDict(extra="forbid")

    source: str  # the mix file
    fields: list[str]
    effective_n: float  # Kish's effective n (smaller arm in the between design)
    min: float
    max: float
    zero_weight: int = 0  # pairs / sessions outside the mix's population (weight 0)
    effective_n_by_arm: dict[str, float] | None = None  # between design


@dataclass(frozen=True)
class Raked:
    weights: np.ndarray  # one per unit, mean 1
    fields: tuple[str, ...]
    sweeps: int

    @property
    def effective_n(self) -> float:
        return kish(self.weights)

    @property
    def zero_weight(self) -> int:
        return int(np.count_nonzero(self.weights == 0))


def kish(weights: Sequence[float] | np.ndarray) -> float:
    """Kish's effective sample size (Σw)² / Σw²: N for equal weights, less the more uneven."""
    w = np.asarray(weights, float)
    ss = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / ss if ss > 0 else 0.0


def rake(personas: Sequence[Mapping[str, Any] | None], mix: DemographicMix) -> Raked:
    """Weights (mean 1) for these personas so that each field's weighted shares match ``mix``.

    Fields are read as the reports read them (``persona_field``: ``age_band`` falls back to
    ``age``; a missing value is ``unknown``)."""
    n = len(personas)
    if n == 0:
        raise WeightsError(f"{mix.where}: no shoppers to weight")
    names = tuple(mix.fields)
    columns = {name: [persona_field(dict(p) if p is not None else None, name) for p in personas] for name in names}
    active = np.ones(n, bool)
    for name in names:
        wanted = {v for v, pct in mix.fields[name].items() if pct > 0}
        active &= np.array([v in wanted for v in columns[name]])
    # Every value the mix asks for needs someone to carry its weight.
    codes: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    for name in names:
        values = [v for v, pct in mix.fields[name].items() if pct > 0]
        index = {v: i for i, v in enumerate(values)}
        for v in values:
            if not any(active[i] and columns[name][i] == v for i in range(n)):
                pct = mix.fields[name][v]
                elsewhere = any(x == v for x in columns[name])
                have = sorted(set(columns[name]))
                raise WeightsError(
                    f"{mix.where}: no shopper in the sample has {name}={v}"
                    + (" (among those whose other fields the mix covers)" if elsewhere else "")
                    + f"; the weights cannot reach the mix's {pct:g} % (the sample's {name} values: "
                    + f"{', '.join(have)})")
        codes[name] = np.array([index.get(v, 0) for v in columns[name]])
        targets[name] = np.array([mix.fields[name][v] for v in values], float) / 100.0
    w = active.astype(float)

    def worst() -> tuple[float, str]:
        gap, where = 0.0, ""
        total = w.sum()
        for name in names:
            shares = np.bincount(codes[name], weights=w, minlength=len(targets[name])) / total
            i = int(np.argmax(np.abs(shares - targets[name])))
            if abs(shares[i] - targets[name][i]) > gap:
                gap, where = float(abs(shares[i] - targets[name][i])), f"{name}, share {shares[i]:.4f} " \
                                                                       f"vs {targets[name][i]:.4f}"
        return gap, where

    sweeps = 0
    gap, where = worst()
    while gap > TOLERANCE:
        if sweeps == MAX_SWEEPS:
            raise WeightsError(
                f"{mix.where}: raking did not reach the mix's shares within {TOLERANCE:g} after {MAX_SWEEPS} "
                f"sweeps (largest gap in {where}): in this sample the fields' shares cannot all hold at once")
        for name in names:
            sums = np.bincount(codes[name], weights=w, minlength=len(targets[name]))
            factor = targets[name] * w.sum() / sums
            w = np.where(active, w * factor[codes[name]], 0.0)
        sweeps += 1
        gap, where = worst()
    return Raked(weights=w * n / w.sum(), fields=names, sweeps=sweeps)


def info(mix: DemographicMix, *raked: Raked, arms: Sequence[str] = ()) -> WeightsInfo:
    """The ``ab.json`` record of one (paired) or two (between: ``arms``) sets of weights."""
    w = np.concatenate([r.weights for r in raked])
    by_arm = {k: round(r.effective_n, 3) for k, r in zip(arms, raked)} if arms else None
    return WeightsInfo(source=mix.where, fields=list(mix.fields),
                       effective_n=round(min(r.effective_n for r in raked), 3),
                       min=float(w.min()), max=float(w.max()), zero_weight=sum(r.zero_weight for r in raked),
                       effective_n_by_arm=by_arm)


def _frequency(w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights rescaled to sum to their effective n (see the module docstring), and that n."""
    n_eff = kish(w)
    return w * (n_eff / w.sum()), n_eff


def _finite(p: float) -> float:
    return float(p) if math.isfinite(p) else 1.0


def paired(kind: str, a: Sequence[float], b: Sequence[float], weights: Sequence[float]) -> Metric:
    """A weighted paired comparison: the weighted mean of the per-pair differences B − A, with a
    t interval and test on the effective n. ``kind`` is "rate" (0/1 outcomes) or "mean"."""
    xa, xb, w = np.asarray(a, float), np.asarray(b, float), np.asarray(weights, float)
    if not len(xa) == len(xb) == len(w):
        raise ValueError(f"paired weighting needs one value and weight per pair, got {len(xa)}, {len(xb)}, {len(w)}")
    keep = w > 0
    xa, xb, w = xa[keep], xb[keep], w[keep]
    n = len(w)
    wide = (-1.0, 1.0) if kind == "rate" else (-math.inf, math.inf)
    if n < 2:
        return Metric(kind=kind, n=n, a=float(np.average(xa, weights=w)) if n else 0.0,
                      b=float(np.average(xb, weights=w)) if n else 0.0, diff=float((xb - xa).mean()) if n else 0.0,
                      ci95=wide, p_value=1.0, mde=None, method="weighted: too few pairs with weight",
                      effective_n=float(n))
    fw, n_eff = _frequency(w)
    d = DescrStatsW(xb - xa, weights=fw)
    diff, pa, pb = float(d.mean), float(np.average(xa, weights=w)), float(np.average(xb, weights=w))
    if float(d.std) == 0.0:
        # Every pair differs by the same amount: no spread to build an interval from; the weights
        # cannot move a constant difference, so for a rate the plain paired test stands.
        ci, p_value, method = _no_spread(kind, diff, stats.paired_rate, xa, xb, "in per-pair differences",
                                         "the unweighted paired test's")
    else:
        ci = _bounded(kind, *d.tconfint_mean(alpha=ALPHA))
        p_value = _finite(d.ttest_mean(0)[1])
        method = "weighted: t on per-pair differences (DescrStatsW, Kish effective n)"
    return Metric(kind=kind, n=n, a=pa, b=pb, diff=diff, ci95=ci, p_value=p_value, mde=None,
                  method=f"{method}; n_eff {n_eff:.1f}", effective_n=n_eff)


def _bounded(kind: str, lo: float, hi: float) -> tuple[float, float]:
    """An interval, clipped to [-1, 1] for a difference of rates."""
    return (max(-1.0, float(lo)), min(1.0, float(hi))) if kind == "rate" else (float(lo), float(hi))


def _no_spread(kind: str, diff: float, plain_test: Callable[[list[bool], list[bool]], Metric], xa: np.ndarray,
               xb: np.ndarray, where: str, whose: str) -> tuple[tuple[float, float], float, str]:
    """Interval, p-value and method text when the weighted statistic has no spread to work with."""
    if kind == "rate":
        plain = plain_test([bool(x) for x in xa], [bool(y) for y in xb])
        return plain.ci95, plain.p_value, f"weighted: no spread {where}, so interval and p are {whose}"
    return (diff, diff), 1.0 if diff == 0.0 else 0.0, f"weighted: no spread {where}"


def between(kind: str, a: Sequence[float], wa: Sequence[float], b: Sequence[float], wb: Sequence[float]) -> Metric:
    """A weighted comparison of two independent arms: weighted means, Welch's t interval and
    test (``CompareMeans``, unequal variances), each arm on its own effective n."""
    xa, wa_, xb, wb_ = (np.asarray(v, float) for v in (a, wa, b, wb))
    if len(xa) != len(wa_) or len(xb) != len(wb_):
        raise ValueError("between weighting needs one weight per session")
    xa, wa_ = xa[wa_ > 0], wa_[wa_ > 0]
    xb, wb_ = xb[wb_ > 0], wb_[wb_ > 0]
    n = min(len(xa), len(xb))
    pa = float(np.average(xa, weights=wa_)) if len(xa) else 0.0
    pb = float(np.average(xb, weights=wb_)) if len(xb) else 0.0
    if n < 2:
        return Metric(kind=kind, n=n, a=pa, b=pb, diff=pb - pa,
                      ci95=(-1.0, 1.0) if kind == "rate" else (-math.inf, math.inf), p_value=1.0, mde=None,
                      method="weighted: too few sessions with weight", effective_n=float(n))
    fa, na_eff = _frequency(wa_)
    fb, nb_eff = _frequency(wb_)
    da, db = DescrStatsW(xa, weights=fa), DescrStatsW(xb, weights=fb)
    diff = pb - pa
    n_eff = min(na_eff, nb_eff)
    if float(da.std) == 0.0 and float(db.std) == 0.0:
        # All-0 / all-1 arms: the weights cannot move them; for a rate the plain test stands.
        ci, p_value, method = _no_spread(kind, diff, stats.unpaired_rate, xa, xb, "in either arm",
                                         "the unweighted test's")
    else:
        cm = CompareMeans(db, da)
        ci = _bounded(kind, *cm.tconfint_diff(alpha=ALPHA, usevar="unequal"))
        p_value = _finite(cm.ttest_ind(usevar="unequal")[1])
        method = "weighted: Welch t (CompareMeans, Kish effective n per arm)"
    return Metric(kind=kind, n=n, a=pa, b=pb, diff=diff, ci95=ci, p_value=p_value, mde=None,
                  method=f"{method}; n_eff {na_eff:.1f} / {nb_eff:.1f}", effective_n=n_eff)
