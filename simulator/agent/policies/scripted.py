"""A persona-driven, rule-based shopper that shops the way people do, on any storefront.

It is the baseline policy and the source of synthetic sessions, so its behaviour is measured
against real people (``simulator.realism``): people mostly click — they open several products,
read reviews, pick options, page through results — and type few, short queries (OPeRA: 86 %
clicks, 10 % queries, median first query 2 words). So this shopper types a short query (with
the occasional typo or half-typed word), reformulates from the shop's own words when results
are poor, browses categories when search fails, compares several products before committing,
reads details as its persona would, and leaves with a reason grounded in the persona (over
budget, missing size, nothing close enough). A result fits only if it names the kind of product a
short need asks for (``page_signals.head_word``): sharing a qualifier is not enough, so "new
computers" on a shop without computers leads to other words or a category, not to a New Balance
sneaker as "the closest thing".

It reads only what a model would read — the reduced page's element table and simplified HTML
— and understands pages through the shared classifier (``envs.pagetype``), never one shop's
markup or URLs. Choices are seeded per persona and session slot (same seed, persona and slot → same
walk, in a rerun, a replay and both arms of an A/B pair; two sessions of a persona differ) and vary
between shoppers through the persona: patience and reading from conscientiousness, curiosity
(refinements, sort, browsing) from openness, typos from a per-persona rate, price sensitivity
from priorities and budget.

Storefronts as they are: a consent wall or a newsletter modal is answered first (accept or
reject by the persona — privacy-minded shoppers reject — in the shop's language; pop-ups are
closed, and a rare shopper subscribes with the project's fake address, which the trace redacts).
A page of product cards with their own "Add to cart" (one-page shops without product pages) is
shopped where it stands: filter by size, compare the cards, add from the best one, open the
cart drawer, proceed (the purchase guard stops the order). Not every shopper came to buy: the
intent's lead-in (``page_signals.split_mission``) makes a browsing, comparing or price-checking
shopper look at products and leave without adding to cart. A loop guard makes the shopper change
course the way people do: a control whose click failed is not clicked again, and after two failed
attempts at the same kind of action (opening items, searching, adding to cart, answering a
dialog) that kind is given up for the session; four failures in all and the shopper leaves.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit, answer_json
from shop_r1.envs.controls import REFINEMENT, control_label
from shop_r1.envs.observation import Element, Observation
from shop_r1.envs.pagetype import ItemLink, PageClass, classify, is_next_page
from shop_r1.simulator.agent.llm.sampling import seed_hash
from shop_r1.simulator.agent.policies.base import Policy, failure
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.envs.controls import ADD_TO_CART, CHECKOUT
from shop_r1.envs.page_signals import Card, Dialog, PageSignals, product_cards, read_dialog, read_signals
from shop_r1.envs.text import tokens
from shop_r1.personas.model import Persona
from shop_r1.personas.intent_words import content_words, head_word, intent_kind, query_from_intent
from shop_r1.personas.missions import split_mission

log = logging.getLogger(__name__)

Decision = tuple[Click | TypeAndSubmit | Terminate, str]

# Fake but well-formed checkout values; never a real person's data.
_ADDRESS = {
    "name": "Alex Doe",
    "full": "Alex Doe",
    "street": "12 Market Street",
    "address": "12 Market Street",
    "city": "Springfield",
    "zip": "12345",
    "postal": "12345",
    "postcode": "12345",
    "email": "alex.doe@example.com",
    "phone": "5550100",
    "state": "IL",
}
_DETAILS = re.compile(r"reviews?|ratings?|description|features|details|specifications?|read more|see more", re.I)
_SIZE_WORDS = re.compile(r"\bsize\s*:?\s*([a-z0-9.-]+)|\b(x{0,3}-?small|medium|x{0,3}-?large|xs|xl|xxl)\b", re.I)
_LEVEL = {"low": 0, "medium": 1, "high": 2}
_SIZE_ALIASES = {"xs": "x-small", "s": "small", "m": "medium", "l": "large", "xl": "x-large", "xxl": "xx-large"}
# Site chrome, not a department: never browsed as a category.
# Persona words that make a shopper refuse tracking cookies: privacy-minded people reject consent walls.
_PRIVACY = re.compile(r"privacy|tracking|cookie|personal data|data protection|surveillance|\bads?\b|advert|sponsored",
                      re.I)
_SIZE_TOKEN = re.compile(r"^\s*(?:size\s*:?\s*)?(x{0,3}-?s|x{0,3}-?l|m|xs|xl|xxl|small|medium|large|x-?small|x-?large|"
                         r"\d{1,2}(?:\.5)?)\s*$", re.I)
#: After this many failed attempts at one kind of action, that kind is given up for the session.
SAME_KIND_FAILURES = 2
#: After this many failed actions in all, the shopper leaves (people do not fight a broken site).
TOTAL_FAILURES = 4
#: Kinds of action whose click should change the page: one that changes nothing has failed.
_MUST_CHANGE = frozenset({"dialog", "open_item", "navigate", "next", "cart", "checkout"})
_COVERED = re.compile(r"covered|intercepts? pointer|obscured|overlay|dialog", re.I)
_CHROME = re.compile(r"\b(?:about|careers?|help|conditions|privacy|returns?|shipping|terms|contact|back to top|sign|"
                     r"log|account|cart|basket|bag|checkout|continue shopping|home|faq|polic\w*|store|visit|"
                     r"registry|gift cards?|sell|deals)\b", re.I)


def _size(text: str) -> str:
    t = text.strip().lower().strip(".,;:")
    return _SIZE_ALIASES.get(t, t)


@dataclass
class _State:
    rng: random.Random
    intent: str
    kind: str  # "own" or "goal" (see page_signals.intent_kind)
    want: set[str]  # content words of the intent
    head: str | None  # the kind of product an own intent names (page_signals.head_word)
    query: str
    budget: float | None
    patience: int  # products to look at before giving up
    compare: int  # products to look at before buying one that fits
    reads: float  # chance of reading reviews/details on a product page
    curious: float  # chance of refining, sorting, paging
    price_sensitive: bool
    typo_rate: float
    wanted_size: str | None
    searched: int = 0
    tried_queries: list[str] = field(default_factory=list)
    browsed: set[str] = field(default_factory=set)  # category link texts followed
    seen_items: set[str] = field(default_factory=set)  # item texts opened
    viewed: list[str] = field(default_factory=list)  # product titles viewed
    read_on: set[str] = field(default_factory=set)
    chosen_groups: set[str] = field(default_factory=set)
    refined: bool = False
    sorted: bool = False
    in_cart: bool = False
    reviewed_cart: bool = False
    checkout_clicked: bool = False
    typed: set[str] = field(default_factory=set)
    ordered: bool = False
    last_reject: str = ""
    vocabulary: dict[str, str] = field(default_factory=dict)  # shop words -> a link text using them
    # Why the shopper came ("buy", "browse", "compare", "price_check") and how many products a
    # looker looks at before leaving.
    mission: str = "buy"
    look_limit: int = 3
    # Storefronts as they are: dialogs, and the loop guard's memory.
    aux: random.Random = field(default_factory=lambda: random.Random(0))  # draws added for dialogs/missions
    consent: str = "accept"  # or "reject"
    subscribes: bool = False
    last_key: str = ""  # the last action, as JSON
    last_role: str = ""  # its kind
    last_name: str = ""
    last_error: str = ""
    failures: Counter[str] = field(default_factory=Counter)
    cover_failures: Counter[str] = field(default_factory=Counter)
    failed_total: int = 0
    avoid: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    dialogs_answered: int = 0
    cart_opened: bool = False
    card_looks: int = 0


def _persona_field(persona: Persona | None, name: str, default: Any = None) -> Any:
    """A persona field, or ``default`` for a shopper without a persona."""
    return default if persona is None else getattr(persona, name)


def _budget_from(intent: str, persona: Persona | None, price_sensitive: bool) -> float | None:
    """The session's ceiling: a price stated in the intent is firm; the persona's budget is a
    monthly spend, so it only caps one item for price-sensitive shoppers, and loosely (x2)."""
    m = re.search(r"(?:lower|less|under|below|cheaper)\s+(?:than\s+)?\$?\s*(\d+(?:\.\d+)?)", intent, re.I)
    if m:
        return float(m.group(1))
    budget = _persona_field(persona, "budget")
    if price_sensitive and isinstance(budget, (int, float)) and budget > 0:
        return 2.0 * float(budget)
    return None


def _trait(persona: Persona | None, trait: str) -> int:
    big_five = _persona_field(persona, "big_five", {}) or {}
    value = big_five.get(trait) if isinstance(big_five, dict) else None
    return _LEVEL.get(str(value or "medium").lower(), 1)


def _stem(word: str) -> str:
    if word.endswith("es") and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and len(word) > 3:
        return word[:-1]
    return word


def _stems(word: str) -> set[str]:
    """The word and its singulars: "shoes" -> shoes, shoe, sho ("-es" plurals like "boxes" need the
    last; "shoes" needs only the "-s")."""
    out = {word}
    if word.endswith("s") and len(word) > 3:
        out.add(word[:-1])
    if word.endswith("es") and len(word) > 4:
        out.add(word[:-2])
    return out


def _has(word: str, have: set[str]) -> bool:
    """Whether a title's words include ``word``, up to a plural or a shared 5-letter stem."""
    stems = _stems(word)
    return word in have or any(stems & _stems(h) or (len(word) >= 5 and h.startswith(word[:5])) for h in have)


def _overlap(want: set[str], text: str) -> float:
    if not want:
        return 0.0
    have = tokens(text)
    return sum(1 for w in want if _has(w, have)) / len(want)


def _fit(st: _State, text: str) -> float:
    """How well an item's text fits the intent: 0 when it lacks the kind of product asked for.
    Sharing only a qualifier is no fit: "new computers" is not met by a New Balance sneaker."""
    have = tokens(text)
    if st.head is not None and not all(_has(h, have) for h in (tokens(st.head) or {st.head})):
        return 0.0
    return _overlap(st.want, text)


def _title_words(text: str) -> list[str]:
    return re.findall(r"[0-9a-z]+", text.split("$")[0].split(" EUR ")[0].lower())


def _same_product(link_text: str, title: str) -> bool:
    """Whether a link leads to a product already viewed: "customers also viewed" and the results
    list name it with other trimmings (a price, a rating, a cut-off title), so the titles'
    words are compared, as far as the shorter one goes."""
    a, b = _title_words(link_text), _title_words(title)
    n = min(len(a), len(b))
    return n >= 3 and a[:n] == b[:n]


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class ScriptedPolicy(Policy):
    """Rule-based shopper; one instance serves many sessions (state is kept per session id)."""

    name = "scripted"

    def __init__(self, seed: int = 0, allow_purchase: bool = False, default_intent: str = "wireless headphones"):
        self.seed = seed
        self.allow_purchase = allow_purchase
        self.default_intent = default_intent
        self._states: dict[str, _State] = {}

    def describe(self) -> dict[str, Any]:
        return {"policy": self.name, "seed": self.seed, "allow_purchase": self.allow_purchase}

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        out: list[PolicyResponse] = []
        for req in requests:
            try:
                action, rationale = self._decide(req)
            except Exception as exc:  # a rule bug must not stop the other shoppers
                log.exception("scripted policy failed for %s", req.session_id)
                out.append(PolicyResponse(action=None, error=failure("internal", f"scripted policy: {exc}")))
                continue
            out.append(PolicyResponse(action=action, rationale=rationale, raw_text=answer_json(rationale, action)))
        return out

    # --- state -------------------------------------------------------------------------------
    def _state(self, req: PolicyRequest) -> _State:
        st = self._states.get(req.session_id)
        if st is not None:
            return st
        # Seeded by persona, not by the session id (which holds the run id): a rerun and a replay
        # repeat the walk, and the two arms of an A/B pair share their random draws.
        who = _persona_field(req.persona, "persona_id") or req.session_id
        # ... and by the session's slot in its run (the index ending the session id, which both arms
        # of an A/B pair share), so that two sessions of one persona in a run walk differently.
        who = f"{who}#{req.session_id.rsplit('-', 1)[-1]}"
        rng = random.Random(seed_hash(self.seed, who))
        mission, intent = split_mission(str(_persona_field(req.persona, "intent") or self.default_intent))
        priorities = " ".join(_persona_field(req.persona, "priorities", []) or []).lower()
        conscientious = _trait(req.persona, "conscientiousness")
        openness = _trait(req.persona, "openness")
        # Careful people slip less; OPeRA's typed queries show typos and half words in ~1 of 10.
        typo_rate = (0.10, 0.06, 0.03)[conscientious]
        size = _SIZE_WORDS.search(intent)
        price_sensitive = any(w in priorities for w in ("price", "value", "deal", "budget")) or rng.random() < 0.3
        st = _State(
            rng=rng,
            intent=intent,
            kind=intent_kind(intent),
            # Words as titles are tokenised: hyphenated ones by their parts ("t-shirt" -> shirt), and
            # short function words of other languages ("en", "de") dropped, as tokens() drops them.
            want={t for w in content_words(intent) for t in tokens(w)} or set(content_words(intent)) or tokens(intent),
            head=head_word(intent),
            query=query_from_intent(intent, rng, typo_rate=typo_rate, partial_rate=typo_rate),
            budget=_budget_from(intent, req.persona, price_sensitive),
            patience=3 + conscientious + rng.randint(0, 2),
            compare=1 + conscientious + rng.randint(0, 1),
            reads=(0.35, 0.6, 0.85)[conscientious] if "review" in priorities or conscientious else 0.3,
            curious=(0.2, 0.35, 0.5)[openness],
            price_sensitive=price_sensitive,
            typo_rate=typo_rate,
            wanted_size=_size(size.group(1) or size.group(2)) if size else None,
        )
        # New draws come from a stream of their own, so a buyer on a plain shop walks as before.
        aux = random.Random(seed_hash(self.seed, who, "storefront"))
        st.aux = aux
        st.mission = mission
        st.look_limit = {"price_check": 1 + aux.randint(0, 1), "compare": st.compare + 1 + aux.randint(0, 1),
                         "browse": 2 + aux.randint(0, 2)}.get(mission, st.patience)
        st.consent = "reject" if _privacy_minded(req.persona, aux) else "accept"
        st.subscribes = st.consent == "accept" and aux.random() < 0.05
        self._states[req.session_id] = st
        return st

    # --- decision ----------------------------------------------------------------------------
    def _decide(self, req: PolicyRequest) -> Decision:
        st = self._state(req)
        self._note_outcome(st, req)
        raw = req.observation
        dialog = None if "dialog" in st.avoid else read_dialog(self._unblocked(st, raw, keep_covered=True),
                                                                 st.last_error)
        obs = self._unblocked(st, raw, keep_covered=False)
        page = classify(obs)
        sig = read_signals(obs)
        self._avoid(st, sig)
        cards = [] if "add_to_cart" in st.avoid else product_cards(obs)
        decision = self._route(st, obs, page, sig, dialog, cards)
        self._remember(st, decision[0], obs, page, sig, dialog, cards)
        return decision

    def _route(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals, dialog: Dialog | None,
               cards: list[Card]) -> Decision:
        if page.confirmation or st.ordered:
            st.ordered = True
            return Terminate(), "My order is placed, so I'm done shopping."
        if st.failed_total >= TOTAL_FAILURES:
            return Terminate(), ("This site keeps failing me: what I click does not work, so I'll leave."
                                 if not st.in_cart else "The site keeps failing me; my item stays in the cart and I'll leave.")
        if dialog is not None:
            answer = self._answer_dialog(st, dialog)
            if answer is not None:
                return answer
        self._learn_vocabulary(st, obs, page)
        if page.type == "checkout":
            return self._at_checkout(st, sig)
        if page.type == "cart":
            return self._at_cart(st, obs, page, sig)
        if page.type == "product" or _product_by_signals(obs, page, sig, cards):
            return self._on_product(st, obs, page, sig)
        if len(cards) >= 2:
            return self._on_cards(st, obs, page, sig, cards)
        if page.type == "listing":
            return self._on_listing(st, obs, page, sig)
        return self._elsewhere(st, obs, page, sig)

    # --- storefronts as they are: loop guard, dialogs, cards -------------------------------------
    def _note_outcome(self, st: _State, req: PolicyRequest) -> None:
        """Read what became of the shopper's last action: a failure the executor reported, or a
        click that should have changed the page and changed nothing, counts as a failed attempt
        at that kind of action (the loop guard's memory)."""
        if not st.last_key or not req.history:
            return
        last = req.history[-1]
        action = getattr(last, "action", None)
        if json.dumps(action, sort_keys=True) != st.last_key:
            return
        error = str(getattr(last, "error", "") or "")
        unchanged = (last.url == req.observation.url
                     and " ".join(last.simplified_html.split()) == " ".join(req.observation.simplified_html.split()))
        failed = bool(error) or (unchanged and st.last_role in _MUST_CHANGE)
        st.last_error = error if error else ("the click changed nothing" if failed else "")
        if not failed:
            if st.last_role == "dialog":
                st.dialogs_answered += 1
                # What the dialog covered can be clicked again: those failures were the dialog's doing.
                for role, n in st.cover_failures.items():
                    st.failures[role] = max(0, st.failures[role] - n)
                    st.failed_total = max(0, st.failed_total - n)
                    if st.failures[role] < SAME_KIND_FAILURES:
                        st.avoid.discard(role)
                st.cover_failures.clear()
            st.last_key = ""
            return
        st.failures[st.last_role] += 1
        st.failed_total += 1
        if st.last_role == "add_to_cart":  # it did not go in: the shopper still has to add it
            st.in_cart = False
        elif st.last_role == "checkout":
            st.checkout_clicked = False
        if error and _COVERED.search(error) and st.last_role != "dialog":
            st.cover_failures[st.last_role] += 1  # a dialog may be in the way: answered, this is forgiven
        elif st.last_name:
            st.blocked.add(st.last_name)
        if st.failures[st.last_role] >= SAME_KIND_FAILURES:
            st.avoid.add(st.last_role)
            log.info("scripted shopper %s gives up %s after %d failed attempts", req.session_id, st.last_role,
                     st.failures[st.last_role])
        st.last_key = ""

    def _unblocked(self, st: _State, obs: Observation, *, keep_covered: bool) -> Observation:
        """The page without the controls this shopper already failed on (and, for deciding what to
        do on the page, without controls a modal covers)."""
        els = tuple(el for el in obs.elements if el.name not in st.blocked
                    and (keep_covered or not getattr(el, "covered", False)))
        return obs if len(els) == len(obs.elements) else dataclasses.replace(obs, elements=els)

    def _avoid(self, st: _State, sig: PageSignals) -> None:
        """Kinds of action given up after repeated failures are not offered to the rules."""
        if "search" in st.avoid:
            sig.search_input = None
        if "add_to_cart" in st.avoid:
            sig.add_to_cart = sig.buy_now = None
        if "checkout" in st.avoid:
            sig.checkout = None
        if "cart" in st.avoid:
            sig.cart_link = None
        if "refine" in st.avoid:
            sig.refinements = []
        if "sort" in st.avoid:
            sig.sort_low_to_high = None
        if "option" in st.avoid:
            sig.option_groups = {}

    def _remember(self, st: _State, action: Click | TypeAndSubmit | Terminate, obs: Observation, page: PageClass,
                  sig: PageSignals, dialog: Dialog | None, cards: list[Card]) -> None:
        st.last_key = json.dumps(action.to_json(), sort_keys=True)
        st.last_name = getattr(action, "name", "") or ""
        st.last_role = _role(action, obs, page, sig, dialog, cards)

    def _answer_dialog(self, st: _State, dialog: Dialog) -> Decision | None:
        """Answer a consent wall (accept or reject, as the persona would) or a pop-up (close it;
        a rare shopper subscribes with the fake address, which the trace redacts)."""
        if dialog.kind == "consent":
            first, second = (dialog.reject, dialog.accept) if st.consent == "reject" else (dialog.accept, dialog.reject)
            el = first or second or dialog.close
            if el is None:
                return None
            if el is dialog.reject:
                why = st.aux.choice(["I don't want to be tracked, so I'll reject the optional cookies first.",
                                     "Only the necessary cookies for me; I'll refuse the rest before shopping."])
            elif el is dialog.accept:
                why = st.aux.choice(["A cookie banner covers the page; I'll accept it so I can shop.",
                                     "I'll accept the cookies to get the banner out of the way."])
            else:
                why = "A cookie notice is in the way; I'll close it."
            return self._click(el, why)
        if st.subscribes and dialog.email is not None and dialog.email.name not in st.typed:
            st.typed.add(dialog.email.name)
            return TypeAndSubmit(name=dialog.email.name, text=_ADDRESS["email"]), \
                "The offer sounds useful; I'll sign up with my e-mail address."
        el = dialog.close or (dialog.reject if dialog.kind != "consent" else None)
        if el is None:
            return None
        return self._click(el, st.aux.choice([
            "A pop-up is covering the page; I'll close it and keep shopping.",
            "I'm not interested in the newsletter, so I'll close this pop-up.",
            "No thanks to the offer; closing it to get back to the shop.",
        ]))

    def _on_cards(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals,
                  cards: list[Card]) -> Decision:
        """A page of product cards that add to cart where they stand (no product pages): filter,
        compare the cards, add from the best one, open the cart drawer, proceed."""
        titles = [_card_title(c) for c in cards]
        for t in titles:
            if t not in st.viewed:
                st.viewed.append(t)
        if st.in_cart:
            if sig.checkout is not None and not st.checkout_clicked and st.rng.random() < 0.7:
                st.checkout_clicked = True
                return self._click(sig.checkout, "My item is in the cart; I'll proceed to checkout.")
            if sig.cart_link is not None and not st.cart_opened:
                st.cart_opened = True
                return self._click(sig.cart_link, "I added it; let me open my cart to check it.")
            return Terminate(), st.rng.choice([
                "It's in my cart; I'll think it over before paying.",
                "I'll leave it in the cart and decide later.",
            ])
        if not st.refined and "refine" not in st.avoid:
            size = _size_filter(st, obs, cards)
            if size is not None:
                st.refined = True
                return self._click(size, f"I need size {st.wanted_size}, so I'll filter the products by it.")
            if st.aux.random() < st.curious and sig.refinements:
                matching = [el for el in sig.refinements if _overlap(st.want, el.text) > 0]
                if matching:
                    st.refined = True
                    choice = st.aux.choice(matching)
                    return self._click(choice, f"I'll narrow the products to {choice.text.strip()}.")
        scored = []
        for card, title in zip(cards, titles):
            fit = _fit(st, card.text)
            if st.budget is not None and card.price is not None:
                fit += 0.15 if card.price <= st.budget else -0.4
            scored.append((fit + st.aux.random() * 0.05, card, title))
        scored.sort(key=lambda t: t[0], reverse=True)
        best_fit, best, best_title = scored[0]
        over = st.budget is not None and best.price is not None and best.price > st.budget
        st.card_looks += 1
        if st.mission != "buy":  # the cards are in view: looking at them is what a looker came for
            return Terminate(), self._looked_reason(st, len(cards), best_title)
        if best_fit >= 0.34 and not over:
            st.in_cart = True
            return self._click(best.add, st.rng.choice([
                f"Comparing the {len(cards)} products shown, '{_short(best_title)}' fits what I want best; "
                f"I'll add it to my cart.",
                f"'{_short(best_title)}' is what I came for{' and within my budget' if st.budget else ''}; "
                f"adding it to the cart.",
            ]))
        if sig.search_input is not None and st.searched == 0:
            return self._search(st, sig.search_input, st.query, f"Nothing here is quite it; I'll search for '{st.query}'.")
        again = self._reformulate(st, sig)
        if again is not None:
            return again
        browse = self._browse(st, obs, page, "None of these products is what I want.")
        if browse is not None:
            return browse
        nxt = next((el for el in obs.elements if el.kind == "clickable" and not el.disabled and is_next_page(el)), None)
        if nxt is not None and "next" not in st.avoid and st.card_looks < 4:
            return self._click(nxt, "Nothing on this page fits; let me see the next page.")
        st.last_reject = "it costs more than I want to spend" if over else "none of them is what I'm after"
        return self._give_up(st)

    def _looked_reason(self, st: _State, n: int, title: str) -> str:
        if st.mission == "price_check":
            return f"I wanted to know what this costs here; '{_short(title)}' tells me, so I'm done for now."
        if st.mission == "compare":
            return f"I've compared {n} products; '{_short(title)}' is the one to remember, but I'm not buying today."
        return f"Just browsing: I've had a look at {n} products and I'll leave it there."

    # --- helpers -----------------------------------------------------------------------------
    def _learn_vocabulary(self, st: _State, obs: Observation, page: PageClass) -> None:
        """Remember the shop's navigation words (category links): reformulations come from them."""
        item_names = {i.name for i in page.items} | set(page.suggestions)
        for el in obs.elements:
            if el.kind != "clickable" or el.tag not in ("a", "") or el.name in item_names:
                continue
            text = " ".join(el.text.split())
            # The shop's own name (in the page title) is its logo link, not a department.
            if (1 <= len(text.split()) <= 4 and not re.search(r"\d", text) and not _CHROME.search(text)
                    and not el.name.startswith("footer") and text.lower() not in obs.title.lower()):
                for word in tokens(text):
                    st.vocabulary.setdefault(word, text)

    def _search(self, st: _State, box: Element, query: str, why: str) -> Decision:
        st.searched += 1
        st.tried_queries.append(query)
        st.query = query
        return TypeAndSubmit(name=box.name, text=query), why

    def _click(self, el: Element | ItemLink | str, why: str) -> Decision:
        name = el if isinstance(el, str) else el.name
        return Click(name=name), why

    def _category(self, st: _State, obs: Observation, page: PageClass) -> Element | None:
        """A navigation link to browse: the one sharing most words with the intent, else any."""
        if "navigate" in st.avoid:
            return None
        item_names = {i.name for i in page.items} | set(page.suggestions)
        links = [el for el in obs.elements if el.kind == "clickable" and el.tag == "a" and el.name not in item_names
                 and el.text.strip() and " ".join(el.text.split()) in set(st.vocabulary.values())
                 and " ".join(el.text.split()) not in st.browsed and not REFINEMENT.search(el.name)]
        if not links:
            return None
        scored = sorted(links, key=lambda el: (_overlap(st.want, el.text), st.rng.random()), reverse=True)
        best = scored[0]
        if _overlap(st.want, best.text) == 0 and st.rng.random() < 0.5:
            best = st.rng.choice(links[: 12])
        return best

    def _browse(self, st: _State, obs: Observation, page: PageClass, why: str) -> Decision | None:
        cat = self._category(st, obs, page)
        if cat is None:
            return None
        st.browsed.add(" ".join(cat.text.split()))
        return self._click(cat, f"{why} I'll browse {cat.text.strip()} instead.")

    def _reformulate(self, st: _State, sig: PageSignals) -> Decision | None:
        """A broader query: the kind of product alone where the shop's links use that word ("new
        computers" -> "computers"; a cut-off "kni" is no such word), then the shop's own words in
        the need's order, then a shorter one; never the same twice."""
        if sig.search_input is None or st.searched >= 3:
            return None
        in_order = list(dict.fromkeys(content_words(st.intent)))
        shop_words = [w for w in in_order if w in st.vocabulary]
        candidates = [st.head] if st.head and _has(st.head, set(st.vocabulary)) else []
        if shop_words:
            candidates.append(" ".join(shop_words[:2]))
        words = [w for w in content_words(st.intent) if len(w) > 2]
        if words:
            candidates.append(words[-1] if st.kind == "goal" else " ".join(words[:2]))
            candidates.append(" ".join(words[:2]))
        for q in candidates:
            if q and q not in st.tried_queries:
                return self._search(st, sig.search_input, q, st.rng.choice([
                    f"That search didn't find what I want; I'll try '{q}'.",
                    f"Let me search with different words: {q}.",
                ]))
        return None

    def _pick_item(self, st: _State, items: Sequence[ItemLink], floor: float) -> ItemLink | None:
        if "open_item" in st.avoid:
            return None
        scored = []
        for item in items:
            if item.name in st.blocked:
                continue
            if item.text in st.seen_items or any(_same_product(item.text, t) for t in st.viewed):
                continue
            fit = _fit(st, item.text)
            if st.budget is not None and item.price is not None:
                fit += 0.15 if item.price <= st.budget else -0.4
            scored.append((fit + st.rng.random() * 0.2, item))
        scored.sort(key=lambda t: t[0], reverse=True)
        if scored and scored[0][0] > floor:
            return scored[0][1]
        return None

    def _open(self, st: _State, item: ItemLink, why: str) -> Decision:
        st.seen_items.add(item.text)
        title = _short(item.text.split("$")[0].split(" EUR ")[0])
        return self._click(item, why.format(title=title))

    # --- pages -------------------------------------------------------------------------------
    def _elsewhere(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals) -> Decision:
        """Home, help or account pages: start (or restart) with a search, else browse."""
        if st.in_cart:  # a page between the cart and checkout (a basket in other words, a 404)
            if sig.checkout is not None and not st.checkout_clicked:
                st.checkout_clicked = True
                return self._click(sig.checkout, "My item is in the cart; I'll head to checkout.")
            if sig.cart_link is not None and not st.cart_opened and not st.checkout_clicked:
                st.cart_opened = True
                return self._click(sig.cart_link, "I added it; let me look at my cart.")
            return Terminate(), "My item is in the cart, but I'm not going further today."
        if sig.search_input is not None and st.searched == 0:
            return self._search(st, sig.search_input, st.query, st.rng.choice([
                f"I'm looking for {st.intent if st.kind == 'own' else st.query}, so I'll search for it.",
                f"Let me search for '{st.query}' and see what comes up.",
                f"I'll type '{st.query}' into the search box.",
            ]))
        if page.items and len(st.viewed) < st.patience:
            item = self._pick_item(st, page.items, 0.25)
            if item is not None:
                return self._open(st, item, "'{title}' on this page catches my eye; let me look.")
        browse = self._browse(st, obs, page, "Nothing here is what I came for.")
        if browse is not None:
            return browse
        again = self._reformulate(st, sig)
        if again is not None:
            return again
        return Terminate(), "I can't find a way to what I want on this site, so I'll leave."

    def _on_listing(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals) -> Decision:
        items = list(page.items)
        fresh = [i for i in items if i.text not in st.seen_items]
        best = max((_fit(st, i.text) for i in fresh), default=0.0)
        if len(st.viewed) >= st.patience or (st.mission != "buy" and len(st.viewed) >= st.look_limit):
            return self._give_up(st)
        if not items or (best == 0 and st.searched and not st.browsed):
            # Zero or poor results: other words first (from the shop's vocabulary), then browsing.
            again = self._reformulate(st, sig)
            if again is not None:
                return again
            browse = self._browse(st, obs, page, "The results don't have it.")
            if browse is not None:
                return browse
        if fresh:
            roll = st.rng.random()
            if not st.refined and roll < st.curious and sig.refinements:
                st.refined = True
                matching = [el for el in sig.refinements if _overlap(st.want, el.text) > 0]
                if matching:
                    choice = st.rng.choice(matching)
                    return self._click(choice, f"I'll narrow the results to {choice.text.strip()}.")
            if not st.sorted and st.price_sensitive and sig.sort_low_to_high is not None and roll < 0.5:
                st.sorted = True
                return self._click(sig.sort_low_to_high, "Price matters to me, so I'll sort from low to high.")
            item = self._pick_item(st, fresh, -0.2 if st.browsed else 0.0)
            if item is not None:
                return self._open(st, item, st.rng.choice([
                    "'{title}' looks promising; let me open it.",
                    "I'll check the details of '{title}'.",
                    "This result seems closest to what I want: {title}.",
                ]))
        nxt = next((el for el in obs.elements if el.kind == "clickable" and not el.disabled and is_next_page(el)
                    and "next" not in st.avoid), None)
        if nxt is not None and st.rng.random() < 0.5 + st.curious:
            return self._click(nxt, "Nothing on this page fits; let me see the next page of results.")
        again = self._reformulate(st, sig)
        if again is not None:
            return again
        browse = self._browse(st, obs, page, "These results don't fit.")
        if browse is not None:
            return browse
        return self._give_up(st)

    def _on_product(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals) -> Decision:
        title = page.heading or obs.title
        if st.in_cart and sig.cart_link is not None and not st.cart_opened:
            st.cart_opened = True
            return self._click(sig.cart_link, "I added it; let me look at my cart.")
        if title not in st.viewed:
            st.viewed.append(title)
        price = page.main_price
        details = [el for el in obs.elements if el.kind == "clickable" and not el.disabled
                   and _DETAILS.search(f"{el.name.rsplit('.', 1)[-1]} {el.text}")
                   and el.name not in {i.name for i in page.items}]
        if title not in st.read_on and details and st.rng.random() < st.reads:
            st.read_on.add(title)
            el = st.rng.choice(details)
            return self._click(el, st.rng.choice([
                "Before deciding I want to read what other buyers say.",
                "Let me read the details and reviews first.",
            ]))
        st.read_on.add(title)
        if st.mission != "buy":
            return self._look_only(st, obs, page, sig, title)
        relevance = _fit(st, title)
        over_budget = st.budget is not None and price is not None and price > st.budget
        missing_size = self._missing_size(st, sig)
        fits = not over_budget and not missing_size and relevance >= 0.34
        settle = not over_budget and not missing_size and len(st.viewed) >= st.compare + 1 and st.rng.random() < 0.6
        if (fits and len(st.viewed) >= st.compare) or settle or (fits and relevance >= 0.75):
            return self._buy(st, sig, price)
        st.last_reject = ("it costs more than I want to spend" if over_budget else
                          f"it doesn't come in my size ({st.wanted_size})" if missing_size else
                          "it isn't quite what I'm after" if not fits else "I want to compare a few more first")
        if len(st.viewed) >= st.patience:
            return self._give_up(st)
        # Compare: a related item from this page, else back to a listing by its category link.
        related = self._pick_item(st, page.items, 0.1)
        if related is not None:
            return self._open(st, related, f"This one won't do because {st.last_reject}; '{{title}}' looks closer.")
        browse = self._browse(st, obs, page, f"This one won't do because {st.last_reject}.")
        if browse is not None:
            return browse
        again = self._reformulate(st, sig)
        if again is not None:
            return again
        return self._give_up(st)

    def _look_only(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals, title: str) -> Decision:
        """A shopper who came to look, compare or check a price: on to the next product until
        they have seen enough, then leave without adding anything."""
        if len(st.viewed) >= st.look_limit:
            return Terminate(), self._looked_reason(st, len(st.viewed), title)
        related = self._pick_item(st, page.items, 0.1)
        if related is not None:
            return self._open(st, related, "I want to compare it with '{title}' before I go.")
        browse = self._browse(st, obs, page, "I'd like to see a few more.")
        if browse is not None:
            return browse
        again = self._reformulate(st, sig)
        if again is not None:
            return again
        return Terminate(), self._looked_reason(st, len(st.viewed), title)

    def _missing_size(self, st: _State, sig: PageSignals) -> bool:
        if not st.wanted_size:
            return False
        for group, options in sig.option_groups.items():
            if "size" in group.rsplit(".", 1)[-1].lower():
                return not any(_size(o.text) == st.wanted_size for o in options)
        return False

    def _buy(self, st: _State, sig: PageSignals, price: float | None) -> Decision:
        for group, options in sig.option_groups.items():
            if group in st.chosen_groups:
                continue
            st.chosen_groups.add(group)
            option = _pick_option(options, st)
            return self._click(option, f"I'll choose {option.text.strip() or 'this option'} before adding it.")
        control = sig.add_to_cart or sig.buy_now
        if control is None:
            return self._give_up(st)
        st.in_cart = True
        return self._click(control, st.rng.choice([
            "This looks right for me, so I'll add it to my cart.",
            f"It matches what I need{' and fits my budget' if price and st.budget else ''}; adding it to the cart.",
            "Good reviews and a fair price: into the cart it goes.",
        ]))

    def _at_cart(self, st: _State, obs: Observation, page: PageClass, sig: PageSignals) -> Decision:
        if not st.in_cart:  # opened the cart early, or it is empty: go on shopping
            browse = self._browse(st, obs, page, "My cart has nothing yet.")
            if browse is not None:
                return browse
            if sig.search_input is not None and st.searched < 3:
                return self._search(st, sig.search_input, st.query, "My cart is empty; back to searching.")
            return self._give_up(st)
        checkout = sig.checkout
        if checkout is None:
            checkout = next((el for el in obs.elements if el.kind == "clickable"
                             and re.search(r"check\s*out|checkout", f"{el.name} {el.text}", re.I)), None)
        if not st.reviewed_cart:
            st.reviewed_cart = True
            line = next((el for el in obs.elements if el.kind == "clickable" and el.tag == "a"
                         and el.text.strip() in st.viewed), None)
            if line is not None and st.rng.random() < st.reads * 0.3:
                return self._click(line, "Let me double-check the item in my cart.")
        if checkout is not None and not st.checkout_clicked and st.rng.random() < 0.7:
            st.checkout_clicked = True
            return self._click(checkout, "My item is in the cart; I'll head to checkout.")
        return Terminate(), st.rng.choice([
            "It's in my cart; I'll think it over before paying.",
            "I'll leave it in the cart and decide later.",
        ])

    def _at_checkout(self, st: _State, sig: PageSignals) -> Decision:
        if not self.allow_purchase:
            return Terminate(), "I've reached checkout, but I'm not ready to pay today."
        for el in sig.form_inputs:
            if el.name in st.typed:
                continue
            value = _fill_value(el)
            if value is None:
                continue
            st.typed.add(el.name)
            return TypeAndSubmit(name=el.name, text=value), f"I'll fill in my {_field_label(el)}."
        if sig.place_order is None:
            return Terminate(), "I can't see how to finish the order here, so I'll stop."
        return self._click(sig.place_order, "Everything is filled in; I'll place my order.")

    def _give_up(self, st: _State) -> Decision:
        n = len(st.viewed)
        if st.mission != "buy" and n:
            return Terminate(), self._looked_reason(st, n, st.viewed[-1])
        if n == 0:
            return Terminate(), "I couldn't find anything like what I'm looking for, so I'll leave."
        reason = st.last_reject or "none of them was right"
        return Terminate(), f"I've looked at {n} product{'s' if n != 1 else ''} and {reason}; I'll stop here."


def _privacy_minded(persona: Persona | None, rng: random.Random) -> bool:
    """Whether this shopper refuses optional cookies: persona words about privacy, tracking or
    ads (priorities, things avoided, the bio), else sceptical and careful people more often."""
    said = " ".join([*(_persona_field(persona, "priorities", []) or []), str(_persona_field(persona, "bio", "") or "")])
    avoids = " ".join(_persona_field(persona, "avoids", []) or [])
    if re.search(r"privacy|tracking|data protection|personal data|surveillance", said, re.I):
        return True
    roll = rng.random()
    if _PRIVACY.search(avoids):  # avoids ads and sponsored listings: mostly refuses marketing cookies too
        return roll < 0.7
    sceptical = _trait(persona, "agreeableness") == 0 or _trait(persona, "conscientiousness") == 2
    return roll < (0.3 if sceptical else 0.15)


def _product_by_signals(obs: Observation, page: PageClass, sig: PageSignals, cards: Sequence[Card]) -> bool:
    """A product page the shared classifier did not call one because its buy button is worded in
    another language ("In den Warenkorb", "Ajouter au panier"): a main heading, the page's own
    price and exactly one add-to-cart control the shopper's wider vocabulary recognises."""
    if page.type in ("product", "cart", "checkout", "account") or cards or sig.add_to_cart is None:
        return False
    if not page.heading or page.items and len(page.items) >= 3:
        return False
    return page.main_price is not None or bool(re.search(r"[$€£]\s?\d|\d[\d.,]*\s?(?:€|eur\b)", obs.simplified_html,
                                                         re.I))


def _card_title(card: Card) -> str:
    """A card's title as a person reads it: its words before the price and the button."""
    text = re.split(r"[$€£]|\bEUR\b|\badd\s+to\b", card.text, maxsplit=1, flags=re.I)[0].strip(" -|·")
    return text or card.add.name.rsplit(".", 1)[0].replace("_", " ")


def _size_filter(st: _State, obs: Observation, cards: Sequence[Card]) -> Element | None:
    """A size filter control for the size the shopper needs (a button or link labelled "M")."""
    if not st.wanted_size:
        return None
    adds = {c.add.name for c in cards}
    for el in obs.elements:
        if el.kind != "clickable" or el.disabled or el.name in adds:
            continue
        m = _SIZE_TOKEN.match(el.text or "")
        if m and _size(m.group(1)) == st.wanted_size:
            return el
    return None


def _role(action: Click | TypeAndSubmit | Terminate, obs: Observation, page: PageClass, sig: PageSignals,
          dialog: Dialog | None, cards: Sequence[Card]) -> str:
    """The kind of an action, for the loop guard: two failures at one kind and it is given up."""
    if isinstance(action, Terminate):
        return "terminate"
    name = action.name
    if dialog is not None and name in {el.name for el in dialog.controls()}:
        return "dialog"
    if isinstance(action, TypeAndSubmit):
        return "search" if sig.search_input is not None and name == sig.search_input.name else "type"
    el = obs.element(name)
    label = control_label(name, el.text if el else "")
    if ADD_TO_CART.search(label) or (sig.buy_now is not None and name == sig.buy_now.name):
        return "add_to_cart"
    if name in {i.name for i in page.items}:
        return "open_item"
    if CHECKOUT.search(label):
        return "checkout"
    if sig.cart_link is not None and name == sig.cart_link.name:
        return "cart"
    if any(name == e.name for e in sig.refinements) or (el is not None and _SIZE_TOKEN.match(el.text or "")):
        return "refine"
    if sig.sort_low_to_high is not None and name == sig.sort_low_to_high.name:
        return "sort"
    if any(name == o.name for opts in sig.option_groups.values() for o in opts):
        return "option"
    if el is not None and is_next_page(el):
        return "next"
    return "navigate"


def _pick_option(options: Sequence[Element], st: _State) -> Element:
    """Prefer an option the intent names ("size large", "navy"), else a seeded random one."""
    wanted = [o for o in options if o.text.strip() and (tokens(o.text) & st.want
                                                        or _size(o.text) == st.wanted_size)]
    return wanted[0] if wanted else st.rng.choice(list(options))


def _field_label(el: Element) -> str:
    text = (el.text or el.name.rsplit(".", 1)[-1]).replace("_", " ").strip().lower()
    return text or "details"


def _fill_value(el: Element) -> str | None:
    label = f"{el.name} {el.text} {el.input_type}".lower()
    if el.input_type == "email" or "mail" in label:
        return _ADDRESS["email"]
    for key, value in _ADDRESS.items():
        if key in label:
            return value
    return None
