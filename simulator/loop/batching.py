"""Batch policy calls across concurrent shoppers.

Shoppers reach their decision points at different times. A local model is far more efficient
when it decodes for several shoppers at once, so each shopper submits its request here and
awaits its own future; a dispatcher sends whatever has gathered (up to ``max_batch``, waiting at
most ``max_wait_s`` for stragglers) as one ``Policy.act`` call. Several batches may be in
flight at once (HTTP backends overlap them); local backends serialise inside ``act``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from shop_r1.simulator.agent.policies.base import Policy, failure

from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    request: PolicyRequest
    future: asyncio.Future[PolicyResponse]


class PolicyBatcher:
    def __init__(self, policy: Policy, max_batch: int = 8, max_wait_s: float = 0.02, max_inflight: int = 4):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.policy = policy
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._inflight = asyncio.Semaphore(max_inflight)
        self._task: asyncio.Task[None] | None = None
        self._batches: list[asyncio.Task[None]] = []
        self.batch_sizes: list[int] = []

    async def __aenter__(self) -> "PolicyBatcher":
        self._task = asyncio.create_task(self._dispatch(), name="policy-batcher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Nobody awaits a batch once the sessions are gone; a model server that hangs (or a run
        # stopped mid-call) must not hold the exit, so in-flight calls are cancelled, not awaited.
        for task in self._batches:
            task.cancel()
        await asyncio.gather(*self._batches, return_exceptions=True)
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.cancel()

    async def submit(self, request: PolicyRequest) -> PolicyResponse:
        fut: asyncio.Future[PolicyResponse] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, fut))
        return await fut

    async def _dispatch(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            await self._inflight.acquire()
            task = asyncio.create_task(self._run(batch))
            self._batches.append(task)
            self._batches = [t for t in self._batches if not t.done()]

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            self.batch_sizes.append(len(batch))
            live = [p for p in batch if not p.future.cancelled()]
            try:
                responses = await self.policy.act([p.request for p in live])
                if len(responses) != len(live):
                    raise RuntimeError(f"policy returned {len(responses)} responses for {len(live)} requests")
            except Exception as exc:  # one failing batch must not stop the other shoppers
                log.warning("policy batch of %d failed: %s", len(live), exc)
                error = failure("policy_error", f"{type(exc).__name__}: {exc}")
                responses = [PolicyResponse(action=None, error=error) for _ in live]
            for pending, response in zip(live, responses):
                if not pending.future.done():
                    pending.future.set_result(response)
        finally:
            self._inflight.release()
