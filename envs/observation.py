"""What a shopper sees after each step, and what a step returns.

Plain frozen dataclasses: they cross from the browser layer into the simulator, the trace writer
and the training code, and must stay cheap to build and trivial to serialise.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from shop_r1.envs.text import one_line

ElementKind = Literal["clickable", "input", "select"]


@dataclass(frozen=True)
class Element:
    """One interactable element of the reduced page.

    ``selector`` finds the live element again: the reducer stamps ``data-sr1-name`` on the DOM
    node, so the executor acts on exactly what the policy saw.

    ``covered``: the control lies under an open modal dialog or overlay (a consent wall, a
    newsletter pop-up) and cannot be clicked until the dialog is answered or closed; the dialog's
    own controls are named under its segment (``cookie_consent.accept_all_cookies``) and are not
    covered. See :mod:`shop_r1.envs.reducer`.
    """

    name: str
    kind: ElementKind
    text: str = ""
    selector: str = ""
    tag: str = ""
    in_viewport: bool = True
    disabled: bool = False
    # For selects: the option labels; for inputs: the input type ("search", "text", ...).
    options: tuple[str, ...] = ()
    input_type: str = ""
    covered: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def option_name(select_name: str, label: str) -> str:
    """The name of one choice of a ``<select>``: ``<select name>.<option slug>``.

    Options are first-class elements (kind ``clickable``, tag ``option``) so that a policy picks
    a size with the same ``click`` it uses everywhere, every backend (constrained grammars, JSON
    schemas, the output parser) sees them in the element table, and the executor resolves them
    to ``select_option`` on the parent select.
    """
    slug = re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")
    return f"{select_name}.{slug or 'option'}"


def with_option_elements(elements: tuple[Element, ...] | list[Element]) -> tuple[Element, ...]:
    """The element table with each select's options inserted right after the select.

    Option elements carry no selector of their own: the executor finds them through the
    select, so a name that is on the page always resolves the same way.
    """
    out: list[Element] = []
    taken = {el.name for el in elements}
    for el in elements:
        out.append(el)
        if el.kind != "select":
            continue
        for label in el.options:
            name = option_name(el.name, label)
            if name in taken:
                continue
            taken.add(name)
            out.append(Element(name=name, kind="clickable", text=label, selector="", tag="option",
                               in_viewport=el.in_viewport, disabled=el.disabled, covered=el.covered))
    return tuple(out)


@dataclass(frozen=True)
class PageStats:
    raw_bytes: int = 0
    simplified_bytes: int = 0
    raw_tokens: int = 0
    simplified_tokens: int = 0
    ms: float = 0.0
    truncated: bool = False
    dropped_elements: int = 0


@dataclass(frozen=True)
class UnreadablePart:
    """A part of the page the reducer could not look into, so its controls are not in the table."""

    kind: Literal["cross_origin_frame", "closed_shadow_root"]
    where: str  # the frame's origin and title, or the shadow host ("div#closed-host")


PageFault = Literal["http_error", "error_page", "unreachable"]
"""Why a page is an outage rather than a page a shopper chose: the shop answered 5xx
(``http_error``), the browser shows its own error page (``error_page``: an empty or broken
answer, too many redirects, ...), or nothing answered at all (``unreachable``)."""

#: Chromium net errors meaning nothing answered: the shop is down or not where the URL says.
UNREACHABLE_ERRORS: frozenset[str] = frozenset(f"net::ERR_{name}" for name in (
    "CONNECTION_REFUSED", "CONNECTION_RESET", "CONNECTION_FAILED", "CONNECTION_TIMED_OUT",
    "NAME_NOT_RESOLVED", "NAME_RESOLUTION_FAILED", "ADDRESS_UNREACHABLE", "ADDRESS_INVALID",
    "INTERNET_DISCONNECTED", "NETWORK_CHANGED",
))


@dataclass(frozen=True)
class Observation:
    url: str
    title: str
    simplified_html: str
    elements: tuple[Element, ...]
    stats: PageStats = field(default_factory=PageStats)
    timings: dict[str, float] = field(default_factory=dict)
    blocked_requests: int = 0
    blocked_urls: tuple[str, ...] = ()
    screenshot: bytes | None = None
    raw_html: str | None = None
    http_status: int | None = None
    """HTTP status of the main document (None: no answer came, or the page never navigated)."""
    net_error: str | None = None
    """Chromium's error for the main document's last navigation (``net::ERR_CONNECTION_REFUSED``)."""
    failed_url: str | None = None
    """The URL that navigation asked for: the error page itself is ``chrome-error://chromewebdata/``."""
    scripts_stopped: bool = False
    """The page's scripts kept it busy past the observe bound and were terminated to read it."""
    unreadable: tuple[UnreadablePart, ...] = ()  # cross-origin frames, closed shadow roots

    def element(self, name: str) -> Element | None:
        for el in self.elements:
            if el.name == name:
                return el
        return None

    @property
    def fault(self) -> PageFault | None:
        """Why this page is an outage, None for a page the shop served (4xx pages included:
        a shopper meets those and goes on)."""
        if self.net_error in UNREACHABLE_ERRORS:
            return "unreachable"
        if self.net_error is not None or self.url.startswith("chrome-error://"):
            return "error_page"
        if self.http_status is not None and self.http_status >= 500:
            # A bot-protection challenge answers 503 ("Just a moment..."): the shop is up and
            # refusing us, which is a bot wall (shop_r1.envs.pagetype.bot_wall), not an outage.
            from shop_r1.envs.pagetype import bot_wall  # pagetype imports this module

            return None if bot_wall(self) is not None else "http_error"
        return None

    def fault_message(self, *, with_url: bool = True) -> str:
        """One line for the user: what failed, and where (the asked-for URL, not the error page's)."""
        at = f" at {self.failed_url or self.url}" if with_url else ""
        fault = self.fault
        if fault == "unreachable":
            return f"the shop could not be reached{at} ({self.net_error})"
        if fault == "error_page":
            return f"the browser showed an error page{at} ({self.net_error or 'no answer'})"
        if fault == "http_error":
            return f"the shop answered HTTP {self.http_status}{at}"
        return f"the page{at} loaded normally"

    @property
    def names(self) -> list[str]:
        return [el.name for el in self.elements]

    def executable_names(self) -> tuple[list[str], list[str]]:
        """(clickable names, input names) an action on this page can use without failing.

        The one definition every constrained backend (token grammar, JSON schema) shares.
        Disabled elements are left out (the executor refuses them), and so are bare selects:
        a choice is made by clicking one of its option elements (``<select>.<option>``), while
        a click on the select itself is ``wrong_kind``. Covered elements (under an open modal
        dialog) are left out too: a click on them fails until the dialog is closed, which is
        the action a constrained policy is then left to choose.
        """
        clickable = [el.name for el in self.elements if el.kind == "clickable" and not el.disabled
                     and not el.covered]
        inputs = [el.name for el in self.elements if el.kind == "input" and not el.disabled and not el.covered]
        return clickable, inputs


ErrorCode = Literal[
    "invalid_action",
    "unknown_name",
    "wrong_kind",
    "not_visible",
    "disabled",
    "navigation_timeout",
    "page_crashed",
    "blocked_origin",
    "purchase_blocked",
    "page_unresponsive",
    "internal",
]


@dataclass(frozen=True)
class ActionError:
    """A structured failure of one action; never raised, always returned in a StepResult."""

    code: ErrorCode
    message: str
    name: str | None = None
    suggestions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A message quotes the page (a control's text, the browser's note on what covers it):
        # page text is data, never terminal control (envs/text.py).
        object.__setattr__(self, "message", one_line(self.message))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepResult:
    observation: Observation | None
    error: ActionError | None = None
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    # The acted-on page's scripts kept it busy and were stopped so the action could run.
    scripts_stopped: bool = False
