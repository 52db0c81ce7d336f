"""``--fail-if``: release gates on an experiment's result, e.g. ``added_to_cart.diff < -0.05``.

A condition is ``METRIC.FIELD OP NUMBER``: FIELD is ``a``, ``b``, ``diff``, ``p_value``, ``mde``,
``ci95.lo`` or ``ci95.hi``; OP one of ``< <= > >= == !=``. Conditions are parsed once into a
model (never evaluated as code), and a condition naming a metric the result lacks is an error,
not a silent pass.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shop_r1.simulator.analysis.ab.stats import Metric

Field = Literal["a", "b", "diff", "p_value", "mde", "ci95.lo", "ci95.hi"]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_GRAMMAR = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*)\.(?P<field>a|b|diff|p_value|mde|ci95\.lo|ci95\.hi)\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


class GateError(ValueError):
    """A --fail-if expression that cannot be used; the message quotes it and says why."""


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    metric: str
    field: Field
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float

    @classmethod
    def parse(cls, text: str) -> Condition:
        m = _GRAMMAR.match(text)
        if m is None:
            raise GateError(f"--fail-if {text!r}: expected METRIC.FIELD OP NUMBER, e.g. 'added_to_cart.diff < -0.05' "
                            f"(FIELD: a, b, diff, p_value, mde, ci95.lo, ci95.hi; OP: < <= > >= == !=)")
        return cls(text=text.strip(), metric=m["metric"], field=m["field"], op=m["op"], value=float(m["value"]))

    def observed(self, metric: Metric) -> float | None:
        if self.field == "ci95.lo":
            return metric.ci95[0]
        if self.field == "ci95.hi":
            return metric.ci95[1]
        return getattr(metric, self.field)

    def holds(self, metrics: Mapping[str, Metric]) -> bool:
        if self.metric not in metrics:
            raise GateError(f"--fail-if {self.text!r}: no metric {self.metric!r}; "
                            f"the result has {', '.join(sorted(metrics))}")
        value = self.observed(metrics[self.metric])
        return value is not None and _OPS[self.op](value, self.value)

    def describe(self, metrics: Mapping[str, Metric]) -> str:
        m = metrics[self.metric]
        return (f"failed: {self.text} ({self.metric}: A {m.a:.3f}, B {m.b:.3f}, diff {m.diff:+.3f}, "
                f"95% CI [{m.ci95[0]:+.3f}, {m.ci95[1]:+.3f}], p {m.p_value:.3g}, n {m.n})")


def failed(conditions: list[Condition], metrics: Mapping[str, Metric]) -> list[str]:
    """One line per condition that holds (the gate fails on it)."""
    return [c.describe(metrics) for c in conditions if c.holds(metrics)]
