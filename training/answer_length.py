"""How many tokens the reference answers take, and whether a completion budget holds them.

Why this exists: a GRPO rollout or an evaluation answer cut off by ``max_completion_length`` /
``max_new_tokens`` never closes its JSON, so it parses to nothing and earns 0 on every
component. When the budget is shorter than most reference answers, every rollout of a group
earns 0, the group advantage is 0 and the policy cannot move -- silently. That is what the
reproduction hit: 64 tokens against reference answers of median 97 tokens in the tiny model's
800-symbol BPE (156 of 156 test answers unparsed). The trainers now measure the references in
the model's own tokens, refuse a budget that truncates most of them, and record the figures.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shop_r1.simulator.agent.prompt import format_answer

log = logging.getLogger(__name__)

#: Above this share of truncated reference answers a budget is refused, not warned about.
REFUSE_SHARE = 0.5
#: Headroom of :func:`suggested_budget` over the longest reference (a policy's own rationale
#: may run longer than the teacher's).
HEADROOM = 1.25


class CompletionBudgetError(ValueError):
    """The completion budget would cut most reference answers before their JSON closes."""


def reference_lengths(rows: Iterable[Mapping[str, Any]], count: Callable[[str], int]) -> list[int]:
    """Tokens of each RL row's reference answer (its recorded rationale + label) plus its end
    token; rows without a rationale are measured as the label's JSON alone."""
    lengths = []
    for row in rows:
        label = row["label"]
        action = json.loads(label) if isinstance(label, str) else label
        rationale = row.get("rationale") or ""
        text = format_answer(rationale, action) if rationale.strip() else json.dumps(action)
        lengths.append(count(text) + 1)
    return lengths


def suggested_budget(lengths: list[int], *, multiple: int = 16) -> int:
    """A budget with :data:`HEADROOM` over the longest reference, rounded up to ``multiple``."""
    if not lengths:
        raise ValueError("no reference answers to size a completion budget from")
    return int(math.ceil(HEADROOM * max(lengths) / multiple) * multiple)


def budget_report(lengths: list[int], budget: int) -> dict[str, Any]:
    ordered = sorted(lengths)
    n = len(ordered)
    over = sum(1 for x in ordered if x > budget)
    return {"budget": budget, "references": n, "median": ordered[n // 2] if n else None,
            "p99": ordered[min(n - 1, int(0.99 * n))] if n else None, "max": ordered[-1] if n else None,
            "truncated": over, "truncated_share": over / n if n else 0.0}


def check_budget(lengths: list[int], budget: int, *, what: str, refuse: bool = True) -> dict[str, Any]:
    """The report of :func:`budget_report`; raises :class:`CompletionBudgetError` when more than
    :data:`REFUSE_SHARE` of the references exceed ``budget`` (with ``refuse``), else warns when
    some do."""
    report = budget_report(lengths, budget)
    if report["truncated"] == 0:
        return report
    msg = (f"{what} {budget} is shorter than {report['truncated']} of {report['references']} reference answers "
           f"(median {report['median']}, longest {report['max']} tokens in this model's tokenizer): those "
           f"completions end before their JSON closes and earn 0")
    if refuse and report["truncated_share"] > REFUSE_SHARE:
        raise CompletionBudgetError(f"{msg}; raise it to at least {suggested_budget(lengths)} "
                                    "(or allow_truncation / --allow-truncation for a smoke run)")
    log.warning("%s", msg)
    return report


__all__ = ["CompletionBudgetError", "HEADROOM", "REFUSE_SHARE", "budget_report", "check_budget",
           "reference_lengths", "suggested_budget"]
