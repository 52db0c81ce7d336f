"""A persona-driven, rule-based shopper: the baseline policy and the source of synthetic sessions.

It reads only what a model would read — the reduced page's element names and visible text plus
the simplified HTML — and never uses shop-specific rules, so it also walks storefronts it has
never seen. Its choices are seeded per session (same seed, same session → same walk) but vary
between shoppers through the persona: patience from conscientiousness, price sensitivity from
the stated priorities and budget, a taste for refinements and sorting.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.envs.observation import Element, Observation
from shop_r1.simulator.policies.base import Policy, PolicyRequest, PolicyResponse
from shop_r1.simulator.policies.page_signals import (
    PageSignals,
    main_price,
    price_near,
    query_from_intent,
    read_signals,
    tokens,
)

log = logging.getLogger(__name__)

# Fake but well-formed checkout values; never a real person's data.
_ADDRESS = {
    "name": "Alex Doe",
    "full": "Alex Doe",
    "street": "12 Market Street",
    "address": "12 Market Street",
    "city": "Springfield",
    "zip": "12345",
    "postal": "12345",
    "email": "alex.doe@example.com",
    "phone": "5550100",
    "state": "IL",
}


@dataclass
class _State:
    rng: random.Random
    query: str
    budget: float | None
    patience: int
    likes_refinements: bool
    price_sensitive: bool
    searched: int = 0
    viewed: list[str] = field(default_factory=list)
    rejected: set[str] = field(default_factory=set)
    chosen_selects: set[str] = field(default_factory=set)
    typed: set[str] = field(default_factory=set)
    in_cart: bool = False
    sorted_or_refined: bool = False
    ordered: bool = False
    last_click: str | None = None


def _persona_field(persona: Any, name: str, default: Any = None) -> Any:
    if persona is None:
        return default
    if isinstance(persona, dict):
        return persona.get(name, default)
    return getattr(persona, name, default)


def _budget_from(intent: str, persona: Any) -> float | None:
    m = re.search(r"(?:lower|less|under|below|cheaper)\s+than\s+\$?\s*(\d+(?:\.\d+)?)", intent, re.I)
    if m:
        return float(m.group(1))
    m = re.search(r"under\s+\$\s*(\d+(?:\.\d+)?)", intent, re.I)
    if m:
        return float(m.group(1))
    budget = _persona_field(persona, "budget")
    if isinstance(budget, (int, float)) and budget > 0:
        return float(budget)
    if isinstance(budget, str):
        nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", budget.replace(",", ""))]
        if nums:
            return max(nums)
    return None


def _trait(persona: Any, trait: str) -> str:
    big_five = _persona_field(persona, "big_five", {}) or {}
    value = big_five.get(trait) if isinstance(big_five, dict) else None
    return str(value or "medium").lower()


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
                out.append(PolicyResponse(action=None, error=f"internal: {exc}"))
                continue
            raw = {"rationale": rationale, "action": action.to_json()}
            out.append(PolicyResponse(action=action, rationale=rationale, raw_text=_dump(raw)))
        return out

    # --- state -------------------------------------------------------------------------------
    def _state(self, req: PolicyRequest) -> _State:
        st = self._states.get(req.session_id)
        if st is not None:
            return st
        digest = hashlib.sha256(f"{self.seed}:{req.session_id}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        intent = _persona_field(req.persona, "intent") or self.default_intent
        priorities = " ".join(_persona_field(req.persona, "priorities", []) or []).lower()
        conscientious = _trait(req.persona, "conscientiousness")
        patience = {"low": 1, "medium": 2, "high": 4}.get(conscientious, 2) + rng.randint(0, 1)
        st = _State(
            rng=rng,
            query=query_from_intent(intent, rng),
            budget=_budget_from(intent, req.persona),
            patience=patience,
            likes_refinements=_trait(req.persona, "openness") == "high" or rng.random() < 0.3,
            price_sensitive=("price" in priorities or "deal" in priorities or "budget" in priorities
                             or rng.random() < 0.3),
        )
        self._states[req.session_id] = st
        return st

    # --- decision ----------------------------------------------------------------------------
    def _decide(self, req: PolicyRequest) -> tuple[Click | TypeAndSubmit | Terminate, str]:
        st = self._state(req)
        obs = req.observation
        sig = read_signals(obs)
        if st.last_click and sig.is_confirmation:
            st.ordered = True
        if st.ordered:
            return Terminate(), "My order is placed, so I'm done shopping."

        if sig.place_order is not None:
            return self._at_checkout(st, sig)
        if sig.checkout is not None and st.in_cart:
            return self._click(st, sig.checkout, "My item is in the cart; I'll head to checkout.")
        if sig.add_to_cart is not None:
            if st.in_cart and sig.cart_link is not None:
                return self._click(st, sig.cart_link, "I already added it, so let me look at my cart.")
            return self._on_product(st, obs, sig)
        if sig.search_input is not None and st.searched == 0:
            return self._search(st, sig.search_input)
        if sig.products:
            return self._on_results(st, obs, sig)
        if sig.search_input is not None and st.searched < 3:
            return self._search(st, sig.search_input)
        return Terminate(), "I can't find a way forward on this page, so I'll leave."

    def _search(self, st: _State, box: Element) -> tuple[TypeAndSubmit, str]:
        st.searched += 1
        return TypeAndSubmit(name=box.name, text=st.query), st.rng.choice([
            f"I'm looking for {st.query}, so I'll search for it.",
            f"Let me search for {st.query} and see what comes up.",
            f"I'll type '{st.query}' into the search box.",
        ])

    def _click(self, st: _State, el: Element, rationale: str) -> tuple[Click, str]:
        st.last_click = el.name
        return Click(name=el.name), rationale

    def _at_checkout(self, st: _State, sig: PageSignals) -> tuple[Click | TypeAndSubmit | Terminate, str]:
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
        assert sig.place_order is not None
        return self._click(st, sig.place_order, "Everything is filled in; I'll place my order.")

    def _on_product(self, st: _State, obs: Observation, sig: PageSignals) -> tuple[Click | TypeAndSubmit | Terminate, str]:
        if obs.url not in st.viewed:
            st.viewed.append(obs.url)
        price = main_price(obs)
        relevance = _overlap(st.query, obs.title)
        over_budget = st.budget is not None and price is not None and price > st.budget
        keen = relevance >= 0.34 and not over_budget
        if keen or (len(st.viewed) >= st.patience and not over_budget and st.rng.random() < 0.6):
            for group, options in sig.option_groups.items():
                if group in st.chosen_selects:
                    continue
                st.chosen_selects.add(group)
                option = _pick_option(options, st)
                return self._click(st, option, f"I'll choose {option.text.strip() or 'this option'} before adding it.")
            st.in_cart = True
            return self._click(st, sig.add_to_cart, st.rng.choice([
                "This looks right for me, so I'll add it to my cart.",
                f"It matches what I need{' and fits my budget' if price else ''}; adding it to the cart.",
                "Good reviews and a fair price: into the cart it goes.",
            ]))
        st.rejected.add(obs.url)
        reason = "it's over my budget" if over_budget else "it isn't quite what I'm after"
        if len(st.viewed) >= st.patience + 1:
            return Terminate(), f"I've looked at {len(st.viewed)} products and {reason}; I'll stop here."
        if sig.search_input is not None:
            st.searched += 1
            return TypeAndSubmit(name=sig.search_input.name, text=st.query), f"This one won't do because {reason}; back to my search."
        return Terminate(), f"This one won't do because {reason}, and I see no way back."

    def _on_results(self, st: _State, obs: Observation, sig: PageSignals) -> tuple[Click | TypeAndSubmit | Terminate, str]:
        if not st.sorted_or_refined and st.likes_refinements and sig.refinements and st.rng.random() < 0.5:
            st.sorted_or_refined = True
            matching = [el for el in sig.refinements if _overlap(st.query, el.text) > 0]
            if matching:
                choice = st.rng.choice(matching)
                return self._click(st, choice, f"I'll narrow the results to {choice.text.strip() or 'that filter'}.")
        if not st.sorted_or_refined and st.price_sensitive and sig.sort_low_to_high is not None:
            st.sorted_or_refined = True
            return self._click(st, sig.sort_low_to_high, "Price matters to me, so I'll sort from low to high.")
        scored = []
        for el in sig.products:
            if el.name in st.rejected:
                continue
            rel = _overlap(st.query, el.text)
            price = price_near(obs, el.name)
            fit = 0.0 if st.budget is None or price is None else (0.3 if price <= st.budget else -0.5)
            scored.append((rel + fit + st.rng.random() * 0.15, el))
        scored.sort(key=lambda t: t[0], reverse=True)
        # Zero-overlap results are only opened by the curious, and only after a refined search.
        if scored and scored[0][0] > (0.1 if st.searched > 1 else 0.2) and len(st.viewed) <= st.patience:
            el = scored[0][1]
            st.rejected.add(el.name)  # do not open the same result twice
            return self._click(st, el, st.rng.choice([
                f"'{_short(el.text)}' looks promising; let me open it.",
                f"I'll check the details of '{_short(el.text)}'.",
                f"This result seems closest to what I want: {_short(el.text)}.",
            ]))
        if st.searched < 2 and sig.search_input is not None and len(st.query.split()) > 1:
            st.searched += 1
            st.query = " ".join(st.query.split()[:-1])
            return TypeAndSubmit(name=sig.search_input.name, text=st.query), "Nothing fits; I'll try a broader search."
        return Terminate(), "None of these results fit what I want, so I'm leaving."


def _dump(obj: dict[str, Any]) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


def _overlap(query: str, text: str) -> float:
    q = tokens(query)
    if not q:
        return 0.0
    return len(q & tokens(text)) / len(q)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _pick_option(options: Sequence[Element], st: _State) -> Element:
    """Prefer an option the intent mentions ("size large"), else a seeded random one."""
    wanted = [o for o in options if _overlap(o.text, st.query) > 0]
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
