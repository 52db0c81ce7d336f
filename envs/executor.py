"""Execute one Shop-R1 action (click / type_and_submit / terminate) on a live Playwright page.

The policy names elements, it never sees selectors: the page reducer stamps
``data-sr1-name="<name>"`` on every interactable it reports, so ``[data-sr1-name="..."]`` finds
exactly the node the policy saw. Everything that can go wrong is returned as an
:class:`~shop_r1.envs.observation.ActionError` (a bad name, a hidden button, a page that never finishes
loading, a crashed renderer) and never raised: one confused shopper must not end a run of many.

Choosing an option of a ``<select>`` (a size, a colour, a sort order). The reducer reports a
select as one element (kind ``"select"``, its option labels in ``Element.options``) followed by
one element per option, named ``<select name>.<option slug>`` (kind ``"clickable"``, tag
``"option"``, see :func:`shop_r1.envs.observation.option_name`); options carry no stamp of their own and
are found through their select. A policy can pick an option in any of three ways:

* ``click`` on ``<select name>.<option>``: the usual way; ``<option>`` may be spelt any way that
  reduces to the same letters and digits (``product.size.x_large``, ``product.size.XLarge``);
* ``click`` on the name of an ``<option>`` element, should a page stamp names on options;
* ``type_and_submit`` on the select's name with the option label as text (closest label wins).

A bare ``click`` on a select is a ``wrong_kind`` error whose suggestions are its option names,
which teaches a policy the accepted form.

Settling. After acting, the executor waits until the page is usable again: if a main-frame
navigation started it waits for the new document's ``DOMContentLoaded`` (bounded by
``action_timeout_ms``, else ``navigation_timeout``), then for a short quiet window without
network requests (bounded by ``settle_max_ms``, never an error: some pages poll forever).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page, Request
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shop_r1.envs.actions import Action, Click, Terminate, TypeAndSubmit, parse_action
from shop_r1.envs.controls import PLACE_ORDER
from shop_r1.envs.observation import ActionError, Element, ErrorCode, option_name
from shop_r1.envs.pagetype import PageView
from shop_r1.envs.purchase import (
    ControlFacts,
    click_reason,
    page_matters,
    purchase_step,
    submit_reason,
    whole_phrase,
)

log = logging.getLogger(__name__)


# Text on buttons that commits money ("Place your order", "Pay now", ...): envs.controls owns it.
PURCHASE_PATTERN = PLACE_ORDER

# Input types that `fill` cannot type into: typing into them is a wrong_kind action.
_UNFILLABLE_INPUT_TYPES = frozenset(
    {"checkbox", "radio", "file", "button", "submit", "reset", "image", "hidden", "range"}
)
_CRASH_MARKERS = ("target crashed", "page crashed", "has been closed", "target closed", "browser has disconnected")


def default_purchase_guard(element: Element) -> bool:
    """True when ``element``'s words alone say it commits a purchase (its text and name).

    Only the words: the executor also refuses by the live form and the page
    (:mod:`shop_r1.envs.purchase`), which an :class:`Element` does not carry. A custom guard adds
    to all that, it cannot remove it (``allow_purchase=True`` is the one switch that lets
    purchases through).
    """
    if element.tag == "a":
        # A link that merely mentions paying ("Checkout paynow help") is navigation; one whose
        # whole text or own name is an order phrase is an order button styled as a link.
        return whole_phrase(element.text) or whole_phrase(element.name.rsplit(".", 1)[-1].replace("_", " "))
    # Deliberately wider than control_label: a guard errs on the side of blocking, so every
    # segment of the name counts ("place_order.submit" is a purchase too).
    readable_name = element.name.replace("_", " ").replace(".", " ")
    return bool(PURCHASE_PATTERN.search(element.text) or PURCHASE_PATTERN.search(readable_name))


@dataclass(frozen=True, kw_only=True)
class ExecutorOptions:
    """How the executor acts and how long it waits. ``SessionOptions`` extends this."""

    allow_purchase: bool = False
    purchase_guard: Callable[[Element], bool] = default_purchase_guard
    action_timeout_ms: int = 10_000
    """Budget for the whole action: finding, acting and waiting for a started navigation."""
    interact_timeout_ms: int = 3_000
    """How long a click/fill may wait for the element to become actionable (e.g. under an overlay)."""
    settle_idle_ms: int = 100
    """Quiet window: the page counts as settled after this long without in-flight requests."""
    settle_max_ms: int = 3_000
    """Cap on waiting for that quiet window after the document has loaded (not an error)."""

    def __post_init__(self) -> None:
        for field_name in ("action_timeout_ms", "interact_timeout_ms", "settle_idle_ms", "settle_max_ms"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{type(self).__name__}.{field_name} must be a positive int (ms), got {value!r}")
        if not callable(self.purchase_guard):
            raise ValueError(f"{type(self).__name__}.purchase_guard must be callable, got {self.purchase_guard!r}")


# ---------------------------------------------------------------------------------------------
# small pure helpers


@cache
def load_js(name: str) -> str:
    """Source of ``envs/js/<name>`` (package data), read once per process."""
    return resources.files("shop_r1.envs").joinpath("js", name).read_text(encoding="utf-8")


def name_selector(name: str) -> str:
    """CSS selector of the live node the reducer stamped with ``name``."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'[data-sr1-name="{escaped}"]'


def option_key(text: str) -> str:
    """Letters and digits only, lower case: "X-Large" == "x_large" == "xlarge"."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^0-9a-z]+", name.lower()) if t}


def suggest_names(name: str, candidates: Sequence[str], n: int = 3) -> tuple[str, ...]:
    """The ``n`` candidates closest to ``name``: the better of sequence similarity and token overlap.

    Token overlap catches a right idea in the wrong order (``cart.add`` vs ``add_to_cart``);
    difflib catches typos (``serch_input``).
    """
    target_tokens = _tokens(name)
    scored: list[tuple[float, str]] = []
    for cand in dict.fromkeys(candidates):
        ratio = difflib.SequenceMatcher(None, name.lower(), cand.lower()).ratio()
        cand_tokens = _tokens(cand)
        union = target_tokens | cand_tokens
        jaccard = len(target_tokens & cand_tokens) / len(union) if union else 0.0
        scored.append((max(ratio, jaccard), cand))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return tuple(cand for _, cand in scored[:n])


def _as_table(elements: Mapping[str, Element] | Sequence[Element]) -> dict[str, Element]:
    if isinstance(elements, Mapping):
        return dict(elements)
    return {el.name: el for el in elements}


def _is_crash(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _CRASH_MARKERS)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

# ---------------------------------------------------------------------------------------------
# watching the page while an action runs

class _PageWatch:
    """Listens to one page during one action: navigations, in-flight requests, crash, close."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.inflight: set[Request] = set()
        self.last_activity = time.monotonic()
        self.nav_request: Request | None = None
        self.nav_failed: str | None = None
        self.nav_finished = False
        self.committed = False
        self.dom_ready = False
        self.crashed = False
        self.closed = False
        # Set by the action when it should navigate (a link, a form submit): settling then waits
        # a moment for the navigation request instead of trusting an early quiet network.
        self.expect_navigation = False
        self._handlers: list[tuple[str, Callable[..., Any]]] = [
            ("request", self._on_request),
            ("requestfinished", self._on_request_done),
            ("requestfailed", self._on_request_failed),
            ("framenavigated", self._on_framenavigated),
            ("domcontentloaded", self._on_dom_ready),
            ("crash", self._on_crash),
            ("close", self._on_close),
        ]

    def __enter__(self) -> _PageWatch:
        for event, handler in self._handlers:
            # Playwright types on() with one overload per event name; these names are among them.
            self.page.on(event, handler)  # type: ignore[call-overload]
        return self

    def __exit__(self, *exc: object) -> None:
        for event, handler in self._handlers:
            try:
                self.page.remove_listener(event, handler)
            except Exception:  # noqa: BLE001 - a closed page may have dropped its listeners
                pass

    # events ----------------------------------------------------------------------------------
    def _on_request(self, request: Request) -> None:
        self.inflight.add(request)
        self.last_activity = time.monotonic()
        if request.is_navigation_request() and request.frame == self.page.main_frame:
            self.nav_request = request
            self.nav_failed = None
            self.nav_finished = False
            self.committed = False
            self.dom_ready = False

    def _on_request_done(self, request: Request) -> None:
        self.inflight.discard(request)
        self.last_activity = time.monotonic()
        if request is self.nav_request:
            self.nav_finished = True

    def _on_request_failed(self, request: Request) -> None:
        self.inflight.discard(request)
        self.last_activity = time.monotonic()
        if request is self.nav_request:
            self.nav_failed = request.failure or "failed"

    def _on_framenavigated(self, frame: Frame) -> None:
        if frame == self.page.main_frame and self.nav_request is not None:
            self.committed = True

    def _on_dom_ready(self, _page: Page) -> None:
        if self.nav_request is not None:
            self.dom_ready = True

    def _on_crash(self, _page: Page) -> None:
        self.crashed = True

    def _on_close(self, _page: Page) -> None:
        self.closed = True

    # state -----------------------------------------------------------------------------------
    @property
    def navigating(self) -> bool:
        """A main-frame navigation started and its document is not ready yet."""
        if self.nav_request is None or self.nav_failed is not None or self.dom_ready:
            return False
        # A navigation answered without a document (download, 204) finishes without committing.
        return not (self.nav_finished and not self.committed)

    def dead(self) -> ActionError | None:
        if self.crashed or self.page.is_closed() or self.closed:
            what = "crashed" if self.crashed else "was closed"
            return ActionError("page_crashed", f"the page {what} while the action ran")
        return None


async def _stop_loading(page: Page) -> None:
    """Cancel a navigation that overran its budget, so the page can be observed as it is.

    Without this the page is left between two documents and every read of it fails with
    "execution context was destroyed" until the slow server answers.
    """
    for _ in range(3):
        try:
            await page.evaluate("window.stop()")
            return
        except PlaywrightError as exc:
            if _is_crash(exc):
                return
            await asyncio.sleep(0.05)
    log.debug("could not stop loading %s", page.url)


async def _settle(watch: _PageWatch, started: float, options: ExecutorOptions) -> ActionError | None:
    """Wait for a started navigation, then for a quiet network window (see the module doc)."""
    deadline = started + options.action_timeout_ms / 1000
    quiet_cap = time.monotonic() + options.settle_max_ms / 1000
    idle = options.settle_idle_ms / 1000
    poll = min(0.025, idle / 2)
    # The quiet window starts when the action ends: a navigation the action caused may not have
    # been reported yet (the request event crosses two process boundaries).
    watch.last_activity = max(watch.last_activity, time.monotonic())
    expect_until = time.monotonic() + min(1.0, options.settle_max_ms / 1000)
    while True:
        dead = watch.dead()
        if dead:
            return dead
        now = time.monotonic()
        if watch.navigating:
            if now >= deadline:
                url = watch.nav_request.url if watch.nav_request else "?"
                await _stop_loading(watch.page)
                return ActionError(
                    "navigation_timeout",
                    f"navigation to {url} did not load within {options.action_timeout_ms} ms; "
                    "the observation shows the page as it is now",
                )
            quiet_cap = max(quiet_cap, now + options.settle_max_ms / 1000)
        elif watch.expect_navigation and watch.nav_request is None and now < min(expect_until, deadline):
            pass  # a link was clicked: give its navigation request time to show up
        elif not watch.inflight and now - watch.last_activity >= idle:
            return None
        elif now >= quiet_cap or now >= deadline:
            log.debug("page %s never went quiet (%d requests in flight); observing anyway",
                      watch.page.url, len(watch.inflight))
            return None
        await asyncio.sleep(poll)

# ---------------------------------------------------------------------------------------------
# the executor

@dataclass
class _Target:
    """A resolved name: the live locator and, for select options, which option."""

    name: str
    locator: Any
    element: Element | None
    facts: dict[str, Any]
    option_index: int | None = None  # set when the name chose an option of a select


async def _live_names(page: Page) -> list[str]:
    try:
        return await page.eval_on_selector_all("[data-sr1-name]", "els => els.map(e => e.dataset.sr1Name)")
    except PlaywrightError:
        return []


async def _candidates(page: Page, table: dict[str, Element], action: Action) -> list[str]:
    """Names to suggest, of the kind the action needs, with option names for selects."""
    elements = list(table.values())
    names: list[str] = []
    if isinstance(action, TypeAndSubmit):
        names = [el.name for el in elements if el.kind in ("input", "select")]
    else:
        for el in elements:
            if el.kind == "select":
                names.extend(option_name(el.name, label) for label in el.options)
            else:
                names.append(el.name)
    return names or list(table) or await _live_names(page)


class PageBusy(RuntimeError):
    """The page did not answer an element lookup in time: a script holds its main thread.

    Raised before anything was done to the page, so the caller may stop the scripts and retry.
    """


async def _count(locator: Any, options: ExecutorOptions) -> int:
    # ``count()`` takes no timeout, and a renderer stuck in a script never answers it.
    try:
        return await asyncio.wait_for(locator.count(), options.interact_timeout_ms / 1000)
    except TimeoutError:
        raise PageBusy(f"no answer to an element lookup within {options.interact_timeout_ms} ms") from None


async def _locate(page: Page, selector: str, options: ExecutorOptions) -> Any | None:
    """The first live node matching ``selector``: in the page (open shadow roots included, as
    Playwright's CSS pierces them), else in a same-origin iframe the reducer descended into."""
    locator = page.locator(selector)
    if await _count(locator, options) > 0:
        return locator.first
    for frame in page.frames:
        if frame is page.main_frame:
            continue
        try:
            found = frame.locator(selector)
            if await _count(found, options) > 0:
                return found.first
        except PlaywrightError as exc:  # a frame detached meanwhile
            log.debug("frame %s: %s", frame.url, _first_line(exc))
    return None


async def _facts(locator: Any, options: ExecutorOptions) -> dict[str, Any]:
    # A locator re-resolves on every call and would wait (30 s by default) for a node that a
    # navigation just removed; the timeout turns that into a prompt error.
    return await locator.evaluate(load_js("executor_prepare.js"), timeout=options.interact_timeout_ms)


def _listed_option_index(name: str, select_name: str, table: dict[str, Element], facts: dict[str, Any]) -> int | None:
    """The position of option ``name`` when the observation listed it: two choices with one label
    ("1" twice in a quantity list) carry names no label spells (``1_copy_2``), so the listing's
    order, checked against the live labels, is what finds them."""
    element = table.get(name)
    if element is None or element.tag != "option":
        return None
    listed = [n for n, el in table.items() if el.tag == "option" and n.rsplit(".", 1)[0] == select_name]
    index = listed.index(name)
    live = facts["options"]
    if index < len(live) and " ".join(live[index]["label"].split()) == " ".join(element.text.split()):
        return index
    return None


async def _resolve(page: Page, name: str, table: dict[str, Element], action: Action,
                   options: ExecutorOptions) -> _Target | ActionError:
    """Find the live node for ``name`` (or the select + option it names)."""
    element = table.get(name)
    selector = element.selector if element is not None and element.selector else name_selector(name)
    locator = await _locate(page, selector, options)
    if locator is not None:
        return _Target(name, locator, element, await _facts(locator, options))

    # `<select name>.<option>`: the reducer names the select, the policy names the option.
    if "." in name:
        select_name, wanted = name.rsplit(".", 1)
        select_el = table.get(select_name)
        select_loc = await _locate(
            page, select_el.selector if select_el is not None and select_el.selector else name_selector(select_name),
            options)
        if select_loc is not None:
            facts = await _facts(select_loc, options)
            if facts["tag"] == "select":
                index = _listed_option_index(name, select_name, table, facts)
                if index is not None:
                    return _Target(name, select_loc, select_el, facts, option_index=index)
                key = option_key(wanted)
                for index, opt in enumerate(facts["options"]):
                    if key and (option_key(opt["label"]) == key or option_key(opt["value"]) == key):
                        return _Target(name, select_loc, select_el, facts, option_index=index)
                labels = [opt["label"] for opt in facts["options"]]
                return ActionError(
                    "unknown_name",
                    f"select {select_name!r} has no option {wanted!r}; its options are {labels}",
                    name=name,
                    suggestions=suggest_names(name, [option_name(select_name, lb) for lb in labels]),
                )

    candidates = await _candidates(page, table, action)
    if element is not None:
        message = f"{name!r} was on the last observation but is no longer on the page; observe again"
    else:
        message = f"no element named {name!r} on {page.url}"
    suggestions = suggest_names(name, candidates)
    if suggestions:
        message += f"; closest names: {', '.join(suggestions)}"
    return ActionError("unknown_name", message, name=name, suggestions=suggestions)


_PURCHASES_OFF = "purchases are disabled for this session (SessionOptions.allow_purchase=False, --allow-purchase)"


def _purchase_error(page: Page, target: _Target, options: ExecutorOptions,
                    seen: PageView | None) -> ActionError | None:
    """purchase_blocked when clicking the target would place an order (see :mod:`shop_r1.envs.purchase`)."""
    if options.allow_purchase:
        return None
    facts = target.facts
    control = ControlFacts.model_validate(facts)
    probe = target.element or Element(name=target.name, kind="clickable", text=control.text, tag=control.tag)
    if not probe.text and control.text:
        probe = Element(name=probe.name, kind=probe.kind, text=control.text, tag=probe.tag)
    navigates = _leads_elsewhere(control.href, page.url)
    reason = click_reason(control, navigates=navigates, step=None)
    if reason is None and not navigates and page_matters(control, typing=False):
        reason = click_reason(control, navigates=navigates, step=purchase_step(seen))
    if reason is None and options.purchase_guard(probe):
        reason = "its words say it places an order"
    if reason is None:
        return None
    log.info("purchase guard: refused click on %r (%s)", target.name, reason)
    return ActionError("purchase_blocked",
                       f"{target.name!r} would place an order: {reason} ({control.text or probe.text!r}); "
                       f"{_PURCHASES_OFF}", name=target.name)


def _usable(target: _Target) -> ActionError | None:
    facts = target.facts
    if not facts["visible"]:
        return ActionError("not_visible", f"{target.name!r} is on the page but not visible", name=target.name)
    if facts["disabled"]:
        return ActionError("disabled", f"{target.name!r} is disabled", name=target.name)
    return None


async def _choose_option(target: _Target, index: int | None, options: ExecutorOptions) -> ActionError | None:
    result = await target.locator.evaluate(load_js("executor_select_option.js"), index,
                                           timeout=options.interact_timeout_ms)
    if not result["ok"]:
        code: ErrorCode = "disabled" if "disabled" in result["reason"] else "unknown_name"
        return ActionError(code, f"{target.name!r}: {result['reason']}", name=target.name)
    log.debug("selected %r in %s", result["label"], target.name)
    return None


def _leads_elsewhere(href: str, current: str) -> bool:
    if not href or href.lower().startswith("javascript:"):
        return False
    return href.split("#", 1)[0] != current.split("#", 1)[0] or "#" not in href


async def _click(page: Page, target: _Target, watch: _PageWatch, options: ExecutorOptions,
                 seen: PageView | None) -> ActionError | None:
    facts = target.facts
    covered = await _under_dialog(target, options, seen)
    if covered is not None:
        return covered
    if target.option_index is not None or facts["tag"] == "option":
        return await _choose_option(target, target.option_index, options)
    if facts["tag"] == "select":
        labels = [opt["label"] for opt in facts["options"]]
        names = tuple(option_name(target.name, label) for label in labels)
        return ActionError(
            "wrong_kind",
            f"{target.name!r} is a drop-down; click one of its options ({', '.join(names[:6])}) "
            f"or type_and_submit an option label ({labels[:6]})",
            name=target.name,
            suggestions=names[:3],
        )
    blocked = _purchase_error(page, target, options, seen)
    if blocked:
        return blocked
    watch.expect_navigation = _leads_elsewhere(facts["href"], page.url) or facts["submits"]
    try:
        await target.locator.click(timeout=options.interact_timeout_ms, no_wait_after=True)
    except PlaywrightTimeoutError as exc:
        cover = await _cover(target, options)
        if cover is not None:
            return _covered_error(target, cover, seen)
        return ActionError(
            "not_visible",
            f"could not click {target.name!r} within {options.interact_timeout_ms} ms: it is covered by "
            f"another element or keeps moving ({_first_line(exc)})",
            name=target.name,
        )
    return None


@dataclass(frozen=True)
class _Cover:
    """What a click on the target would land on instead: a dialog the reducer named, another
    named control, or an unnamed element (``tag#id.class``), with its first words."""

    dialog: str = ""
    name: str = ""
    element: str = ""
    text: str = ""


async def _under_dialog(target: _Target, options: ExecutorOptions, seen: PageView | None) -> ActionError | None:
    """The covered error for a control observed under an open dialog that still lies under it.

    A person cannot click, pick an option of, or type into a control under a consent wall or a
    pop-up; Playwright's fill and a select's option would go through, so this asks the page
    first. Only controls the observation marked covered are probed (one evaluate): a dialog that
    came up since is named when the click fails.
    """
    if target.element is None or not target.element.covered:
        return None
    cover = await _cover(target, options)
    return _covered_error(target, cover, seen) if cover is not None and cover.dialog else None


async def _cover(target: _Target, options: ExecutorOptions) -> _Cover | None:
    try:
        found = await target.locator.evaluate(load_js("executor_cover.js"), timeout=options.interact_timeout_ms)
    except PlaywrightError as exc:
        if _is_crash(exc):
            raise
        log.debug("cover probe of %s failed: %s", target.name, _first_line(exc))
        return None
    return _Cover(**{k: str(v or "") for k, v in found.items()}) if found else None


def _covered_error(target: _Target, cover: _Cover, seen: PageView | None) -> ActionError:
    """``not_visible`` naming the cover; under a dialog, its controls are the suggestions."""
    words = f" ({cover.text[:60]!r})" if cover.text else ""
    if cover.dialog:
        closers = tuple(el.name for el in (seen.elements if seen is not None else ())
                        if el.name.startswith(cover.dialog + ".") and el.kind != "input")
        return ActionError(
            "not_visible",
            f"could not click {target.name!r}: it is covered by the dialog {cover.dialog!r}{words}; "
            f"answer or close the dialog first" + (f" ({', '.join(closers[:4])})" if closers else ""),
            name=target.name, suggestions=closers[:3])
    what = f"the control {cover.name!r}" if cover.name else f"<{cover.element}>"
    return ActionError("not_visible", f"could not click {target.name!r}: it is covered by {what}{words}",
                       name=target.name, suggestions=(cover.name,) if cover.name else ())


def _best_label(text: str, labels: list[str]) -> int | None:
    if not labels:
        return None
    lowered = [label.lower().strip() for label in labels]
    if text.lower().strip() in lowered:
        return lowered.index(text.lower().strip())
    keys = [option_key(label) for label in labels]
    if option_key(text) in keys and option_key(text):
        return keys.index(option_key(text))
    close = difflib.get_close_matches(text.lower().strip(), lowered, n=1, cutoff=0.6)
    return lowered.index(close[0]) if close else None


async def _type_and_submit(page: Page, target: _Target, text: str, watch: _PageWatch,
                           options: ExecutorOptions, seen: PageView | None) -> ActionError | None:
    facts = target.facts
    tag, kind = facts["tag"], facts["type"]
    covered = await _under_dialog(target, options, seen)
    if covered is not None:
        return covered
    if tag == "select":
        labels = [opt["label"] for opt in facts["options"]]
        index = _best_label(text, labels)
        if index is None:
            return ActionError("unknown_name", f"select {target.name!r} has no option like {text!r}; "
                               f"its options are {labels}", name=target.name,
                               suggestions=tuple(difflib.get_close_matches(text, labels, n=3, cutoff=0)))
        return await _choose_option(target, index, options)
    fillable = (tag == "textarea" or facts["editable"]
                or (tag == "input" and kind not in _UNFILLABLE_INPUT_TYPES))
    if not fillable:
        what = f"<{tag} type={kind}>" if tag == "input" else f"<{tag}>"
        return ActionError("wrong_kind", f"{target.name!r} is a {what}, not a text field; use click",
                           name=target.name)
    if facts["readonly"]:
        return ActionError("disabled", f"{target.name!r} is read-only", name=target.name)
    if not options.allow_purchase:
        control = ControlFacts.model_validate(facts)
        reason = submit_reason(control, step=purchase_step(seen) if page_matters(control, typing=True) else None)
        if reason is None and any(options.purchase_guard(Element(name=target.name, kind="clickable", text=t))
                                  for t in facts["form_submit_texts"]):
            reason = "its form's submit button says it places an order"
        if reason is not None:
            log.info("purchase guard: refused type_and_submit into %r (%s)", target.name, reason)
            return ActionError("purchase_blocked", f"submitting {target.name!r} would place an order: {reason}; "
                               f"{_PURCHASES_OFF}", name=target.name)
    watch.expect_navigation = facts["in_form"]
    try:
        await target.locator.fill(text, timeout=options.interact_timeout_ms)
        submit_js = load_js("executor_submit.js")
        # A handle, not the locator, for after Enter: if Enter navigated, the handle fails at once
        # where a locator would wait for the node to appear in the new document.
        handle = await target.locator.element_handle(timeout=options.interact_timeout_ms)
        await handle.evaluate(submit_js, "arm")
        await target.locator.press("Enter", timeout=options.interact_timeout_ms, no_wait_after=True)
    except PlaywrightTimeoutError as exc:
        return ActionError("not_visible", f"could not type into {target.name!r} within "
                           f"{options.interact_timeout_ms} ms ({_first_line(exc)})", name=target.name)
    if watch.nav_request is None and not page.is_closed():
        try:
            outcome = await handle.evaluate(submit_js, "check")
            if outcome == "fallback_submitted":
                log.debug("Enter in %s did not submit its form; submitted it directly", target.name)
        except PlaywrightError as exc:  # the page navigated away meanwhile: Enter did work
            if _is_crash(exc):
                raise
    try:
        await handle.dispose()
    except PlaywrightError:
        pass
    return None


async def execute(
    page: Page,
    action: Action | dict[str, Any],
    elements: Mapping[str, Element] | Sequence[Element],
    *,
    options: ExecutorOptions | None = None,
    timings: dict[str, float] | None = None,
    seen: PageView | None = None,
) -> ActionError | None:
    """Perform ``action`` on ``page``; ``None`` on success, else a structured error.

    ``elements`` is the element table of the observation the policy acted on (a sequence or a
    name → element mapping). ``timings``, if given, receives ``action_ms`` (finding and acting)
    and ``settle_ms`` (waiting for the page afterwards). ``seen``, the observation itself, lets
    the purchase guard judge the page by its type (a checkout page); without it the guard goes
    by the live form and the words.
    """
    options = options or ExecutorOptions()
    if isinstance(action, dict):
        try:
            action = parse_action(action)
        except ValueError as exc:
            return ActionError("invalid_action", str(exc))
    if isinstance(action, Terminate):
        return None
    table = _as_table(elements)
    started = time.monotonic()
    settle_started = started
    watch = _PageWatch(page)
    with watch:
        try:
            dead = watch.dead()
            if dead:
                return dead
            target = await _resolve(page, action.name, table, action, options)
            if isinstance(target, ActionError):
                return target
            error = _usable(target)
            if error is None:
                if isinstance(action, Click):
                    error = await _click(page, target, watch, options, seen)
                else:
                    error = await _type_and_submit(page, target, action.text, watch, options, seen)
            settle_started = time.monotonic()
            if error is not None:
                return error
            return await _settle(watch, started, options)
        except PlaywrightError as exc:
            if watch.crashed or page.is_closed() or _is_crash(exc):
                return ActionError("page_crashed", f"the page died during {action.type}: {_first_line(exc)}",
                                   name=action.name)
            if "execution context was destroyed" in str(exc).lower():
                # The page navigated while we were reading it: the action took effect; let it load.
                settle_started = time.monotonic()
                return await _settle(watch, started, options)
            log.warning("unexpected browser error during %s: %s", action.to_json(), exc)
            return ActionError("internal", f"{action.type} failed: {_first_line(exc)}", name=action.name)
        finally:
            if timings is not None:
                end = time.monotonic()
                timings["action_ms"] = round((settle_started - started) * 1000, 2)
                timings["settle_ms"] = round((end - settle_started) * 1000, 2)
