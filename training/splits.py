"""Train / validation / test splits without leakage, deterministic under a seed.

Rows are never assigned one by one: they are grouped (by session, or by persona) and whole groups
are assigned, so no session -- or, with ``by="persona"``, no shopper -- is seen in training and
evaluated on later.

Why the assignment depends only on the *set of group keys* and the seed (never on row counts):
the SFT dataset has one row per session and the RL dataset one row per step; both are split with
the same plan, so a session's chat and its steps always land in the same split. Computing the
plan once (:func:`assign_groups`) over every session of the traces and applying it to both
datasets (:func:`split` with ``assignment=``) guarantees that.

Sizes: with ``n`` groups, ``round(test * n)`` go to test and ``round(val * n)`` to validation
(half rounds up), but a split with a non-zero fraction gets at least one group as long as one
group is left for training. Groups are ordered by a seeded shuffle of their sorted keys.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

log = logging.getLogger(__name__)

SplitName = Literal["train", "validation", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "validation", "test")
SplitBy = Literal["session", "persona"]
SPLIT_BY: tuple[str, ...] = ("session", "persona")


class SplitError(ValueError):
    """Split settings that cannot work (fractions out of range, unknown ``by``, missing keys)."""


def _check_fractions(val: float, test: float) -> None:
    for name, value in (("val", val), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SplitError(f"{name} must be a number, got {value!r}")
        if not 0.0 <= value < 1.0:
            raise SplitError(f"{name} must lie in [0, 1), got {value!r}")
    if val + test >= 1.0:
        raise SplitError(f"val + test must be below 1 so that something is left to train on, got {val} + {test}")


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_sizes(n_groups: int, val: float, test: float) -> tuple[int, int, int]:
    """``(train, validation, test)`` group counts for ``n_groups`` groups (see module doc)."""
    _check_fractions(val, test)
    n_test = _round_half_up(test * n_groups)
    n_val = _round_half_up(val * n_groups)
    if test > 0 and n_test == 0 and n_groups - n_val >= 2:
        n_test = 1
    if val > 0 and n_val == 0 and n_groups - n_test >= 2:
        n_val = 1
    # Always leave a group for training when there is more than one group.
    while n_groups >= 2 and n_test + n_val > n_groups - 1:
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    if n_groups < 2:
        n_test = n_val = 0
    return n_groups - n_val - n_test, n_val, n_test


def assign_groups(keys: Iterable[str], *, val: float = 0.1, test: float = 0.2, seed: int = 0) -> dict[str, SplitName]:
    """Assign each distinct group key to a split; same keys and seed -> same assignment."""
    unique = sorted(set(keys))
    _, n_val, n_test = split_sizes(len(unique), val, test)
    order = list(unique)
    random.Random(f"shop-r1-split:{seed}").shuffle(order)
    plan: dict[str, SplitName] = {}
    for i, key in enumerate(order):
        plan[key] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
    return plan


def group_key(row: Mapping[str, Any], by: SplitBy) -> str:
    """The key a row is grouped by.

    ``by="persona"``: the row's ``persona_id``; a row without one is its own group per session
    (``"session:<id>"``) -- it cannot leak a persona it does not have.
    """
    if by not in SPLIT_BY:
        raise SplitError(f"by must be one of {', '.join(SPLIT_BY)}, got {by!r}")
    session = row.get("session_id")
    if not session:
        raise SplitError(f"row has no session_id: cannot split it without leakage (keys: {sorted(row)})")
    if by == "session":
        return f"session:{session}"
    persona = row.get("persona_id")
    return f"persona:{persona}" if persona else f"session:{session}"


def split(
    dataset_rows: Sequence[Mapping[str, Any]],
    val: float = 0.1,
    test: float = 0.2,
    by: SplitBy = "session",
    seed: int = 0,
    *,
    assignment: Mapping[str, SplitName] | None = None,
) -> dict[SplitName, list[Mapping[str, Any]]]:
    """Split rows into ``{"train", "validation", "test"}`` by whole groups; row order is kept.

    ``assignment`` (from :func:`assign_groups` over :func:`group_key` values) applies a plan made
    over a larger set of groups, e.g. every session of the traces, so that two datasets built from
    the same sessions split identically. Without it the plan is made from these rows' groups.
    """
    _check_fractions(val, test)
    keys = [group_key(row, by) for row in dataset_rows]
    if assignment is None:
        assignment = assign_groups(keys, val=val, test=test, seed=seed)
    out: dict[SplitName, list[Mapping[str, Any]]] = {name: [] for name in SPLITS}
    for index, (row, key) in enumerate(zip(dataset_rows, keys)):
        try:
            out[assignment[key]].append(row)
        except KeyError:
            raise SplitError(f"row {index} (group {key!r}) is not in the split plan") from None
    log.info("split %d rows by %s: %s", len(dataset_rows), by, {k: len(v) for k, v in out.items()})
    return out


__all__ = ["SPLITS", "SPLIT_BY", "SplitBy", "SplitError", "SplitName", "assign_groups", "group_key",
           "split", "split_sizes"]
