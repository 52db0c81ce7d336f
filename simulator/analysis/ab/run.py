"""Running the two arms: two ordinary runs, at the same time, with one policy.

Both arms run concurrently and pair i occupies slot i of both runners, so the two sessions of a
pair run side by side: load on the policy server and the time of day hit both builds alike. Which
of the two opens its first page first is drawn per pair from the seed (:class:`PairOrder`), so
whatever the first visit does for the second (a warmed cache, a CDN edge, a recommendation
model that has seen the persona) favours neither build. Each session has its own fresh browser
context and the same step and time budgets; each arm writes an ordinary run directory.
On a Ray cluster both arms share one connection and split every node's browser capacity.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shop_r1.personas.model import Persona
from shop_r1.simulator.agent.policies.base import Policy

from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.agent.policies.factory import PolicySpec
from shop_r1.simulator.agent.llm.sampling import seed_hash
from shop_r1.simulator.analysis.realism import record_realism
from shop_r1.simulator.loop.runner import RunConfig, Runner, RunResult, SessionGate


class SharedPolicy(Policy):
    """One policy (one model server) for both arms. A runner closes its policy when it ends;
    the first arm to finish must not close it under the other, so closing is left to the
    caller that opened it."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        return await self.inner.act(requests)

    def page_budget(self, session_id: str) -> int | None:
        return self.inner.page_budget(session_id)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    async def close(self) -> None:
        return None


class PairOrder:
    """Which arm of each pair opens its first page first, drawn per pair from the seed.

    The other arm's session waits (before taking a concurrency slot, so no arm can starve the
    other) until the first one has opened its page or ended.
    """

    def __init__(self, labels: Sequence[str], pairs: int, seed: int) -> None:
        rng = random.Random(seed_hash("ab-pair-order", seed))
        self.labels = list(labels)
        self.first = [rng.choice(self.labels) for _ in range(pairs)]
        self._opened = {(k, i): asyncio.Event() for k in self.labels for i in range(pairs)}

    def counts(self) -> dict[str, int]:
        return {k: self.first.count(k) for k in self.labels}

    def gate(self, label: str) -> SessionGate:
        order = self

        class _Gate:
            async def before(self, index: int) -> None:
                first = order.first[index] if index < len(order.first) else label
                if first != label:
                    await order._opened[(first, index)].wait()

            def opened(self, index: int) -> None:
                if (label, index) in order._opened:
                    order._opened[(label, index)].set()

        return _Gate()


async def run_arms(configs: Mapping[str, RunConfig], policy: Policy, personas: Mapping[str, Sequence[Persona]],
                   run_ids: Mapping[str, str], order: PairOrder | None = None) -> dict[str, RunResult]:
    """Run every arm at once (label -> result); with ``order``, the sessions of a pair start in its order."""
    shared = SharedPolicy(policy)
    labels = list(configs)
    results = await asyncio.gather(*(Runner(configs[k], shared, personas[k], run_id=run_ids[k],
                                            gate=order.gate(k) if order is not None else None).run()
                                     for k in labels))
    for k in labels:
        record_realism(Path(configs[k].out_dir))
    return dict(zip(labels, results))


async def run_arms_on_ray(configs: Mapping[str, RunConfig], spec: PolicySpec, personas: Mapping[str, Sequence[Persona]],
                          run_ids: Mapping[str, str], *, address: str, bundled: bool = False,
                          host_capacity: int | None = None, node_ip: str | None = None,
                          order: PairOrder | None = None) -> dict[str, RunResult]:
    """Every arm at once on the cluster at ``address`` (label -> result); with ``order``, the
    sessions of a pair start in its order, as in :func:`run_arms`.

    ``bundled``: some arm is a bundled shop, served on this machine's loopback, which only nodes
    on this machine can reach.
    """
    from shop_r1.simulator.loop.cluster import ClusterError, open_cluster, run_on_cluster  # imports ray lazily

    labels = list(configs)
    async with open_cluster(address, spec, node_ip) as cluster:
        if bundled and not cluster.on_this_machine():
            raise ClusterError("a bundled build is served on this machine's loopback, which the cluster's other "
                               "machines cannot reach; give --a and --b as URLs of the deployed builds")
        share = 1 / len(labels)
        cap = None if host_capacity is None else max(1, int(host_capacity * share))
        results = await asyncio.gather(*(run_on_cluster(cluster, configs[k], spec, personas[k], run_id=run_ids[k],
                                                        host_capacity_override=cap, capacity_share=share,
                                                        gate=order.gate(k) if order is not None else None)
                                         for k in labels))
    for k in labels:
        record_realism(Path(configs[k].out_dir))
    return dict(zip(labels, results))
