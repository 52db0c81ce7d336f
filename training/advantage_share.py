"""How much of GRPO's group advantage each reward term is responsible for.

GRPO's advantage of completion i in group g is A_i = (R_i - mean_g R) / (std_g R + eps), with
R = sum_k w_k r_k over the reward functions k. Centring is linear, so A_i = sum_k C_ki with
C_ki = w_k (r_ki - mean_g r_k) / (std_g R + eps): each term's contribution is exact, not an
estimate. A term's *share* is sum_i |C_ki| / sum_k sum_i |C_ki|. A term with share ~0 does not
steer the policy however large its logged mean -- which is how the literal self-certainty
(alpha * s ~ 1e-6 next to action rewards of ~1000) shows itself to be inert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported by the caller
    import torch

#: TRL's epsilon in the group normalisation.
STD_EPS = 1e-4


def advantage_contributions(rewards_per_func: torch.Tensor, weights: Sequence[float] | torch.Tensor,
                            num_generations: int, scale: bool = True) -> torch.Tensor:
    """Sum over completions of |C_ki| for each term k (module doc), in float64: shape ``(K,)``.

    ``rewards_per_func`` is TRL's ``(groups x G, K)`` table (NaN where a function did not apply,
    taken as 0 as TRL's ``nansum`` does); ``scale`` is False when TRL's ``scale_rewards`` is
    ``"none"`` (no division by the group's std).
    """
    import torch  # optional heavy dependency: only the trainer calls this

    r = torch.nan_to_num(rewards_per_func.detach().double(), nan=0.0)
    n, k = r.shape
    if num_generations < 1 or n % num_generations:
        raise ValueError(f"{n} completions do not split into groups of {num_generations}")
    w = torch.as_tensor(weights, dtype=torch.float64, device=r.device).reshape(1, 1, k)
    grouped = r.view(-1, num_generations, k)
    centred = (grouped - grouped.mean(dim=1, keepdim=True)) * w  # (groups, G, K)
    if scale and num_generations > 1:
        total = (grouped * w).sum(-1)  # (groups, G)
        std = total.std(dim=1, keepdim=True)  # unbiased, as TRL's nanstd
        centred = centred / (std.unsqueeze(-1) + STD_EPS)
    return centred.abs().sum(dim=(0, 1)).cpu()


def shares(contributions: Sequence[float]) -> list[float]:
    """Each term's fraction of the summed |contributions| (all 0 when nothing moved)."""
    values = [float(c) for c in contributions]
    total = sum(values)
    return [v / total if total > 0 else 0.0 for v in values]


__all__ = ["STD_EPS", "advantage_contributions", "shares"]
