"""Between live objects and trace rows: the element table both ways, and a recorded step back
to the ``Observation`` / ``HistoryItem`` a policy reads.

Replay, training and the runner's own history all go through here, so the page a model is
trained or evaluated on is the page the shopper saw, built one way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shop_r1.envs.observation import Element, Observation
from shop_r1.simulator.records.exchange import HistoryItem
from shop_r1.simulator.records.trace.views import TraceElement, TraceStep


def trace_element(el: Element) -> TraceElement:
    """An element as the trace stores it: everything but the live selector."""
    return TraceElement(name=el.name, kind=el.kind, text=el.text, tag=el.tag, input_type=el.input_type,
                        options=list(el.options), disabled=el.disabled, in_viewport=el.in_viewport,
                        covered=el.covered)


def trace_elements(elements: Iterable[Element]) -> list[TraceElement]:
    return [trace_element(el) for el in elements]


def observation_element(rec: TraceElement) -> Element:
    """A stored element as the ``Element`` a policy reads (no selector: it is not live)."""
    return Element(name=rec.name, kind=rec.kind, text=rec.text, tag=rec.tag, input_type=rec.input_type,
                   options=tuple(rec.options), disabled=rec.disabled, in_viewport=rec.in_viewport,
                   covered=rec.covered)


def observation_from_step(step: TraceStep) -> Observation:
    """The observation a policy saw at a recorded step."""
    return Observation(url=step.url, title=step.title, simplified_html=step.simplified_html,
                       elements=tuple(observation_element(el) for el in step.elements),
                       blocked_requests=step.blocked_requests)


def history_item(step: TraceStep) -> HistoryItem:
    """One recorded step as the policy's history entry (page, action, rationale, and why the
    action failed, if it did)."""
    action = step.action.to_json() if step.action is not None else None  # HistoryItem holds the JSON shape
    error = f"{step.exec_error.code}: {step.exec_error.message}" if step.exec_error is not None else ""
    return HistoryItem(url=step.url, simplified_html=step.simplified_html, action=action, rationale=step.rationale,
                       error=error)


def history_before(steps: Sequence[TraceStep], index: int) -> list[HistoryItem]:
    """The recorded pages and actions before ``steps[index]``: the policy's history there."""
    return [history_item(s) for s in steps[:index]]


def step_names(step: TraceStep) -> list[str]:
    """The element names of a recorded page."""
    return [el.name for el in step.elements]
