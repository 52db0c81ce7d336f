"""The Shop-R1 rewards: the hierarchical action reward (Table 1), the binary baseline reward,
the self-certainty rationale reward (Eq. 3) and the objective's total (Eq. 4).

Why this lives in ``simulator/`` and not in ``training/``: the simulator's replay compares a
policy's answers against recorded steps and scores them with these very functions, and imports
point downward only (training -> simulator -> envs/personas). ``training/`` imports the rewards
from here, so the replay report and the GRPO reward can never disagree.

Every constant of the paper is a field of :class:`RewardConfig`, with the paper's value as the
default; the choices the paper leaves open are fields too (see ``SHOP_R1_METHOD.md``).

``import simulator.rewards`` stays light: ``rouge_score`` (which pulls in nltk) is imported on
the first similarity computed, and torch only inside :func:`self_certainty`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from shop_r1.envs.actions import ActionValidationError, Click, Terminate, TypeAndSubmit, parse_action

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

log = logging.getLogger(__name__)

ActionT = Click | TypeAndSubmit | Terminate
RougeMeasure = Literal["fmeasure", "recall", "precision"]
ROUGE_MEASURES: tuple[str, ...] = ("fmeasure", "recall", "precision")

# Two floats this close count as equal when compared with the threshold: ROUGE-L scores are
# ratios of small integers (2/3, 3/4 ...) and a threshold typed as 0.75 must match 3/4 exactly.
_THRESHOLD_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


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

    format_reward: float = 0.5
    type_reward: float = 0.3
    click_name_presence: float = 0.2
    tas_name_presence: float = 0.1
    tas_text_presence: float = 0.1
    tas_name_similarity_weight: float = 0.1
    dars: float = 1000.0
    similarity_threshold: float = 0.75
    threshold_inclusive: bool = True
    rouge_measure: RougeMeasure = "fmeasure"
    require_type_match: bool = True
    strict_format: bool = True
    alpha: float = 0.005
    beta: float = 0.001
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


# --------------------------------------------------------------------------------------------
# ROUGE-L similarity
# --------------------------------------------------------------------------------------------

_TOKEN_SPLIT = re.compile(r"[\W_]+")


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
    from rouge_score import rouge_scorer  # lazy: pulls in nltk (~0.35 s)

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=NameAwareTokenizer())


def rouge_l(reference: str, candidate: str, measure: RougeMeasure = "fmeasure") -> float:
    """LCS-based ROUGE-L of ``candidate`` against ``reference`` (rouge-score's own algorithm).

    Returns 0.0 when either side has no word tokens (rouge-score's convention), so an empty
    or punctuation-only answer never earns similarity.
    """
    if measure not in ROUGE_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(ROUGE_MEASURES)}, got {measure!r}")
    score = _scorer().score(reference, candidate)["rougeL"]
    return float(getattr(score, measure))


def passes_threshold(similarity: float, config: RewardConfig = DEFAULT_CONFIG) -> bool:
    """Whether a similarity counts: ``>=`` (default) or ``>`` the threshold, within 1e-9."""
    if config.threshold_inclusive:
        return similarity >= config.similarity_threshold - _THRESHOLD_TOLERANCE
    return similarity > config.similarity_threshold + _THRESHOLD_TOLERANCE


def _cmp_word(similarity: float, config: RewardConfig) -> str:
    return (">=" if config.threshold_inclusive else ">") if passes_threshold(similarity, config) else (
        "<" if config.threshold_inclusive else "<="
    )


# --------------------------------------------------------------------------------------------
# Format: parsing the policy's answer
# --------------------------------------------------------------------------------------------


class LabelError(ValueError):
    """A label (the recorded action) that is not a valid action; the message says why."""


@dataclass(frozen=True)
class ParsedAnswer:
    """A well-formed answer: a non-empty rationale and a schema-valid action."""

    rationale: str
    action: ActionT


class AnswerFormatError(ValueError):
    """The answer fails the format check; the message is the reason shown to a person."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def parse_answer(text: str, *, strict: bool = True) -> ParsedAnswer:
    """Parse and validate a policy's answer for the format reward.

    The extraction and validation are :func:`shop_r1.simulator.prompt.parse_output`'s (one parser for
    the simulator, the evaluation and the reward), without the page checks: a well-formed
    answer naming a wrong element still earns the format reward. ``strict`` additionally asks
    that the whole text (surrounding whitespace allowed) is exactly one JSON object with the
    keys ``rationale`` and ``action`` and no others -- what the prompt asks for and what
    schema-constrained decoding produces. Raises :class:`AnswerFormatError`.
    """
    from shop_r1.simulator.prompt import parse_output

    if not isinstance(text, str):
        raise AnswerFormatError(f"answer must be text, got {type(text).__name__}")
    parsed = parse_output(text)
    if strict and parsed.how not in (None, "json"):
        raise AnswerFormatError(f"not one JSON object: the answer was found only as {parsed.how}")
    if not parsed.ok:
        raise AnswerFormatError(parsed.error or parsed.error_code or "invalid answer")
    if strict and not parsed.strict:
        raise AnswerFormatError("answer has unexpected keys (only 'rationale' and 'action')")
    assert parsed.action is not None
    return ParsedAnswer(rationale=parsed.rationale, action=parsed.action)


def coerce_label(label: Any) -> ActionT:
    """A label as an action: an action model, an action dict, a full answer dict
    (``{"rationale", "action"}``) or the JSON text of either. Raises :class:`LabelError`."""
    if isinstance(label, (Click, TypeAndSubmit, Terminate)):
        return label
    if isinstance(label, (str, bytes)):
        try:
            label = json.loads(label)
        except json.JSONDecodeError as exc:
            raise LabelError(
                f"label is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
    if isinstance(label, dict) and "type" not in label and isinstance(label.get("action"), dict):
        label = label["action"]
    try:
        return parse_action(label)
    except ActionValidationError as exc:
        raise LabelError(f"label is not a valid action: {exc}") from exc


# --------------------------------------------------------------------------------------------
# The hierarchical action reward (Table 1)
# --------------------------------------------------------------------------------------------

COMPONENTS: tuple[str, ...] = ("format", "type", "attribute", "value")


@dataclass(frozen=True)
class RewardBreakdown:
    """One prediction's reward, component by component, with the reason for each.

    ``notes`` maps a component name to a sentence a person can check, e.g.
    ``"name similarity 0.62 < threshold 0.75 -> 0"``.
    """

    format: float
    type: float
    attribute: float
    value: float
    total: float
    parsed_action: ActionT | None
    reason: str
    notes: Mapping[str, str] = field(default_factory=dict)
    similarities: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, float]:
        """Exactly the components and the total, as floats."""
        return {
            "format": float(self.format),
            "type": float(self.type),
            "attribute": float(self.attribute),
            "value": float(self.value),
            "total": float(self.total),
        }


def _zero(reason: str, notes: dict[str, str], parsed: ActionT | None = None) -> RewardBreakdown:
    return RewardBreakdown(0.0, 0.0, 0.0, 0.0, 0.0, parsed, reason, notes)


def action_reward(
    prediction_text: str, label: Mapping[str, Any] | ActionT | str, config: RewardConfig = DEFAULT_CONFIG
) -> RewardBreakdown:
    """The Shop-R1 hierarchical action reward v(a) of one answer against the recorded action.

    The label's type decides which terms exist (Table 1); the prediction's fields of the same
    name are compared. Every term is gated on the format: an answer that fails the format check
    earns 0 in total. With ``require_type_match`` (default) the attribute and value terms are
    earned only when the predicted type equals the label's -- otherwise answering
    ``type_and_submit`` with a good name on a ``click`` label would be paid for the name.
    A similarity below the threshold makes its value term 0 (not a smaller positive number).
    """
    target = coerce_label(label)
    notes: dict[str, str] = {}
    try:
        answer = parse_answer(prediction_text, strict=config.strict_format)
    except AnswerFormatError as exc:
        notes["format"] = f"format invalid: {exc} -> 0 (every component is gated on format)"
        return _zero(f"format invalid: {exc}", notes)
    pred = answer.action

    fmt = config.format_reward if config.use_format else 0.0
    notes["format"] = "valid JSON with rationale and action" + ("" if config.use_format else " (format reward disabled)")

    type_ok = pred.type == target.type
    typ = config.type_reward if (type_ok and config.use_type) else 0.0
    notes["type"] = (
        f"predicted {pred.type!r} {'==' if type_ok else '!='} label {target.type!r}"
        + ("" if config.use_type else " (type reward disabled)")
    )

    attribute = value = 0.0
    sims: dict[str, float] = {}
    if target.type == "terminate":
        notes["attribute"] = notes["value"] = "terminate has no attributes"
    elif config.require_type_match and not type_ok:
        notes["attribute"] = notes["value"] = "type mismatch -> 0 (require_type_match)"
    else:
        attribute, notes["attribute"] = _attribute_term(pred, target, config)
        value, notes["value"], sims = _value_term(pred, target, config)
        if not config.use_attribute:
            attribute, notes["attribute"] = 0.0, notes["attribute"] + " (attribute reward disabled)"
        if not config.use_value:
            value, notes["value"] = 0.0, notes["value"] + " (value reward disabled)"

    total = fmt + typ + attribute + value
    reason = "; ".join(f"{k}: {notes[k]}" for k in COMPONENTS)
    return RewardBreakdown(fmt, typ, attribute, value, total, pred, reason, notes, sims)


def _field(action: ActionT, name: str) -> str:
    value = getattr(action, name, None)
    return value.strip() if isinstance(value, str) else ""


def _attribute_term(pred: ActionT, target: ActionT, config: RewardConfig) -> tuple[float, str]:
    if target.type == "click":
        if _field(pred, "name"):
            return config.click_name_presence, f"name present +{config.click_name_presence:g}"
        return 0.0, "name missing -> 0"
    points, parts = 0.0, []
    for fname, weight in (("name", config.tas_name_presence), ("text", config.tas_text_presence)):
        if _field(pred, fname):
            points += weight
            parts.append(f"{fname} present +{weight:g}")
        else:
            parts.append(f"{fname} missing +0")
    return points, ", ".join(parts)


def _similarity_term(
    fname: str, pred: ActionT, target: ActionT, weight: float, config: RewardConfig
) -> tuple[float, float, str]:
    predicted, reference = _field(pred, fname), _field(target, fname)
    if not predicted:
        return 0.0, 0.0, f"{fname} missing -> 0"
    sim = rouge_l(reference, predicted, config.rouge_measure)
    cmp = _cmp_word(sim, config)
    if passes_threshold(sim, config):
        points = weight * sim
        return points, sim, f"{fname} similarity {sim:.2f} {cmp} threshold {config.similarity_threshold:g} -> {weight:g} x {sim:.2f} = {points:g}"
    return 0.0, sim, f"{fname} similarity {sim:.2f} {cmp} threshold {config.similarity_threshold:g} -> 0"


def _value_term(pred: ActionT, target: ActionT, config: RewardConfig) -> tuple[float, str, dict[str, float]]:
    if target.type == "click":
        points, sim, note = _similarity_term("name", pred, target, config.dars, config)
        return points, note, {"name": sim}
    name_pts, name_sim, name_note = _similarity_term("name", pred, target, config.tas_name_similarity_weight, config)
    text_pts, text_sim, text_note = _similarity_term("text", pred, target, config.dars, config)
    return name_pts + text_pts, f"{name_note}; {text_note}", {"name": name_sim, "text": text_sim}


def hierarchical_rewards(
    predictions: Sequence[str], labels: Sequence[Mapping[str, Any] | ActionT | str], config: RewardConfig = DEFAULT_CONFIG
) -> list[float]:
    """Totals for a batch (the shape a GRPO reward function returns)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    return [action_reward(p, l, config).total for p, l in zip(predictions, labels)]


# --------------------------------------------------------------------------------------------
# The binary baseline reward
# --------------------------------------------------------------------------------------------


def _normalise_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def exact_match(prediction: ActionT, label: ActionT) -> bool:
    """Whether two actions are the same action, as the binary reward judges it.

    Decided here: the type must be equal; names must be equal exactly (they are identifiers,
    already stripped by the schema); typed text is compared after collapsing whitespace and
    case-folding, because a storefront's search treats "Sony Headphones" and "sony headphones"
    as the same query. No similarity is involved: that is the point of the binary baseline.
    """
    if prediction.type != label.type:
        return False
    if isinstance(label, Click):
        return prediction.name == label.name  # type: ignore[union-attr]
    if isinstance(label, TypeAndSubmit):
        assert isinstance(prediction, TypeAndSubmit)
        return prediction.name == label.name and _normalise_text(prediction.text) == _normalise_text(label.text)
    return True


def binary_reward(
    prediction_text: str, label: Mapping[str, Any] | ActionT | str, config: RewardConfig = DEFAULT_CONFIG
) -> float:
    """1.0 if the answer is well formed and its action matches the label exactly, else 0.0.

    Only ``config.strict_format`` is read (whether a fenced/embedded answer is accepted).
    """
    target = coerce_label(label)
    try:
        answer = parse_answer(prediction_text, strict=config.strict_format)
    except AnswerFormatError:
        return 0.0
    return 1.0 if exact_match(answer.action, target) else 0.0


# --------------------------------------------------------------------------------------------
# Self-certainty (Eq. 3) and the rationale's tokens
# --------------------------------------------------------------------------------------------


def self_certainty(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Self-certainty of the rationale, Eq. 3: mean over masked tokens of KL(p_j || U) / |V|.

    s = 1/(N|V|) sum_j sum_i p_ij log(p_ij |V|) = 1/(N|V|) sum_j (log|V| - H(p_j)).
    ``logits``: ``(..., T, V)``; ``mask``: ``(..., T)``, true for rationale tokens only (see
    :func:`rationale_token_mask`). Returns one value per sequence (shape ``(...)``), 0 for a
    sequence without rationale tokens. Uniform logits give 0; a one-hot distribution gives the
    maximum log|V|/|V|. Only the masked positions are converted to float32, so a bf16 batch
    with a 150k vocabulary does not double in memory. The result keeps the autograd graph;
    ``.detach()`` it to use as a reward.
    """
    import torch

    if logits.dim() < 2:
        raise ValueError(f"logits must have shape (..., T, V), got {tuple(logits.shape)}")
    if tuple(mask.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal logits shape without the vocabulary "
            f"dimension {tuple(logits.shape[:-1])}"
        )
    vocab = logits.shape[-1]
    sel = mask.to(device=logits.device).bool()
    picked = logits[sel].float()  # (K, V)
    logp = torch.log_softmax(picked, dim=-1)
    p_logp = torch.where(torch.isfinite(logp), logp.exp() * logp, torch.zeros_like(logp))
    per_token_selected = (p_logp.sum(-1) + math.log(vocab)) / vocab
    per_token = torch.zeros(sel.shape, dtype=per_token_selected.dtype, device=logits.device)
    per_token = per_token.masked_scatter(sel, per_token_selected)
    count = sel.sum(-1).to(per_token.dtype)
    return per_token.sum(-1) / count.clamp(min=1.0)


@dataclass
class _ScanState:
    depth: int = 0
    awaiting_rationale_value: bool = False


def _string_end(text: str, start: int) -> int | None:
    """Index of the closing quote of the JSON string opening at ``start``; None if unterminated."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i
        else:
            i += 1
    return None


def _scan_object(text: str, start: int) -> tuple[tuple[int, int] | None, int | None]:
    """Scan the object opening at ``start``; return (rationale span, index after the object)."""
    state = _ScanState()
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = _string_end(text, i)
            if end is None:  # truncated output: the rationale runs to the end of the text
                return ((i + 1, n) if state.depth == 1 and state.awaiting_rationale_value else None), None
            if state.depth == 1:
                if state.awaiting_rationale_value:
                    return (i + 1, end), None
                j = end + 1
                while j < n and text[j] in " \t\r\n":
                    j += 1
                if j < n and text[j] == ":":
                    try:
                        key = json.loads(text[i : end + 1])
                    except json.JSONDecodeError:
                        key = None
                    state.awaiting_rationale_value = key == "rationale"
                    i = j + 1
                    continue
            i = end + 1
            continue
        if c in " \t\r\n":
            i += 1
            continue
        state.awaiting_rationale_value = False  # the value is not a string: not a rationale
        if c in "{[":
            state.depth += 1
        elif c in "}]":
            state.depth -= 1
            if state.depth == 0:
                return None, i + 1
        i += 1
    return None, None


def rationale_char_span(text: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of the rationale's string value in a raw answer.

    The span covers the characters between the quotes, escapes included as written (``\\"``
    stays two characters), so it lines up with tokenizer offsets of the raw text. Only a
    top-level ``"rationale"`` key counts (one nested in the action is ignored); the key itself
    may be written with escapes. Text before the object (lenient answers) is skipped. If the
    answer was cut off inside the rationale the span runs to the end of the text, so a truncated
    completion still gets a self-certainty. None when there is no rationale string.
    """
    pos = text.find("{")
    while pos != -1:
        span, after = _scan_object(text, pos)
        if span is not None:
            return span
        if after is None:
            return None
        pos = text.find("{", after)
    return None


def rationale_token_mask(
    offsets: Iterable[Sequence[int]], span: tuple[int, int] | None
) -> list[bool]:
    """For each token's ``(start, end)`` character offsets, whether it belongs to the rationale.

    A token belongs when it overlaps the span: byte-level BPE often glues the opening quote to
    the first word (``' "I'``), and that token carries rationale content. Tokens made only of
    the quotes or of JSON punctuation, and special tokens with empty offsets ``(0, 0)``, do
    not. ``offsets`` is a tokenizer's ``offset_mapping`` for the completion text.
    """
    out: list[bool] = []
    for pair in offsets:
        s, e = int(pair[0]), int(pair[1])
        out.append(span is not None and e > s and s < span[1] and e > span[0])
    return out


def rationale_token_mask_for_text(text: str, offsets: Iterable[Sequence[int]]) -> list[bool]:
    """:func:`rationale_token_mask` with the span located in ``text`` by :func:`rationale_char_span`."""
    return rationale_token_mask(offsets, rationale_char_span(text))


# --------------------------------------------------------------------------------------------
# The objective (Eq. 4)
# --------------------------------------------------------------------------------------------


def total_reward(v: float, s: float, kl: float, config: RewardConfig = DEFAULT_CONFIG) -> float:
    """v(a) + alpha * s(r) - beta * KL, the quantity Eq. 4 maximises, for reporting.

    In training the KL term is not part of the reward: GRPO applies it inside the loss with
    its own ``beta`` (set it to ``config.beta``). The reward function returns
    ``v + alpha * s``; this helper puts the three together for logs and reports.
    """
    return float(v) + config.alpha * float(s) - config.beta * float(kl)
