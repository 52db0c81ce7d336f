"""The self-certainty rationale reward (Eq. 3) and which tokens of an answer are its rationale.

Two forms (``form``), the same quantity up to the constant 1/|V|:

- ``"kl"`` (default): the mean over the N rationale tokens of KL(p_j || uniform), in nats --
  the quantity the self-certainty literature uses, between 0 (uniform) and log|V| (one-hot),
  O(1-10) for a language model;
- ``"literal"``: Eq. 3 as printed, s(r) = 1/(N|V|) sum_j sum_i p_ij log(p_ij |V|), i.e. the
  ``kl`` value divided by |V|. At |V| = 49,152 it is at most log|V|/|V| = 2.2e-4, so alpha * s
  <= 1.1e-6: below float32's resolution next to an action reward of ~1000 and invisible to
  GRPO's group normalisation whenever the action rewards differ. Offered to reproduce the text.

The math is here, beside the other rewards, so replay and training
share it; getting a policy's token distributions to it (a logits recorder, an extra forward
pass) is the trainer's business (``shop_r1.training.self_certainty``).

torch is imported inside the functions that take tensors: it is an optional heavy dependency
and ``import shop_r1.simulator.scoring`` must stay light for the simulator and the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from shop_r1.simulator.agent.prompt.jsonscan import string_value_span
from shop_r1.simulator.scoring.rewards import AnswerFormatError, parse_answer

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


SelfCertaintyForm = Literal["kl", "literal"]
SELF_CERTAINTY_FORMS: tuple[str, ...] = ("kl", "literal")
#: The default form (see module doc and docs/training.md for why it is not the literal one).
DEFAULT_SELF_CERTAINTY_FORM: SelfCertaintyForm = "kl"


def check_form(form: str) -> SelfCertaintyForm:
    """``form`` itself when it is one of :data:`SELF_CERTAINTY_FORMS`; ValueError naming it otherwise."""
    if form not in SELF_CERTAINTY_FORMS:
        raise ValueError(f"self-certainty form must be one of {', '.join(SELF_CERTAINTY_FORMS)}, got {form!r}")
    return form  # type: ignore[return-value]


def scale_for(form: SelfCertaintyForm, vocab: int) -> float:
    """The factor from per-token KL(p || U) to ``form``'s value: 1 (kl) or 1/|V| (literal)."""
    return 1.0 / vocab if check_form(form) == "literal" else 1.0


def _kl_to_uniform(logits: torch.Tensor, form: SelfCertaintyForm = DEFAULT_SELF_CERTAINTY_FORM) -> torch.Tensor:
    """KL(softmax(logits) || U) over the last dimension in float32, scaled for ``form``."""
    import torch  # optional heavy dependency (see module doc)

    vocab = logits.shape[-1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    p_logp = torch.where(torch.isfinite(logp), logp.exp() * logp, torch.zeros_like(logp))
    return (p_logp.sum(-1) + math.log(vocab)) * scale_for(form, vocab)


def token_self_certainty(logits: torch.Tensor, form: SelfCertaintyForm = DEFAULT_SELF_CERTAINTY_FORM) -> torch.Tensor:
    """Per-position self-certainty: ``(..., V)`` logits give ``(...)`` values, each KL(p || U)
    (``kl``: 0 for uniform logits, log|V| for one-hot) or KL(p || U) / |V| (``literal``)."""
    if logits.dim() < 1:
        raise ValueError(f"logits must have a vocabulary dimension, got shape {tuple(logits.shape)}")
    return _kl_to_uniform(logits, form)


def self_certainty(logits: torch.Tensor, mask: torch.Tensor,
                   form: SelfCertaintyForm = DEFAULT_SELF_CERTAINTY_FORM) -> torch.Tensor:
    """Self-certainty of the rationale: mean over masked tokens of KL(p_j || U) (``kl``) or of
    KL(p_j || U) / |V| (``literal``, Eq. 3 as printed).

    ``logits``: ``(..., T, V)``; ``mask``: ``(..., T)``, true for rationale tokens only (see
    :func:`rationale_token_mask`). Returns one value per sequence (shape ``(...)``), 0 for a
    sequence without rationale tokens. Only the masked positions are converted to float32, so
    a bf16 batch with a 150k vocabulary does not double in memory. The result keeps the
    autograd graph; ``.detach()`` it to use as a reward.
    """
    import torch  # optional heavy dependency (see module doc)

    if logits.dim() < 2:
        raise ValueError(f"logits must have shape (..., T, V), got {tuple(logits.shape)}")
    if tuple(mask.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal logits shape without the vocabulary "
            f"dimension {tuple(logits.shape[:-1])}"
        )
    sel = mask.to(device=logits.device).bool()
    per_token_selected = _kl_to_uniform(logits[sel], check_form(form))  # (K,)
    per_token = torch.zeros(sel.shape, dtype=per_token_selected.dtype, device=logits.device)
    per_token = per_token.masked_scatter(sel, per_token_selected)
    count = sel.sum(-1).to(per_token.dtype)
    return per_token.sum(-1) / count.clamp(min=1.0)


def rationale_parses(text: str, *, strict: bool = True) -> bool:
    """Whether an answer earns a self-certainty at all: it passes the format rule (one JSON object
    with a non-empty rationale and a valid action; ``strict`` as the action reward's), so its
    rationale is a rationale.

    Why: without the check an unparseable completion is paid for being confident. In a group of
    unparsed answers the action rewards tie at 0, and under group normalisation the advantage is
    then the z-score of s alone -- the policy is pushed to be sure of text that is not an answer.
    The trainer pays 0 to a completion for which this is False.
    """
    try:
        parse_answer(text, strict=strict)
    except AnswerFormatError:
        return False
    return True


def mean_over_mask(values: Sequence[float], mask: Sequence[bool]) -> float:
    """Eq. 3's average of per-token values over the rationale tokens; 0 for an empty mask
    (the same convention as :func:`self_certainty`)."""
    picked = [float(v) for v, m in zip(values, mask) if m]
    return sum(picked) / len(picked) if picked else 0.0


# --------------------------------------------------------------------------------------------
# Which tokens are the rationale's
# --------------------------------------------------------------------------------------------


def rationale_char_span(text: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of the rationale's string value in a raw answer.

    The span covers the characters between the quotes, escapes included as written (``\\"``
    stays two characters), so it lines up with tokenizer offsets of the raw text. Only a
    top-level ``"rationale"`` key counts (one nested in the action is ignored); the key itself
    may be written with escapes. Text before the object (lenient answers) is skipped. If the
    answer was cut off inside the rationale the span runs to the end of the text, so a truncated
    completion still gets a self-certainty. None when there is no rationale string.
    """
    return string_value_span(text, "rationale")


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


def completion_offsets(tokenizer: Any, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded completion (as TRL decodes it) and each token's character span in it.

    Offsets come from decoding growing prefixes, so they follow the text TRL hands to reward
    functions (``skip_special_tokens=True``) even for token sequences a tokenizer would never
    produce itself (sampled ones). Special tokens get empty spans; a token that ends inside a
    multi-byte character gets an empty span and the next token covers the character.
    """
    ids = [int(i) for i in ids]
    offsets: list[tuple[int, int]] = []
    prev = 0
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        end = len(text.rstrip("\ufffd")) if k < len(ids) else len(text)
        end = max(end, prev)
        offsets.append((prev, end))
        prev = end
    full = tokenizer.decode(ids, skip_special_tokens=True)
    return full, offsets


def rationale_mask(tokenizer: Any, ids: Sequence[int]) -> list[bool]:
    """For each completion token, whether it is part of the rationale string (Eq. 3's N tokens)."""
    text, offsets = completion_offsets(tokenizer, ids)
    return rationale_token_mask(offsets, rationale_char_span(text))
