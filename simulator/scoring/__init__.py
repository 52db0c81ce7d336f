"""Scoring in one place: the Shop-R1 rewards, the self-certainty math and the evaluation metrics.

Replay (``shop_r1.simulator.records.replay``) and training (``shop_r1.training``) both import from here,
so a replay report, a GRPO reward and an evaluation table are computed by the same code with
the same constants (:mod:`.constants`, the paper's values, defined once).

- :mod:`.config`: :class:`RewardConfig` (every knob, the paper's values as defaults);
- :mod:`.similarity`: ROUGE-L and the threshold rule;
- :mod:`.rewards`: the hierarchical reward (Table 1), the binary baseline, the total (Eq. 4);
- :mod:`.self_certainty`: Eq. 3 and which tokens are the rationale's;
- :mod:`.exact`: the one definition of an exact action (metric and binary reward);
- :mod:`.metrics`: exact / type accuracy and macro-F1 (Tables 2 and 3).
"""

from shop_r1.simulator.scoring.config import DEFAULT_CONFIG, ROUGE_MEASURES, RewardConfig, RougeMeasure
from shop_r1.simulator.scoring.constants import (
    PAPER_ALPHA,
    PAPER_BETA,
    PAPER_DARS,
    PAPER_THRESHOLD,
)
from shop_r1.simulator.scoring.exact import is_exact, text_same_meaning
from shop_r1.simulator.scoring.metrics import MetricsReport, TypeRow, compute_metrics
from shop_r1.simulator.scoring.rewards import (
    COMPONENTS,
    AnswerFormatError,
    LabelError,
    ParsedAnswer,
    RewardBreakdown,
    action_reward,
    answer_action,
    stated_action,
    binary_reward,
    coerce_label,
    exact_match,
    hierarchical_rewards,
    parse_answer,
    total_reward,
)
from shop_r1.simulator.scoring.self_certainty import (
    DEFAULT_SELF_CERTAINTY_FORM,
    SELF_CERTAINTY_FORMS,
    SelfCertaintyForm,
    completion_offsets,
    mean_over_mask,
    rationale_char_span,
    rationale_mask,
    rationale_parses,
    rationale_token_mask,
    rationale_token_mask_for_text,
    self_certainty,
    token_self_certainty,
)
from shop_r1.simulator.scoring.similarity import NameAwareTokenizer, passes_threshold, rouge_l

__all__ = [
    "DEFAULT_SELF_CERTAINTY_FORM", "SELF_CERTAINTY_FORMS", "SelfCertaintyForm",
    "COMPONENTS", "DEFAULT_CONFIG", "PAPER_ALPHA", "PAPER_BETA", "PAPER_DARS", "PAPER_THRESHOLD", "ROUGE_MEASURES",
    "AnswerFormatError", "LabelError", "answer_action", "stated_action", "text_same_meaning", "MetricsReport", "NameAwareTokenizer", "ParsedAnswer", "RewardBreakdown",
    "RewardConfig", "RougeMeasure", "TypeRow", "action_reward", "binary_reward", "coerce_label", "completion_offsets",
    "compute_metrics", "exact_match", "hierarchical_rewards", "is_exact", "mean_over_mask", "parse_answer",
    "passes_threshold", "rationale_char_span", "rationale_mask", "rationale_parses", "rationale_token_mask",
    "rationale_token_mask_for_text", "rouge_l", "self_certainty", "token_self_certainty", "total_reward",
]
