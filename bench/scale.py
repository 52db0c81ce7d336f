"""Benchmark: the same scripted shoppers locally and through Ray on this machine.

Both runs use the bundled shop, the same personas and budgets; the local run is the baseline
measured in the same process. Printed per mode: set-up time (start until the first recorded
step), steps/s while stepping, wall time, sessions per host actor, and the Ray/local ratios —
the overhead of the engine, which should be small. The per-step costs it prints are the inputs
of the throughput model in docs/scaling.md.

    .venv/bin/python bench/scale.py [--shoppers 16] [--steps 6] [--capacity 16] [--json]

Ray runs as an in-process cluster on a loopback address of its own (127.0.0.3 by default;
``SHOP_R1_RAY_NODE_IP`` overrides), so no traffic leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from simulate import _phases  # noqa: E402  (bench/ is not a package)

from shop_r1.envs.shop.server import run_in_thread  # noqa: E402
from shop_r1.personas.sampler import sample  # noqa: E402
from shop_r1.simulator.agent.policies.factory import PolicySpec  # noqa: E402
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy  # noqa: E402
from shop_r1.simulator.loop.runner import RunConfig, Runner  # noqa: E402


def _config(shop_url: str, out: Path, shoppers: int, steps: int) -> RunConfig:
    return RunConfig(shop_url=shop_url, shoppers=shoppers, concurrency=shoppers, max_steps=steps, seed=11,
                     out_dir=out, max_batch=max(8, shoppers))


async def _local(shop_url: str, out: Path, shoppers: int, steps: int) -> dict[str, Any]:
    personas = sample(shoppers, seed=11)
    t0 = time.time()
    result = await Runner(_config(shop_url, out, shoppers, steps), ScriptedPolicy(seed=11), personas).run()
    wall = time.time() - t0
    return {"mode": "local", "sessions": len(result.sessions), "steps": result.steps, "wall_s": wall,
            **_phases(out, t0), "hosts": 1, "sessions_per_host": {"local": len(result.sessions)}}


async def _ray(shop_url: str, out: Path, shoppers: int, steps: int, capacity: int) -> dict[str, Any]:
    from shop_r1.simulator.loop.cluster import run_on_ray  # imports ray (the cluster extra)

    personas = sample(shoppers, seed=11)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t0 = time.time()
    result = await run_on_ray(_config(shop_url, out, shoppers, steps), PolicySpec(name="scripted", seed=11), personas,
                              address="local", host_capacity_override=capacity,
                              node_ip=os.environ.get("SHOP_R1_RAY_NODE_IP", "127.0.0.3"))
    wall = time.time() - t0
    cluster = json.loads((out / "run.json").read_text())["summary"]["cluster"]
    return {"mode": "ray (local cluster)", "sessions": len(result.sessions), "steps": result.steps, "wall_s": wall,
            **_phases(out, t0), "hosts": cluster["actors"], "sessions_per_host": cluster["sessions_per_node"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shoppers", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--capacity", type=int, default=16, help="contexts per Ray host actor")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    console = Console()
    rows = []
    with run_in_thread(seed=0) as shop, tempfile.TemporaryDirectory() as tmp:
        rows.append(asyncio.run(_local(shop.url, Path(tmp) / "local", args.shoppers, args.steps)))
        rows.append(asyncio.run(_ray(shop.url, Path(tmp) / "ray", args.shoppers, args.steps, args.capacity)))
    base = rows[0]
    table = Table(title=f"{args.shoppers} scripted shoppers x {args.steps} steps: local vs Ray on one machine")
    for col in ("mode", "sessions", "steps", "set-up s", "steps/s (stepping)", "wall s", "wall × local",
                "stepping × local", "hosts", "sessions per host"):
        table.add_column(col, justify="right")
    for row in rows:
        row["wall_ratio"] = row["wall_s"] / base["wall_s"]
        row["stepping_ratio"] = row["stepping_steps_per_s"] / base["stepping_steps_per_s"]
        table.add_row(row["mode"], str(row["sessions"]), str(row["steps"]), f"{row['setup_s']:.1f}",
                      f"{row['stepping_steps_per_s']:.2f}", f"{row['wall_s']:.1f}", f"{row['wall_ratio']:.2f}",
                      f"{row['stepping_ratio']:.2f}", str(row["hosts"]),
                      ", ".join(f"{k}: {v}" for k, v in row["sessions_per_host"].items()))
    console.print(table)
    per_step_ms = 1000 / base["stepping_steps_per_s"] if base["stepping_steps_per_s"] else float("nan")
    console.print(f"browser CPU per step (local, {os.cpu_count()} cores): {per_step_ms * (os.cpu_count() or 1):.0f} "
                  f"core-ms; {per_step_ms:.0f} ms of wall time per step at this concurrency")
    if args.json:
        print(json.dumps(rows, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
