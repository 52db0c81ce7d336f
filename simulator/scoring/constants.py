"""The Shop-R1 paper's constants (arXiv 2507.17842 v2), defined once.

:class:`~shop_r1.simulator.scoring.config.RewardConfig` takes its defaults from here and the
trainer settings (``shop_r1.training.config``) import the same names, so the replay report, the
GRPO reward and the trainer's flags can never carry two different "paper values".
"""

from __future__ import annotations

# Table 1: the hierarchical action reward.
PAPER_FORMAT_REWARD = 0.5
PAPER_TYPE_REWARD = 0.3
PAPER_CLICK_NAME_PRESENCE = 0.2
PAPER_TAS_NAME_PRESENCE = 0.1
PAPER_TAS_TEXT_PRESENCE = 0.1
PAPER_TAS_NAME_SIMILARITY_WEIGHT = 0.1
#: Difficulty-aware reward scaling of the long-text similarity terms.
PAPER_DARS = 1000.0
#: ROUGE-L below this earns no similarity reward.
PAPER_THRESHOLD = 0.75

# Eq. 4: the objective v(a) + alpha * s(r) - beta * KL.
PAPER_ALPHA = 0.005
PAPER_BETA = 0.001

__all__ = [
    "PAPER_ALPHA", "PAPER_BETA", "PAPER_CLICK_NAME_PRESENCE", "PAPER_DARS", "PAPER_FORMAT_REWARD",
    "PAPER_TAS_NAME_PRESENCE", "PAPER_TAS_NAME_SIMILARITY_WEIGHT", "PAPER_TAS_TEXT_PRESENCE",
    "PAPER_THRESHOLD", "PAPER_TYPE_REWARD",
]
