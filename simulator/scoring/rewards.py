"""The Shop-R1 rewards: the hierarchical action reward (Table 1), the binary baseline reward and
the objective's total (Eq. 4); the self-certainty rationale reward (Eq. 3) is in
:mod:`.self_certainty`.

Why this lives in ``simulator/`` and not in ``training/``: the simulator's replay compares a
policy's answers against recorded steps and scores them with these very functions, and imports
point downward only (training -> simulator -> envs/personas). ``training/`` imports the rewards
from here, so the replay report and the GRPO reward can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_r1.envs.actions import ACTION_MODELS, Action, ActionValidationError, parse_action
from shop_r1.simulator.agent.prompt import parse_output
from shop_r1.simulator.scoring.config import DEFAULT_CONFIG, RewardConfig
from shop_r1.simulator.scoring.exact import is_exact
from shop_r1.simulator.scoring.similarity import _cmp_word, passes_threshold, rouge_l

# --------------------------------------------------------------------------------------------
# Format: parsing the policy's answer
# --------------------------------------------------------------------------------------------


class LabelError(ValueError):
    """A label (the recorded action) that is not a valid action; the message says why."""


@dataclass(frozen=True)
class ParsedAnswer:
    """A well-formed answer: a non-empty rationale and a schema-valid action."""

    rationale: str
    action: Action


class AnswerFormatError(ValueError):
    """The answer fails the format check; the message is the reason shown to a person."""


def parse_answer(text: str, *, strict: bool = True) -> ParsedAnswer:
    """Parse and validate a policy's answer for the format reward.

    The extraction and validation are :func:`shop_r1.simulator.agent.prompt.parse_output`'s (one parser for
    the simulator, the evaluation and the reward), without the page checks: a well-formed
    answer naming a wrong element still earns the format reward. ``strict`` additionally asks
    that the whole text (surrounding whitespace allowed) is exactly one JSON object with the
    keys ``rationale`` and ``action`` and no others -- what the prompt asks for and what
    schema-constrained decoding produces. Raises :class:`AnswerFormatError`.
    """
    if not isinstance(text, str):
        raise AnswerFormatError(f"answer must be text, got {type(text).__name__}")
    parsed = parse_output(text)
    if strict and parsed.how not in (None, "json"):
        raise AnswerFormatError(f"not one JSON object: the answer was found only as {parsed.how}")
    if parsed.error is not None:
        raise AnswerFormatError(parsed.error.message)
    if strict and not parsed.strict:
        raise AnswerFormatError("answer has unexpected keys (only 'rationale' and 'action')")
    assert parsed.action is not None
    return ParsedAnswer(rationale=parsed.rationale, action=parsed.action)


def answer_action(text: str | None, config: RewardConfig = DEFAULT_CONFIG) -> Action | None:
    """The action an answer states under ``config``'s format rule, or None when it fails it.

    The one format rule of the project: the rewards pay an answer only when this returns an
    action, and the evaluation counts exactly these actions as predictions (anything else is
    unparsed), so "strict" (default) or "lenient" (``strict_format=False``, fenced/embedded JSON
    accepted) always means the same for both.
    """
    if text is None:
        return None
    try:
        return parse_answer(text, strict=config.strict_format).action
    except AnswerFormatError:
        return None


def stated_action(raw_text: str, action: Action | None, config: RewardConfig = DEFAULT_CONFIG) -> Action | None:
    """What a policy's answer counts as in evaluation and replay alike: its text read by
    :func:`answer_action` (what earns a reward is what counts), or, for a policy that returns a
    structured action without text (the scripted shopper), that action as is."""
    return answer_action(raw_text, config) if raw_text else action


#: An action label is a type, a name and a short text; anything longer is not one.
MAX_LABEL_CHARS = 262_144


def coerce_label(label: Any) -> Action:
    """A label as an action: an action model, an action dict, a full answer dict
    (``{"rationale", "action"}``) or the JSON text of either. Raises :class:`LabelError`."""
    if isinstance(label, ACTION_MODELS):
        return label
    if isinstance(label, (str, bytes)):
        if len(label) > MAX_LABEL_CHARS:
            raise LabelError(f"label is {len(label):,} characters; an action label is at most {MAX_LABEL_CHARS:,}")
        try:
            label = json.loads(label)
        except json.JSONDecodeError as exc:
            raise LabelError(
                f"label is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        except RecursionError as exc:
            raise LabelError("label JSON is nested too deeply to be an action") from exc
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
    parsed_action: Action | None
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


def _zero(reason: str, notes: dict[str, str], parsed: Action | None = None) -> RewardBreakdown:
    return RewardBreakdown(0.0, 0.0, 0.0, 0.0, 0.0, parsed, reason, notes)


def action_reward(
    prediction_text: str, label: Mapping[str, Any] | Action | str, config: RewardConfig = DEFAULT_CONFIG
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


def _field(action: Action, name: str) -> str:
    value = getattr(action, name, None)
    return value.strip() if isinstance(value, str) else ""


def _attribute_term(pred: Action, target: Action, config: RewardConfig) -> tuple[float, str]:
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
    fname: str, pred: Action, target: Action, weight: float, config: RewardConfig
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


def _value_term(pred: Action, target: Action, config: RewardConfig) -> tuple[float, str, dict[str, float]]:
    if target.type == "click":
        points, sim, note = _similarity_term("name", pred, target, config.dars, config)
        return points, note, {"name": sim}
    name_pts, name_sim, name_note = _similarity_term("name", pred, target, config.tas_name_similarity_weight, config)
    text_pts, text_sim, text_note = _similarity_term("text", pred, target, config.dars, config)
    return name_pts + text_pts, f"{name_note}; {text_note}", {"name": name_sim, "text": text_sim}


def hierarchical_rewards(
    predictions: Sequence[str], labels: Sequence[Mapping[str, Any] | Action | str], config: RewardConfig = DEFAULT_CONFIG
) -> list[float]:
    """Totals for a batch (the shape a GRPO reward function returns)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    return [action_reward(p, l, config).total for p, l in zip(predictions, labels)]


# --------------------------------------------------------------------------------------------
# The binary baseline reward
# --------------------------------------------------------------------------------------------


#: The binary reward's notion of "the same action" is the metric's (:mod:`.exact`), by construction.
exact_match = is_exact


def binary_reward(
    prediction_text: str, label: Mapping[str, Any] | Action | str, config: RewardConfig = DEFAULT_CONFIG
) -> float:
    """1.0 if the answer passes the format rule and the evaluation would count its action exact
    (:func:`.exact.is_exact`: same type and name, typed text of the same meaning), else 0.0.

    Reads ``config.strict_format`` (the format rule) and the similarity rule (threshold,
    ROUGE measure) -- the same fields the exact-accuracy metric reads.
    """
    target = coerce_label(label)
    try:
        answer = parse_answer(prediction_text, strict=config.strict_format)
    except AnswerFormatError:
        return 0.0
    return 1.0 if is_exact(answer.action, target, config) else 0.0



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
