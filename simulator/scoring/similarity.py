"""ROUGE-L similarity of names and typed text, and the threshold rule the rewards and metrics share."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from shop_r1.simulator.scoring.config import DEFAULT_CONFIG, ROUGE_MEASURES, RewardConfig, RougeMeasure

# Two floats this close count as equal when compared with the threshold: ROUGE-L scores are
# ratios of small integers (2/3, 3/4 ...) and a threshold typed as 0.75 must match 3/4 exactly.
_THRESHOLD_TOLERANCE = 1e-9

_TOKEN_SPLIT = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]+")

#: Tokens per side that ROUGE-L compares. Its LCS table is n x m cells (4,000 words a side took
#: 191 MB and 3.8 s; 1 MB texts were OOM-killed), while names and typed queries are a few dozen
#: tokens: longer texts are compared on their first tokens, in bounded memory and time.
MAX_ROUGE_TOKENS = 512


class NameAwareTokenizer:
    """Word tokens for ROUGE-L that suit both element names and typed text.

    rouge-score's default tokenizer lower-cases and replaces every character outside
    ``[a-z0-9]`` by a space. That splits ``results.sony_x.view_product`` fine, but it silently
    deletes every non-ASCII letter ("über" becomes "ber", a Japanese query becomes nothing and
    scores 0 against anything). This tokenizer case-folds and splits on any run of
    non-word characters or underscores -- so ``.``, ``_``, ``-`` and whitespace separate words
    -- while keeping letters and digits of every script. No stemming: names are identifiers and
    a stemmer would make ``view_products`` equal ``view_product``.
    """

    def tokenize(self, text: str) -> list[str]:
        return [tok for tok in _TOKEN_SPLIT.split(text.casefold()) if tok]


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer  # optional heavy dependency (the ml extra): pulls in nltk (~0.35 s)

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=NameAwareTokenizer())


def rouge_l(reference: str, candidate: str, measure: RougeMeasure = "fmeasure") -> float:
    """LCS-based ROUGE-L of ``candidate`` against ``reference`` (rouge-score's own algorithm).

    Returns 0.0 when either side has no word tokens (rouge-score's convention), so an empty
    or punctuation-only answer never earns similarity.
    """
    if measure not in ROUGE_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(ROUGE_MEASURES)}, got {measure!r}")
    reference, candidate = _bounded(reference), _bounded(candidate)
    score = _scorer().score(reference, candidate)["rougeL"]
    return float(getattr(score, measure))


def _bounded(text: str) -> str:
    """``text`` itself, or its first :data:`MAX_ROUGE_TOKENS` tokens (same tokens, same score
    for any text within the cap). The scan stops early, so a 1 MB text costs one pass."""
    if len(text) <= MAX_ROUGE_TOKENS * 2:  # cannot hold more tokens than that
        return text
    tokens: list[str] = []
    for match in _WORD.finditer(text.casefold()):
        tokens.append(match.group(0))
        if len(tokens) == MAX_ROUGE_TOKENS:
            break
    return " ".join(tokens)


def passes_threshold(similarity: float, config: RewardConfig = DEFAULT_CONFIG) -> bool:
    """Whether a similarity counts: ``>=`` (default) or ``>`` the threshold, within 1e-9."""
    if config.threshold_inclusive:
        return similarity >= config.similarity_threshold - _THRESHOLD_TOLERANCE
    return similarity > config.similarity_threshold + _THRESHOLD_TOLERANCE


def _cmp_word(similarity: float, config: RewardConfig) -> str:
    return (">=" if config.threshold_inclusive else ">") if passes_threshold(similarity, config) else (
        "<" if config.threshold_inclusive else "<="
    )

