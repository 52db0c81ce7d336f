"""The page reducer: a live page → the simplified HTML a shopper policy reads.

The Shop-R1 context format (Shop-R1, arXiv 2507.17842; see ``docs/training.md``) is simplified
HTML in which scripts, styles and purely visual content are gone and every interactable element
carries a unique, hierarchical, readable ``name`` attribute
(``header.search_bar.search_for_anything``, ``results.air_jordan_stay_loyal_shoes_black.view_product``,
``color.black``). The policy answers
with those names; the executor finds the live node again through ``[data-sr1-name="<name>"]``,
which the reducer stamps on the DOM.

Two halves:

* ``envs/js/reduce.js`` runs inside the page (one ``page.evaluate``): it needs computed styles,
  client rects and form labels, and one evaluate is much cheaper than shipping the raw DOM out.
  It returns a small tree of kept nodes, each tagged with its distance from the viewport and
  whether it is actionable, plus one record per interactable.
* This module owns the token budget, because it owns the tokenizer (:mod:`shop_r1.envs.tokens`). When
  the page is longer than ``ReducerOptions.token_budget`` it truncates in a fixed, logged order
  (see :func:`_fit_budget`): far-away prose goes first, then the page chrome's controls (menus,
  footers, sidebars), actionable elements of the visible main content go last.

Open modal dialogs come first, as people see them. A dialog with ``aria-modal``, a ``<dialog>``
opened with ``showModal()``, or -- with no ARIA at all, in any language -- a fixed layer with a
z-index that covers most of the viewport (found by hit-testing the viewport) is emitted at the top
of the simplified HTML as ``<dialog name="SEG">…</dialog>``: ``SEG`` is ``cookie_consent`` or
``newsletter`` for those prompts (told by their words in several languages), else the dialog's
label, id or title; its controls are named under it (``cookie_consent.accept_all_cookies``,
``newsletter.close``). Everything outside it is marked covered: the control stays in the
simplified HTML with a bare ``covered`` attribute (``<a name="results.lamp.view_product"
covered>``) so a policy still reads what the page offers behind the dialog, and its
:class:`~shop_r1.envs.observation.Element` has ``covered=True``, which keeps it out of
``Observation.executable_names``. A control outside the dialog that a click at its centre still
reaches (a header drawn above the backdrop) is not covered. The dialog's root carries
``data-sr1-dialog="SEG"`` so the executor can name it when a click lands on it.

Same-origin iframes and open shadow roots are read like the rest of the page (their controls are
named and stamped, and the executor finds them there); cross-origin frames and closed shadow
roots cannot be, and are reported: a note in the simplified HTML and ``ReducedPage.unreadable``.
Closed roots are only known to pages whose context ran :func:`install_page_hooks` first, and only
those a script attached: one the HTML parser builds from ``<template shadowrootmode="closed">``
calls no script and is not reported. Only the browser's own DOM snapshot (CDP) sees those, and it
costs 77-172 ms per observation on the eBay pages in shared/data (measured 2026-12-03), too much
for every step of every shopper.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlparse
from urllib.request import url2pathname

from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from shop_r1.envs.chromium import launch_chromium
from shop_r1.envs.observation import Element, Observation, PageStats, UnreadablePart
from shop_r1.envs.settle import SETTLE_HOOK, NetworkQuiet, wait_settled
from shop_r1.envs.tokens import count_tokens, count_tokens_batch
from shop_r1.envs.text import one_line, strip_controls


log = logging.getLogger(__name__)

#: What every element name looks like: dot-separated snake_case segments.
NAME_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")

# Long texts are cut to this many words in the "truncate long texts" phase (then halved).
_LONG_TEXT_WORDS = 60
_LONG_LABEL_WORDS = 24
_BLOCK_TAGS = frozenset({"div", "p", "ul", "ol", "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
                         "form", "table", "thead", "tbody", "tfoot", "tr", "caption", "select", "fieldset",
                         "legend", "textarea", "dialog"})
_VOID_TAGS = frozenset({"input"})


# A 1x1 transparent GIF: the answer to every image request of a local page.
_BLANK_GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


class ReducerError(RuntimeError):
    """The page could not be reduced (bad options, a page that refused the script)."""


class ObserveError(RuntimeError):
    """``observe_target`` could not load its target; the message names the target."""


@dataclass
class ReducerOptions:
    """How to reduce a page.

    ``token_budget``: most SmolLM2 tokens the simplified HTML may take (see :func:`_fit_budget`).
    ``overrides``: optional per-site hook, CSS selector → name (prefix). A matching container
    contributes that segment to the names below it; a matching interactable gets that exact name.
    ``keep_raw_html``: also return the page's serialized DOM (large; for traces and debugging).
    ``count_raw_tokens``: tokenize the raw DOM for ``PageStats.raw_tokens``. Off by default:
    it costs ~1 s on a 1 MB page, more than the observation itself; left off, ``raw_tokens`` is 0
    ("not counted"), while ``raw_bytes`` is always filled.
    """

    token_budget: int = 8000
    overrides: dict[str, str] | None = None
    keep_raw_html: bool = False
    count_raw_tokens: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.token_budget, int) or self.token_budget < 64:
            raise ValueError(f"ReducerOptions.token_budget must be an int >= 64, got {self.token_budget!r}")
        for selector, prefix in (self.overrides or {}).items():
            if not isinstance(selector, str) or not selector.strip():
                raise ValueError(f"ReducerOptions.overrides: empty CSS selector (for name {prefix!r})")
            if not isinstance(prefix, str) or not NAME_RE.match(prefix):
                raise ValueError(
                    f"ReducerOptions.overrides[{selector!r}] = {prefix!r} is not a valid name "
                    "(dot-separated snake_case: [a-z0-9_]+(.[a-z0-9_]+)*)"
                )


@dataclass(frozen=True)
class PageItem:
    """One product card of a product list, as reduce.js found it: what a catalogue needs from a
    page whose products have no pages of their own (a one-page shop's cards with "Add to cart")."""

    title: str
    price: str = ""  # as shown ("$10.90"), empty when the card shows none
    url: str = ""  # the card's title link, absolute; empty when it has none
    names: tuple[str, ...] = ()  # the card's controls


@dataclass(frozen=True)
class ReducedPage:
    """One reduced page: what the policy reads plus the elements it may act on."""

    title: str
    url: str
    simplified_html: str
    elements: tuple[Element, ...]
    stats: PageStats
    raw_html: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    unreadable: tuple[UnreadablePart, ...] = ()
    items: tuple[PageItem, ...] = ()

    def element(self, name: str) -> Element | None:
        return next((el for el in self.elements if el.name == name), None)

    @property
    def names(self) -> list[str]:
        return [el.name for el in self.elements]

    def to_observation(self, *, timings: dict[str, float], blocked_requests: int = 0,
                       blocked_urls: tuple[str, ...] = (), screenshot: bytes | None = None,
                       keep_raw_html: bool = False) -> Observation:
        """This page as the step's :class:`~shop_r1.envs.observation.Observation`.

        ``timings`` are the step's (they go into the trace); the reducer's own breakdown
        (``self.timings``: js, evaluate, budget) stays here, for benchmarks, so a trace's timings
        keep one meaning whatever the reducer measures.
        """
        return Observation(url=self.url, title=self.title, simplified_html=self.simplified_html,
                           elements=self.elements, stats=self.stats, timings=timings,
                           blocked_requests=blocked_requests, blocked_urls=blocked_urls, screenshot=screenshot,
                           raw_html=self.raw_html if keep_raw_html else None, unreadable=self.unreadable)


# The reducer function's name on the page's window, and the call that uses it once installed.
_GLOBAL = "__shopR1Reduce"
_CALL = f"(arg) => window.{_GLOBAL} ? JSON.stringify(window.{_GLOBAL}(arg)) : null"


@lru_cache(maxsize=1)
def _script() -> str:
    return resources.files("shop_r1.envs").joinpath("js/reduce.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _shadow_hook() -> str:
    return resources.files("shop_r1.envs").joinpath("js/shadow_hook.js").read_text(encoding="utf-8")


async def install_page_hooks(context: BrowserContext) -> None:
    """Let the reducer see where closed shadow roots are: call before the context opens pages.

    A closed root cannot be found from the page afterwards, so the hook has to run before the
    page's own scripts (``envs/js/shadow_hook.js``).
    """
    await context.add_init_script(script=_shadow_hook())
    await context.add_init_script(script=SETTLE_HOOK)  # when the DOM last changed (envs/settle.py)


# ---- the tree returned by reduce.js ------------------------------------------------------------

# A child of a node: a text run, a kept element, or None where the budget dropped it (children
# lists are edited in place so that re-rendering after each phase needs no copy of the tree).
Child: TypeAlias = "TreeNode | str | None"


@dataclass(slots=True)
class TreeNode:
    """One kept element as reduce.js emits it (``{tag, attrs, children, dist, actionable}``).

    ``dist`` is how far (px) the element lies outside the viewport, 0 inside it: the budget drops
    far content first. ``actionable`` marks a named control, which is never dropped as prose.
    """

    tag: str
    attrs: dict[str, str] | None
    children: list[Child]
    dist: int
    actionable: bool
    chrome: bool = False  # a control of the page's header, footer, navigation or sidebar

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeNode:
        return cls(tag=data["tag"], attrs=data["attrs"], dist=data["dist"], actionable=data["actionable"],
                   chrome=bool(data.get("chrome", False)),
                   children=[c if isinstance(c, str) else cls.from_json(c) for c in data["children"]])

    def is_empty(self) -> bool:
        """A non-actionable node left with no text and no kept children is dropped when rendered."""
        if self.actionable:
            return False
        return all(c is None or (not isinstance(c, str) and c.is_empty()) for c in self.children)

    def names(self) -> set[str]:
        """Names of the controls in this subtree (what dropping it takes off the element table)."""
        found: set[str] = set()
        if self.actionable and self.attrs and "name" in self.attrs:
            found.add(self.attrs["name"])
        for child in self.children:
            if isinstance(child, TreeNode):
                found |= child.names()
        return found


def _render(node: TreeNode, out: list[str]) -> None:
    if node.is_empty():
        return
    tag = node.tag
    if tag in _BLOCK_TAGS:
        out.append("\n")
    if node.attrs:
        parts = [f'{k}="{html.escape(str(v), quote=True)}"' if v != "" else k for k, v in node.attrs.items()]
        out.append(f"<{tag} {' '.join(parts)}>")
    else:
        out.append(f"<{tag}>")
    if tag in _VOID_TAGS:
        return
    first = True
    for child in node.children:
        if child is None:
            continue
        if isinstance(child, str):
            if not first and out and not out[-1].endswith((">", "\n")):
                out.append(" ")
            out.append(html.escape(child, quote=False))
        else:
            _render(child, out)
        first = False
    out.append(f"</{tag}>")


def render_tree(tree: TreeNode) -> str:
    out: list[str] = []
    for child in tree.children:
        if child is None:
            continue
        if isinstance(child, str):
            out.append("\n" + html.escape(child, quote=False))
        else:
            _render(child, out)
    return "".join(out).strip() + "\n"


@dataclass
class _Text:
    """A text run of the tree, addressable for dropping or shortening."""

    siblings: list[Child]
    index: int
    dist: int
    actionable: bool
    tokens: int = 0


@dataclass(frozen=True)
class _Control:
    """An outermost actionable node and where it sits, so the budget can drop it in place."""

    siblings: list[Child]
    index: int
    node: TreeNode


def _texts(tree: TreeNode) -> list[_Text]:
    found: list[_Text] = []

    def visit(node: TreeNode, actionable: bool) -> None:
        act = actionable or node.actionable
        for i, child in enumerate(node.children):
            if isinstance(child, str):
                found.append(_Text(node.children, i, node.dist, act))
            elif child is not None:
                visit(child, act)

    visit(tree, False)
    return found


def _controls(tree: TreeNode) -> list[_Control]:
    """Each actionable node, outermost only, in document order."""
    found: list[_Control] = []

    def visit(node: TreeNode) -> None:
        for i, child in enumerate(node.children):
            if not isinstance(child, TreeNode):
                continue
            if child.actionable:
                found.append(_Control(node.children, i, child))
            else:
                visit(child)

    visit(tree)
    return found


def _shorten(text: str, words: int) -> str:
    parts = text.split(" ")
    return text if len(parts) <= words else " ".join(parts[:words]) + " …"


def _fit_budget(tree: TreeNode, budget: int, url: str) -> tuple[str, int, bool, set[str]]:
    """Render the tree within ``budget`` tokens. Returns (html, tokens, truncated, dropped names).

    Truncation policy, applied in this order and only as far as needed:

    1. drop non-actionable text outside the viewport, farthest first;
    2. shorten long texts (prose to 60 words, control labels to 24, then both halved);
    3. drop controls covered by an open modal dialog, last on the page first: they cannot be
       acted on until the dialog is answered, and the dialog's own controls are what the next
       action needs (the page behind it is read in full again once the dialog is gone);
    4. drop page-chrome controls (site header and footer, navigation, sidebars; not the search
       field and its button), last on the page first: a policy cannot scroll, so what it reads
       is the whole page, and the results it came for matter more than a visible menu;
    5. drop actionable elements outside the viewport, farthest first;
    6. drop non-actionable text inside the viewport, last on the page first;
    7. drop actionable elements of the visible region, last on the page first.

    Each phase removes, by per-run token estimates, just enough to reach the budget, then the
    result is re-rendered and counted exactly; the loop continues into the next phase if the
    estimate fell short (wrappers that empty out vanish too, so estimates err on the safe side).
    """
    rendered = render_tree(tree)
    total = count_tokens(rendered)
    if total <= budget:
        return rendered, total, False, set()
    start = total
    texts = _texts(tree)
    for t, n in zip(texts, count_tokens_batch([str(t.siblings[t.index]) for t in texts])):
        t.tokens = n + 1
    dropped: set[str] = set()
    actions: list[str] = []

    def recount() -> int:
        nonlocal rendered
        rendered = render_tree(tree)
        return count_tokens(rendered)

    def drop_texts(candidates: list[_Text], label: str) -> None:
        nonlocal total
        n = 0
        excess = total - budget
        for t in candidates:
            if excess <= 0:
                break
            if t.siblings[t.index] is None:
                continue
            t.siblings[t.index] = None
            excess -= t.tokens
            n += 1
        if n:
            actions.append(f"dropped {n} {label}")
            total = recount()

    # 1. far-away prose
    drop_texts(sorted((t for t in texts if not t.actionable and t.dist > 0), key=lambda t: -t.dist),
               "text runs outside the viewport")
    # 2. long texts
    for prose_words, label_words in ((_LONG_TEXT_WORDS, _LONG_LABEL_WORDS),
                                     (_LONG_TEXT_WORDS // 2, _LONG_LABEL_WORDS // 2)):
        if total <= budget:
            break
        n = 0
        for t in texts:
            s = t.siblings[t.index]
            if not isinstance(s, str):
                continue
            short = _shorten(s, label_words if t.actionable else prose_words)
            if short != s:
                t.siblings[t.index] = short
                n += 1
        if n:
            actions.append(f"shortened {n} long texts to {prose_words}/{label_words} words")
            total = recount()

    def drop_controls(candidates: list[_Control], label: str) -> None:
        nonlocal total
        n = 0
        while total > budget and candidates:
            # drop in slices so that a huge page does not re-render once per element
            step = max(1, len(candidates) // 8)
            batch, candidates[:] = candidates[:step], candidates[step:]
            for control in batch:
                if control.siblings[control.index] is None:
                    continue
                control.siblings[control.index] = None
                dropped.update(control.node.names())
                n += 1
            total = recount()
        if n:
            actions.append(f"dropped {n} {label}")

    # 3. whatever an open dialog covers, bottom first
    if total > budget:
        drop_controls([c for c in reversed(_controls(tree)) if c.node.attrs and "covered" in c.node.attrs],
                      "controls covered by an open dialog")
    # 4. page chrome, bottom first
    if total > budget:
        drop_controls([c for c in reversed(_controls(tree)) if c.node.chrome],
                      "header, footer, navigation and sidebar controls")
    # 5. controls outside the viewport, farthest first
    if total > budget:
        drop_controls(sorted((c for c in _controls(tree) if c.node.dist > 0), key=lambda c: -c.node.dist),
                      "actionable elements outside the viewport")
    # 6. visible prose, bottom of the page first
    if total > budget:
        drop_texts([t for t in reversed(texts) if not t.actionable], "text runs in the viewport")
    # 7. last resort: visible controls, bottom first
    if total > budget:
        drop_controls(list(reversed(_controls(tree))), "actionable elements in the viewport")
    log.info("reduced page %s truncated from %d to %d tokens (budget %d): %s", url, start, total, budget,
             "; ".join(actions) or "nothing to drop")
    return rendered, total, True, dropped


def _element_table(records: list[dict[str, Any]]) -> tuple[Element, ...]:
    """The element table, each select followed by its options under the names the HTML gives them.

    reduce.js names the options (``<select>.<option slug>``, told apart by value or a ``_copy_N``
    suffix where two share a label), so the table and the simplified HTML cannot disagree; options
    carry no stamp and are found through their select (``with_option_elements`` builds the same
    rows for tables made elsewhere).
    """
    out: list[Element] = []
    for e in records:
        labels = tuple(one_line(label) for label in e["options"])
        el = Element(name=e["name"], kind=e["kind"], text=one_line(e["text"]),
                     selector=f'[data-sr1-name="{e["name"]}"]', tag=e["tag"], in_viewport=bool(e["in_viewport"]),
                     disabled=bool(e["disabled"]), options=labels, input_type=e["input_type"],
                     covered=bool(e.get("covered", False)))
        out.append(el)
        out.extend(Element(name=name, kind="clickable", text=label, selector="", tag="option",
                           in_viewport=el.in_viewport, disabled=el.disabled, covered=el.covered)
                   for name, label in zip(e["option_names"], labels, strict=True))
    return tuple(out)


async def reduce_page(page: Page, options: ReducerOptions | None = None) -> ReducedPage:
    """Reduce the page's current DOM; stamps ``data-sr1-name`` on every reported interactable."""
    opts = options or ReducerOptions()
    t0 = time.perf_counter()
    arg = {"overrides": opts.overrides or {}, "keepRaw": opts.keep_raw_html or opts.count_raw_tokens}
    try:
        # The reducer is installed once per document and then called by a short expression:
        # re-sending and re-compiling ~20 KB of script on every step cost more than running it.
        # It answers with a JSON string, which crosses CDP far faster than a nested value.
        payload = await page.evaluate(_CALL, arg)
        if payload is None:
            payload = await page.evaluate(f"(arg) => {{ window.{_GLOBAL} = {_script().strip().rstrip(';')}\n; "
                                          f"return JSON.stringify(window.{_GLOBAL}(arg)); }}", arg)
    except PlaywrightError as exc:
        raise ReducerError(f"reducing {page.url} failed in the page: {exc}") from exc
    result: dict[str, Any] = json.loads(payload)
    if result.get("error"):
        raise ReducerError(f"reducing {page.url}: {result['error']}")
    t_js = time.perf_counter()
    tree = TreeNode.from_json(result["tree"])
    html_text, tokens, truncated, dropped = _fit_budget(tree, opts.token_budget, result["url"])
    every = _element_table(result["elements"])
    # An option goes with its select: dropping the select drops its choices too.
    elements = tuple(el for el in every if el.name not in dropped
                     and not (el.tag == "option" and el.name.rsplit(".", 1)[0] in dropped))
    t_end = time.perf_counter()
    raw_html: str | None = result.get("raw_html")
    raw_tokens = count_tokens(raw_html) if (opts.count_raw_tokens and raw_html) else 0
    stats = PageStats(
        raw_bytes=int(result["raw_bytes"]),
        simplified_bytes=len(html_text.encode("utf-8")),
        raw_tokens=raw_tokens,
        simplified_tokens=tokens,
        ms=round((t_end - t0) * 1000, 2),
        truncated=truncated,
        dropped_elements=len(every) - len(elements),
    )
    timings = {"js_ms": round(float(result["js_ms"]), 2), "evaluate_ms": round((t_js - t0) * 1000, 2),
               "budget_ms": round((t_end - t_js) * 1000, 2)}
    unreadable = tuple(UnreadablePart(kind=u["kind"], where=u["where"]) for u in result["unreadable"])
    if unreadable:
        log.info("page %s: %d parts the reducer cannot read: %s", result["url"], len(unreadable),
                 "; ".join(f"{u.kind} {u.where}" for u in unreadable[:5]))
    # Page text is data, never terminal control (envs/text.py): reduce.js drops control characters
    # from the text it normalises; this catches what reaches the page another way (attributes).
    return ReducedPage(title=one_line(result["title"]), url=result["url"], simplified_html=strip_controls(html_text),
                       elements=elements,
                       stats=stats, raw_html=raw_html if opts.keep_raw_html else None, timings=timings,
                       unreadable=unreadable,
                       items=tuple(PageItem(title=" ".join(i["title"].split()), price=i["price"], url=i["url"],
                                            names=tuple(i["names"])) for i in result.get("items", ())))


# ---- one-shot observation of a URL or a local file ---------------------------------------------

def resolve_target(target: str) -> tuple[str, bool]:
    """(URL to open, is_local_file). Raises ObserveError naming the target when it is unusable."""
    parsed = urlparse(target)
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise ObserveError(f"{target}: URL has no host")
        return target, False
    if parsed.scheme == "file":
        path = Path(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise ObserveError(f"{target}: unsupported scheme {parsed.scheme!r} (use http(s):// or a local .html file)")
    else:
        path = Path(target)
    if not path.is_file():
        raise ObserveError(f"{target}: no such file")
    if path.suffix.lower() not in (".html", ".htm", ".xhtml"):
        raise ObserveError(f"{target}: not an .html file")
    return path.resolve().as_uri(), True


async def open_target(browser: Browser, target: str, *, viewport: tuple[int, int] = (1280, 800),
                      timeout_ms: int = 30_000) -> Page:
    """A new page of ``browser`` showing ``target``.

    A local file is loaded with every network request aborted except the file itself: recorded
    pages reference trackers, ads and CDNs, and observing them must neither leak requests nor
    depend on what those hosts answer today. Raises ObserveError naming the target.
    """
    url, local = resolve_target(target)
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                        service_workers="block")
    await install_page_hooks(context)
    if local:
        body = Path(url2pathname(urlparse(url).path)).read_bytes()
        try:  # recorded pages were served as UTF-8 by HTTP header; a bare file has no header
            body.decode("utf-8")
            content_type = "text/html; charset=utf-8"
        except UnicodeDecodeError:
            content_type = "text/html"

        async def route(r: Any) -> None:
            if r.request.url.split("#", 1)[0] == url:
                await r.fulfill(status=200, content_type=content_type, body=body)
            elif r.request.resource_type == "image":
                # Answered locally, not aborted: recorded pages swap a failed image for
                # another in `onerror`, which loops forever and never fires `load`.
                await r.fulfill(status=200, content_type="image/gif", body=_BLANK_GIF)
            else:
                await r.abort("blockedbyclient")

        await context.route("**/*", route)
    page = await context.new_page()
    network = NetworkQuiet(page)
    try:
        await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    except PlaywrightError as exc:
        await context.close()
        reason = str(exc).splitlines()[0]
        raise ObserveError(f"{target}: could not load ({reason})") from exc
    try:  # late scripts and layout; a page that never finishes loading is still observed
        await page.wait_for_load_state("load", timeout=min(timeout_ms, 5_000))
    except PlaywrightError:
        log.warning("%s: no load event within 5 s; observing the page as it is", target)
    # A client-rendered page fills itself after load: read it once it has stopped changing.
    await wait_settled(page, network)
    return page


async def observe_target(
    target: str,
    options: ReducerOptions | None = None,
    browser_path: str | None = None,
    *,
    screenshot: str | Path | None = None,
    viewport: tuple[int, int] = (1280, 800),
    timeout_ms: int = 30_000,
) -> ReducedPage:
    """Open ``target`` (http(s) URL or local .html file) in a short-lived headless Chromium and reduce it.

    Network rules for local files: see :func:`open_target`. Chromium is started by
    :func:`~shop_r1.envs.chromium.launch_chromium`, the shopper pool's launcher.
    """
    resolve_target(target)  # fail on a bad target before starting a browser
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, browser_path)
        try:
            page = await open_target(browser, target, viewport=viewport, timeout_ms=timeout_ms)
            reduced = await reduce_page(page, options)
            if screenshot is not None:
                await page.screenshot(path=str(screenshot), full_page=False)
            return reduced
        finally:
            await browser.close()


def observe(target: str, options: ReducerOptions | None = None, browser_path: str | None = None,
            **kwargs: Any) -> ReducedPage:
    """Synchronous wrapper of :func:`observe_target` for scripts and the CLI."""
    return asyncio.run(observe_target(target, options, browser_path, **kwargs))
