"""Shoppers on a Ray cluster: browser hosts as actors, one trace written by the driver.

Ray, not a scheduler of our own: operators already run it (KubeRay on Kubernetes), it places
actors by node resources, and its streaming generators carry each session's records back as
they happen. Each :class:`~shop_r1.simulator.loop.cluster.host.BrowserHost` owns one Chromium and a
bounded number of contexts; the driver (:func:`~shop_r1.simulator.loop.cluster.driver.run_on_ray`)
keeps the single :class:`~shop_r1.simulator.records.trace.TraceWriter` and the live view, so a Ray run's
trace, run.json and report are those of a local run. ``ray`` is an optional dependency (the
``cluster`` extra): nothing here imports it until a run asks for a cluster.
"""

from shop_r1.simulator.loop.cluster.driver import Cluster, ClusterError, open_cluster, run_on_cluster, run_on_ray

__all__ = ["Cluster", "ClusterError", "open_cluster", "run_on_cluster", "run_on_ray"]
