"""The one definition of an "exact" action, shared by the exact-accuracy metric and the binary reward.

The paper's metric reads: type and every field match -- click: the exact name; type_and_submit:
the exact name and a text "of the same meaning" (ROUGE-L at or above the threshold); terminate:
the type. Its binary baseline reward is "1 if the whole action matches exactly". Two rules for
the one word made the binary arm train on a stricter target than it was scored on (a near-miss
query was exact for the metric and worth 0 to the reward), so both read :func:`is_exact`.
"""

from __future__ import annotations

from shop_r1.envs.actions import Action, Click, TypeAndSubmit
from shop_r1.simulator.scoring.config import DEFAULT_CONFIG, RewardConfig
from shop_r1.simulator.scoring.similarity import passes_threshold, rouge_l


def text_same_meaning(label_text: str, predicted_text: str, config: RewardConfig = DEFAULT_CONFIG) -> bool:
    """Whether typed text counts as the label's: ROUGE-L (``config.rouge_measure``) passes the
    threshold. ROUGE-L's tokens are case-folded, so case and spacing never decide."""
    return passes_threshold(rouge_l(label_text, predicted_text, config.rouge_measure), config)


def is_exact(prediction: Action | None, label: Action, config: RewardConfig = DEFAULT_CONFIG) -> bool:
    """Whether ``prediction`` is the label's action (see module doc); None (unparsed) never is.

    Names are identifiers and must be equal; only typed text is compared by meaning.
    """
    if prediction is None or prediction.type != label.type:
        return False
    if isinstance(label, Click):
        return prediction.name == label.name  # type: ignore[union-attr]
    if isinstance(label, TypeAndSubmit):
        assert isinstance(prediction, TypeAndSubmit)
        return prediction.name == label.name and text_same_meaning(label.text, prediction.text, config)
    return True


__all__ = ["is_exact", "text_same_meaning"]
