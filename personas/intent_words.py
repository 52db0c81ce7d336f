"""How a shopper's intent reads: why they came (the mission's lead-in), whether it is their own short
need or a written goal, the words that name the item, and what a person would type for it.

Who shops owns this (not the page reader in ``shop_r1.envs.page_signals``): the scripted shopper's
queries, the constrained decoder's query words and the realism reference all read intents the
same way.
"""

from __future__ import annotations

import random
import re

from shop_r1.envs.text import STOP_WORDS as _STOP
from shop_r1.envs.text import tokens  # noqa: F401  (an intent's content words, as pages are read)
from shop_r1.personas.missions import split_mission

# Words that only say how to shop, not what: dropped from a typed query.
_GOAL_FILLER = set(
    "looking find want need get buy like would please also should must prefer choose pick ones one them "
    "something some that which with for and the a an in of to my me is are it its size color colour come "
    "price lower less than dollars under between id i'd im i'm am".split()
)
_OWN_INTENT_WORDS = 5
# Words that open a need without naming it ("i'm looking for a ..."): nobody types them.
_LEAD_FILLER = frozenset("i i'm im i'd id want need looking for a an some the to buy get find would like".split())  # intents this short are the shopper's own words (OPeRA queries), not a written goal


# -- missions: why a shopper came (not every visit is to buy) -----------------------------------
#
# An intent may open with a lead-in that says the shopper came to look, compare or check a
# price rather than to buy ("just browsing: trail running shoes"). The sampler writes these
# (``personas.missions``); shop-derived browse intents read "browsing kitchen" or "looking around
# kitchen". The rest of the intent is the need, which queries and fit are made from.

# (The lead-ins live with the personas that are sampled with them: ``personas.missions``.)


def intent_mission(intent: str) -> str:
    """Why the shopper came: ``buy``, ``browse``, ``compare`` or ``price_check``."""
    return split_mission(intent)[0]


def intent_kind(intent: str) -> str:
    """``own`` for a shopper's own short need ("Bike bott"), ``goal`` for a written instruction.

    People type differently for the two (OPeRA shoppers' first queries: median 2 words; WebShop
    workers given goals of median 13 words typed a median of 6), so the realism reference and
    the scripted shopper's query both depend on it.
    """
    intent = split_mission(intent)[1]
    return "own" if len(intent.split()) <= _OWN_INTENT_WORDS else "goal"


def content_words(intent: str) -> list[str]:
    """The intent's words that describe the item, in order, without filler, the budget or the
    mission's lead-in."""
    intent = split_mission(intent)[1]
    text = re.split(r",?\s*(?:and\s+)?price\s+(?:lower|less)|\b(?:under|below|less than)\s+(?:[$€£]|\d)", intent,
                    flags=re.I)[0]
    words = re.findall(r"[^\W_][\w'&-]*", text.lower())
    return [w for w in words if w not in _STOP and w not in _GOAL_FILLER and not re.fullmatch(r"[\d.]+", w)]


# Words that end a short need without naming a kind of product ("gift ideas", "kitchen stuff").
_GENERIC_HEADS = set(
    "gift gifts idea ideas stuff thing things item items product products something options deals "
    "accessories supplies essentials".split()
)
_PREPOSITION = re.compile(r"\b(?:for|with|without|in|under|from|to|of|by|on|that|which)\b", re.I)


def head_word(intent: str) -> str | None:
    """The kind of product a shopper's own short need names: its last content word before any
    preposition ("new computers" -> computers, "shoes for running" -> shoes), or None.

    Only own intents have one (see :func:`intent_kind`): a written goal's noun phrase ("a long
    lasting 6.76 fl oz bottle of l'eau d'issey") is not reliably headed by a word the product's
    title repeats. A generic last word ("gift ideas") names no kind either.
    """
    if intent_kind(intent) != "own":
        return None
    intent = split_mission(intent)[1]
    words = content_words(_PREPOSITION.split(intent, maxsplit=1)[0])
    head = words[-1] if words else None
    return None if head is None or head in _GENERIC_HEADS or len(head) < 3 else head


def typo(word: str, rng: random.Random) -> str:
    """One slip of the fingers: a swapped, dropped or doubled letter (never the first one)."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


# Where a written goal's item phrase ends and what qualifies it begins ("... recovery drink with
# flavor name: lemon lime", "... sneakers for men", "... seat. show me something in white").
_POST_MODIFIER = re.compile(r"[.;:!?]|,\s*and\b|\b(?:with|that|which|who|for|in|made|from|without|having|has|"
                            r"show|under|between|priced?)\b", re.I)


def _goal_query_words(goal: str, k: int) -> list[str]:
    """``k`` words a person types for a written goal: its first content words, as people copy the
    start of what they read, unless those stop short of the item itself; then the item phrase's
    last ``k`` words ("non gmo ... o2 oxygenated recovery drink with flavor lemon lime" is typed
    "o2 oxygenated recovery drink", not "non gmo gluten free artificial colors"). The item is the
    last content word before the first post-modifier ("with", "that", "for", a full stop)."""
    words = content_words(goal)
    if len(words) <= k:
        return words
    need = split_mission(goal)[1]
    # Skip a lead-in ("i am looking for", "i want") before looking for the first post-modifier.
    start = 0
    lead = re.match(r"\s*(?:i\s*(?:'m|am)?\s*(?:looking\s+for|need|want|would\s+like)|looking\s+for|find\s+me|"
                    r"i\s+will\s+love\s+to\s+have|get\s+me)\s+", need, re.I)
    if lead:
        start = lead.end()
    cut = _POST_MODIFIER.search(need, start)
    head_words = content_words(need[: cut.start()]) if cut else words
    if not head_words or len(head_words) <= k:
        return words[:k]
    return head_words[-k:]


def query_from_intent(intent: str, rng: random.Random | None = None, *, typo_rate: float = 0.0,
                      partial_rate: float = 0.0) -> str:
    """What a person would type for this intent: short, sometimes misspelt or cut off.

    Own intents are typed nearly as they are (they are what the person had in mind); written
    goals are condensed to their head words — 4 to 8 of them, median 6 as WebShop's workers did.
    ``typo_rate`` is per word, ``partial_rate`` the chance the last word is left half-typed
    ("kitchen kni"), as in OPeRA's recorded queries.
    """
    rng = rng or random.Random(0)
    intent = split_mission(intent)[1]
    if intent_kind(intent) == "own":
        words = re.findall(r"[^\W_][\w'&.-]*", intent.lower())  # any alphabet: "mérinos" stays one word
        while len(words) > 1 and words[0] in _LEAD_FILLER:  # "i want a lamp" is typed "lamp"
            words = words[1:]
        words = words[:4]
    else:
        words = _goal_query_words(intent, rng.choice((4, 5, 6, 6, 6, 7, 8)))
    if not words:
        return intent.strip().lower()[:40]
    words = [typo(w, rng) if rng.random() < typo_rate else w for w in words]
    if len(words) > 1 and len(words[-1]) >= 5 and rng.random() < partial_rate:
        words[-1] = words[-1][: max(3, int(len(words[-1]) * rng.uniform(0.5, 0.8)))]
    return " ".join(words)
