"""The origin allow-list of one shopper session, enforced on every hop.

Requests to any other origin are aborted and counted in the next observation
(``blocked_requests``, ``blocked_urls``); a main-frame navigation to such an origin is the step's
``blocked_origin`` error and the page stays put. ``context.route`` sees subresources, but
Playwright lets redirect hops through unasked, so documents (main frame and iframes, every
redirect hop, meta refresh and script navigations alike) are also decided on the page's own CDP
session (``Fetch`` paused on ``Document`` requests only, so the page's CSS and images pay
nothing). WebSockets go through ``context.route_web_socket``; service workers are off for the
whole context (see :meth:`shop_r1.envs.browser.BrowserPool.new_session`); ``window.open`` returns
``null`` (the URL is recorded) and ``target=_blank`` opens in the same tab, where every rule above
applies. Extra HTTP headers (the simulator sends ``X-Shop-R1-Session``) only ever reach allowed
origins, because nothing else gets through.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, CDPSession, Page, Request, Route, WebSocketRoute
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

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


def origin_or_none(url: str) -> str | None:
    """:func:`origin_of`, or None for a URL without scheme or host (``about:blank``, ``data:``)."""
    try:
        return origin_of(url)
    except ValueError:
        return None


def in_main_frame(page: Page, request: Request) -> bool:
    """Whether ``request`` belongs to ``page``'s main frame; False while its frame does not exist yet."""
    try:
        return request.frame == page.main_frame
    except PlaywrightError:  # a popup's first request: its frame does not exist yet
        return False


class HopGuard:
    """The allow-list of one session and what it blocked since the last observation.

    Installed once per session (:meth:`install`, :meth:`install_route`); the session reads
    :meth:`take_blocked` into each observation and :attr:`blocked_navigation` into a step's error.
    """

    def __init__(self, session_id: str, context: BrowserContext, page: Page, *, allowed_origins: frozenset[str],
                 blocked_url_examples: int) -> None:
        self.session_id = session_id
        self.context = context
        self.page = page
        self.blocked_url_examples = blocked_url_examples
        self.allowed_origins = allowed_origins
        """Empty until the session's first ``reset`` when none were given; then nothing is blocked."""
        self.blocked_navigation: str | None = None
        """The last main-frame navigation refused since it was cleared (the page stayed put)."""
        self.main_blocked = asyncio.Event()
        """Set once a main-frame navigation is refused: Playwright then reports no lifecycle events."""
        self._route_installed = False
        self._blocked_count = 0
        self._blocked_examples: list[str] = []
        self._cdp: CDPSession | None = None
        self._main_frame_id: str | None = None
        self._pending: set[asyncio.Task[None]] = set()
        page.on("popup", self._on_popup)

    def start_episode(self) -> None:
        """Forget what the previous page tried: it does not belong to the next episode."""
        self.take_blocked()
        self.blocked_navigation = None
        self.main_blocked.clear()

    def take_blocked(self) -> tuple[int, tuple[str, ...]]:
        """How many requests were blocked since the last call, and the first few URLs."""
        count, examples = self._blocked_count, tuple(self._blocked_examples)
        self._blocked_count = 0
        self._blocked_examples = []
        return count, examples

    def allowed(self, url: str) -> bool:
        # Before the first reset (no allow-list yet) nothing is loaded; let it be.
        return not self.allowed_origins or origin_or_none(url) in self.allowed_origins

    async def install(self, cdp: CDPSession) -> None:
        """The per-hop document check (on the page's ``cdp``), WebSockets and popups; once per session."""
        await self.context.expose_binding(_POPUP_BINDING, self._on_popup_blocked)
        await self.context.add_init_script(_ONE_TAB_SCRIPT)
        await self.context.route_web_socket(re.compile(r"^wss?://", re.IGNORECASE), self._route_socket)
        self._cdp = cdp
        tree = await cdp.send("Page.getFrameTree")
        self._main_frame_id = tree["frameTree"]["frame"]["id"]
        cdp.on("Fetch.requestPaused", self._on_document_paused)
        await cdp.send("Fetch.enable", {"patterns": [
            {"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]})

    async def install_route(self) -> None:
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

    # ---- internals ---------------------------------------------------------------------------
    def _record_block(self, url: str, *, main_navigation: bool) -> None:
        self._blocked_count += 1
        if len(self._blocked_examples) < self.blocked_url_examples:
            self._blocked_examples.append(url[:300])
        if main_navigation:
            self.blocked_navigation = url
            self.main_blocked.set()

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
        if self.allowed(url):
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
        if self.allowed(f"{http}{sep}{rest}"):
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
        self._record_block(str(url)[:300], main_navigation=not self.allowed(str(url)))

    async def _route(self, route: Route, request: Request) -> None:
        """Let allowed origins through; abort and count everything else."""
        if self.allowed(request.url):
            await route.fallback()
            return
        is_main_navigation = request.is_navigation_request() and in_main_frame(self.page, request)
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
        # A session is one tab. The init script retargets target=_blank links; whatever still opens
        # a window (window.open from a script) is closed so it cannot use CPU or hold state unseen.
        log.info("session %s: closing a popup window (%s)", self.session_id, popup.url)
        try:
            await popup.close()
        except PlaywrightError:
            pass
