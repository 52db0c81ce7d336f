"""One A/B experiment end to end: serve the builds, draw the shoppers, run both arms, write
``DIR/a/``, ``DIR/b/`` (ordinary run directories with their reports), ``DIR/ab.json`` and
``DIR/ab.html``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shop_r1.personas.model import Persona
from shop_r1.personas.sampler import DemographicMix
from shop_r1.simulator.analysis.ab.analysis import ABResult, analyse
from shop_r1.simulator.analysis.ab.design import Arm, Design, balanced_split, serve_arms, unique_ids, with_tasks
from shop_r1.simulator.analysis.ab.html import write_ab_html
from shop_r1.simulator.analysis.ab.run import PairOrder, run_arms, run_arms_on_ray
from shop_r1.simulator.analysis.ab.weights import WeightsError, rake
from shop_r1.personas.shoppers import shoppers_for_run as load_personas_for_run  # as `simulate` loads them
from shop_r1.simulator.agent.policies.factory import PolicySpec, open_policy
from shop_r1.simulator.analysis.report import build_report
from shop_r1.simulator.loop.runner import RunConfig

log = logging.getLogger(__name__)


class Experiment(BaseModel):
    """Everything that shapes an experiment (both arms share all but the storefront)."""

    model_config = ConfigDict(extra="forbid")

    a: Arm
    b: Arm
    out_dir: Path
    shoppers: int = Field(40, ge=1, le=10_000, description="pairs (paired) or sessions per arm (between)")
    design: Design = "paired"
    seed: int = 0
    shop_seed: int = 0
    personas_file: Path | None = None
    mix: Path | None = None
    weights: Path | None = Field(None, description="demographic mix whose cohort shares the metrics are weighted to")
    tasks: list[str] = Field(default_factory=list)
    run_id: str | None = None  # arms are RUN_ID-a and RUN_ID-b; default: the time
    run: dict[str, Any] = Field(default_factory=dict, description="RunConfig fields shared by both arms")
    ray: str | None = Field(None, description="Ray cluster address (or 'local') to run both arms on")
    host_capacity: int | None = Field(None, ge=1, description="with ray: contexts per node, split between the arms")


def load_tasks(path: Path) -> list[str]:
    """Intents, one per line, or a JSON list of strings (or of {"intent": ...} objects)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of intents, got {type(data).__name__}")
        tasks = []
        for i, item in enumerate(data):
            intent = item.get("intent") if isinstance(item, dict) else item
            if not isinstance(intent, str) or not intent.strip():
                raise ValueError(f"{path}[{i}]: an intent must be a non-empty string, got {item!r}")
            tasks.append(intent.strip())
    else:
        tasks = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not tasks:
        raise ValueError(f"{path}: no intents in the file")
    return tasks


def _assign(exp: Experiment, url_a: str) -> tuple[list[Persona], list[Persona]]:
    n = exp.shoppers * (2 if exp.design == "between" else 1)
    people = unique_ids(with_tasks(load_personas_for_run(exp.personas_file, exp.mix, n, exp.seed, url_a), exp.tasks))
    if exp.design == "between":
        return balanced_split(people, exp.seed)
    return people, list(people)


def run_experiment(exp: Experiment, spec: PolicySpec) -> ABResult:
    """Run both arms and write the experiment's files; returns the result (also in ab.json)."""
    out = exp.out_dir
    for label in ("a", "b"):
        if (out / label / "trace.jsonl").exists():
            raise FileExistsError(f"{out / label} already holds a trace; choose another output directory")
    run_id = exp.run_id or time.strftime("ab-%Y%m%d-%H%M%S")
    mix = DemographicMix.from_file(exp.weights) if exp.weights is not None else None
    with serve_arms([exp.a, exp.b], exp.shop_seed) as urls:
        personas = dict(zip(("a", "b"), _assign(exp, urls["a"])))
        if mix is not None:  # a mix the shoppers cannot reach fails now, not after both arms have run
            for k in ("a", "b") if exp.design == "between" else ("a",):
                rake([p.model_dump(mode="json") for p in personas[k]], mix)
        configs = {k: RunConfig(**{**exp.run, "shop_url": urls[k], "shoppers": len(personas[k]),
                                   "seed": exp.seed, "out_dir": out / k, "policy": spec.name, "model": spec.model})
                   for k in ("a", "b")}

        run_ids = {k: f"{run_id}-{k}" for k in ("a", "b")}
        # Paired: which session of each pair opens its page first, drawn per pair (locally and on Ray).
        order = PairOrder(["a", "b"], len(personas["a"]), exp.seed) if exp.design == "paired" else None

        async def main() -> float:
            t0 = time.perf_counter()
            if exp.ray:
                await run_arms_on_ray(configs, spec, personas, run_ids, address=exp.ray,
                                      bundled=exp.a.variant is not None or exp.b.variant is not None,
                                      host_capacity=exp.host_capacity, order=order)
            else:
                async with open_policy(spec) as policy:
                    await run_arms(configs, policy, personas, run_ids, order=order)
            return time.perf_counter() - t0

        wall = asyncio.run(main())
    for k in ("a", "b"):
        build_report(out / k)
    result = _analyse_weighted(out, mix, design=exp.design, targets=(exp.a.target, exp.b.target),
                               urls=(urls["a"], urls["b"]), wall_s=round(wall, 2))
    if order is not None:
        counts = order.counts()
        result.notes.append(f"order randomised per pair (seed {exp.seed}): A opened first in {counts['a']}, "
                            f"B in {counts['b']} of {len(order.first)} pairs")
    write_result(result, out)
    return result


def _analyse_weighted(out: Path, mix: DemographicMix | None, **kw: Any) -> ABResult:
    """``analyse`` with the weights; when the sessions that ran cannot reach the mix (pairs left
    out after the check before the run), the unweighted result is written and the error raised."""
    try:
        return analyse(out / "a", out / "b", weights=mix, **kw)
    except WeightsError as exc:
        result = analyse(out / "a", out / "b", **kw)
        result.notes.append(f"not weighted: {exc}")
        write_result(result, out)
        raise WeightsError(f"{exc} (the unweighted result is in {out / 'ab.json'})") from exc


def write_result(result: ABResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".ab.json.tmp"
    tmp.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, out / "ab.json")
    write_ab_html(result, out / "ab.html")
    log.info("experiment written to %s", out)


def compare_runs(a_dir: Path, b_dir: Path, out: Path, design: Design = "paired",
                 labels: Sequence[str] = ("a", "b"), weights: Path | None = None) -> ABResult:
    """Analyse two existing run directories as an experiment (no shoppers are run); ``weights``:
    a demographic mix file to weight the metrics to (see ``weights.py``)."""
    mix = DemographicMix.from_file(weights) if weights is not None else None
    result = analyse(a_dir, b_dir, design=design, targets=(labels[0], labels[1]), weights=mix)
    write_result(result, out)
    return result
