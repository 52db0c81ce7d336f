"""The driver of a Ray run: place one browser host per node, hand out sessions, write the trace.

Sessions are handed out one at a time to whichever host has a free slot (its capacity), so a
slow node gets fewer and a lost node's share moves to the rest. A host that dies ends only the
sessions it was running: each gets a ``host_lost`` end marker (and, with ``retry_lost``, one more
try elsewhere under a new session id), and everything it had already streamed stays written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from shop_r1.personas.model import Persona
from shop_r1.simulator.loop.admission import host_capacity
from shop_r1.simulator.loop.cluster.host import QUEUE_RECORDS, BrowserHostImpl, HostInfo, PolicyActorImpl
from shop_r1.simulator.agent.policies.factory import PolicyConfigError, PolicySpec
from shop_r1.simulator.loop.runner import (
    RunConfig,
    RunObserver,
    RunResult,
    SessionEnd,
    SessionGate,
    new_run_id,
    persona_id,
    persona_json,
)
from shop_r1.simulator.records.trace import TraceWriter, session_end_event

log = logging.getLogger(__name__)

class ClusterError(RuntimeError):
    """The cluster cannot be reached or holds no node that can host a browser."""


@dataclass
class ClusterReport:
    address: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    actors: int = 0
    sessions_per_node: Counter[str] = field(default_factory=Counter)
    hosts_lost: list[str] = field(default_factory=list)
    retried: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sessions_per_node"] = dict(self.sessions_per_node)
        return data


def connect(address: str, node_ip: str | None = None) -> Any:
    """``ray.init`` for an address (``local``: an in-process cluster of this machine)."""
    import ray  # optional dependency (the `cluster` extra)

    node_ip = node_ip or os.environ.get("SHOP_R1_RAY_NODE_IP") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}
    if node_ip:
        kwargs["_node_ip_address"] = node_ip
    try:
        if address == "local":
            ray.init(num_cpus=psutil.cpu_count() or 1, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError depending on the failure
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc
    return ray


def _alive_nodes(ray: Any) -> list[dict[str, Any]]:
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    if not nodes:
        raise ClusterError("the Ray cluster has no live node with a CPU to host a browser")
    return nodes


@dataclass
class Cluster:
    """A connected cluster and what every run on it shares: its nodes and the policy actor."""

    ray: Any
    address: str
    nodes: list[dict[str, Any]]
    policy_actor: Any | None = None

    def on_this_machine(self) -> bool:
        """Whether every node is this machine (a loopback address or one of its own)."""
        own = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
        return all((n.get("NodeManagerAddress") or "").startswith("127.") or n.get("NodeManagerAddress") in own
                   for n in self.nodes)


@asynccontextmanager
async def open_cluster(address: str, spec: PolicySpec, node_ip: str | None = None) -> AsyncIterator[Cluster]:
    """Connect once (``local``: start an in-process cluster) and place the shared policy actor."""
    if spec.name == "vllm" and not spec.base_url:
        raise PolicyConfigError("--ray with --policy vllm needs --base-url: one shared endpoint for every host "
                                "(start it with `shop-r1 serve`)")
    ray = connect(address, node_ip)
    cluster = None
    try:
        cluster = Cluster(ray, address, _alive_nodes(ray))
        if spec.name == "transformers":
            gpu = any(n.get("Resources", {}).get("GPU", 0) > 0 for n in cluster.nodes)
            cluster.policy_actor = ray.remote(PolicyActorImpl).options(
                num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1, max_concurrency=4).remote(spec)
        yield cluster
    finally:
        if cluster is not None and cluster.policy_actor is not None:
            ray.kill(cluster.policy_actor, no_restart=True)
        ray.shutdown()


async def run_on_ray(config: RunConfig, spec: PolicySpec, personas: Sequence[Persona | None], *, address: str,
                     observer: RunObserver | None = None, host_capacity_override: int | None = None,
                     retry_lost: bool = False, node_ip: str | None = None) -> RunResult:
    """Run ``config.shoppers`` sessions on the cluster at ``address``; same trace as a local run."""
    async with open_cluster(address, spec, node_ip) as cluster:
        return await run_on_cluster(cluster, config, spec, personas, observer=observer,
                                    host_capacity_override=host_capacity_override, retry_lost=retry_lost)


async def run_on_cluster(cluster: Cluster, config: RunConfig, spec: PolicySpec, personas: Sequence[Persona | None], *,
                         observer: RunObserver | None = None, host_capacity_override: int | None = None,
                         retry_lost: bool = False, capacity_share: float = 1.0,
                         run_id: str | None = None, gate: SessionGate | None = None) -> RunResult:
    """One run on an open cluster: a browser host per node, sessions handed out, one trace.

    ``capacity_share`` is the part of each node this run may fill: runs sharing the cluster at
    once (the two arms of an A/B test) split every node instead of each taking all of it.
    ``gate``: when each session may start, told when its first page is open (an A/B test
    orders the two sessions of a pair, as a local run does).
    """
    if not 0 < capacity_share <= 1:
        raise ValueError(f"capacity_share must be in (0, 1], got {capacity_share}")
    ray = cluster.ray
    observer = observer or RunObserver()
    personas = list(personas)[: config.shoppers]
    report = ClusterReport(address=cluster.address)
    hosts: list[tuple[Any, HostInfo]] = []
    try:
        host_cls = ray.remote(BrowserHostImpl)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # optional dependency

        run_id = run_id or new_run_id()
        for node in cluster.nodes:
            res = node.get("Resources", {})
            cap = host_capacity_override or max(1, int(capacity_share * host_capacity(
                res.get("CPU", 1), res.get("memory", 2**31))))
            actor = host_cls.options(
                num_cpus=0, max_concurrency=cap + 4, max_restarts=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(config.model_dump(mode="json"), spec, run_id, cap, cluster.policy_actor)
            hosts.append((actor, None))  # type: ignore[arg-type]
        infos = await asyncio.gather(*(a.info.remote() for a, _ in hosts))
        hosts = [(a, info) for (a, _), info in zip(hosts, infos)]
        report.actors = len(hosts)
        report.nodes = [{"node_id": n["NodeID"], "ip": n.get("NodeManagerAddress"),
                         "cpus": n.get("Resources", {}).get("CPU", 0)} for n in cluster.nodes]
        log.info("ray: %d host(s) on %d node(s), capacity %s", len(hosts), len(cluster.nodes),
                 ", ".join(f"{i.node_ip}:{i.capacity}" for _, i in hosts))
        return await _drive(ray, config, spec, personas, hosts, run_id, observer, report, retry_lost, gate)
    finally:
        for actor, _ in hosts:
            try:
                await asyncio.wait_for(actor.close.remote(), 30)
            except Exception:  # a lost host cannot close; Ray reclaims it
                pass
            ray.kill(actor, no_restart=True)


async def _drive(ray: Any, config: RunConfig, spec: PolicySpec, personas: list[Persona | None],
                 hosts: list[tuple[Any, HostInfo]], run_id: str, observer: RunObserver,
                 report: ClusterReport, retry_lost: bool, gate: SessionGate | None = None) -> RunResult:
    from ray.exceptions import RayActorError  # optional dependency

    t0 = time.perf_counter()
    result = RunResult(run_id, config.out_dir)
    pending: deque[tuple[int, Any, bool]] = deque((i, p, False) for i, p in enumerate(personas))
    next_index = len(personas)
    dead: set[str] = set()
    in_flight: set[str] = set()
    policy_info = {"policy": spec.name, "model": spec.model, "placement": "ray"}
    run_config = {**config.model_dump(mode="json"), "policy_info": policy_info}
    with TraceWriter(config.out_dir, run_id=run_id, config=run_config, seed=config.seed,
                     personas=[j for p in personas if (j := persona_json(p)) is not None]) as writer:
        observer.on_start(config.shoppers)

        async def one(actor: Any, info: HostInfo, index: int, persona: Persona | None, retried: bool) -> None:
            nonlocal next_index
            session_id = f"{run_id}-{index:04d}"
            steps, ended, last_url = 0, False, None
            in_flight.add(session_id)
            try:
                gen = actor.run_session.options(
                    num_returns="streaming", _generator_backpressure_num_objects=QUEUE_RECORDS,
                ).remote(index, persona)
                async for ref in gen:
                    kind, record = await ref
                    if kind == "step":
                        writer.write_step(record)
                        steps, last_url = record.step + 1, record.url
                        result.steps += 1
                        error = record.parse_error or record.exec_error
                        observer.on_step(session_id, record.step, record.action, error.code if error else None)
                    elif kind == "event":
                        writer.write_event(record)
                    elif kind == "screenshot":
                        writer.write_screenshot(*record)
                    elif kind == "opened":
                        if gate is not None:
                            gate.opened(index)
                    else:
                        ended = True
                        in_flight.discard(session_id)
                        result.sessions.append(record)
                        report.sessions_per_node[info.node_ip] += 1
                        observer.on_session_end(record)
            except RayActorError as exc:
                if info.node_id not in dead:
                    dead.add(info.node_id)
                    report.hosts_lost.append(info.node_ip)
                    log.warning("ray: host on %s was lost (%s); its sessions end as host_lost", info.node_ip, exc)
                in_flight.discard(session_id)
                if ended:
                    return
                again = retry_lost and not retried and len(dead) < len(hosts)
                reason = f"the browser host on {info.node_ip} was lost"
                if again:
                    new_index = next_index
                    next_index += 1
                    pending.append((new_index, persona, True))
                    report.retried += 1
                    reason += f"; retried as {run_id}-{new_index:04d}"
                writer.write_event(session_end_event(
                    run_id=run_id, session_id=session_id, step=steps, outcome="host_lost", end_reason=reason,
                    persona_id=persona_id(persona), url=last_url))
                end = SessionEnd(session_id, persona_id(persona), steps, "host_lost", reason)
                result.sessions.append(end)
                observer.on_session_end(end)
                raise
            finally:
                if gate is not None:  # a session that never opened its page frees its pair too
                    gate.opened(index)

        async def slot(actor: Any, info: HostInfo) -> None:
            while pending and info.node_id not in dead:
                index, persona, retried = pending.popleft()
                if gate is not None:
                    # Waits holding this host slot (for as long as the pair's other session takes
                    # to open its first page, in the other arm's own slots): sessions are taken in
                    # index order in both arms, so the wait always ends.
                    await gate.before(index)
                try:
                    await one(actor, info, index, persona, retried)
                except RayActorError:
                    return

        workers = [asyncio.create_task(slot(a, i)) for a, i in hosts for _ in range(i.capacity)]
        try:
            await asyncio.gather(*workers)
            while pending:  # every host died with sessions still waiting
                index, persona, _ = pending.popleft()
                session_id = f"{run_id}-{index:04d}"
                reason = "no live browser host was left to run it"
                writer.write_event(session_end_event(run_id=run_id, session_id=session_id, step=0,
                                                     outcome="host_lost", end_reason=reason,
                                                     persona_id=persona_id(persona)))
                end = SessionEnd(session_id, persona_id(persona), 0, "host_lost", reason)
                result.sessions.append(end)
                observer.on_session_end(end)
                if gate is not None:
                    gate.opened(index)
        except asyncio.CancelledError:
            result.interrupted = True
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for session_id in sorted(in_flight):
                writer.write_event(session_end_event(run_id=run_id, session_id=session_id, step=0,
                                                     outcome="interrupted", end_reason="the run was stopped"))
        finally:
            result.wall_s = time.perf_counter() - t0
            writer.finish({
                "sessions": len(result.sessions), "steps": result.steps, "outcomes": dict(result.outcomes),
                "wall_s": round(result.wall_s, 2),
                "steps_per_s": round(result.steps / result.wall_s, 3) if result.wall_s else 0.0,
                "interrupted": result.interrupted, "cluster": report.to_json(),
            })
    return result
