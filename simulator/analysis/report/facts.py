"""What one page and one session were, read from trace records alone.

``page_kind`` is the single place that decides what a page is and ``STAGE_RULES`` writes the
funnel heuristics down, so every number in a report (and in an A/B comparison, which reads the
same ``session_facts``) can be explained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from shop_r1.envs.actions import Click
from shop_r1.envs.controls import (
    ADD_TO_CART,
    CART_LINK,
    CHECKOUT,
    ORDER_CONFIRMATION,
    PLACE_ORDER,
    PRODUCT_URL,
    SEARCH,
    control_label,
)
from shop_r1.envs.funnel import step_events
from shop_r1.envs.pagetype import classify
from shop_r1.simulator.records.trace import TraceReadResult, TraceStep, observation_from_step

PRODUCT_URL_RE = PRODUCT_URL
ADD_TO_CART_RE = ADD_TO_CART
CHECKOUT_RE = CHECKOUT
PLACE_ORDER_RE = PLACE_ORDER
# A listing page shows one add-to-cart control per item; a product page one or two.
MAX_CART_CONTROLS_ON_PRODUCT_PAGE = 2

FUNNEL_STAGES: tuple[str, ...] = ("searched", "viewed_product", "added_to_cart", "reached_checkout", "purchased")
STAGE_LABELS: dict[str, str] = {
    "searched": "Searched",
    "viewed_product": "Viewed a product",
    "added_to_cart": "Added to cart",
    "reached_checkout": "Reached checkout",
    "purchased": "Purchased",
}
STAGE_RULES: dict[str, str] = {
    "searched": "a type_and_submit action that executed without error",
    "viewed_product": (
        "a page the content classifier (shop_r1.envs.pagetype: a title heading with a price and one buy "
        "control) calls a product page; where it cannot tell, a page whose URL path has /product, /dp/, "
        f"/item or /itm/, or whose element table has 1-{MAX_CART_CONTROLS_ON_PRODUCT_PAGE} add-to-cart controls"
    ),
    "added_to_cart": (
        "a click without error on an element whose name or text matches add…(cart|basket|bag), "
        "or the outcome added_to_cart"
    ),
    "reached_checkout": ("a page the classifier calls a checkout page (else: URL or title contains 'checkout'), "
                         "or a successful click on a checkout control"),
    "purchased": ("the outcome purchased, a click without error on a place-order or 'Buy now' control (let "
                  "through only with --allow-purchase), an order confirmation page, or a step whose action led to "
                  "one (the step event order_placed)"),
}
# Each rule is applied by shop_r1.envs.funnel.step_events, the one function the runner, the report,
# realism and the OPeRA importer share; page kinds come from page_kind below.
DEFAULT_SEGMENT_FIELDS: tuple[str, ...] = ("age_band", "income")
# A persona library may name a field differently (OPeRA calls the age band ``age``).
SEGMENT_FIELD_FALLBACKS: dict[str, tuple[str, ...]] = {"age_band": ("age",)}


def _label_of(step: TraceStep, name: str) -> str:
    """The control's words (see :func:`shop_r1.envs.controls.control_label`)."""
    el = step.element(name)
    return control_label(name, el.text if el is not None else "")


def _executed(step: TraceStep) -> bool:
    return step.action is not None and step.exec_error is None


def is_product_page(step: TraceStep) -> bool:
    """Whether the page of this step looks like a product page (see ``STAGE_RULES``)."""
    if PRODUCT_URL_RE.search(urlsplit(step.url).path or ""):
        return True
    cart_controls = sum(
        1 for el in step.elements
        if el.kind == "clickable" and ADD_TO_CART_RE.search(control_label(el.name, el.text))
    )
    return 1 <= cart_controls <= MAX_CART_CONTROLS_ON_PRODUCT_PAGE


# The page kinds a report names. ``page_kind`` is the single place that decides what a page is,
# so it can be pointed at a content-based classifier without touching anything that uses it.
PAGE_KINDS: tuple[str, ...] = ("home", "listing", "product", "cart", "checkout", "account", "confirmation", "other")


def page_kind(step: TraceStep) -> str:
    """What kind of page one step was taken on (one of ``PAGE_KINDS``).

    The content-based classifier (``shop_r1.envs.pagetype``) decides; where it finds no evidence
    ("other": a page stored without its HTML, as imported logs often are), the written-down URL
    and element rules of ``STAGE_RULES`` do.
    """
    page = classify(observation_from_step(step))
    if page.confirmation:
        return "confirmation"
    if page.type != "other":
        return page.type
    path = urlsplit(step.url).path or "/"
    if is_product_page(step):
        return "product"
    if CHECKOUT_RE.search(step.url) or CHECKOUT_RE.search(step.title):
        return "checkout"
    if ORDER_CONFIRMATION.search(step.title) or ORDER_CONFIRMATION.search(step.simplified_html[:4000]):
        return "confirmation"
    if CART_LINK.search(path.replace("/", " ")):
        return "cart"
    if path in ("", "/") or path.endswith(("/index.html", "/home")):
        return "home"
    if any(el.kind == "clickable" and ADD_TO_CART_RE.search(control_label(el.name, el.text)) for el in step.elements) \
            or SEARCH.search(urlsplit(step.url).query or ""):
        return "listing"
    return "other"


def step_stages(step: TraceStep, kind: str | None = None) -> set[str]:
    """The funnel stages this one step shows (``kind``: its ``page_kind``, when already known)."""
    kind = page_kind(step) if kind is None else kind
    name = step.target_name
    events = step_events(step.action, _label_of(step, name) if isinstance(step.action, Click) and name else "",
                         executed=_executed(step), page_kind=kind, order_placed="order_placed" in step.events)
    reached: set[str] = {e for e in events if e in FUNNEL_STAGES}
    if step.outcome in ("purchased", "added_to_cart"):
        reached.add(step.outcome)
    return reached


def session_stages(steps: Sequence[TraceStep]) -> set[str]:
    """The funnel stages one session reached (a set of ``FUNNEL_STAGES`` names)."""
    reached: set[str] = set()
    for s in steps:
        reached |= step_stages(s)
    return reached


@dataclass(frozen=True)
class SessionFacts:
    """What one session did, as the report and A/B analysis read it (computed once per session)."""

    session_id: str
    persona_id: str | None
    outcome: str
    stages: frozenset[str]
    steps: int
    seconds: float  # from the first to the last recorded decision
    kinds: tuple[str, ...]  # page_kind of every step
    paths: tuple[str, ...]  # URL path of every step
    first_reached: dict[str, tuple[int, float]]  # stage -> (step index, seconds since the first step)
    end_rationale: str
    end_reason: str

    @property
    def last_kind(self) -> str:
        return self.kinds[-1] if self.kinds else "none"

    @property
    def last_path(self) -> str:
        return self.paths[-1] if self.paths else ""


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def session_facts(trace: TraceReadResult) -> dict[str, SessionFacts]:
    """Facts of every session of a trace, in file order."""
    facts: dict[str, SessionFacts] = {}
    for sid in trace.session_ids:
        steps = trace.sessions.get(sid, [])
        end = trace.session_end(sid)
        outcome = trace.outcome(sid)
        kinds = tuple(page_kind(s) for s in steps)
        reached: set[str] = set()
        first: dict[str, tuple[int, float]] = {}
        t0 = _ts(steps[0].ts) if steps else None
        for s, kind in zip(steps, kinds):
            for stage in step_stages(s, kind) - reached:
                first[stage] = (s.step, (_ts(s.ts) - t0).total_seconds() if t0 else 0.0)
            reached |= step_stages(s, kind)
        if outcome == "purchased":
            reached.add("purchased")
        seconds = (_ts(steps[-1].ts) - t0).total_seconds() if steps and t0 else 0.0
        persona_id = steps[0].persona_id if steps else (end.persona_id if end is not None else None)
        last_words = next((s.rationale for s in reversed(steps) if s.rationale), "")
        facts[sid] = SessionFacts(
            session_id=sid, persona_id=persona_id, outcome=outcome, stages=frozenset(reached), steps=len(steps),
            seconds=max(seconds, 0.0), kinds=kinds, paths=tuple(urlsplit(s.url).path or "/" for s in steps),
            first_reached=first, end_rationale=last_words, end_reason=(end.end_reason or "") if end else "",
        )
    return facts
