"""Before any browser opens: does the start URL answer at all?

A shop that is down must fail a run in one second with one line, not after every shopper has
timed out on its first page and been recorded as if it had left.
"""

from __future__ import annotations

import httpx


class PreflightError(RuntimeError):
    """The start URL does not answer 2xx; the message says what it answered instead."""


def check_start_url(url: str, timeout_s: float = 15.0) -> int:
    """The HTTP status of ``url`` (redirects followed); :class:`PreflightError` unless 2xx."""
    if not url.startswith(("http://", "https://")):
        raise PreflightError(f"shop URL must start with http:// or https://, got {url!r}")
    try:
        response = httpx.get(url, follow_redirects=True, timeout=timeout_s, headers={"User-Agent": "shop-r1 preflight"})
    except httpx.ConnectError as exc:
        raise PreflightError(f"nothing answers at {url} ({exc}); start the shop or check --shop") from exc
    except httpx.TimeoutException as exc:
        raise PreflightError(f"{url} did not answer within {timeout_s:.0f} s") from exc
    except httpx.HTTPError as exc:
        raise PreflightError(f"{url} could not be fetched: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise PreflightError(f"{url} answered HTTP {response.status_code} {response.reason_phrase}"
                             f"{' (after redirects to ' + str(response.url) + ')' if response.history else ''};"
                             " nothing was run")
    return response.status_code
