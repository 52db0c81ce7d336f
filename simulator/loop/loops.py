"""Sessions that go nowhere: a shopper repeating an action that fails or changes nothing.

People change course after one or two failures; a policy that does not (15 failing clicks in a
row behind a consent wall, issue 24) wastes its step budget and makes the run's figures about
the loop rather than about the shop. The runner ends such a session with outcome ``stuck``, so a
report counts loops apart from shoppers who chose to leave, and a trained policy's loops are
visible as such.
"""

from __future__ import annotations

import json
from typing import Any

#: The same action this many times in a row, each failing or changing nothing: the session is stuck.
STUCK_REPEATS = 3


class LoopWatch:
    """Counts the current run of identical, ineffective actions of one session."""

    def __init__(self, limit: int = STUCK_REPEATS) -> None:
        if limit < 2:
            raise ValueError(f"a loop needs at least 2 repeats, got {limit}")
        self.limit = limit
        self._key: str | None = None
        self.count = 0

    def note(self, action: Any, ineffective: bool) -> bool:
        """Record one executed action (its JSON shape or an action model); True once the run
        of identical ineffective actions reaches ``limit``. An effective action ends the run."""
        if hasattr(action, "to_json"):
            action = action.to_json()
        key = json.dumps(action, sort_keys=True, default=str)
        if not ineffective:
            self._key, self.count = None, 0
            return False
        if key == self._key:
            self.count += 1
        else:
            self._key, self.count = key, 1
        return self.count >= self.limit

    def reason(self) -> str:
        return f"the same action {self.count} times in a row, each failing or changing nothing"


def unchanged(before: Any, after: Any) -> bool:
    """Whether two observations show the same page (URL and reduced HTML, whitespace aside)."""
    if before is None or after is None:
        return False
    return (before.url == after.url
            and " ".join(before.simplified_html.split()) == " ".join(after.simplified_html.split()))
