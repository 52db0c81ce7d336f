"""Shoppers on a real Ray cluster: a head and a second node on their own loopback addresses.

Ray turns 127.0.0.1 into the machine's outward address, so every node (and the driver) gets
its own other loopback address (ENVIRONMENT.md, section Ray): no traffic leaves loopback.
The fault test kills the second node's raylet and workers mid-run and checks that only its
sessions end (``host_lost``), the run completes, and every session is in the trace once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from fixtures.pair_order_log import LoggedOrder

from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.sampler import sample
from shop_r1.simulator.analysis.ab.run import PairOrder, run_arms_on_ray
from shop_r1.simulator.loop.cluster import run_on_ray
from shop_r1.simulator.agent.policies.factory import PolicySpec
from shop_r1.simulator.loop.runner import RunConfig
from shop_r1.simulator.records.trace import read_trace

pytest.importorskip("ray", reason="the cluster extra (ray) is installed by `make test`")

RAY = Path(sys.executable).parent / "ray"
HEAD_IP, WORKER_IP = "127.0.0.3", "127.0.0.2"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port(host: str) -> int:
    # Outside Ray's default worker-port range (10002-19999).
    for port in range(26400, 26500):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the Ray head")


def _ray(*args: str, timeout: float = 180) -> None:
    proc = subprocess.run([str(RAY), *args], env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"ray {' '.join(args)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


@pytest.fixture(scope="module")
def cluster():
    # A short folder of its own: Ray's socket paths live under it and AF_UNIX allows 107 bytes, which
    # pytest's tmp paths (/tmp/pytest-of-root/pytest-N/popen-gw1/ray0/...) overrun under xdist.
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    port = _free_port(HEAD_IP)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        _ray("start", "--head", "--node-ip-address", HEAD_IP, "--port", str(port), "--num-cpus", "1",
             "--temp-dir", str(temp), "--disable-usage-stats", "--include-dashboard=false")
        _ray("start", "--address", f"{HEAD_IP}:{port}", "--node-ip-address", WORKER_IP, "--num-cpus", "1",
             "--disable-usage-stats")
        yield f"{HEAD_IP}:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=ENV, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def _config(shop_url: str, out: Path, shoppers: int, steps: int) -> RunConfig:
    return RunConfig(shop_url=shop_url, shoppers=shoppers, concurrency=shoppers, max_steps=steps, seed=3,
                     out_dir=out, policy="scripted")


def _ends(out: Path) -> Counter[str]:
    """Session id -> number of end markers (a final step or a session_end event)."""
    trace = read_trace(out / "trace.jsonl")
    ends: Counter[str] = Counter()
    for record in [*trace.steps, *trace.events]:
        if record.done:
            ends[record.session_id] += 1
    return ends


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def _kill_node(ip: str) -> int:
    """Kill the raylet of the node at ``ip`` and every process under it (its actors)."""
    killed = 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if "raylet" in (proc.info.get("name") or "") and f"--node_ip_address={ip}" in cmd:
            for p in [*proc.children(recursive=True), proc]:
                try:
                    p.kill()
                    killed += 1
                except psutil.NoSuchProcess:
                    pass
    return killed


@pytest.mark.slow
def test_sessions_spread_over_two_nodes_one_trace(cluster: str, shop_url: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    personas = sample(6, seed=3)
    result = asyncio.run(run_on_ray(_config(shop_url, out, 6, 4), PolicySpec(name="scripted", seed=3), personas,
                                    address=cluster, host_capacity_override=2, node_ip=HEAD_IP))
    assert len(result.sessions) == 6 and "host_lost" not in result.outcomes
    ends = _ends(out)
    assert len(ends) == 6 and set(ends.values()) == {1}, ends
    import json

    run = json.loads((out / "run.json").read_text())
    cluster_info = run["summary"]["cluster"]
    assert cluster_info["actors"] == 2
    assert set(cluster_info["sessions_per_node"]) == {HEAD_IP, WORKER_IP}, cluster_info
    assert sum(cluster_info["sessions_per_node"].values()) == 6
    for conn in psutil.net_connections(kind="tcp"):
        if conn.raddr and conn.pid and not _loopback(conn.raddr.ip):
            proc_name = psutil.Process(conn.pid).name() if psutil.pid_exists(conn.pid) else "?"
            assert "ray" not in proc_name and "raylet" not in proc_name and "gcs" not in proc_name, (conn, proc_name)


@pytest.mark.slow
def test_a_lost_node_ends_only_its_sessions(cluster: str, shop_url: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    personas = sample(8, seed=5)
    trace = out / "trace.jsonl"

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if trace.exists() and sum(1 for line in trace.read_text().splitlines() if '"step"' in line) >= 4:
                break
            time.sleep(0.2)
        _kill_node(WORKER_IP)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = asyncio.run(run_on_ray(_config(shop_url, out, 8, 8), PolicySpec(name="scripted", seed=5), personas,
                                    address=cluster, host_capacity_override=2, node_ip=HEAD_IP, retry_lost=True))
    thread.join(5)
    outcomes = result.outcomes
    assert outcomes["host_lost"] >= 1, outcomes
    ends = _ends(out)
    assert set(ends.values()) == {1}, ends  # one end marker per session, none lost
    original = {f"{result.run_id}-{i:04d}" for i in range(8)}
    assert original <= set(ends), original - set(ends)
    retried = [s for s in result.sessions if s.session_id not in original]
    assert all(s.outcome != "host_lost" for s in retried), retried  # retried on the live node
    assert len(retried) == outcomes["host_lost"]


def test_ray_local_runs_scripted_shoppers(shop_url: str, tmp_path: Path) -> None:
    """``--ray local``: an in-process cluster of this machine (its own loopback address)."""
    out = tmp_path / "run"
    result = asyncio.run(run_on_ray(_config(shop_url, out, 3, 3), PolicySpec(name="scripted", seed=1), sample(3, seed=1),
                                    address="local", node_ip=HEAD_IP))
    assert len(result.sessions) == 3 and result.steps >= 3
    ends = _ends(out)
    assert len(ends) == 3 and set(ends.values()) == {1}


def test_ab_runs_both_arms_on_ray_local(tmp_path: Path) -> None:
    """``shop-r1 ab --ray local``: both arms on one cluster, each an ordinary run with its cluster block."""
    out = tmp_path / "ab"
    proc = subprocess.run(
        [sys.executable, "-m", "shop_r1.simulator.cli.main", "ab", "--a", "bundled:control", "--b", "bundled:recolor",
         "--shoppers", "3", "--seed", "5", "--max-steps", "4", "--ray", "local", "--host-capacity", "4",
         "--out", str(out)],
        env={**ENV, "SHOP_R1_RAY_NODE_IP": HEAD_IP, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "ab.json").read_text())
    assert data["shoppers"] == 3 and len(data["pairs"]) == 3
    assert any(n.startswith("order randomised per pair") for n in data["notes"]), data["notes"]
    for arm in ("a", "b"):
        run = json.loads((out / arm / "run.json").read_text())
        cluster = run["summary"]["cluster"]
        assert cluster["actors"] == 1 and sum(cluster["sessions_per_node"].values()) == 3
        ends = _ends(out / arm)
        assert len(ends) == 3 and set(ends.values()) == {1}


def test_ab_pairs_open_in_their_drawn_order_on_ray(tmp_path: Path) -> None:
    """On Ray too, the arm drawn for a pair opens its first page before the other session starts:
    the host streams "page open" to the driver, which holds the pair's other session until then."""
    pairs = 6
    order = LoggedOrder(PairOrder(["a", "b"], pairs, seed=7))
    assert set(order.order.first) == {"a", "b"}
    people = sample(pairs, seed=7)
    with run_in_thread(seed=0, port=0) as shop_a, run_in_thread(seed=0, port=0, variant="recolor") as shop_b:
        configs = {k: _config(url, tmp_path / k, pairs, 3) for k, url in (("a", shop_a.url), ("b", shop_b.url))}
        results = asyncio.run(run_arms_on_ray(
            configs, PolicySpec(name="scripted", seed=7), {"a": people, "b": people}, {"a": "o-a", "b": "o-b"},
            address="local", bundled=True, host_capacity=2 * pairs, node_ip=HEAD_IP,
            order=order))  # type: ignore[arg-type]
    assert order.violations() == []
    for k in ("a", "b"):
        assert len(results[k].sessions) == pairs
        ends = _ends(tmp_path / k)
        assert len(ends) == pairs and set(ends.values()) == {1}
    # "page open" is streamed while the session runs: the pair's other session starts before
    # the first one's last step, not after it ended (each arm has a slot for every session, so
    # only the gate can hold one back).
    last = {(k, s.session_id): datetime.fromisoformat(s.ts).timestamp()
            for k in ("a", "b") for s in read_trace(tmp_path / k / "trace.jsonl").steps}
    for i, first, second in order.pairs():
        assert order.started(second, i) < last[(first, f"o-{first}-{i:04d}")], (i, first)


def test_bundled_builds_need_a_cluster_on_this_machine() -> None:
    from shop_r1.simulator.loop.cluster import Cluster

    assert Cluster(ray=None, address="x", nodes=[{"NodeManagerAddress": "127.0.0.2"}]).on_this_machine()
    assert not Cluster(ray=None, address="x", nodes=[{"NodeManagerAddress": "127.0.0.2"},
                                                       {"NodeManagerAddress": "203.0.113.7"}]).on_this_machine()
