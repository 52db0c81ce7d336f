"""Browser sessions for simulated shoppers, in the spirit of a gymnasium environment.

One Chromium process (a :class:`BrowserPool`) serves many shoppers; each shopper gets a
:class:`ShopperSession` with a Playwright ``BrowserContext`` of its own (cookies, cart, storage
isolated), and talks to it with ``reset(start_url) -> Observation`` and
``step(action) -> StepResult``. Contexts are cheap (~0.3 s, ~20 MiB each) where browsers are not,
and one process keeps CPU, the real limit on this kind of machine, in check.

Failures stay where they happen. A crashed renderer or a closed page ends that session's episode
(``page_crashed``, ``done=True``) and nothing else; a dead browser process is logged once, ends
the sessions it carried, and is relaunched for the next ``new_session``.

Safety rails, per session:

* origin allow-list: requests to any other origin are aborted (through ``context.route``) and
  counted in the next observation (``blocked_requests``, ``blocked_urls``); a main-frame
  navigation to such an origin is the step's ``blocked_origin`` error and the page stays put;
* purchase guard (see :mod:`shop_r1.envs.executor`): a click that would place an order is refused with
  ``purchase_blocked`` unless ``SessionOptions.allow_purchase``;
* extra HTTP headers (the simulator sends ``X-Shop-R1-Session``) only ever reach allowed origins,
  because nothing else gets through.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Page, Playwright, Request, Route, async_playwright
from playwright.async_api import Error as PlaywrightError

from shop_r1.envs.actions import Action, ActionValidationError, Terminate, parse_action
from shop_r1.envs.chromium import LAUNCH_ARGS, launch_chromium
from shop_r1.envs.executor import ExecutorOptions, execute
from shop_r1.envs.observation import ActionError, Observation, StepResult
from shop_r1.envs.reducer import ReducedPage, ReducerError, ReducerOptions, install_page_hooks, reduce_page

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class SessionCrashed(RuntimeError):
    """Raised by ``reset``/``observe`` on a session whose page, context or browser died."""


class ResetError(RuntimeError):
    """``reset`` could not open its start URL (unreachable, blocked origin, timeout)."""


@dataclass(frozen=True, kw_only=True)
class SessionOptions(ExecutorOptions):
    """Per-session settings; the executor's knobs (timeouts, purchase guard) are inherited."""

    screenshot: bool = False
    """Attach a PNG of the viewport to every observation."""
    keep_raw_html: bool = False
    """Attach the page's full HTML to every observation (large; for debugging and datasets)."""
    reducer: ReducerOptions | None = None
    """Options for the page reducer (None: its defaults)."""
    blocked_url_examples: int = 5
    """How many blocked URLs an observation lists as examples (the count is always exact)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.blocked_url_examples, int) or self.blocked_url_examples < 0:
            raise ValueError(
                f"SessionOptions.blocked_url_examples must be an int >= 0, got {self.blocked_url_examples!r}"
            )


def origin_of(url: str) -> str:
    """``scheme://host:port`` with the default port made explicit, e.g. ``http://127.0.0.1:80``.

    Raises ValueError naming the URL when it has no scheme or host.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        raise ValueError(f"not an absolute URL with a host: {url!r}")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError as exc:
        raise ValueError(f"bad port in URL {url!r}: {exc}") from exc
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _origin_or_none(url: str) -> str | None:
    try:
        return origin_of(url)
    except ValueError:
        return None


class ShopperSession:
    """One shopper: an isolated browser context with one page, driven by Shop-R1 actions.

    Create through :meth:`BrowserPool.new_session`. Calls on one session are serialised (a lock),
    calls on different sessions run concurrently.
    """

    def __init__(self, pool: BrowserPool, session_id: str, context: BrowserContext, page: Page,
                 allowed_origins: frozenset[str] | None, options: SessionOptions) -> None:
        self._pool = pool
        self.session_id = session_id
        self.context = context
        self.page = page
        self.options = options
        self._explicit_origins = allowed_origins
        self.allowed_origins: frozenset[str] = allowed_origins or frozenset()
        self._route_installed = False
        self._lock = asyncio.Lock()
        self._blocked_count = 0
        self._blocked_examples: list[str] = []
        self._blocked_navigation: str | None = None
        self._crash_reason: str | None = None
        self._closed = False
        self.last_observation: Observation | None = None
        page.on("crash", lambda _p: self._mark_dead("the page's renderer crashed"))
        page.on("close", lambda _p: self._mark_dead("the page was closed"))
        page.on("popup", self._on_popup)

    # ---- public API --------------------------------------------------------------------------
    @property
    def crashed(self) -> bool:
        return self._crash_reason is not None

    @property
    def closed(self) -> bool:
        return self._closed

    async def reset(self, start_url: str) -> Observation:
        """Open ``start_url`` and return the first observation.

        Without an explicit allow-list, the start URL's origin becomes the only allowed one.
        Raises :class:`ResetError` when the page cannot be opened, :class:`SessionCrashed` when the
        session is already dead.
        """
        async with self._lock:
            self._check_alive()
            start_origin = _origin_or_none(start_url)
            if start_origin is None:
                raise ResetError(f"session {self.session_id}: start URL {start_url!r} is not an absolute URL")
            if self._explicit_origins is None:
                self.allowed_origins = frozenset({start_origin})
            elif start_origin not in self.allowed_origins:
                raise ResetError(f"session {self.session_id}: start URL {start_url} is outside the allowed "
                                 f"origins {sorted(self.allowed_origins)}")
            await self._install_route()
            self._take_blocked()  # what the previous page tried does not belong to this episode
            self._blocked_navigation = None
            t0 = time.monotonic()
            try:
                await self.page.goto(start_url, wait_until="domcontentloaded",
                                     timeout=self.options.action_timeout_ms)
            except PlaywrightError as exc:
                if self.crashed:
                    raise SessionCrashed(f"session {self.session_id}: {self._crash_reason}") from exc
                raise ResetError(f"session {self.session_id}: could not open {start_url}: "
                                 f"{str(exc).splitlines()[0]}") from exc
            try:  # images and late scripts; a page that never fires `load` is observed as it is
                await self.page.wait_for_load_state("load", timeout=self.options.settle_max_ms)
            except PlaywrightError:
                log.debug("session %s: no load event within %d ms on %s", self.session_id,
                          self.options.settle_max_ms, start_url)
            return await self._observe({"action_ms": 0.0, "settle_ms": round((time.monotonic() - t0) * 1000, 2)})

    async def step(self, action: Action | dict[str, Any]) -> StepResult:
        """Execute one action and observe the page; errors come back in the result, never raised."""
        async with self._lock:
            if self._closed:
                raise SessionCrashed(f"session {self.session_id} is closed")
            if self.crashed:
                return self._crash_result()
            if isinstance(action, dict):
                try:
                    action = parse_action(action)
                except ActionValidationError as exc:
                    return await self._result(ActionError("invalid_action", str(exc)), {}, done=False)
            if isinstance(action, Terminate):
                return await self._result(None, {"action_ms": 0.0, "settle_ms": 0.0}, done=True)
            timings: dict[str, float] = {}
            elements = self.last_observation.elements if self.last_observation else ()
            self._blocked_navigation = None
            error = await execute(self.page, action, elements, options=self.options, timings=timings,
                                  seen=self.last_observation)
            if self.crashed or (error is not None and error.code == "page_crashed"):
                if not self.crashed:
                    self._mark_dead(error.message if error else "page crashed")
                return self._crash_result()
            if self._blocked_navigation is not None and (error is None or error.code == "navigation_timeout"):
                error = ActionError(
                    "blocked_origin",
                    f"{action.name!r} leads to {self._blocked_navigation}, outside the allowed origins "
                    f"{sorted(self.allowed_origins)}; the page stayed where it was",
                    name=action.name,
                )
            return await self._result(error, timings, done=False)

    async def observe(self) -> Observation:
        """The current page, reduced (also resets the blocked-request counters)."""
        async with self._lock:
            self._check_alive()
            return await self._observe({})

    async def close(self) -> None:
        """Close the context (idempotent; safe on a crashed session)."""
        if self._closed:
            return
        self._closed = True
        self._pool._forget(self)
        try:
            await self.context.close()
        except PlaywrightError as exc:
            log.debug("session %s: context already gone on close: %s", self.session_id, exc)

    # ---- internals ---------------------------------------------------------------------------
    def _mark_dead(self, reason: str) -> None:
        if self._crash_reason is None and not self._closed:
            self._crash_reason = reason
            log.warning("session %s: %s; this session is over, the others go on", self.session_id, reason)

    def _check_alive(self) -> None:
        if self._closed:
            raise SessionCrashed(f"session {self.session_id} is closed")
        if self.crashed:
            raise SessionCrashed(f"session {self.session_id}: {self._crash_reason}")

    def _crash_result(self) -> StepResult:
        return StepResult(
            observation=None,
            error=ActionError("page_crashed", f"session {self.session_id}: {self._crash_reason}"),
            done=True,
        )

    async def _result(self, error: ActionError | None, timings: dict[str, float], *, done: bool) -> StepResult:
        try:
            observation = await self._observe(timings)
        except (PlaywrightError, ReducerError) as exc:
            if self.crashed or self.page.is_closed():
                self._mark_dead(self._crash_reason or "the page died while being observed")
                return self._crash_result()
            log.warning("session %s: observing %s failed: %s", self.session_id, self.page.url, exc)
            return StepResult(observation=self.last_observation,
                              error=error or ActionError("internal", f"observation failed: {exc}"), done=done)
        return StepResult(observation=observation, error=error, done=done)

    async def _observe(self, timings: dict[str, float]) -> Observation:
        t0 = time.monotonic()
        reduced = await self._reduce_stable()
        reduce_ms = round((time.monotonic() - t0) * 1000, 2)
        screenshot = await self.page.screenshot(type="png") if self.options.screenshot else None
        count, examples = self._take_blocked()
        observation = reduced.to_observation(
            timings={**timings, "reduce_ms": reduce_ms},
            blocked_requests=count,
            blocked_urls=examples,
            screenshot=screenshot,
            keep_raw_html=self.options.keep_raw_html,
        )
        self.last_observation = observation
        return observation

    async def _reduce_stable(self) -> ReducedPage:
        """Reduce the page, retrying when a late navigation replaces the document mid-read.

        The executor waits for navigations it can see coming; one started later by the page
        itself (a timer, a meta refresh) can still swap the document under the reducer.
        """
        for attempt in range(3):
            try:
                return await reduce_page(self.page, self._reducer_options())
            except ReducerError as exc:
                if attempt == 2 or "context was destroyed" not in str(exc) or self.crashed:
                    raise
                log.debug("session %s: document replaced while observing; retrying", self.session_id)
                try:
                    await self.page.wait_for_load_state("domcontentloaded", timeout=self.options.action_timeout_ms)
                except PlaywrightError:
                    pass
        raise AssertionError("unreachable")

    def _reducer_options(self) -> ReducerOptions | None:
        opts = self.options.reducer
        if not self.options.keep_raw_html or (opts is not None and opts.keep_raw_html):
            return opts
        return dataclasses.replace(opts, keep_raw_html=True) if opts else ReducerOptions(keep_raw_html=True)

    def _take_blocked(self) -> tuple[int, tuple[str, ...]]:
        count, examples = self._blocked_count, tuple(self._blocked_examples)
        self._blocked_count = 0
        self._blocked_examples = []
        return count, examples

    async def _install_route(self) -> None:
        """Intercept only requests that are not surely allowed.

        Every intercepted request is a round trip browser -> driver -> Python; routing ``**/*``
        made the shop's own CSS/JS/HTML pay it too, which dominated CPU with dozens of shoppers.
        The pattern is matched inside the browser driver; anything it lets through starts with an
        allowed origin followed by ``/``, ``?``, ``#`` or the end (so ``host:port@evil`` is still
        caught). ``_route`` re-checks what it receives, so a too-wide pattern only costs time.
        """
        if self._route_installed or not self.allowed_origins:
            return
        prefixes: list[str] = []
        for origin in sorted(self.allowed_origins):
            prefixes.append(re.escape(origin))
            scheme, _, hostport = origin.partition("://")
            host, _, port = hostport.rpartition(":")
            if port and _DEFAULT_PORTS.get(scheme) == int(port):
                prefixes.append(re.escape(f"{scheme}://{host}"))  # URLs omit a default port
        pattern = re.compile(rf"^(?!(?:{'|'.join(prefixes)})(?:[/?#]|$))", re.IGNORECASE)
        await self.context.route(pattern, self._route)
        self._route_installed = True

    async def _route(self, route: Route, request: Request) -> None:
        """Let allowed origins through; abort and count everything else."""
        origin = _origin_or_none(request.url)
        if origin is not None and origin in self.allowed_origins:
            await route.fallback()
            return
        if not self.allowed_origins:  # before the first reset nothing is loaded; let it be
            await route.fallback()
            return
        self._blocked_count += 1
        if len(self._blocked_examples) < self.options.blocked_url_examples:
            self._blocked_examples.append(request.url[:300])
        is_main_navigation = request.is_navigation_request() and request.frame == self.page.main_frame
        log.debug("session %s: blocked %s %s", self.session_id, request.resource_type, request.url)
        try:
            if is_main_navigation:
                self._blocked_navigation = request.url
                # "aborted" leaves the current document in place; other codes show an error page.
                await route.abort("aborted")
            else:
                await route.abort("blockedbyclient")
        except PlaywrightError as exc:  # the page went away meanwhile
            log.debug("session %s: abort failed: %s", self.session_id, exc)

    async def _on_popup(self, popup: Page) -> None:
        # A session is one tab. The executor retargets target=_blank links; whatever still opens a
        # window (window.open from a script) is closed so it cannot use CPU or hold state unseen.
        log.info("session %s: closing a popup window (%s)", self.session_id, popup.url)
        try:
            await popup.close()
        except PlaywrightError:
            pass


class BrowserPool:
    """One Chromium process for many isolated shopper sessions.

    Use as ``async with BrowserPool() as pool: session = await pool.new_session("s1")``.
    """

    def __init__(self, browser_path: str | None = None, headless: bool = True,
                 launch_args: Sequence[str] = LAUNCH_ARGS) -> None:
        self.browser_path = browser_path
        self.headless = headless
        self.launch_args = tuple(launch_args)
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._sessions: dict[str, ShopperSession] = {}
        self._launch_lock = asyncio.Lock()
        self._closing = False
        self.launches = 0
        self.crashes = 0

    async def __aenter__(self) -> BrowserPool:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def alive(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    @property
    def sessions(self) -> dict[str, ShopperSession]:
        """Open sessions by id (a copy)."""
        return dict(self._sessions)

    async def start(self) -> None:
        """Start Playwright and launch Chromium (idempotent); raises ``chromium.BrowserError``."""
        async with self._launch_lock:
            await self._ensure_browser()

    async def close(self) -> None:
        """Close every session, the browser and Playwright (idempotent)."""
        self._closing = True
        for session in list(self._sessions.values()):
            await session.close()
        if self._browser is not None:
            try:
                await self._browser.close()
            except PlaywrightError as exc:
                log.debug("browser already gone on close: %s", exc)
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None
        self._closing = False

    async def new_session(self, session_id: str, allowed_origins: Sequence[str] | None = None,
                          extra_headers: dict[str, str] | None = None, viewport: tuple[int, int] = (1280, 900),
                          options: SessionOptions | None = None) -> ShopperSession:
        """A fresh isolated context + page. Relaunches the browser first if it died.

        ``allowed_origins``: URLs or origins the session may load from (default: the origin of
        the URL given to ``reset``). ``extra_headers`` go with every (allowed) request.
        """
        if not session_id or not isinstance(session_id, str):
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        if session_id in self._sessions:
            raise ValueError(f"session id {session_id!r} is already open in this pool")
        origins: frozenset[str] | None = None
        if allowed_origins is not None:
            if isinstance(allowed_origins, str):
                raise ValueError("allowed_origins must be a list of origins, not one string")
            origins = frozenset(origin_of(o) for o in allowed_origins)
        width, height = viewport
        if width <= 0 or height <= 0:
            raise ValueError(f"viewport must be positive (width, height), got {viewport!r}")
        headers = {str(k): str(v) for k, v in (extra_headers or {}).items()}
        async with self._launch_lock:
            browser = await self._ensure_browser()
        context = await browser.new_context(
            viewport={"width": width, "height": height},
            extra_http_headers=headers or None,
            service_workers="block",  # a service worker would fetch past context.route
            accept_downloads=False,
        )
        try:
            await install_page_hooks(context)
            page = await context.new_page()
            session = ShopperSession(self, session_id, context, page, origins, options or SessionOptions())
            await session._install_route()  # with an explicit allow-list; else at reset()
        except BaseException:
            await context.close()
            raise
        self._sessions[session_id] = session
        return session

    # ---- internals ---------------------------------------------------------------------------
    def _forget(self, session: ShopperSession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]

    async def _ensure_browser(self) -> Browser:
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if self._browser is not None:
            log.warning("relaunching Chromium after it died (launch #%d)", self.launches + 1)
        if self._playwright is None:
            self._playwright = await async_playwright().start()
        browser = await launch_chromium(self._playwright, self.browser_path, headless=self.headless,
                                        args=self.launch_args)
        browser.on("disconnected", self._on_disconnected)
        self._browser = browser
        self.launches += 1
        return browser

    def _on_disconnected(self, browser: Browser) -> None:
        if self._closing or browser is not self._browser:
            return
        self.crashes += 1
        lost = [s for s in self._sessions.values() if s.context.browser is browser or s.context.browser is None]
        log.error("Chromium exited unexpectedly; %d open session(s) lost (%s). "
                  "The next new_session relaunches it.", len(lost), ", ".join(s.session_id for s in lost) or "-")
        for session in lost:
            session._crash_reason = None  # "page closed" may have come first; the cause is this
            session._mark_dead("the browser process died")
