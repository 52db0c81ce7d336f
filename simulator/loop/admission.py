"""Admission control: how many shopper sessions may hold a browser context at once.

Asking for more shoppers than a machine holds must slow a run down, never destroy it (64
contexts opened at once on 2 cores all timed out on their first page). So sessions are let in
progressively: the limit starts small, grows by one each time a first page loads within the
target latency, halves when first pages get slow or fail (AIMD, as TCP does with a congestion
window), and never exceeds what memory holds. Every reduction is reported once, with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import psutil

log = logging.getLogger(__name__)

#: Contexts per CPU a browser host runs well (measured: 32 scripted shoppers step on 2 cores).
CONTEXTS_PER_CPU = 16
#: Memory one shopper's context needs (measured: 64 contexts -> 4.5 GiB PSS).
CONTEXT_BYTES = 80 * 2**20


def host_capacity(cpus: float, memory_bytes: float) -> int:
    """Contexts one host opens at most: by CPU, never more than half its memory holds."""
    by_cpu = max(1, int(cpus * CONTEXTS_PER_CPU))
    by_memory = max(1, int(memory_bytes * 0.5 // CONTEXT_BYTES))
    return min(by_cpu, by_memory)


def this_host_capacity() -> int:
    return host_capacity(psutil.cpu_count() or 1, psutil.virtual_memory().available)


@dataclass
class Reduction:
    at_s: float
    from_limit: int
    to_limit: int
    reason: str


@dataclass
class AdmissionReport:
    requested: int
    start: int
    ceiling: int
    peak: int = 0
    final: int = 0
    reductions: list[Reduction] = field(default_factory=list)
    first_page_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        loads = sorted(self.first_page_s)
        return {
            "requested": self.requested, "start": self.start, "ceiling": self.ceiling, "peak": self.peak,
            "final": self.final,
            "first_page_p50_s": round(loads[len(loads) // 2], 3) if loads else None,
            "reductions": [r.__dict__ for r in self.reductions],
        }


class Admission:
    """A semaphore whose size follows measured first-page latency (see the module docstring)."""

    def __init__(self, requested: int, *, ceiling: int | None = None, start: int = 4,
                 target_s: float = 2.5) -> None:
        self.ceiling = max(1, min(requested, ceiling if ceiling is not None else this_host_capacity()))
        self.limit = max(1, min(start, self.ceiling))
        self.target_s = target_s
        self.active = 0
        self._cond = asyncio.Condition()
        self._t0 = time.perf_counter()
        self._last_cut = -1e9
        self.report = AdmissionReport(requested=requested, start=self.limit, ceiling=self.ceiling, peak=self.limit)
        if self.ceiling < requested:
            self._reduced(requested, self.ceiling,
                          f"this host holds about {self.ceiling} browser contexts (CPUs and free memory)")

    def _reduced(self, old: int, new: int, reason: str) -> None:
        self.report.reductions.append(Reduction(round(time.perf_counter() - self._t0, 2), old, new, reason))
        log.warning("concurrency reduced from %d to %d: %s", old, new, reason)

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def release(self) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

    async def first_page(self, seconds: float, ok: bool) -> None:
        """Feed one session's first-page load: grow on a fast one, halve on a slow or failed one."""
        self.report.first_page_s.append(seconds)
        async with self._cond:
            old = self.limit
            if ok and seconds <= self.target_s:
                self.limit = min(self.ceiling, self.limit + 1)
            elif (not ok or seconds > 2 * self.target_s) and time.perf_counter() - self._last_cut > 2 * self.target_s:
                # One cut per latency window: the slow loads that follow were already in flight.
                self._last_cut = time.perf_counter()
                self.limit = max(1, self.limit // 2)
                if self.limit < old:
                    why = "a first page failed to load" if not ok else f"first pages took {seconds:.1f} s"
                    self._reduced(old, self.limit, f"{why} (target {self.target_s:.1f} s)")
            self.report.peak = max(self.report.peak, self.limit)
            self.report.final = self.limit
            self._cond.notify_all()
