"""One browser host: a Ray actor that owns a Chromium and runs shopper sessions in it.

The host is the runner's own session loop (:meth:`Runner.run_session`) with a different
writer: records go into a bounded queue that the actor method streams back to the driver, so
the driver's trace gets each step as it happens and a slow driver slows the hosts down instead
of piling records up in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shop_r1.personas.model import Persona
from shop_r1.simulator.agent.policies.base import Policy

from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.policies.factory import PolicySpec, open_policy
from shop_r1.simulator.loop.runner import Runner, RunConfig, SessionEnd
from shop_r1.simulator.records.trace import TraceEvent, TraceStep, screenshot_path

log = logging.getLogger(__name__)

#: Records a host may stream ahead of the driver before its generator waits (back-pressure).
QUEUE_RECORDS = 64


@dataclass(frozen=True)
class HostInfo:
    node_id: str
    node_ip: str
    hostname: str
    pid: int
    capacity: int


class SessionRecords:
    """The runner's writer interface for one session: records kept in order for the stream.

    A few records per step (step, screenshot) and per session (opened, events), so the list is
    bounded; the stream itself is bounded by Ray's generator back-pressure (:data:`QUEUE_RECORDS`
    unconsumed records).
    """

    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()

    def write_step(self, record: TraceStep) -> TraceStep:
        self.records.append(("step", record))
        self.changed.set()
        return record

    def write_event(self, record: TraceEvent) -> TraceEvent:
        self.records.append(("event", record))
        self.changed.set()
        return record

    def write_opened(self) -> None:
        """The session's first page is open: the driver lets the other session of an A/B pair start."""
        self.records.append(("opened", None))
        self.changed.set()

    def write_screenshot(self, session_id: str, step: int, data: bytes) -> str:
        """Streamed to the driver, which stores it where this returns (the same name)."""
        self.records.append(("screenshot", (session_id, step, data)))
        self.changed.set()
        return screenshot_path(session_id, step)


class _OpenedToStream:
    """The host runner's gate: it never holds a session back (the driver does that, where both
    arms of an A/B test are seen); it only streams "first page open" to the driver."""

    def __init__(self, sessions: dict[int, SessionRecords]) -> None:
        self.sessions = sessions

    async def before(self, index: int) -> None:
        return None

    def opened(self, index: int) -> None:
        if index in self.sessions:
            self.sessions[index].write_opened()


class RemotePolicy(Policy):
    """A policy that lives in its own actor (a transformers model on a GPU node)."""

    def __init__(self, actor: Any, name: str) -> None:
        self.actor = actor
        self.name = name

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        responses: list[PolicyResponse] = await self.actor.act.remote(list(requests))
        return responses

    def describe(self) -> dict[str, Any]:
        return {"policy": self.name, "placement": "policy actor"}


class BrowserHostImpl:
    """The actor's body (wrapped with ``ray.remote`` by the driver, so ray stays optional)."""

    def __init__(self, config: dict[str, Any], spec: PolicySpec, run_id: str, capacity: int,
                 policy_actor: Any = None) -> None:
        self.config = RunConfig.model_validate({**config, "concurrency": capacity})
        self.spec = spec
        self.run_id = run_id
        self.capacity = capacity
        self.policy_actor = policy_actor
        self._stack: contextlib.AsyncExitStack | None = None
        self._runner: Runner | None = None
        self._ready = asyncio.Lock()
        self._sessions: dict[int, SessionRecords] = {}

    async def info(self) -> HostInfo:
        import ray  # optional dependency: only inside a Ray worker

        ctx = ray.get_runtime_context()
        return HostInfo(node_id=ctx.get_node_id(), node_ip=ray.util.get_node_ip_address(),
                        hostname=socket.gethostname(), pid=os.getpid(), capacity=self.capacity)

    async def _ensure_runner(self) -> Runner:
        async with self._ready:
            if self._runner is None:
                stack = contextlib.AsyncExitStack()
                if self.policy_actor is not None:
                    policy: Policy = RemotePolicy(self.policy_actor, self.spec.name)
                else:
                    policy = await stack.enter_async_context(open_policy(self.spec))
                runner = Runner(self.config, policy, [], run_id=self.run_id, hosting_only=True,
                                gate=_OpenedToStream(self._sessions))
                await stack.enter_async_context(runner.hosting())
                self._stack, self._runner = stack, runner
        return self._runner

    async def run_session(self, index: int, persona: Persona | None):  # noqa: ANN201 - a Ray streaming generator
        """Yield ``("step"|"event"|"screenshot"|"opened", record)`` as the session goes, then
        ``("end", SessionEnd)``."""
        runner = await self._ensure_runner()
        writer = self._sessions[index] = SessionRecords()
        task = asyncio.create_task(runner.run_session(index, persona, writer=writer))
        task.add_done_callback(lambda _: writer.changed.set())
        sent = 0
        try:
            while True:
                writer.changed.clear()
                while sent < len(writer.records):
                    yield writer.records[sent]
                    sent += 1
                if task.done():
                    break
                await writer.changed.wait()
        finally:
            self._sessions.pop(index, None)
        end: SessionEnd = task.result()
        yield ("end", end)

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = self._runner = None


class PolicyActorImpl:
    """A model policy in an actor of its own, shared by every host (e.g. on the GPU node)."""

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        self._stack = contextlib.AsyncExitStack()
        self._policy: Policy | None = None

    async def act(self, requests: list[PolicyRequest]) -> list[PolicyResponse]:
        if self._policy is None:
            self._policy = await self._stack.enter_async_context(open_policy(self.spec))
        return await self._policy.act(requests)

    async def describe(self) -> dict[str, Any]:
        if self._policy is None:
            self._policy = await self._stack.enter_async_context(open_policy(self.spec))
        return self._policy.describe()
