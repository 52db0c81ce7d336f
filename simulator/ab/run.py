"""Running the two arms: two ordinary runs, at the same time, with one policy.

Both arms run concurrently and pair i occupies slot i of both runners, so the two sessions of a
pair start together: load on the policy server, warm caches and the time of day hit both builds
alike, and neither build is systematically first (what randomising the order per pair is for,
done here by not ordering them at all). Each session has its own fresh browser context and the
same step and time budgets; each arm writes an ordinary run directory (replayable, trainable).
On a Ray cluster both arms share one connection and split every node's browser capacity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from shop_r1.simulator.policies.base import Policy, PolicyRequest, PolicyResponse
from shop_r1.simulator.policies.factory import PolicySpec
from shop_r1.simulator.runner import RunConfig, Runner, RunResult


class SharedPolicy(Policy):
    """One policy (one model server) for both arms. A runner closes its policy when it ends;
    the first arm to finish must not close it under the other, so closing is left to the
    caller that opened it."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        return await self.inner.act(requests)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    async def close(self) -> None:
        return None


async def run_arms(configs: Mapping[str, RunConfig], policy: Policy, personas: Mapping[str, Sequence[Any]],
                   run_ids: Mapping[str, str]) -> dict[str, RunResult]:
    """Run every arm at once (label -> result)."""
    shared = SharedPolicy(policy)
    labels = list(configs)
    results = await asyncio.gather(*(Runner(configs[k], shared, personas[k], run_id=run_ids[k]).run()
                                     for k in labels))
    return dict(zip(labels, results))


async def run_arms_on_ray(configs: Mapping[str, RunConfig], spec: PolicySpec, personas: Mapping[str, Sequence[Any]],
                          run_ids: Mapping[str, str], *, address: str, bundled: bool = False,
                          host_capacity: int | None = None, node_ip: str | None = None) -> dict[str, RunResult]:
    """Every arm at once on the cluster at ``address`` (label -> result).

    ``bundled``: some arm is a bundled shop, served on this machine's loopback, which only nodes
    on this machine can reach.
    """
    from shop_r1.simulator.cluster import ClusterError, open_cluster, run_on_cluster  # imports ray lazily

    labels = list(configs)
    async with open_cluster(address, spec, node_ip) as cluster:
        if bundled and not cluster.on_this_machine():
            raise ClusterError("a bundled build is served on this machine's loopback, which the cluster's other "
                               "machines cannot reach; give --a and --b as URLs of the deployed builds")
        share = 1 / len(labels)
        cap = None if host_capacity is None else max(1, int(host_capacity * share))
        results = await asyncio.gather(*(run_on_cluster(cluster, configs[k], spec, personas[k], run_id=run_ids[k],
                                                        host_capacity_override=cap, capacity_share=share)
                                         for k in labels))
    return dict(zip(labels, results))
