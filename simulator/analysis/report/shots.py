"""Screenshots in an HTML report: inline while the report stays a sensible size, linked after.

A report is meant to be one self-contained file, but a run that kept a screenshot per step
can hold hundreds of megabytes of them. Images are embedded as data URIs up to a byte budget;
past it they are linked by their path relative to the report, which works wherever the run
directory is opened (the report sits beside the trace).
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from shop_r1.simulator.records.trace import SCREENSHOT_DIR, TraceStep

#: Bytes of images embedded in one report before the rest are linked instead.
INLINE_BUDGET_BYTES = 24 * 1024 * 1024

_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


class Screenshots:
    """The ``<img>`` of a step's screenshot, for a report written to ``html_dir``."""

    def __init__(self, run_dir: Path, html_dir: Path, budget_bytes: int = INLINE_BUDGET_BYTES) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.html_dir = Path(html_dir).resolve()
        self.left = budget_bytes
        self.linked = 0

    def img(self, step: TraceStep) -> str:
        rel = step.screenshot
        if not rel:
            return ""
        path = (self.run_dir / rel).resolve()
        # Only files the run wrote: a trace is data, and its paths must not reach outside the run.
        if path.parent != self.run_dir / SCREENSHOT_DIR or path.suffix.lower() not in _MIME or not path.is_file():
            return f'<p class="empty">screenshot {html.escape(rel)} is missing</p>'
        alt = f"screenshot of step {step.step}"
        size = path.stat().st_size
        if size <= self.left:
            self.left -= size
            uri = f"data:{_MIME[path.suffix.lower()]};base64,{base64.b64encode(path.read_bytes()).decode()}"
        else:
            self.linked += 1
            uri = Path(os.path.relpath(path, self.html_dir)).as_posix()
        return f'<img class="shot" loading="lazy" alt="{html.escape(alt)}" src="{html.escape(uri)}">'
