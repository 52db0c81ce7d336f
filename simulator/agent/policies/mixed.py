"""Several policies in one run: each session is routed to one sub-policy by its index.

Why: one run (one trace, one report) can then hold, say, the embedded model next to scripted
shoppers on the same shop, so a demo or a comparison shows both side by side. Routing is by the
session's index (shopper ``i`` uses part ``i % n``), fixed before the run starts, so run.json's
``policy_info`` can say which shoppers each part drives.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shop_r1.simulator.agent.policies.base import Policy, failure

from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse

log = logging.getLogger(__name__)

# The runner names sessions "<run_id>-<index:04d>" (simulator.runner._Session).
_SESSION_INDEX = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class PolicyPart:
    """One sub-policy with the line that tells people what it is."""

    label: str
    policy: Policy


def session_index(session_id: str) -> int | None:
    """The shopper index the runner put at the end of ``session_id``, or None if it has none."""
    match = _SESSION_INDEX.search(session_id)
    return int(match.group(1)) if match else None


class MixedPolicy(Policy):
    """Routes shopper ``i`` to ``parts[i % len(parts)]``; sessions without an index (ids made
    elsewhere) go by a stable hash of their id, so a session never changes policy mid-way."""

    name = "mixed"

    def __init__(self, parts: Sequence[PolicyPart]) -> None:
        if not parts:
            raise ValueError("a mixed policy needs at least one part")
        labels = [p.label for p in parts]
        if len(set(labels)) != len(labels):
            raise ValueError(f"mixed policy parts need distinct labels, got {labels}")
        self.parts = tuple(parts)

    def part_for(self, session_id: str) -> int:
        index = session_index(session_id)
        if index is None:
            index = zlib.crc32(session_id.encode("utf-8"))
        return index % len(self.parts)

    def page_budget(self, session_id: str) -> int | None:
        return self.parts[self.part_for(session_id)].policy.page_budget(session_id)

    def shoppers_of(self, part: int, shoppers: int) -> list[int]:
        """The shopper indices (0-based) that part ``part`` drives in a run of ``shoppers``."""
        return [i for i in range(shoppers) if i % len(self.parts) == part]

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        """Each part answers its own requests (parts run concurrently); answers keep the order
        of ``requests``. A part that raises fails only its own requests."""
        groups: dict[int, list[int]] = {}
        for position, request in enumerate(requests):
            groups.setdefault(self.part_for(request.session_id), []).append(position)

        async def one(part: int, positions: list[int]) -> list[PolicyResponse]:
            label, policy = self.parts[part].label, self.parts[part].policy
            try:
                answers = await policy.act([requests[p] for p in positions])
                if len(answers) != len(positions):
                    raise RuntimeError(f"{len(answers)} answers for {len(positions)} requests")
            except Exception as exc:  # one part's failure must not sink the other shoppers
                log.exception("mixed policy: part %r failed on %d requests", label, len(positions))
                err = failure("internal", f"{label}: {type(exc).__name__}: {exc}")
                answers = [PolicyResponse(action=None, error=err) for _ in positions]
            for answer in answers:  # the trace says which part decided each step
                answer.extra = {**answer.extra, "policy_part": label}
            return answers

        results = await asyncio.gather(*(one(part, positions) for part, positions in groups.items()))
        out: list[PolicyResponse | None] = [None] * len(requests)
        for positions, answers in zip(groups.values(), results):
            for position, answer in zip(positions, answers):
                out[position] = answer
        return [a for a in out if a is not None]

    async def close(self) -> None:
        for part in self.parts:
            try:
                await part.policy.close()
            except Exception:  # closing one part must not keep the others open
                log.warning("mixed policy: closing %r failed", part.label, exc_info=True)

    def describe(self) -> dict[str, Any]:
        n = len(self.parts)
        return {
            "policy": self.name,
            "routing": f"shopper i (0-based) uses part i % {n}",
            "parts": [{"label": p.label, "shoppers": f"i % {n} == {k}", **p.policy.describe()}
                      for k, p in enumerate(self.parts)],
        }


__all__ = ["MixedPolicy", "PolicyPart", "session_index"]
