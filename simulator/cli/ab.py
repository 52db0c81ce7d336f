"""``shop-r1 ab``: the same shoppers on two builds of a storefront, the difference with its uncertainty."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shop_r1.personas.sampler import DemographicMix
from shop_r1.simulator.analysis.ab.analysis import MEAN_METRICS, RATE_METRICS, ABResult
from shop_r1.simulator.analysis.ab.design import Arm
from shop_r1.simulator.analysis.ab.experiment import Experiment, load_tasks, run_experiment
from shop_r1.simulator.analysis.ab.gate import Condition, GateError, failed
from shop_r1.simulator.loop.cluster import ClusterError
from shop_r1.simulator.cli.options import POLICY_OPTIONS, RUN_OPTIONS
from shop_r1.simulator.agent.policies.factory import PolicyConfigError, PolicySpec
from shop_r1.simulator.records.trace import ORDER_PLACED

log = logging.getLogger(__name__)


def _conditions(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Condition]:
    try:
        return [Condition.parse(v) for v in values]
    except GateError as exc:
        raise click.BadParameter(str(exc)) from exc


def print_result(result: ABResult, console: Console) -> None:
    weighted = "" if result.weights is None else f", weighted: n_eff {result.weights.effective_n:.1f}"
    table = Table(title=f"A/B ({result.design}, n = {result.shoppers}{weighted}): B − A", title_justify="left",
                  show_edge=False)
    for col in ("metric", "A", "B", "diff", "95% CI", "p", "MDE"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in (*RATE_METRICS, *MEAN_METRICS):
        m = result.metrics[name]
        pct = m.kind == "rate"
        f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.2f}")
        d = (lambda v: f"{100 * v:+.1f}pp") if pct else (lambda v: f"{v:+.2f}")
        table.add_row(name, f(m.a), f(m.b), d(m.diff), f"[{d(m.ci95[0])}, {d(m.ci95[1])}]", f"{m.p_value:.3g}",
                      "–" if m.mde is None else d(m.mde).lstrip("+"))
    console.print(table)


@click.command("ab")
@click.option("--a", "a_target", required=True, metavar="URL|bundled:VARIANT", help="Build A (the baseline).")
@click.option("--b", "b_target", required=True, metavar="URL|bundled:VARIANT", help="Build B (the candidate).")
@click.option("--shoppers", "-n", default=40, show_default=True, help="Pairs (paired) or shoppers per arm (between).")
@click.option("--design", type=click.Choice(["paired", "between"]), default="paired", show_default=True)
@POLICY_OPTIONS["policy"]
@POLICY_OPTIONS["model"]
@POLICY_OPTIONS["base_url"]
@POLICY_OPTIONS["temperature"]
@POLICY_OPTIONS["personas"]
@POLICY_OPTIONS["mix"]
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="MIX.json",
              help="Weight pairs (sessions) to this demographic mix's cohort shares (same format as --mix); "
                   "metrics and --fail-if then use the weighted estimates.")
@click.option("--tasks", "tasks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Intents (one per line, or a JSON list): every shopper gets one, cycled.")
@RUN_OPTIONS["seed"]
@POLICY_OPTIONS["shop_seed"]
@RUN_OPTIONS["max_steps"]
@RUN_OPTIONS["concurrency_per_arm"]
@RUN_OPTIONS["step_timeout"]
@RUN_OPTIONS["session_timeout"]
@RUN_OPTIONS["allow_purchase"]
@RUN_OPTIONS["browser_path"]
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Experiment directory (default: runs/ab-<time>).")
@RUN_OPTIONS["ray"]
@RUN_OPTIONS["host_capacity"]
@click.option("--fail-if", "fail_if", multiple=True, callback=_conditions, metavar="EXPR",
              help="Exit 1 when this holds, e.g. 'added_to_cart.diff < -0.05' or 'purchased.ci95.hi < 0' (repeatable).")
def ab(a_target: str, b_target: str, shoppers: int, design: str, policy: str, model: str | None,
       base_url: str | None, temperature: float | None, personas_file: Path | None, mix: Path | None,
       weights: Path | None, tasks_file: Path | None, seed: int, shop_seed: int, max_steps: int, concurrency: int,
       step_timeout: float, session_timeout: float, allow_purchase: bool, browser_path: str | None, out: Path | None,
       ray: str | None, host_capacity: int | None, fail_if: list[Condition]) -> None:
    """Run the same shoppers on build A and build B; write DIR/a/, DIR/b/ (ordinary runs),
    DIR/ab.json and DIR/ab.html, and print the differences with 95 % intervals."""
    console = Console()
    if personas_file is not None and mix is not None:
        raise click.UsageError("--personas and --mix are alternatives; give one")
    out = out or Path("runs") / time.strftime("ab-%Y%m%d-%H%M%S")
    try:
        if weights is not None:
            DemographicMix.from_file(weights)  # a broken mix file is a usage error before anything runs
        exp = Experiment(
            a=Arm(label="a", target=a_target), b=Arm(label="b", target=b_target), out_dir=out, shoppers=shoppers,
            design=design, seed=seed, shop_seed=shop_seed, personas_file=personas_file, mix=mix,
            weights=weights,
            tasks=load_tasks(tasks_file) if tasks_file else [], ray=ray, host_capacity=host_capacity,
            run={"max_steps": max_steps, "concurrency": concurrency, "step_timeout_s": step_timeout,
                 "session_timeout_s": session_timeout, "allow_purchase": allow_purchase,
                 "browser_path": browser_path})
        spec = PolicySpec(name=policy, model=model, base_url=base_url, seed=seed, allow_purchase=allow_purchase,
                          temperature=temperature, max_concurrency=2 * concurrency)
    except (ValidationError, PolicyConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    console.print(f"A: {exp.a.target}   B: {exp.b.target}   {design}, {shoppers} "
                  f"{'pairs' if design == 'paired' else 'per arm'}, policy {policy}")
    try:
        result = run_experiment(exp, spec)
    except (FileExistsError, ValueError, OSError, ClusterError, PolicyConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    print_result(result, console)
    orders = {arm.target: arm.outcomes.get(ORDER_PLACED, 0) for arm in (result.a, result.b)}
    if any(orders.values()):
        console.print(Text("orders placed although purchases were not allowed: "
                           + ", ".join(f"{target}: {n}" for target, n in orders.items() if n)
                           + f" (outcome {ORDER_PLACED}; each arm's report lists them): the experiment fails",
                           style="bold red"))
        sys.exit(4)
    console.print(f"results: {out / 'ab.json'}   report: {out / 'ab.html'}   runs: {out / 'a'}, {out / 'b'}")
    try:
        lines = failed(fail_if, result.metrics)
    except GateError as exc:
        raise click.UsageError(str(exc)) from exc
    if lines:
        for line in lines:
            click.echo(line, err=True)
        sys.exit(1)
