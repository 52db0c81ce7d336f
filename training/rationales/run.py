"""The synthesis run: ask the teacher for every planned job, cache each answer, report per step."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter

from shop_r1.training.data import load_trace
from shop_r1.training.rationales.cache import RationaleCache, cache_key, default_cache_dir
from shop_r1.training.rationales.plan import plan_jobs
from shop_r1.training.rationales.prompt import TEACHER_CONTEXT_BUDGET, RationaleJob, TeacherError, clean_rationale
from shop_r1.training.rationales.teachers import Teacher
from shop_r1.training.rationales.write import write_trace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    session_id: str
    step: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"session {self.session_id} step {self.step}: {self.code}: {self.message}"


@dataclass
class SynthesisReport:
    """What one run did. ``calls``: teacher invocations (cache hits are not calls)."""

    source: str
    out_dir: str | None
    teacher: dict[str, Any]
    steps: int = 0
    without_action: int = 0
    kept: int = 0
    needed: int = 0
    cached: int = 0
    calls: int = 0
    written: int = 0
    failures: list[Failure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "out_dir": self.out_dir, "teacher": self.teacher, "steps": self.steps,
                "without_action": self.without_action, "kept": self.kept, "needed": self.needed,
                "cached": self.cached, "calls": self.calls, "written": self.written,
                "failed": len(self.failures), "failures": [str(f) for f in self.failures],
                "bad_rows": len(self.problems), "problems": self.problems, "wall_s": round(self.wall_s, 3)}


def rate_limiter(rate: float, burst: float = 1.0) -> AsyncLimiter:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst`` at once."""
    if not rate > 0:
        raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
    if not burst >= 1:
        raise ValueError(f"burst must be >= 1, got {burst!r}")
    return AsyncLimiter(max_rate=burst, time_period=burst / rate)


ProgressFn = Callable[[int, int], None]


async def synthesize(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None,
    teacher: Teacher,
    *,
    overwrite: bool = False,
    rate: float | None = None,
    burst: float = 1.0,
    concurrency: int = 4,
    cache: RationaleCache | str | os.PathLike[str] | None = None,
    token_budget: int = TEACHER_CONTEXT_BUDGET,
    progress: ProgressFn | None = None,
) -> SynthesisReport:
    """Fill in rationales for ``source``'s steps and write the trace to ``out_dir``.

    ``out_dir`` None only computes (and caches); otherwise the new run directory (``trace.jsonl``
    + ``run.json``) is written at the end, atomically. Failed steps keep an empty rationale and
    are listed in the report; rerunning asks only for those (everything else is cached).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and (out / "trace.jsonl").exists():
        raise FileExistsError(f"{out / 'trace.jsonl'} exists already; choose a new --out folder")
    limiter = rate_limiter(rate, burst) if rate else None
    t0 = time.perf_counter()
    trace = load_trace(source)
    if len(trace.result.run_ids) > 1:
        raise ValueError(f"{trace.result.path} mixes runs {', '.join(trace.result.run_ids)}; split it per run first")
    jobs, counts = plan_jobs(trace, overwrite=overwrite, token_budget=token_budget)
    report = SynthesisReport(source=str(trace.result.path), out_dir=str(out) if out else None,
                             teacher=teacher.describe(), steps=counts["steps"],
                             without_action=counts["without_action"], kept=counts["kept"], needed=len(jobs),
                             problems=[str(p) for p in trace.problems])
    store: RationaleCache | None = None
    if teacher.cached:
        store = cache if isinstance(cache, RationaleCache) else RationaleCache(cache or default_cache_dir())
    sem = asyncio.Semaphore(concurrency)
    results: dict[tuple[str, int], str] = {}
    done = 0

    async def run_one(job: RationaleJob) -> None:
        nonlocal done
        key = cache_key(job.messages, teacher.model_id) if store is not None else ""
        hit = store.get(key) if store is not None else None
        if hit is not None:
            report.cached += 1
            results[(job.session_id, job.step)] = hit
        else:
            async with sem:
                if limiter is not None:
                    await limiter.acquire()
                report.calls += 1
                try:
                    text = clean_rationale(await teacher.write(job))
                except TeacherError as exc:
                    report.failures.append(Failure(job.session_id, job.step, exc.code, str(exc)))
                    log.warning("%s: %s: %s", job.where, exc.code, exc)
                else:
                    results[(job.session_id, job.step)] = text
                    if store is not None:
                        store.put(key, text, teacher.model_id)
        done += 1
        if progress is not None:
            progress(done, len(jobs))

    try:
        await asyncio.gather(*(run_one(j) for j in jobs))
    finally:
        await teacher.close()
        if store is not None and store is not cache:  # ours to close; a caller's stays open
            store.close()
    report.failures.sort(key=lambda f: (f.session_id, f.step))
    if out is not None:
        report.written = write_trace(trace, out, results, teacher)
    report.wall_s = time.perf_counter() - t0
    log.info("rationales: %d needed, %d cached, %d calls, %d failed", report.needed, report.cached,
             report.calls, len(report.failures))
    return report


__all__ = ["Failure", "SynthesisReport", "rate_limiter", "synthesize"]
