"""Telling a shop's outages apart, so a caller can tell "the shop is down" from "the shop answered
with errors" from "the page's scripts are stuck".

Each observation carries its main document's HTTP status or network error (``http_status``,
``net_error``; :attr:`Observation.fault`), recorded here from the page's own events rather than
from error-message text; a start page that does not open is a :class:`ResetError` whose ``fault``
names why; and a page whose scripts keep the renderer busy is stopped (CDP
``Runtime.terminateExecution``) instead of blocking the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from playwright.async_api import CDPSession, Page, Request, Response
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shop_r1.envs.hops import in_main_frame
from shop_r1.envs.observation import Observation, PageFault

log = logging.getLogger(__name__)

T = TypeVar("T")

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


class DocumentStatus:
    """The main document as it arrived (see :attr:`Observation.http_status` / ``net_error``),
    kept up to date from the page's ``response`` and ``requestfailed`` events."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.http_status: int | None = None
        self.net_error: str | None = None
        self.failed_url: str | None = None
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_request_failed)

    def clear(self) -> None:
        self.http_status = None
        self.net_error = self.failed_url = None

    def _on_response(self, response: Response) -> None:
        request = response.request
        if not request.is_navigation_request() or not in_main_frame(self.page, request):
            return
        if 300 <= response.status < 400 and "location" in response.headers:
            return  # a hop; the document is what it leads to (or stays, when the hop is blocked)
        self.http_status, self.net_error, self.failed_url = response.status, None, None

    def _on_request_failed(self, request: Request) -> None:
        if not request.is_navigation_request() or not in_main_frame(self.page, request):
            return
        failure = request.failure
        if failure is None or failure == "net::ERR_ABORTED":
            return  # stopped, superseded or blocked: the current document stays
        self.http_status, self.net_error, self.failed_url = None, failure, request.url


def reset_error(prefix: str, exc: PlaywrightError, *, status: DocumentStatus, blocked_navigation: str | None,
                allowed_origins: frozenset[str], timeout_ms: int) -> ResetError:
    """Why the start page did not open, from what the page's events saw (not the message text).

    ``prefix`` says which session could not open which URL.
    """
    if blocked_navigation is not None:
        return ResetError(f"{prefix}: it leads to {blocked_navigation}, outside the allowed origins "
                          f"{sorted(allowed_origins)}", "blocked")
    if status.net_error is not None:
        observation = Observation(url=status.page.url, title="", simplified_html="", elements=(),
                                  net_error=status.net_error, failed_url=status.failed_url)
        return ResetError(f"{prefix}: {observation.fault_message(with_url=False)}",
                          observation.fault or "error_page")
    if isinstance(exc, PlaywrightTimeoutError):
        return ResetError(f"{prefix}: no answer within {timeout_ms} ms", "timeout")
    return ResetError(f"{prefix}: {str(exc).splitlines()[0]}", "error_page")


async def read_bounded(read: Callable[[], Awaitable[T]], *, page: Page, cdp: CDPSession | None, timeout_ms: int,
                       session_id: str) -> tuple[T, bool]:
    """``read()`` within ``timeout_ms``, and whether the page's scripts had to be stopped for it.

    A page whose script loops after load would otherwise hold the session until its whole time
    budget is gone. Past the bound the running script is terminated (the renderer's main thread
    is free again) and the page read once more; raises :class:`PageUnresponsive` when that
    second read does not finish in time either.
    """
    timeout = timeout_ms / 1000
    try:
        return await asyncio.wait_for(read(), timeout), False
    except TimeoutError:
        pass
    log.warning("session %s: %s still busy after %d ms; stopping its scripts", session_id, page.url, timeout_ms)
    await stop_scripts(cdp, session_id)
    try:
        return await asyncio.wait_for(read(), timeout), True
    except TimeoutError:
        raise PageUnresponsive(f"{page.url} stayed busy for over {2 * timeout_ms} ms "
                               "even after its scripts were stopped") from None


async def stop_scripts(cdp: CDPSession | None, session_id: str) -> None:
    """Terminate whatever script is running in the page's main world, freeing its main thread."""
    if cdp is None:
        return
    try:
        await cdp.send("Runtime.terminateExecution")
    except PlaywrightError as exc:
        log.debug("session %s: terminateExecution failed: %s", session_id, exc)


async def ensure_responsive(page: Page, *, cdp: CDPSession | None, timeout_ms: int, session_id: str) -> bool:
    """Make sure the page answers before acting on it; whether its scripts had to be stopped.

    A script that starts looping after the page was read (a timer set on ``load``) would leave the
    executor's element lookups waiting forever: Playwright bounds the waits it names a timeout
    for, not a query into a renderer that never yields. Raises :class:`PageUnresponsive` when the
    page stays busy even after its scripts were stopped.
    """
    async def probe() -> None:
        try:
            await page.evaluate("0")
        except PlaywrightError as exc:  # a navigation replaced the document meanwhile: not frozen
            log.debug("session %s: responsiveness probe on %s: %s", session_id, page.url, str(exc).splitlines()[0])

    _, stopped = await read_bounded(probe, page=page, cdp=cdp, timeout_ms=timeout_ms, session_id=session_id)
    return stopped
