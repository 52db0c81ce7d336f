"""Every knob of the Shop-R1 reward, in one frozen object that rewards, metrics and training share.

The paper's values are the defaults (from :mod:`.constants`); the choices the paper leaves open
are fields too (``require_type_match``, ``rouge_measure``, ``threshold_inclusive``), so a run
states every choice it made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

from shop_r1.simulator.scoring.constants import (
    PAPER_ALPHA,
    PAPER_BETA,
    PAPER_CLICK_NAME_PRESENCE,
    PAPER_DARS,
    PAPER_FORMAT_REWARD,
    PAPER_TAS_NAME_PRESENCE,
    PAPER_TAS_NAME_SIMILARITY_WEIGHT,
    PAPER_TAS_TEXT_PRESENCE,
    PAPER_THRESHOLD,
    PAPER_TYPE_REWARD,
)

RougeMeasure = Literal["fmeasure", "recall", "precision"]
ROUGE_MEASURES: tuple[str, ...] = ("fmeasure", "recall", "precision")



@dataclass(frozen=True)
class RewardConfig:
    """Every knob of the Shop-R1 reward, defaulting to the paper (arXiv 2507.17842 v2).

    The paper leaves three choices open; the defaults here are the sensible reading:
    ``require_type_match`` (attribute and value terms only when the type matches),
    ``rouge_measure="fmeasure"`` and ``threshold_inclusive`` (similarity >= threshold counts).
    ``use_*`` are the ablation switches of the paper's Table 4: a switched-off component is
    always 0. Note that ``use_format=False`` removes the +0.5 only: an answer that cannot be
    parsed still has no action, so it still earns nothing.
    """

    format_reward: float = PAPER_FORMAT_REWARD
    type_reward: float = PAPER_TYPE_REWARD
    click_name_presence: float = PAPER_CLICK_NAME_PRESENCE
    tas_name_presence: float = PAPER_TAS_NAME_PRESENCE
    tas_text_presence: float = PAPER_TAS_TEXT_PRESENCE
    tas_name_similarity_weight: float = PAPER_TAS_NAME_SIMILARITY_WEIGHT
    dars: float = PAPER_DARS
    similarity_threshold: float = PAPER_THRESHOLD
    threshold_inclusive: bool = True
    rouge_measure: RougeMeasure = "fmeasure"
    require_type_match: bool = True
    strict_format: bool = True
    alpha: float = PAPER_ALPHA
    beta: float = PAPER_BETA
    use_format: bool = True
    use_type: bool = True
    use_attribute: bool = True
    use_value: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise ValueError(f"RewardConfig.{f.name} must be a bool, got {value!r}")
            elif f.type in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"RewardConfig.{f.name} must be a number, got {value!r}")
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"RewardConfig.{f.name} must be finite and >= 0, got {value!r}")
        if not 0.0 <= self.similarity_threshold <= 1.0:
            raise ValueError(
                f"RewardConfig.similarity_threshold must lie in [0, 1] (ROUGE-L is a ratio), "
                f"got {self.similarity_threshold!r}"
            )
        if self.rouge_measure not in ROUGE_MEASURES:
            raise ValueError(
                f"RewardConfig.rouge_measure must be one of {', '.join(ROUGE_MEASURES)}, "
                f"got {self.rouge_measure!r}"
            )

    @property
    def max_reward(self) -> Mapping[str, float]:
        """The most each label type can earn: useful to normalise or to sanity-check logs."""
        base = self.format_reward + self.type_reward
        return {
            "click": base + self.click_name_presence + self.dars,
            "type_and_submit": base + self.tas_name_presence + self.tas_text_presence
            + self.tas_name_similarity_weight + self.dars,
            "terminate": base,
        }


DEFAULT_CONFIG = RewardConfig()

