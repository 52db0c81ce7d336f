"""The one error a report raises (its own file: both writing and building raise it)."""

from __future__ import annotations


class ReportError(RuntimeError):
    """The report cannot be built (no readable trace) or written (disk full); names the file."""
