"""Wait, boundedly, until a page has settled before it is read.

Why: client-rendered shops send an empty shell ("0 Product(s) found") and fill it from a JSON
request after the shell is on screen; a drawer slides in over a quarter second after a click; a
filter re-renders the grid when its request answers. Read at the load event, or right after a
click that did not navigate, such a page shows what was there before (issue 24: the empty shell
in 4 of 6 first observations). People wait a moment for the page to stop changing; so does the
observer here: until the network has been quiet, the DOM has not changed and no finite CSS
animation has run for ``quiet_ms``, and never longer than ``max_ms`` (some pages poll or animate
forever; they are read as they are at the cap).

Three signals, each from where it is cheapest and can be trusted:

* network: :class:`NetworkQuiet` follows the page's requests from Python (Playwright events), so
  nothing in the page is patched (a wrapped ``fetch`` is visible to the page's scripts). A request
  in flight for longer than ``long_request_ms`` (a long poll, an event stream) stops counting.
* DOM: an init script (:data:`SETTLE_HOOK`) keeps a ``MutationObserver`` on the document from its
  first byte and records when the DOM last changed; the reducer's own stamps (``data-sr1-*``)
  do not count. A page without the hook (a context made elsewhere) gets the observer on first
  use, and then has to show a quiet window from that moment.
* animations: ``document.getAnimations()`` with a finite end (a drawer's slide), not infinite ones
  (a spinner).

What it costs: a page its scripts have not changed since the parser finished, once loaded, needs
only 50 ms without requests (a server-rendered page: usually one ``evaluate`` round trip); any
other page pays at most the rest of the quiet window after its last change. ``bench/settle.py``
measures both on the bundled shop and the client-rendered test shop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request

log = logging.getLogger(__name__)

# Network quiet asked of a page unchanged since it was parsed and loaded (see wait_settled).
_STILL_NET_S = 0.05

#: Init script: when the document last changed (``performance.now()``), ignoring the reducer's stamps.
SETTLE_HOOK = """(() => {
  const K = Symbol.for('shop_r1.settle');
  if (window[K]) return;
  const s = window[K] = { last: performance.now(), changes: 0, dcl: null };
  document.addEventListener('DOMContentLoaded', () => { s.dcl = performance.now(); }, { once: true });
  const mo = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName && r.attributeName.startsWith('data-sr1-')) continue;
      s.last = performance.now(); s.changes++; return;
    }
  });
  mo.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();"""

# [ms since the DOM last changed, finite animations running, readyState, unchanged since parsed];
# installs the hook if missing (inline, not through eval: a page's CSP may forbid eval).
_PROBE = "() => {\n" + SETTLE_HOOK + """
  const s = window[Symbol.for('shop_r1.settle')];
  let anims = 0;
  if (document.getAnimations) {
    for (const a of document.getAnimations()) {
      if (a.playState !== 'running' || !a.effect) continue;
      const end = a.effect.getComputedTiming().endTime;
      if (Number.isFinite(end)) anims++;
    }
  }
  // Parsed and loaded, and not changed since the parser finished: a server-rendered page.
  const still = document.readyState === 'complete' && s.dcl !== null && s.last <= s.dcl + 1;
  return [performance.now() - s.last, anims, document.readyState, still];
}"""


class NetworkQuiet:
    """Counts a page's requests in flight and when the last one started or ended.

    Attach once per page (``NetworkQuiet(page)``); listeners live as long as the page.
    """

    def __init__(self, page: Page, *, long_request_ms: int = 1500) -> None:
        self.page = page
        self.long_request_s = long_request_ms / 1000
        self._inflight: dict[Request, float] = {}
        self.last_activity = time.monotonic()
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_done)
        page.on("requestfailed", self._on_done)

    def _on_request(self, request: Request) -> None:
        now = time.monotonic()
        self._inflight[request] = now
        self.last_activity = now

    def _on_done(self, request: Request) -> None:
        if self._inflight.pop(request, None) is not None:
            self.last_activity = time.monotonic()

    def busy(self) -> int:
        """Requests in flight that still count (long-lived ones do not)."""
        now = time.monotonic()
        return sum(1 for started in self._inflight.values() if now - started < self.long_request_s)

    def quiet_for(self) -> float:
        """Seconds without a counted request in flight or starting/ending (0 while one is)."""
        if self.busy():
            return 0.0
        return time.monotonic() - self.last_activity


@dataclass(frozen=True)
class Settled:
    """How the wait went: ``ms`` waited, ``capped`` when the page was still changing at the cap."""

    ms: float
    capped: bool
    reason: str = ""


async def wait_settled(page: Page, network: NetworkQuiet | None = None, *, quiet_ms: int = 150,
                       max_ms: int = 2000, poll_ms: int = 30) -> Settled:
    """Wait until ``page`` has been quiet for ``quiet_ms`` (network, DOM, animations), at most ``max_ms``.

    Never raises for a page that does not settle: it is read as it is. A page that cannot be
    asked (navigating away, crashed) ends the wait at once; the reader that follows reports that.
    """
    t0 = time.monotonic()
    if max_ms <= 0:
        return Settled(0.0, False, "off")
    deadline = t0 + max_ms / 1000
    quiet = quiet_ms / 1000
    reason = ""
    while True:
        try:
            since_ms, anims, ready, still = await page.evaluate(_PROBE)
        except PlaywrightError as exc:
            log.debug("settle probe failed on %s: %s", page.url, str(exc).splitlines()[0])
            return Settled(round((time.monotonic() - t0) * 1000, 2), False, "unreadable")
        net_quiet = network.quiet_for() if network is not None else quiet
        # A page its scripts have not changed since it was parsed and loaded needs no DOM window,
        # only a short network one (a request starting right now would still be seen).
        dom_needed_ms = 0 if still else quiet_ms
        net_needed = min(quiet, _STILL_NET_S) if still else quiet
        waits = []
        if ready == "loading":
            waits.append(0.05)
            reason = "document loading"
        if since_ms < dom_needed_ms:
            waits.append((dom_needed_ms - since_ms) / 1000)
            reason = "DOM changing"
        if anims:
            waits.append(0.05)
            reason = f"{anims} animation(s) running"
        if net_quiet < net_needed:
            waits.append(net_needed - net_quiet)
            reason = "network busy"
        now = time.monotonic()
        if not waits:
            return Settled(round((now - t0) * 1000, 2), False)
        if now >= deadline:
            log.debug("page %s still changing after %d ms (%s); reading it as it is", page.url, max_ms, reason)
            return Settled(round((now - t0) * 1000, 2), True, reason)
        await asyncio.sleep(max(poll_ms / 1000, min(max(waits), deadline - now)))
