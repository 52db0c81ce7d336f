"""Finding (or installing) and launching the one Chromium build every browser in the project uses.

Order: an explicit path (``--browser-path`` / ``SHOP_R1_CHROMIUM``), Playwright's managed
Chromium when it was installed (the normal case on a laptop), then the system ``chromium``.
``python -m shop_r1.envs.chromium ensure`` also installs one when none is found, which is what the
project's set-up calls on a fresh machine.

:func:`launch_chromium` (async) and :func:`launch_options` (for a sync Playwright) are the only
launch path: the shopper pool, one-shot observation, benchmarks and tests all start the same
executable with the same flags, so a page behaves the same wherever it is opened.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Playwright
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

ENV_VAR = "SHOP_R1_CHROMIUM"
SYSTEM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

# Flags that let Chromium run as root in a container and stop it from calling home (without the
# networking flags it keeps trying to reach the internet, which is closed here).
LAUNCH_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class ChromiumNotFound(RuntimeError):
    pass


class BrowserError(RuntimeError):
    """The browser could not be started, or died and could not be relaunched."""


def _managed_chromium() -> str | None:
    """Playwright's own download, if `playwright install chromium` was run."""
    root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright"))
    if not root.is_dir():
        return None
    for pattern in ("chromium-*/chrome-linux*/chrome", "chromium_headless_shell-*/chrome-*/headless_shell",
                    "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium"):
        hits = sorted(root.glob(pattern))
        if hits:
            return str(hits[-1])
    return None


def find_chromium(explicit: str | None = None) -> str:
    """Return an executable path, or raise ChromiumNotFound naming everything tried."""
    tried: list[str] = []
    for label, candidate in (("--browser-path", explicit), (ENV_VAR, os.environ.get(ENV_VAR))):
        if candidate:
            if os.access(candidate, os.X_OK):
                return candidate
            raise ChromiumNotFound(f"{label} points to {candidate!r}, which is not an executable file")
    managed = _managed_chromium()
    if managed:
        return managed
    tried.append("Playwright's managed chromium (none installed)")
    for path in SYSTEM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    which = shutil.which("chromium")
    if which:
        return which
    tried.append("system " + ", ".join(SYSTEM_CANDIDATES))
    raise ChromiumNotFound(
        f"no Chromium found; tried ${ENV_VAR}, {'; '.join(tried)}. "
        "Run `make setup`, `playwright install chromium`, or set SHOP_R1_CHROMIUM."
    )


def launch_options(browser_path: str | None = None, *, headless: bool = True,
                   args: Sequence[str] = LAUNCH_ARGS) -> dict[str, Any]:
    """Keyword arguments for Playwright's ``chromium.launch`` (async or sync API alike).

    Raises :class:`ChromiumNotFound` naming everything tried.
    """
    return {"executable_path": find_chromium(browser_path), "headless": headless, "args": list(args)}


async def launch_chromium(playwright: Playwright, browser_path: str | None = None, *, headless: bool = True,
                          args: Sequence[str] = LAUNCH_ARGS) -> Browser:
    """Start Chromium through ``playwright``; :class:`BrowserError` names the executable if it fails."""
    options = launch_options(browser_path, headless=headless, args=args)
    try:
        browser = await playwright.chromium.launch(**options)
    except PlaywrightError as exc:
        raise BrowserError(f"could not launch Chromium at {options['executable_path']}: "
                           f"{str(exc).splitlines()[0]}") from exc
    log.info("Chromium %s started (%s)", browser.version, options["executable_path"])
    return browser


def ensure_chromium() -> str:
    """Find a Chromium, installing one if needed (Playwright download, else apt as root)."""
    try:
        return find_chromium()
    except ChromiumNotFound:
        pass
    attempts: list[str] = []
    cmd = [sys.executable, "-m", "playwright", "install", "chromium"]
    if subprocess.run(cmd, capture_output=True).returncode == 0 and _managed_chromium():
        return find_chromium()
    attempts.append("`playwright install chromium` failed")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0 and subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], env=env).returncode == 0
        if ok:
            return find_chromium()
        attempts.append("`apt-get install chromium` failed")
    else:
        attempts.append("apt-get not available as root")
    raise ChromiumNotFound("could not install Chromium: " + "; ".join(attempts))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        path = ensure_chromium() if args[:1] == ["ensure"] else find_chromium()
    except ChromiumNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
