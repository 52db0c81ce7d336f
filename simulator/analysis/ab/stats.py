"""The statistics of an A/B experiment: differences with 95 % intervals, p-values and the minimum
detectable effect, for paired and for unpaired (between-subjects) designs.

Why these methods:

- Paired binary outcomes (the same persona + intent on both builds): only discordant pairs carry
  information, so the p-value is the exact McNemar test (statsmodels) and the interval is
  Newcombe's hybrid score interval for a paired difference (method 10 of Newcombe 1998, built on
  statsmodels' Wilson intervals). Unlike the Wald interval it stays inside [-1, 1] and keeps its
  coverage at the small N an agent experiment has, including when no pair disagrees.
- Unpaired binary outcomes: Newcombe's interval for two independent proportions and a score
  test (both statsmodels), which do the same for independent arms.
- Continuous measures (steps, seconds): paired t interval on the per-pair differences (scipy);
  Welch's t interval when unpaired.
- The minimum detectable effect is the smallest true difference this N would detect with 80 %
  power at the 5 % level, so a reader can tell "no effect" from "too few shoppers to tell".
- Segments get Holm's correction (statsmodels ``multipletests``): many segments, many tests.
- Weighted by cohort share (``--weights``): see ``weights.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, test_proportions_2indep

ALPHA = 0.05
POWER = 0.8


class Metric(BaseModel):
    """One measure in both arms: ``diff`` is B minus A."""

    model_config = ConfigDict(extra="forbid")

    kind: str  # "rate" | "mean"
    n: int  # pairs (paired) or sessions per arm, smaller arm (between)
    a: float
    b: float
    diff: float
    ci95: tuple[float, float]
    p_value: float
    mde: float | None
    method: str
    discordant: tuple[int, int] | None = None  # paired rates: (A only, B only)
    effective_n: float | None = None  # weighted metrics (``weights.py``): Kish's effective n

    @field_validator("ci95", mode="before")
    @classmethod
    def _unbounded(cls, v: object) -> object:
        """JSON has no infinity: an unbounded interval is written as nulls; read them back as ±inf."""
        if isinstance(v, (list, tuple)) and len(v) == 2:
            return (-math.inf if v[0] is None else v[0], math.inf if v[1] is None else v[1])
        return v


class SegmentTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    value: str
    metric: str
    n: int
    a: float
    b: float
    diff: float
    ci95: tuple[float, float]
    p_value: float
    p_holm: float


def _z(q: float) -> float:
    return float(sps.norm.ppf(q))


def _wilson(k: int, n: int) -> tuple[float, float]:
    lo, hi = proportion_confint(k, n, alpha=ALPHA, method="wilson")
    return float(lo), float(hi)


def _clip(lo: float, hi: float) -> tuple[float, float]:
    return max(-1.0, lo), min(1.0, hi)


def paired_rate(a: Sequence[bool], b: Sequence[bool]) -> Metric:
    """A binary outcome observed for the same pairs on both builds."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need one value per pair in each arm, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return Metric(kind="rate", n=0, a=0.0, b=0.0, diff=0.0, ci95=(-1.0, 1.0), p_value=1.0, mde=None,
                      method="no pairs")
    both = sum(1 for x, y in zip(a, b) if x and y)
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    neither = n - both - a_only - b_only
    pa, pb = (both + a_only) / n, (both + b_only) / n
    diff = pb - pa
    la, ua = _wilson(both + a_only, n)
    lb, ub = _wilson(both + b_only, n)
    # Newcombe's phi, with his continuity correction of the cross product.
    denom = (both + a_only) * (neither + b_only) * (both + b_only) * (neither + a_only)
    cross: float = both * neither - a_only * b_only
    if cross > 0:
        cross = max(cross - n / 2, 0.0)
    phi = cross / math.sqrt(denom) if denom > 0 else 0.0
    lower = diff - math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    upper = diff + math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    table = [[both, a_only], [b_only, neither]]
    p_value = float(mcnemar(table, exact=True).pvalue) if a_only + b_only else 1.0
    # Variance of a paired difference of proportions ~ discordance / n; with none observed, the
    # pooled rate's Bernoulli variance stands in (an upper bound when arms are correlated).
    disc = (a_only + b_only) / n
    pooled = (pa + pb) / 2
    var1 = disc if disc > 0 else 2 * pooled * (1 - pooled)
    mde = (_z(1 - ALPHA / 2) + _z(POWER)) * math.sqrt(var1 / n) if var1 > 0 else None
    return Metric(kind="rate", n=n, a=pa, b=pb, diff=diff, ci95=_clip(lower, upper), p_value=p_value,
                  mde=None if mde is None else min(mde, 1.0), method="paired: Newcombe hybrid score CI, exact McNemar",
                  discordant=(a_only, b_only))


def unpaired_rate(a: Sequence[bool], b: Sequence[bool]) -> Metric:
    """A binary outcome in two independent arms."""
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return Metric(kind="rate", n=min(na, nb), a=0.0, b=0.0, diff=0.0, ci95=(-1.0, 1.0), p_value=1.0,
                      mde=None, method="an arm is empty")
    ka, kb = sum(map(bool, a)), sum(map(bool, b))
    pa, pb = ka / na, kb / nb
    lo, hi = confint_proportions_2indep(kb, nb, ka, na, method="newcomb", compare="diff", alpha=ALPHA)
    if ka + kb in (0, na + nb):  # both arms all-0 or all-1: the score test is undefined
        p_value = 1.0
    else:
        p_value = float(test_proportions_2indep(kb, nb, ka, na, method="score").pvalue)
    mde = _mde_unpaired(pa, na, nb)
    return Metric(kind="rate", n=min(na, nb), a=pa, b=pb, diff=pb - pa, ci95=_clip(float(lo), float(hi)),
                  p_value=p_value if math.isfinite(p_value) else 1.0, mde=mde,
                  method="between: Newcombe CI, score test")


def _mde_unpaired(p: float, na: int, nb: int) -> float | None:
    """The smallest absolute drop from ``p`` (or rise when p is small) detectable at this N."""
    h = NormalIndPower().solve_power(effect_size=None, nobs1=na, alpha=ALPHA, power=POWER, ratio=nb / na)
    base = math.asin(math.sqrt(min(max(p, 0.0), 1.0)))
    # Cohen's h = 2 asin(sqrt p2) - 2 asin(sqrt p1); move in the direction with room to move.
    target = base - h / 2 if base - h / 2 >= 0 else base + h / 2
    if target > math.pi / 2:
        return None
    return abs(math.sin(target) ** 2 - p)


def paired_mean(a: Sequence[float], b: Sequence[float]) -> Metric:
    """A continuous measure observed for the same pairs on both builds."""
    if len(a) != len(b):
        raise ValueError(f"paired measures need one value per pair in each arm, got {len(a)} and {len(b)}")
    n = len(a)
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if n == 0:
        return Metric(kind="mean", n=0, a=0.0, b=0.0, diff=0.0, ci95=(-math.inf, math.inf), p_value=1.0,
                      mde=None, method="no pairs")
    d = xb - xa
    diff = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if n < 2 or sd == 0.0:
        # Every pair differs by the same amount (often 0): no spread to build an interval from.
        ci = (diff, diff) if n >= 2 else (-math.inf, math.inf)
        p_value = 1.0 if diff == 0.0 or n < 2 else 0.0
        mde = None
    else:
        res = sps.ttest_rel(xb, xa)
        ci_obj = res.confidence_interval(confidence_level=1 - ALPHA)
        ci = (float(ci_obj.low), float(ci_obj.high))
        p_value = float(res.pvalue)
        mde = float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=ALPHA, power=POWER)) * sd
    return Metric(kind="mean", n=n, a=float(xa.mean()), b=float(xb.mean()), diff=diff, ci95=ci,
                  p_value=p_value, mde=mde, method="paired t on per-pair differences")


def unpaired_mean(a: Sequence[float], b: Sequence[float]) -> Metric:
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    n = min(len(xa), len(xb))
    if n < 2:
        return Metric(kind="mean", n=n, a=float(xa.mean()) if len(xa) else 0.0, b=float(xb.mean()) if len(xb) else 0.0,
                      diff=0.0, ci95=(-math.inf, math.inf), p_value=1.0, mde=None, method="too few sessions")
    diff = float(xb.mean() - xa.mean())
    if xa.std() == 0 and xb.std() == 0:
        return Metric(kind="mean", n=n, a=float(xa.mean()), b=float(xb.mean()), diff=diff, ci95=(diff, diff),
                      p_value=1.0 if diff == 0 else 0.0, mde=None, method="no spread in either arm")
    res = sps.ttest_ind(xb, xa, equal_var=False)
    ci_obj = res.confidence_interval(confidence_level=1 - ALPHA)
    pooled_sd = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
    d = NormalIndPower().solve_power(effect_size=None, nobs1=len(xa), alpha=ALPHA, power=POWER,
                                     ratio=len(xb) / len(xa))
    return Metric(kind="mean", n=n, a=float(xa.mean()), b=float(xb.mean()), diff=diff,
                  ci95=(float(ci_obj.low), float(ci_obj.high)), p_value=float(res.pvalue), mde=float(d) * pooled_sd,
                  method="between: Welch t")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order)."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]
