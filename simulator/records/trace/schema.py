"""Names and versions of the two trace files, and the one check of a ``schema_version``.

Kept apart from the record models because the reader must check a line's version before it
knows which model (or which schema-1 conversion) applies.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

TRACE_SCHEMA = "shop-r1.trace"
RUN_SCHEMA = "shop-r1.run"
TRACE_MAJOR = 2
#: Majors this reader understands: the current one, and schema 1 (converted at the read edge).
TRACE_MAJORS_READ: tuple[int, ...] = (1, 2)
RUN_MAJOR = 1
SCHEMA_VERSION = f"{TRACE_SCHEMA}/{TRACE_MAJOR}"
RUN_SCHEMA_VERSION = f"{RUN_SCHEMA}/{RUN_MAJOR}"
TRACE_FILE = "trace.jsonl"
RUN_FILE = "run.json"
SCREENSHOT_DIR = "screenshots"


def screenshot_path(session_id: str, step: int) -> str:
    """Where a step's screenshot lives, relative to the run directory (a POSIX path)."""
    safe = re.sub(r"[^A-Za-z0-9_.#-]", "_", session_id)
    return f"{SCREENSHOT_DIR}/{safe}-{step:03d}.jpg"

_VERSION_RE = re.compile(r"^(?P<schema>[a-z0-9_.\-]+)/(?P<major>\d+)(?:\.(?P<minor>\d+))?$")


def version_major(value: str, schema: str, majors: tuple[int, ...]) -> int:
    """The major of ``schema/major[.minor]`` when it is one of ``majors``; else a clear ``ValueError``."""
    m = _VERSION_RE.match(value)
    expected = " or ".join(f"'{schema}/{k}'" for k in majors)
    if not m or m.group("schema") != schema:
        raise ValueError(f"schema_version {value!r} is not a {schema!r} version (expected {expected})")
    major = int(m.group("major"))
    if major not in majors:
        known = ", ".join(str(k) for k in majors)
        raise ValueError(
            f"schema_version {value!r} has major version {major}, this reader knows only {known}: "
            "upgrade shop-r1 to read it"
        )
    return major


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_iso(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from exc
    return value
