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

* origin allow-list, on every hop: requests to any other origin are aborted and counted in the
  next observation (``blocked_requests``, ``blocked_urls``); a main-frame navigation to such an
  origin is the step's ``blocked_origin`` error and the page stays put. ``context.route`` sees
  subresources, but Playwright lets redirect hops through unasked, so documents (main frame and
  iframes, every redirect hop, meta refresh and script navigations alike) are also decided on the
  page's own CDP session (``Fetch`` paused on ``Document`` requests only, so the page's CSS and
  images pay nothing). WebSockets go through ``context.route_web_socket``; service workers are
  off for the whole context; ``window.open`` returns ``null`` (the URL is recorded) and
  ``target=_blank`` opens in the same tab, where every rule above applies;
* outages told apart: each observation carries its main document's HTTP status or network error
  (``http_status``, ``net_error``; :attr:`Observation.fault`), and a page whose scripts keep the
  renderer busy is stopped (CDP ``Runtime.terminateExecution``) instead of blocking the session;
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
from typing import Any, Literal
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    WebSocketRoute,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shop_r1.envs.actions import Action, ActionValidationError, Terminate, parse_action
from shop_r1.envs.chromium import LAUNCH_ARGS, launch_chromium
from shop_r1.envs.executor import ExecutorOptions, execute
from shop_r1.envs.observation import ActionError, Observation, PageFault, StepResult
from shop_r1.envs.reducer import ReducedPage, ReducerError, ReducerOptions, install_page_hooks, reduce_page

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SOCKET_SCHEMES = {"http": "ws", "https": "wss"}

# Runs before the page's own scripts in every frame: a session is one tab, so a popup opens
# nowhere (its URL reported through the binding) and target=_blank opens here, under the same
# allow-list, instead of in a window that would have to be chased and closed.
_POPUP_BINDING = "__shopR1BlockedPopup"
_ONE_TAB_SCRIPT = f"""(() => {{
  const report = (url) => {{
    try {{ window.{_POPUP_BINDING}(String(new URL(url == null ? 'about:blank' : String(url), location.href))); }}
    catch (e) {{}}
  }};
  window.open = function (url) {{ report(url); return null; }};
  const retarget = (event) => {{
    const el = event.target instanceof Element
      ? event.target.closest('a[target=_blank], area[target=_blank], form[target=_blank]') : null;
    if (el) el.target = '_self';
  }};
  document.addEventListener('click', retarget, true);
  document.addEventListener('submit', retarget, true);
}})();"""


class SessionCrashed(RuntimeError):
    """Raised by ``reset``/``observe`` on a session whose page, context or browser died."""


ResetFault = PageFault | Literal["timeout", "blocked", "unresponsive", "outside"]


class ResetError(RuntimeError):
    """``reset`` could not open its start URL; ``fault`` says why, so a caller can tell an
    unreachable shop from one that answers with errors (``unreachable`` vs the rest)."""

    def __init__(self, message: str, fault: ResetFault) -> None:
        super().__init__(message)
        self.fault: ResetFault = fault


class PageUnresponsive(RuntimeError):
    """The page's scripts kept the renderer busy past ``observe_timeout_ms``, even after they
    were stopped once."""


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
    observe_timeout_ms: int = 10_000
    """Bound on reading the page once; past it the page's scripts are stopped and it is read again."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.observe_timeout_ms, int) or self.observe_timeout_ms <= 0:
            raise ValueError(f"SessionOptions.observe_timeout_ms must be an int > 0, got {self.observe_timeout_ms!r}")
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
        self._cdp: CDPSession | None = None
        self._main_frame_id: str | None = None
        self._pending: set[asyncio.Task[None]] = set()
        # The main document as it arrived (see Observation.http_status / net_error).
        self._http_status: int | None = None
        self._net_error: str | None = None
        self._failed_url: str | None = None
        self._scripts_stopped = False
        self._main_blocked = asyncio.Event()
        self.last_observation: Observation | None = None
        page.on("crash", lambda _p: self._mark_dead("the page's renderer crashed"))
        page.on("close", lambda _p: self._mark_dead("the page was closed"))
        page.on("popup", self._on_popup)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_request_failed)

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
                raise ResetError(f"session {self.session_id}: start URL {start_url!r} is not an absolute URL",
                                 "outside")
            if self._explicit_origins is None:
                self.allowed_origins = frozenset({start_origin})
            elif start_origin not in self.allowed_origins:
                raise ResetError(f"session {self.session_id}: start URL {start_url} is outside the allowed "
                                 f"origins {sorted(self.allowed_origins)}", "outside")
            await self._install_route()
            self._take_blocked()  # what the previous page tried does not belong to this episode
            self._blocked_navigation = None
            self._main_blocked.clear()
            self._http_status = None
            self._net_error = self._failed_url = None
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
                raise self._reset_error(start_url, exc) from exc
            try:  # images and late scripts; a page that never fires `load` is observed as it is
                if not self._main_blocked.is_set():  # then no load event is reported (see _document_ready)
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

    async def _document_ready(self) -> None:
        """Wait for the current document's DOMContentLoaded.

        Playwright's wait never ends when a script navigation during parsing was blocked (the
        frame stays "navigating" and its lifecycle events are not reported), so once a main-frame
        navigation is blocked the document's own ``readyState`` is asked instead.
        """
        timeout = self.options.action_timeout_ms
        loaded = asyncio.ensure_future(self.page.wait_for_load_state("domcontentloaded", timeout=timeout))
        blocked = asyncio.ensure_future(self._main_blocked.wait())
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

    def _reset_error(self, start_url: str, exc: PlaywrightError) -> ResetError:
        """Why the start page did not open, from what the page's events saw (not the message text)."""
        prefix = f"session {self.session_id}: could not open {start_url}"
        if self._blocked_navigation is not None:
            return ResetError(f"{prefix}: it leads to {self._blocked_navigation}, outside the allowed origins "
                              f"{sorted(self.allowed_origins)}", "blocked")
        if self._net_error is not None:
            observation = Observation(url=self.page.url, title="", simplified_html="", elements=(),
                                      net_error=self._net_error, failed_url=self._failed_url)
            return ResetError(f"{prefix}: {observation.fault_message(with_url=False)}",
                              observation.fault or "error_page")
        if isinstance(exc, PlaywrightTimeoutError):
            return ResetError(f"{prefix}: no answer within {self.options.action_timeout_ms} ms", "timeout")
        return ResetError(f"{prefix}: {str(exc).splitlines()[0]}", "error_page")

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
        reduced = await self._reduce_bounded()
        reduce_ms = round((time.monotonic() - t0) * 1000, 2)
        screenshot = (await self.page.screenshot(type="png", timeout=self.options.observe_timeout_ms)
                      if self.options.screenshot else None)
        count, examples = self._take_blocked()
        observation = dataclasses.replace(
            reduced.to_observation(
                timings={**timings, "reduce_ms": reduce_ms},
                blocked_requests=count,
                blocked_urls=examples,
                screenshot=screenshot,
                keep_raw_html=self.options.keep_raw_html,
            ),
            http_status=self._http_status, net_error=self._net_error, failed_url=self._failed_url,
            scripts_stopped=self._scripts_stopped,
        )
        self._scripts_stopped = False
        self.last_observation = observation
        return observation

    async def _reduce_bounded(self) -> ReducedPage:
        """Read the page within ``observe_timeout_ms``; a page whose script loops after load would
        otherwise hold the session until its whole time budget is gone. Past the bound the running
        script is terminated (the renderer's main thread is free again) and the page read once more."""
        timeout = self.options.observe_timeout_ms / 1000
        self._scripts_stopped = False
        try:
            return await asyncio.wait_for(self._reduce_stable(), timeout)
        except TimeoutError:
            pass
        log.warning("session %s: %s still busy after %d ms; stopping its scripts", self.session_id, self.page.url,
                    self.options.observe_timeout_ms)
        self._scripts_stopped = True
        if self._cdp is not None:
            try:
                await self._cdp.send("Runtime.terminateExecution")
            except PlaywrightError as exc:
                log.debug("session %s: terminateExecution failed: %s", self.session_id, exc)
        try:
            return await asyncio.wait_for(self._reduce_stable(), timeout)
        except TimeoutError:
            raise PageUnresponsive(f"{self.page.url} stayed busy for over {2 * self.options.observe_timeout_ms} ms "
                                   "even after its scripts were stopped") from None

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

    def _record_block(self, url: str, *, main_navigation: bool) -> None:
        self._blocked_count += 1
        if len(self._blocked_examples) < self.options.blocked_url_examples:
            self._blocked_examples.append(url[:300])
        if main_navigation:
            self._blocked_navigation = url
            self._main_blocked.set()

    def _allowed(self, url: str) -> bool:
        # Before the first reset (no allow-list yet) nothing is loaded; let it be.
        return not self.allowed_origins or _origin_or_none(url) in self.allowed_origins

    def _in_main_frame(self, request: Request) -> bool:
        try:
            return request.frame == self.page.main_frame
        except PlaywrightError:  # a popup's first request: its frame does not exist yet
            return False

    async def _install_guards(self) -> None:
        """The per-hop document check, WebSockets and popups (see the module doc); once per session."""
        await self.context.expose_binding(_POPUP_BINDING, self._on_popup_blocked)
        await self.context.add_init_script(_ONE_TAB_SCRIPT)
        await self.context.route_web_socket(re.compile(r"^wss?://", re.IGNORECASE), self._route_socket)
        self._cdp = await self.context.new_cdp_session(self.page)
        tree = await self._cdp.send("Page.getFrameTree")
        self._main_frame_id = tree["frameTree"]["frame"]["id"]
        self._cdp.on("Fetch.requestPaused", self._on_document_paused)
        await self._cdp.send("Fetch.enable", {"patterns": [
            {"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]})

    def _on_document_paused(self, event: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._decide_document(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _decide_document(self, event: dict[str, Any]) -> None:
        """Every document request, each redirect hop included: continue it or fail it. A failed
        main-frame hop is "Aborted", which leaves the current document in place."""
        assert self._cdp is not None
        url = str(event["request"]["url"])
        params: dict[str, Any] = {"requestId": event["requestId"]}
        if self._allowed(url):
            method = "Fetch.continueRequest"
        else:
            main = event.get("frameId") == self._main_frame_id
            hop = "redirect" if event.get("redirectedRequestId") else "document"
            log.debug("session %s: blocked %s %s", self.session_id, hop, url)
            self._record_block(url, main_navigation=main)
            method = "Fetch.failRequest"
            params["errorReason"] = "Aborted" if main else "BlockedByClient"
        try:
            await self._cdp.send(method, params)
        except PlaywrightError as exc:  # the page or its request went away meanwhile
            log.debug("session %s: %s failed: %s", self.session_id, method, exc)

    async def _route_socket(self, ws: WebSocketRoute) -> None:
        scheme, sep, rest = ws.url.partition("://")
        http = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme)
        if self._allowed(f"{http}{sep}{rest}"):
            ws.connect_to_server()
            return
        log.debug("session %s: blocked WebSocket %s", self.session_id, ws.url)
        self._record_block(ws.url, main_navigation=False)
        try:
            await ws.close(code=1008, reason="outside the allowed origins")
        except PlaywrightError as exc:
            log.debug("session %s: closing a blocked WebSocket failed: %s", self.session_id, exc)

    def _on_popup_blocked(self, _source: Any, url: str) -> None:
        log.debug("session %s: window.open(%s) refused (one tab per session)", self.session_id, url)
        self._record_block(str(url)[:300], main_navigation=not self._allowed(str(url)))

    def _on_response(self, response: Response) -> None:
        request = response.request
        if not request.is_navigation_request() or not self._in_main_frame(request):
            return
        if 300 <= response.status < 400 and "location" in response.headers:
            return  # a hop; the document is what it leads to (or stays, when the hop is blocked)
        self._http_status, self._net_error, self._failed_url = response.status, None, None

    def _on_request_failed(self, request: Request) -> None:
        if not request.is_navigation_request() or not self._in_main_frame(request):
            return
        failure = request.failure
        if failure is None or failure == "net::ERR_ABORTED":
            return  # stopped, superseded or blocked: the current document stays
        self._http_status, self._net_error, self._failed_url = None, failure, request.url

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
        if self._allowed(request.url):
            await route.fallback()
            return
        is_main_navigation = request.is_navigation_request() and self._in_main_frame(request)
        self._record_block(request.url, main_navigation=is_main_navigation)
        log.debug("session %s: blocked %s %s", self.session_id, request.resource_type, request.url)
        try:
            if is_main_navigation:
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
            await session._install_guards()
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
