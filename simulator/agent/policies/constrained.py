"""JSON-structure-constrained decoding for local models: every answer is an executable action.

A 135M-parameter model cannot reliably emit valid JSON that names a real element of the page.
Instead of hoping, decoding is steered by a small grammar of the answer the prompt asks for,
one alternative per action model of ``shop_r1.envs.actions`` (rendered from the models' fields,
so a new action type needs no change here)::

    {"rationale": "<free text>", "action": {"type": "click", "name": "<clickable name>"}}
    {"rationale": "<free text>", "action": {"type": "type_and_submit", "name": "<input>", "text": "<free>"}}
    {"rationale": "<free text>", "action": {"type": "terminate"}}

The grammar is a short chain of segments, each of one of two kinds:

* a **choice** among literal strings (a forced literal is a choice of one). Options carry their
  continuation up to the next free part, e.g. ``click", "name": "`` or ``NAME"}}``, so that a
  choice decides what follows it and no token has to span two segments;
* a **free** string (rationale, typed text): any token made only of characters that need no JSON
  escaping (no ``"``, ``\\``, newline or control characters), bounded in characters and tokens,
  then a closing literal such as ``", "action": {"type": "``. A token may end the free part and
  start the closing literal at once (``."``), which is how models naturally write it.

Tokenizer-agnostic by construction: the processor works on the *decoded string* of every token
(precomputed once per tokenizer), never on token ids of particular words, so names need no
special tokenisation - any sequence of tokens that spells ``"NAME"`` is accepted. This assumes
token strings concatenate to the decoded text (true for byte-level BPE: GPT-2, Llama 3, Qwen,
SmolLM2); :class:`TokenTable` checks that on a probe and logs a warning otherwise.

Per-row state is advanced incrementally from the last generated token, so a batch of shoppers on
different pages decodes in one ``generate`` call, and the per-step cost is a few dict lookups
plus one boolean mask per row.
"""

from __future__ import annotations

import json
import logging
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shop_r1.envs.actions import ACTION_MODELS, action_fields, action_type
from shop_r1.envs.observation import Observation
from shop_r1.personas.intent_words import content_words

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

RATIONALE_PREFIX = '{"rationale": "'
ACTION_OPEN = '", "action": {"type": "'
CLOSE_ACTION = '"}}'


# --------------------------------------------------------------------------------------------
# The grammar
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """One of ``options`` (literal strings); ``then[i]`` is the grammar after option ``i``."""

    options: tuple[str, ...]
    then: tuple[tuple["Segment", ...], ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("a choice needs at least one option")
        if len(self.then) != len(self.options):
            raise ValueError("a choice needs one continuation per option")
        if any(not o for o in self.options):
            raise ValueError("choice options must be non-empty strings")


@dataclass(frozen=True)
class Free:
    """Free JSON-string text, then the literal ``closing``.

    ``min_chars`` counts characters after stripping whitespace, so a free string is never blank
    (the parser rejects a blank rationale).
    """

    closing: str
    max_chars: int
    max_tokens: int
    min_chars: int = 1

    def __post_init__(self) -> None:
        if not self.closing.startswith('"'):
            raise ValueError("a free string must be closed by a literal starting with '\"'")
        if self.max_chars < self.min_chars or self.max_tokens < 1:
            raise ValueError(f"bad bounds for free text: {self}")


Segment = Choice | Free


def literal(text: str, then: tuple[Segment, ...] = ()) -> Choice:
    """A forced literal: a choice of one."""
    return Choice((text,), (then,))


def _json_inner(text: str) -> str:
    """``text`` as it appears between the quotes of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class ActionGrammar:
    """The answer grammar for one page; build it with :func:`action_grammar`."""

    root: tuple[Segment, ...]
    clickable: tuple[str, ...]
    inputs: tuple[str, ...]

    def max_tokens(self) -> int:
        """An upper bound on the tokens any answer of this grammar takes (each token spells at
        least one character), plus one for the end-of-sequence token."""
        return _bound(self.root) + 1


def _bound(segments: Sequence[Segment]) -> int:
    if not segments:
        return 0
    head, rest = segments[0], segments[1:]
    if isinstance(head, Free):
        return min(head.max_tokens, head.max_chars) + len(head.closing) + _bound(rest)
    return max(len(o) + _bound(t + tuple(rest)) for o, t in zip(head.options, head.then))


def action_grammar(
    clickable: Sequence[str],
    inputs: Sequence[str],
    *,
    rationale_min_chars: int = 12,
    rationale_max_chars: int = 300,
    rationale_max_tokens: int = 60,
    text_max_chars: int = 80,
    text_max_tokens: int = 16,
    allow_terminate: bool = True,
    models: Sequence[type] = ACTION_MODELS,
    choices: Mapping[str, Sequence[str]] | None = None,
) -> ActionGrammar:
    """The grammar of an answer on a page with these clickable and input names.

    One alternative per action model (``models``, the project's action space by default), its
    fields in declaration order: ``name`` is a choice among the page's names of the model's
    ``target_kind``, a ``Literal`` field a choice among its values, any other string field free
    text (bounded by ``text_max_*``). Action types that the page cannot support are left out
    (``type_and_submit`` needs an input, ``click`` a clickable), so the model cannot pick an
    action that is sure to fail; ``terminate`` is always possible unless ``allow_terminate`` is
    False and something else is. ``rationale_min_chars`` keeps a small model from closing its
    rationale after two words when its preferred next token (a newline, say) is not allowed
    inside a JSON string. ``choices`` turns a free string field into a choice among the given
    values (e.g. ``{"text": search_queries(intent)}``: a small model then types a query made of
    the shopper's own words instead of an element name or a phrase from the prompt).
    """
    clickable = tuple(dict.fromkeys(n for n in clickable if n))
    inputs = tuple(dict.fromkeys(n for n in inputs if n))
    names_by_kind = {"clickable": clickable, "input": inputs}
    text = _FreeBounds(max_chars=text_max_chars, max_tokens=text_max_tokens,
                       choices={k: tuple(dict.fromkeys(v for v in vs if v)) for k, vs in (choices or {}).items()
                                if any(vs)})
    alternatives: list[tuple[str, tuple[Segment, ...]]] = []
    terminate: tuple[str, tuple[Segment, ...]] | None = None
    for model in models:
        kind = getattr(model, "target_kind", None)
        if kind is not None and not names_by_kind[kind]:
            continue
        alternative = _action_alternative(model, names_by_kind, text)
        if action_type(model) == "terminate":
            terminate = alternative
            if not allow_terminate:
                continue
        alternatives.append(alternative)
    if not alternatives and terminate is not None:
        alternatives.append(terminate)
    if not alternatives:
        raise ValueError("no action of the action space is possible on this page")
    types = Choice(tuple(o for o, _ in alternatives), tuple(t for _, t in alternatives))
    rationale = Free(closing=ACTION_OPEN, max_chars=rationale_max_chars, max_tokens=rationale_max_tokens,
                     min_chars=rationale_min_chars)
    root = (literal(RATIONALE_PREFIX), rationale, types)
    return ActionGrammar(root=root, clickable=clickable, inputs=inputs)


@dataclass(frozen=True)
class _FreeBounds:
    max_chars: int
    max_tokens: int
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field -> allowed values


def _action_alternative(model: type, names_by_kind: dict[str, tuple[str, ...]],
                        text: _FreeBounds) -> tuple[str, tuple[Segment, ...]]:
    """(the option after ``"type": "``, the grammar that follows it) for one action model.

    Every option and closing literal carries the text up to the next free part -- the next
    field's key (``", "name": "``) or the end of the action (``"}}``) -- so a choice decides
    what follows it and no token has to span two segments.
    """
    fields = action_fields(model)

    def after(i: int) -> str:
        return f'", "{fields[i]}": "' if i < len(fields) else CLOSE_ACTION

    def segments(i: int) -> tuple[Segment, ...]:
        if i == len(fields):
            return ()
        values = _field_choices(model, fields[i], names_by_kind)
        if values is None and fields[i] in text.choices:
            values = text.choices[fields[i]]
        if values is None:
            free = Free(closing=after(i + 1), max_chars=text.max_chars, max_tokens=text.max_tokens)
            return (free, *segments(i + 1))
        rest = segments(i + 1)
        options = tuple(_json_inner(v) + after(i + 1) for v in values)
        return (Choice(options, tuple(rest for _ in options)),)

    return action_type(model) + after(0), segments(0)


def _field_choices(model: type[BaseModel], name: str, names_by_kind: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """The values a field may take (the page's names, a Literal's values), or None for free text."""
    kind = getattr(model, "target_kind", None)
    if name == "name" and kind is not None:
        return names_by_kind[kind]
    annotation = model.model_fields[name].annotation
    if typing.get_origin(annotation) is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return tuple(values)
    if annotation is str:
        return None
    raise ValueError(f"{model.__name__}.{name}: the decoding grammar handles string fields only "
                     f"(free text, a page name or a Literal of strings), not {annotation!r}")


def executable_names(observation: Observation) -> tuple[list[str], list[str]]:
    """See :meth:`shop_r1.envs.observation.Observation.executable_names` (the one definition)."""
    return observation.executable_names()


def grammar_for_observation(observation: Observation, **bounds: Any) -> ActionGrammar:
    """:func:`action_grammar` over the page's :func:`executable_names`."""
    clickable, inputs = executable_names(observation)
    return action_grammar(clickable, inputs, **bounds)


TEXT_QUERY_MAX_CHARS = 80


def search_queries(intent: str | None, *, max_words: int = 3, limit: int = 24) -> tuple[str, ...]:
    """Short queries a person could type for ``intent``: runs of 1..``max_words`` of its content
    words, in order (OPeRA's shoppers typed a median of 2 words). Empty for no intent, and then
    the typed text stays free.

    A 135M model left free typed element names and phrases from the prompt into the search
    box; offered these, it chooses among queries that can find the item.
    """
    words = content_words(intent or "")[:8]
    runs = [" ".join(words[i:i + n]) for n in range(min(max_words, len(words)), 0, -1)
            for i in range(len(words) - n + 1)]
    return tuple(dict.fromkeys(q for q in runs if len(q) <= TEXT_QUERY_MAX_CHARS))[:limit]



# --------------------------------------------------------------------------------------------
# Token strings
# --------------------------------------------------------------------------------------------
# '<' and '>' too: the prompt's placeholders (``<name>``) can then never be echoed as they are,
# and a rationale or a query has no use for markup.
_FORBIDDEN_FREE = set('"\\\ufffd<>')


def _free_char_ok(ch: str) -> bool:
    return ch not in _FORBIDDEN_FREE and ch.isprintable()


class TokenTable:
    """Per-tokenizer precomputation: every token's string and the lookups the grammar needs.

    Build once per tokenizer (SmolLM2's 49k tokens take well under a second) and share it across
    requests and batches.
    """

    def __init__(self, tokenizer: Any, vocab_size: int | None = None) -> None:
        import torch  # optional heavy dependency (the ml extra)

        n_tok = len(tokenizer)
        self.vocab_size = max(vocab_size or 0, n_tok)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        strings = tokenizer.batch_decode([[i] for i in range(n_tok)], skip_special_tokens=False,
                                         clean_up_tokenization_spaces=False)
        self.strings: list[str] = [("" if i in special else s) for i, s in enumerate(strings)]
        self.strings += [""] * (self.vocab_size - n_tok)
        self.by_string: dict[str, list[int]] = {}
        for i, s in enumerate(self.strings):
            if s:
                self.by_string.setdefault(s, []).append(i)
        self.max_len = max((len(s) for s in self.by_string), default=1)
        eos = tokenizer.eos_token_id
        self.eos_ids: list[int] = sorted({eos} if isinstance(eos, int) else set(eos or []))
        if not self.eos_ids:
            raise ValueError("constrained decoding needs a tokenizer with an eos token")

        lengths = torch.tensor([len(s) for s in self.strings], dtype=torch.int32)
        free_ok = torch.tensor([bool(s) and all(_free_char_ok(c) for c in s) for s in self.strings])
        self.lengths = lengths
        self.free_ok = free_ok
        # Tokens that are only whitespace: a string that must close but has no content yet may not
        # take one more of them (a weak model's argmax can be a space forever).
        self.blank = torch.tensor([bool(s) and not s.strip() for s in self.strings])
        # Tokens that end a free string and start its closing: free chars, then '"' and more.
        self.quote_tokens: list[tuple[int, int, str]] = []  # (id, chars before '"', rest from '"')
        for i, s in enumerate(self.strings):
            q = s.find('"')
            if q >= 0 and all(_free_char_ok(c) for c in s[:q]):
                self.quote_tokens.append((i, q, s[q:]))
        self._check_concatenation(tokenizer)

    def _check_concatenation(self, tokenizer: Any) -> None:
        probe = '{"rationale": "I look for cheap shoes, 2 pairs.", "action": {"type": "click"}}'
        ids = tokenizer(probe, add_special_tokens=False)["input_ids"]
        if "".join(self.strings[i] for i in ids) != probe:
            log.warning("token strings of %s do not concatenate to the decoded text; constrained "
                        "decoding may reject valid spellings", type(tokenizer).__name__)

    def prefix_ids(self, text: str, limit: int | None = None) -> list[int]:
        """Ids of tokens whose string is a non-empty prefix of ``text`` (at most ``limit`` chars)."""
        out: list[int] = []
        top = min(len(text), self.max_len if limit is None else min(limit, self.max_len))
        for k in range(1, top + 1):
            out.extend(self.by_string.get(text[:k], ()))
        return out


# --------------------------------------------------------------------------------------------
# Per-row state
# --------------------------------------------------------------------------------------------
@dataclass
class _State:
    """Where one row is in its grammar: the segments still to do and progress in the first."""

    segments: tuple[Segment, ...]
    consumed: str = ""  # text consumed within segments[0]
    free_tokens: int = 0  # tokens spent on the free part of segments[0]
    alive: set[int] | None = None  # for a Choice: indices of options still consistent
    done: bool = False  # grammar complete: only eos
    broken: bool = False  # a token the grammar did not allow (should not happen): only eos
    text: str = ""  # the whole constrained output so far

    def __post_init__(self) -> None:
        self._enter()

    def _enter(self) -> None:
        self.consumed, self.free_tokens, self.alive = "", 0, None
        if not self.segments:
            self.done = True
        elif isinstance(self.segments[0], Choice):
            self.alive = set(range(len(self.segments[0].options)))

    def advance(self, token_string: str) -> None:
        if self.done or self.broken:
            return
        self.text += token_string
        seg = self.segments[0]
        if isinstance(seg, Free):
            self._advance_free(seg, token_string)
        else:
            self._advance_choice(seg, token_string)

    def _advance_free(self, seg: Free, s: str) -> None:
        q = self.consumed.find('"')
        if q < 0:  # still in the free part
            q_tok = s.find('"')
            free_part = s if q_tok < 0 else s[:q_tok]
            if not all(_free_char_ok(c) for c in free_part):
                self.broken = True
                return
            self.free_tokens += 1
        self.consumed += s
        q = self.consumed.find('"')
        if q >= 0:
            closing_done = self.consumed[q:]
            if not seg.closing.startswith(closing_done):
                self.broken = True
            elif closing_done == seg.closing:
                self.segments = self.segments[1:]
                self._enter()

    def _advance_choice(self, seg: Choice, s: str) -> None:
        self.consumed += s
        assert self.alive is not None
        self.alive = {i for i in self.alive if seg.options[i].startswith(self.consumed)}
        if not self.alive:
            self.broken = True
            return
        finished = [i for i in self.alive if seg.options[i] == self.consumed]
        if finished:
            # Options never prefix one another in our grammars except by design of the caller;
            # the first finished option wins (its continuation is entered).
            self.segments = tuple(seg.then[finished[0]]) + tuple(self.segments[1:])
            self._enter()

    # -- allowed tokens ---------------------------------------------------------------------
    def allowed(self, table: TokenTable, tokens_left: int, memo: dict[Any, Any]) -> "torch.Tensor | list[int]":
        """A boolean mask over the vocabulary, or a list of allowed ids."""
        if self.done or self.broken:
            return table.eos_ids
        seg = self.segments[0]
        if isinstance(seg, Choice):
            key = (id(seg), self.consumed)
            ids = memo.get(key)
            if ids is None:
                found: set[int] = set()
                for i in sorted(self.alive or ()):
                    found.update(table.prefix_ids(seg.options[i][len(self.consumed):]))
                ids = sorted(found)
                memo[key] = ids
            return ids or table.eos_ids
        rest = self.segments[1:]
        bound_key = ("bound", tuple(id(r) for r in rest))
        bound = memo.get(bound_key)
        if bound is None:
            bound = memo[bound_key] = _bound(rest)
        return self._allowed_free(seg, table, tokens_left, bound)

    def _allowed_free(self, seg: Free, table: TokenTable, tokens_left: int, bound: int) -> "torch.Tensor | list[int]":
        q = self.consumed.find('"')
        if q >= 0:  # inside the closing literal
            ids = table.prefix_ids(seg.closing[len(self.consumed) - q:])
            return ids or table.eos_ids
        n_chars = len(self.consumed)
        content = len(self.consumed.strip())  # min_chars counts content: a blank rationale is invalid
        must_close = (
            self.free_tokens >= seg.max_tokens
            or n_chars >= seg.max_chars
            # leave room for the closing literal and the worst case after it
            or tokens_left <= len(seg.closing) + bound + 1
        )
        closers = [i for i, before, rest in table.quote_tokens
                   if seg.closing.startswith(rest) and n_chars + before <= seg.max_chars
                   and (content >= seg.min_chars
                        or len((self.consumed + table.strings[i][:before]).strip()) >= seg.min_chars)]
        if must_close and content >= seg.min_chars:
            # Close now: only tokens that start the closing literal with nothing before it.
            return [i for i in closers if table.strings[i][0] == '"'] or table.eos_ids
        import torch  # optional heavy dependency (the ml extra)

        mask = table.free_ok & (table.lengths <= seg.max_chars - n_chars)
        if must_close:  # past its room but still blank: only tokens that add content
            mask = mask & ~table.blank
        if closers:
            mask = mask.clone()
            mask[torch.tensor(closers, dtype=torch.long)] = True
        return mask


# --------------------------------------------------------------------------------------------
# The logits processor
# --------------------------------------------------------------------------------------------
@dataclass
class ConstrainedRows:
    """The constrained state of a whole batch; turns into a transformers ``LogitsProcessor``."""

    table: TokenTable
    grammars: Sequence[ActionGrammar]
    prompt_len: int
    max_new_tokens: int
    states: list[_State] = field(init=False)
    _seen: int = field(init=False, default=0)
    _memo: dict[Any, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.states = [_State(tuple(g.root)) for g in self.grammars]

    def __call__(self, input_ids: "torch.LongTensor", scores: "torch.FloatTensor") -> "torch.Tensor":
        import torch  # optional heavy dependency (the ml extra)

        if input_ids.shape[0] != len(self.states):
            raise ValueError(f"constrained decoding was set up for {len(self.states)} rows, got {input_ids.shape[0]} "
                             "(beam search and num_return_sequences > 1 are not supported)")
        generated = input_ids.shape[1] - self.prompt_len
        if generated > self._seen:  # consume the token(s) appended since the last call
            new = input_ids[:, self.prompt_len + self._seen:].tolist()
            for state, row in zip(self.states, new):
                for tok in row:
                    if tok in self.table.eos_ids:
                        state.done = True
                    state.advance(self.table.strings[tok] if tok < len(self.table.strings) else "")
            self._seen = generated
        tokens_left = self.max_new_tokens - generated
        vocab = scores.shape[-1]
        allow = torch.zeros_like(scores, dtype=torch.bool)
        for row, state in enumerate(self.states):
            allowed = state.allowed(self.table, tokens_left, self._memo)
            if isinstance(allowed, list):
                allow[row, [i for i in allowed if i < vocab]] = True
            else:
                allow[row, : min(vocab, allowed.shape[0])] = allowed[:vocab].to(allow.device)
        return scores.masked_fill(~allow, -math.inf)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.states]

    @property
    def complete(self) -> list[bool]:
        return [s.done and not s.broken for s in self.states]


def make_logits_processor(rows: ConstrainedRows) -> Any:
    """Wrap :class:`ConstrainedRows` as a ``transformers.LogitsProcessor`` instance."""
    from transformers import LogitsProcessor  # optional heavy dependency (the ml extra)

    class _Processor(LogitsProcessor):
        def __call__(self, input_ids, scores):  # untyped: transformers declares it per subclass
            return rows(input_ids, scores)

    return _Processor()


__all__ = [
    "ACTION_OPEN",
    "ActionGrammar",
    "Choice",
    "ConstrainedRows",
    "Free",
    "RATIONALE_PREFIX",
    "TokenTable",
    "action_grammar",
    "executable_names",
    "grammar_for_observation",
    "literal",
    "make_logits_processor",
    "search_queries",
]
