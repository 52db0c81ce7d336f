"""GRPO's advantage under each reward normalisation, and how much of it each reward term is.

TRL sums the weighted rewards, R_i = sum_k w_k r_ki, centres them on their group's mean and, by
``scale_rewards``, divides by a spread (eps = 1e-4):

* ``group`` (TRL's default, the GRPO paper's): A_i = (R_i - mean_g R) / (std_g R + eps), the std of
  the completion's own group of G;
* ``batch``: A_i = (R_i - mean_g R) / (std_B R + eps), one std over every completion of the batch;
* ``none`` (Dr. GRPO): A_i = R_i - mean_g R.

(std: unbiased, as TRL's ``nanstd``.) :func:`advantages` is that formula, written out so the tests
can pin it against TRL's own numbers.

What it does to the self-certainty weight alpha (R = v + alpha * s): in a group whose action
rewards v tie, R_i - mean_g R = alpha (s_i - mean_g s). Under ``group`` the std is alpha std_g s, so
A_i = (s_i - mean_g s) / (std_g s + eps / alpha): alpha cancels (down to the eps) and the update is
the z-score of s -- entropy minimisation at full strength. Under ``batch`` alpha stays a weight:
A_i = alpha (s_i - mean_g s) / std_B R, and std_B R is set by the action rewards of the other
groups. Under ``none`` A_i = alpha (s_i - mean_g s), absolute. docs/training.md has the table.

Centring is linear, so A_i = sum_k C_ki with C_ki = w_k (r_ki - mean_g r_k) / (spread + eps) under
any of the three (spread 0, no eps, for ``none``): each term's contribution is exact, not an
estimate. A term's *share* is sum_i |C_ki| / sum_k sum_i |C_ki|. A term with share ~0 does not
steer the policy however large its logged mean -- which is how the literal self-certainty
(alpha * s ~ 1e-6 next to action rewards of ~1000) shows itself to be inert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, SupportsFloat

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported by the caller
    import torch

#: TRL's epsilon in the normalisation.
STD_EPS = 1e-4

ScaleRewards = Literal["group", "batch", "none"]
SCALE_REWARDS: tuple[ScaleRewards, ...] = ("group", "batch", "none")


def _scale(scale: str | bool) -> ScaleRewards:
    # True/False: the earlier boolean argument (group std or none). A str is TRL's scale_rewards,
    # which TRL types as a plain str.
    if scale is True:
        return "group"
    if scale is False:
        return "none"
    for name in SCALE_REWARDS:
        if scale == name:
            return name
    raise ValueError(f"scale_rewards must be one of {', '.join(SCALE_REWARDS)}, got {scale!r}")


def _table(rewards_per_func: torch.Tensor, weights: Sequence[float] | torch.Tensor, num_generations: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # optional heavy dependency: only the trainer and the tests call this

    r = torch.nan_to_num(rewards_per_func.detach().double(), nan=0.0)
    n, k = r.shape
    if num_generations < 1 or n % num_generations:
        raise ValueError(f"{n} completions do not split into groups of {num_generations}")
    w = torch.as_tensor(weights, dtype=torch.float64, device=r.device).reshape(1, 1, k)
    return r.view(-1, num_generations, k), w


def _spread(total: torch.Tensor, scale: ScaleRewards) -> torch.Tensor:
    """(groups, 1) divisor of the centred rewards: std + eps, or 1 for ``none``."""
    import torch  # optional heavy dependency

    groups, g = total.shape
    if scale == "none":
        return torch.ones((groups, 1), dtype=total.dtype, device=total.device)
    if scale == "group":
        std = total.std(dim=1, keepdim=True) if g > 1 else torch.zeros((groups, 1), dtype=total.dtype)
    else:
        flat = total.reshape(-1)
        std = (flat.std() if flat.numel() > 1 else flat.new_zeros(())).expand(groups, 1)
    return std + STD_EPS


def advantages(rewards_per_func: torch.Tensor, weights: Sequence[float] | torch.Tensor, num_generations: int,
               scale: str | bool = "group") -> torch.Tensor:
    """TRL's advantage of each completion (module doc), float64, shape ``(groups x G,)``.

    ``rewards_per_func`` is TRL's ``(groups x G, K)`` reward table (NaN where a function did not
    apply, taken as 0 as TRL's ``nansum`` does).
    """
    grouped, w = _table(rewards_per_func, weights, num_generations)
    total = (grouped * w).sum(-1)  # (groups, G)
    centred = total - total.mean(dim=1, keepdim=True)
    return (centred / _spread(total, _scale(scale))).reshape(-1)


def advantage_contributions(rewards_per_func: torch.Tensor, weights: Sequence[float] | torch.Tensor,
                            num_generations: int, scale: str | bool = "group") -> torch.Tensor:
    """Sum over completions of |C_ki| for each term k (module doc), in float64: shape ``(K,)``.

    ``scale`` is TRL's ``scale_rewards`` (``group``, ``batch`` or ``none``).
    """
    grouped, w = _table(rewards_per_func, weights, num_generations)
    total = (grouped * w).sum(-1)
    centred = (grouped - grouped.mean(dim=1, keepdim=True)) * w  # (groups, G, K)
    centred = centred / _spread(total, _scale(scale)).unsqueeze(-1)
    # A group whose float32 sums tie has advantage exactly 0 in TRL (alpha * s differences below
    # float32's spacing next to ~1000 vanish there), so it contributes nothing here either.
    tied = zero_spread_groups(rewards_per_func, weights, num_generations).to(centred.device)
    centred = centred * (~tied).to(centred.dtype).view(-1, 1, 1)
    return centred.abs().sum(dim=(0, 1)).cpu()


def zero_spread_groups(rewards_per_func: torch.Tensor, weights: Sequence[float] | torch.Tensor,
                       num_generations: int) -> torch.Tensor:
    """Bool ``(groups,)``: the groups whose summed rewards do not vary (TRL's ``isclose(std, 0)``).

    Their advantages are 0 under every normalisation, so they only dilute the loss (and add KL);
    DAPO's dynamic sampling drops them.
    """
    import torch  # optional heavy dependency

    grouped, w = _table(rewards_per_func, weights, num_generations)
    # float32 as TRL sums them, so "ties" means what it means to the trainer
    total = (grouped.float() * w.float()).sum(-1)
    if num_generations < 2:
        return torch.ones(total.shape[0], dtype=torch.bool)
    std = total.std(dim=1)
    return torch.isclose(std, torch.zeros_like(std))


def shares(contributions: Iterable[SupportsFloat]) -> list[float]:
    """Each term's fraction of the summed |contributions| (all 0 when nothing moved)."""
    values = [float(c) for c in contributions]
    total = sum(values)
    return [v / total if total > 0 else 0.0 for v in values]


__all__ = ["SCALE_REWARDS", "STD_EPS", "ScaleRewards", "advantage_contributions", "advantages", "shares",
           "zero_spread_groups"]
