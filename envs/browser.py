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

* origin allow-list, on every hop (:mod:`shop_r1.envs.hops`): requests to other origins are
  aborted and counted in the next observation, a main-frame navigation to one is the step's
  ``blocked_origin`` error, and a session is one tab;
* outages told apart (:mod:`shop_r1.envs.outages`): each observation carries its main
  document's HTTP status or network error, and a page whose scripts keep the renderer busy is
  stopped instead of blocking the session;
* purchase guard (see :mod:`shop_r1.envs.executor`): a click that would place an order is refused with
  ``purchase_blocked`` unless ``SessionOptions.allow_purchase``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from shop_r1.envs.actions import Action, ActionValidationError, Click, Terminate, TypeAndSubmit, parse_action
from shop_r1.envs.chromium import LAUNCH_ARGS, launch_chromium
from shop_r1.envs.executor import ExecutorOptions, PageBusy, execute
from shop_r1.envs.hops import HopGuard, origin_of, origin_or_none
from shop_r1.envs.observation import ActionError, Observation, StepResult
from shop_r1.envs.outages import (
    DocumentStatus,
    PageUnresponsive,
    ResetError,
    ensure_responsive,
    read_bounded,
    reset_error,
    stop_scripts,
)
from shop_r1.envs.reducer import ReducedPage, ReducerError, ReducerOptions, install_page_hooks, reduce_page
from shop_r1.envs.settle import NetworkQuiet, wait_settled

# reset() raises ResetError and observe() PageUnresponsive: they are part of a session's API.
__all__ = ["BrowserPool", "PageUnresponsive", "ResetError", "SessionCrashed", "SessionOptions", "ShopperSession"]

log = logging.getLogger(__name__)

#: The request header every page load of a session carries, naming the session: a shop's logs
#: (and the bundled shop's per-session cart) tell simulated shoppers apart by it.
SESSION_HEADER = "X-Shop-R1-Session"


class SessionCrashed(RuntimeError):
    """Raised by ``reset``/``observe`` on a session whose page, context or browser died."""


@dataclass(frozen=True, kw_only=True)
class SessionOptions(ExecutorOptions):
    """Per-session settings; the executor's knobs (timeouts, purchase guard) are inherited."""

    screenshot: bool = False
    """Attach an image of the viewport to every observation."""
    screenshot_type: Literal["png", "jpeg"] = "png"
    """JPEG (quality 70) is a fifth of a PNG's size, for traces that keep one per step."""
    screenshot_mask_inputs: bool = False
    """Paint over text fields and selects, so typed text (a card number, an address) is not in the image."""
    keep_raw_html: bool = False
    """Attach the page's full HTML to every observation (large; for debugging and datasets)."""
    reducer: ReducerOptions | None = None
    """Options for the page reducer (None: its defaults)."""
    blocked_url_examples: int = 5
    """How many blocked URLs an observation lists as examples (the count is always exact)."""
    observe_timeout_ms: int = 10_000
    """Bound on reading the page once; past it the page's scripts are stopped and it is read again."""
    observe_quiet_ms: int = 150
    """Before each read, wait until network, DOM and animations have been quiet this long
    (:mod:`shop_r1.envs.settle`): a client-rendered page fills itself after load, a drawer slides in."""
    observe_settle_max_ms: int = 2_000
    """Cap on that wait (0: read at once); a page still changing then is read as it is."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("observe_quiet_ms", "observe_settle_max_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SessionOptions.{name} must be an int >= 0 (ms), got {value!r}")
        if not isinstance(self.observe_timeout_ms, int) or self.observe_timeout_ms <= 0:
            raise ValueError(f"SessionOptions.observe_timeout_ms must be an int > 0, got {self.observe_timeout_ms!r}")
        if not isinstance(self.blocked_url_examples, int) or self.blocked_url_examples < 0:
            raise ValueError(
                f"SessionOptions.blocked_url_examples must be an int >= 0, got {self.blocked_url_examples!r}"
            )


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
        self._lock = asyncio.Lock()
        self._crash_reason: str | None = None
        self._closed = False
        self._cdp: CDPSession | None = None
        self.last_observation: Observation | None = None
        page.on("crash", lambda _p: self._mark_dead("the page's renderer crashed"))
        page.on("close", lambda _p: self._mark_dead("the page was closed"))
        self._hops = HopGuard(session_id, context, page, allowed_origins=allowed_origins or frozenset(),
                              blocked_url_examples=options.blocked_url_examples)
        self._status = DocumentStatus(page)
        self._network = NetworkQuiet(page)
        self._settled_ms = 0.0  # the last read's wait for the page to settle (a part of reduce_ms)

    # ---- public API --------------------------------------------------------------------------
    @property
    def crashed(self) -> bool:
        return self._crash_reason is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Origins this session may load from (before the first ``reset`` without an explicit
        list: none yet, and nothing is blocked)."""
        return self._hops.allowed_origins

    async def reset(self, start_url: str) -> Observation:
        """Open ``start_url`` and return the first observation.

        Without an explicit allow-list, the start URL's origin becomes the only allowed one.
        Raises :class:`ResetError` when the page cannot be opened, :class:`SessionCrashed` when the
        session is already dead.
        """
        async with self._lock:
            self._check_alive()
            start_origin = origin_or_none(start_url)
            if start_origin is None:
                raise ResetError(f"session {self.session_id}: start URL {start_url!r} is not an absolute URL",
                                 "outside")
            if self._explicit_origins is None:
                self._hops.allowed_origins = frozenset({start_origin})
            elif start_origin not in self.allowed_origins:
                raise ResetError(f"session {self.session_id}: start URL {start_url} is outside the allowed "
                                 f"origins {sorted(self.allowed_origins)}", "outside")
            if self.last_observation is not None:  # a page frozen by its scripts would hold the navigation
                try:
                    await self._ensure_responsive()
                except PageUnresponsive as exc:
                    log.debug("session %s: %s", self.session_id, exc)
            await self._hops.install_route()
            self._hops.start_episode()
            self._status.clear()
            t0 = time.monotonic()
            try:
                # "commit", then the document's own DOMContentLoaded: goto's "domcontentloaded"
                # waits for *its* navigation, which a blocked script navigation during parsing
                # leaves pending until the timeout.
                await self.page.goto(start_url, wait_until="commit", timeout=self.options.action_timeout_ms)
                await self._document_ready()
            except PlaywrightError as exc:
                if self.crashed:
                    raise SessionCrashed(f"session {self.session_id}: {self._crash_reason}") from exc
                raise reset_error(f"session {self.session_id}: could not open {start_url}", exc,
                                  status=self._status, blocked_navigation=self._hops.blocked_navigation,
                                  allowed_origins=self.allowed_origins,
                                  timeout_ms=self.options.action_timeout_ms) from exc
            try:  # images and late scripts; a page that never fires `load` is observed as it is
                if not self._hops.main_blocked.is_set():  # then no load event is reported (see _document_ready)
                    await self.page.wait_for_load_state("load", timeout=self.options.settle_max_ms)
            except PlaywrightError:
                log.debug("session %s: no load event within %d ms on %s", self.session_id,
                          self.options.settle_max_ms, start_url)
            try:
                observation = await self._observe(
                    {"action_ms": 0.0, "settle_ms": round((time.monotonic() - t0) * 1000, 2)})
            except PageUnresponsive as exc:
                raise ResetError(f"session {self.session_id}: could not read {start_url}: {exc}",
                                 "unresponsive") from exc
            if observation.fault is not None:
                raise ResetError(f"session {self.session_id}: could not open {start_url}: "
                                 f"{observation.fault_message(with_url=False)}", observation.fault)
            return observation

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
            self._hops.blocked_navigation = None
            try:
                stopped = await self._ensure_responsive()
            except PageUnresponsive as exc:
                log.warning("session %s: %s", self.session_id, exc)
                return StepResult(observation=self.last_observation, done=True, scripts_stopped=True,
                                  error=ActionError("page_unresponsive", str(exc), name=action.name))
            error, stopped_mid = await self._execute_bounded(action, elements, timings)
            stopped = stopped or stopped_mid
            if error is not None and not stopped:
                error, stopped = await self._blame_busy_page(action, error)
            if self.crashed or (error is not None and error.code == "page_crashed"):
                if not self.crashed:
                    self._mark_dead(error.message if error else "page crashed")
                return self._crash_result()
            if self._hops.blocked_navigation is not None and (error is None or error.code == "navigation_timeout"):
                error = ActionError(
                    "blocked_origin",
                    f"{action.name!r} leads to {self._hops.blocked_navigation}, outside the allowed origins "
                    f"{sorted(self.allowed_origins)}; the page stayed where it was",
                    name=action.name,
                )
            result = await self._result(error, timings, done=False)
            return dataclasses.replace(result, scripts_stopped=True) if stopped else result

    async def _execute_bounded(self, action: Click | TypeAndSubmit, elements: Sequence[Any],
                               timings: dict[str, float]) -> tuple[ActionError | None, bool]:
        """The executor's error, within a bound no well-behaved page reaches; whether scripts were stopped.

        Every wait the executor names has its own timeout, but a script that starts looping
        mid-action (a click handler that never returns) stalls queries that have none.
        """
        o = self.options
        bound_ms = o.action_timeout_ms + 3 * o.interact_timeout_ms + o.settle_max_ms + 5_000

        async def run() -> ActionError | None:
            return await asyncio.wait_for(execute(self.page, action, elements, options=o, timings=timings,
                                                  seen=self.last_observation), bound_ms / 1000)

        try:
            try:
                return await run(), False
            except PageBusy as exc:  # nothing was done to the page yet: stop its scripts and look again
                log.warning("session %s: %s on %s; stopping its scripts", self.session_id, exc, self.page.url)
                await stop_scripts(self._cdp, self.session_id)
                return await run(), True
        except PageBusy as exc:
            return ActionError("page_unresponsive", f"{action.name!r}: {exc}, even after the page's scripts "
                               "were stopped", name=action.name), True
        except TimeoutError:
            log.warning("session %s: %r on %s did not finish within %d ms; stopping the page's scripts",
                        self.session_id, action.name, self.page.url, bound_ms)
            await stop_scripts(self._cdp, self.session_id)
            return ActionError("page_unresponsive", f"{action.name!r} did not finish within {bound_ms} ms: "
                               "the page's scripts kept it busy and were stopped", name=action.name), True

    async def _ensure_responsive(self) -> bool:
        """Whether the page's scripts had to be stopped for it to answer (see :func:`ensure_responsive`)."""
        return await ensure_responsive(self.page, cdp=self._cdp, session_id=self.session_id,
                                       timeout_ms=self.options.interact_timeout_ms)

    async def _blame_busy_page(self, action: Click | TypeAndSubmit, error: ActionError) -> tuple[ActionError, bool]:
        """The action's error, or, when the action set off a script that froze the page, that.

        A click handler that never returns shows up as a click timeout ("covered or moving");
        the page not answering a trivial script says what really happened, and stopping the
        script lets the session go on.
        """
        try:
            if not await self._ensure_responsive():
                return error, False
        except PageUnresponsive:
            pass
        return ActionError("page_unresponsive", f"{action.name!r} set off a script that kept the page busy "
                           f"({error.message}); the page's scripts were stopped", name=action.name), True

    async def _document_ready(self) -> None:
        """Wait for the current document's DOMContentLoaded.

        Playwright's wait never ends when a script navigation during parsing was blocked (the
        frame stays "navigating" and its lifecycle events are not reported), so once a main-frame
        navigation is blocked the document's own ``readyState`` is asked instead.
        """
        timeout = self.options.action_timeout_ms
        loaded = asyncio.ensure_future(self.page.wait_for_load_state("domcontentloaded", timeout=timeout))
        blocked = asyncio.ensure_future(self._hops.main_blocked.wait())
        try:
            done, _ = await asyncio.wait({loaded, blocked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            blocked.cancel()
        if loaded in done:
            loaded.result()
            return
        loaded.cancel()
        loaded.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody waits for it now
        await self.page.wait_for_function("document.readyState !== 'loading'", timeout=timeout)

    async def observe(self) -> Observation:
        """The current page, reduced (also resets the blocked-request counters).

        Raises :class:`PageUnresponsive` when the page's scripts keep it busy even after being stopped.
        """
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
        except PageUnresponsive as exc:
            log.warning("session %s: %s", self.session_id, exc)
            return StepResult(observation=self.last_observation, done=True,
                              error=ActionError("page_unresponsive", str(exc)))
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
        reduced, scripts_stopped = await read_bounded(
            self._reduce_stable, page=self.page, cdp=self._cdp, timeout_ms=self.options.observe_timeout_ms,
            session_id=self.session_id)
        reduce_ms = round((time.monotonic() - t0) * 1000, 2)
        settle_ms = self._settled_ms
        screenshot = await self._screenshot() if self.options.screenshot else None
        count, examples = self._hops.take_blocked()
        observation = dataclasses.replace(
            reduced.to_observation(
                timings={**timings, "reduce_ms": reduce_ms, "observe_settle_ms": settle_ms},
                blocked_requests=count,
                blocked_urls=examples,
                screenshot=screenshot,
                keep_raw_html=self.options.keep_raw_html,
            ),
            http_status=self._status.http_status, net_error=self._status.net_error,
            failed_url=self._status.failed_url, scripts_stopped=scripts_stopped,
        )
        self.last_observation = observation
        return observation

    async def _screenshot(self) -> bytes | None:
        """The viewport, or None when the page would not be captured (a step is never lost to it)."""
        o = self.options
        mask = [self.page.locator("input:not([type=submit]):not([type=button]), textarea, select")] \
            if o.screenshot_mask_inputs else None
        try:
            return await self.page.screenshot(type=o.screenshot_type, timeout=o.observe_timeout_ms, mask=mask,
                                              quality=70 if o.screenshot_type == "jpeg" else None)
        except PlaywrightError as exc:
            log.warning("session %s: no screenshot of %s: %s", self.session_id, self.page.url,
                        str(exc).splitlines()[0])
            return None

    async def _reduce_stable(self) -> ReducedPage:
        """Reduce the page, retrying when a late navigation replaces the document mid-read.

        The executor waits for navigations it can see coming; one started later by the page
        itself (a timer, a meta refresh) can still swap the document under the reducer.
        """
        # Client-rendered content, a drawer sliding in, a filtered grid: wait until the page has
        # stopped changing (bounded), after a load and after an in-page action alike.
        settled = await wait_settled(self.page, self._network, quiet_ms=self.options.observe_quiet_ms,
                                     max_ms=self.options.observe_settle_max_ms)
        self._settled_ms = settled.ms
        for attempt in range(3):
            try:
                reduced = await reduce_page(self.page, self._reducer_options())
                if reduced.elements or reduced.simplified_html.strip() or attempt == 2 or self.crashed:
                    return reduced
                # Nothing at all on a page: under load, a product page (HTTP 200) was read this way
                # once in 766 steps, before its document had any content, and the shopper left. A
                # page that is truly blank costs two more load waits and reads (~0.4 s).
                log.debug("session %s: %s read as empty; reading again after load", self.session_id, self.page.url)
                try:
                    await self.page.wait_for_load_state("load", timeout=min(self.options.action_timeout_ms, 3_000))
                except PlaywrightError:
                    pass
                await asyncio.sleep(0.2)
                continue
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

    async def _install_guards(self) -> None:
        """The allow-list's per-hop checks on this session's page (see :mod:`shop_r1.envs.hops`)."""
        self._cdp = await self.context.new_cdp_session(self.page)
        await self._hops.install(self._cdp)


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
            await session._install_guards()
            await session._hops.install_route()  # with an explicit allow-list; else at reset()
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
