"""``shop-r1 simulate``, ``shop-r1 demo`` and ``shop-r1 report``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from shop_r1.personas.model import Persona
from shop_r1.simulator.cli.options import POLICY_OPTIONS, RUN_OPTIONS, apply, config_option
from shop_r1.simulator.agent.policies.factory import PolicySpec
from shop_r1.simulator.agent.policies.mixed import session_index
from shop_r1.simulator.loop.preflight import PreflightError, check_start_url
from shop_r1.simulator.analysis.realism import realism, record_realism
from shop_r1.personas.shoppers import shoppers_for_run
from shop_r1.personas.tasks import TaskFileError, load_tasks, start_url_of, task_shoppers, write_task_run
from shop_r1.simulator.records.trace import FAILED_OUTCOMES, ORDER_PLACED, read_trace

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _shop(shop_url: str | None, shop_seed: int, console: Console) -> Iterator[str]:
    """The given shop URL, or the bundled shop served on 127.0.0.1 for the run's duration."""
    if shop_url:
        yield shop_url
        return
    from shop_r1.envs.shop.server import run_in_thread

    with run_in_thread(seed=shop_seed, port=0) as shop:
        console.print(f"[dim]bundled shop (seed {shop_seed}) at[/] {shop.url}")
        yield shop.url


def _shoppers(personas_file: Path | None, mix: Path | None, n: int, seed: int, shop_url: str, *,
              intents: str = "shop", refresh_catalogue: bool = False) -> list[Persona]:
    """The run's personas (``shop_r1.personas.shoppers``), a bad personas file as a usage error."""
    try:
        return shoppers_for_run(personas_file, mix, n, seed, shop_url, intents=intents,
                                refresh_catalogue=refresh_catalogue)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _default_out(run_root: Path = Path("runs")) -> Path:
    import time

    return run_root / time.strftime("%Y%m%d-%H%M%S")


def run_and_report(*, shop: str | None, shop_seed: int, shoppers: int, concurrency: int, policy: str,
                   model: str | None, base_url: str | None, personas_file: Path | None, mix: Path | None,
                   max_steps: int, seed: int, out: Path | None, allow_purchase: bool,
                   allow_origin: tuple[str, ...], headed: bool, browser_path: str | None, constrained: bool,
                   temperature: float | None, step_timeout: float, session_timeout: float,
                   screenshots: bool, console: Console, page_budget: int = 8000,
                   prompt_budget: int | None = None, ray: str | None = None, host_capacity: int | None = None,
                   retry_lost: bool = False, max_failed: int = 0, redact: bool = True, intents: str = "shop",
                   refresh_catalogue: bool = False, tasks_file: Path | None = None,
                   policy_parts: tuple[Any, ...] = ()) -> int:
    from shop_r1.simulator.loop.live import LiveView
    from shop_r1.simulator.agent.policies.factory import PolicyConfigError, PolicySpec, open_policy
    from shop_r1.simulator.analysis.report import build_report
    from shop_r1.simulator.loop.runner import RunConfig, Runner
    from shop_r1.simulator.analysis.outcomes import task_outcomes  # needs the report, imported with it

    out_dir = out or _default_out()
    if (out_dir / "trace.jsonl").exists():
        raise click.ClickException(f"{out_dir} already holds a trace; choose another --out")
    try:
        tasks = load_tasks(tasks_file) if tasks_file is not None else None
    except TaskFileError as exc:
        raise click.ClickException(str(exc)) from exc
    shoppers = shoppers or (len(tasks) if tasks else 4)
    with _shop(shop, shop_seed, console) as shop_url:
        if tasks:
            try:
                shop_url = start_url_of(tasks, shop_url)
            except TaskFileError as exc:
                raise click.ClickException(str(exc)) from exc
        try:
            check_start_url(shop_url)
        except PreflightError as exc:
            raise click.ClickException(str(exc)) from exc
        try:
            # A local model's prompt is sized to a third of the step timeout on this machine (a
            # batch must fit well within it); --prompt-budget fixes it instead.
            spec = PolicySpec(name=policy, model=model, base_url=base_url, seed=seed, allow_purchase=allow_purchase,
                              constrained=constrained, temperature=temperature, max_concurrency=concurrency,
                              prompt_budget=prompt_budget, parts=policy_parts, step_seconds=step_timeout / 3)
            config = RunConfig(shop_url=shop_url, shoppers=shoppers, concurrency=concurrency, max_steps=max_steps,
                               seed=seed, out_dir=out_dir, policy=policy, model=model, allow_purchase=allow_purchase,
                               extra_origins=list(allow_origin), headless=not headed, browser_path=browser_path,
                               step_timeout_s=step_timeout, session_timeout_s=session_timeout,
                               screenshots=screenshots, page_token_budget=page_budget, redact=redact)
        except (PolicyConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        if tasks:  # each task a shopper (cycled over --shoppers); personas drawn as usual, intents the tasks'
            drawn: list[Persona] = _shoppers(personas_file, mix, shoppers, seed, shop_url, intents="library")
            personas, task_run = task_shoppers(tasks, drawn)
            write_task_run(task_run, out_dir)
        else:
            personas = _shoppers(personas_file, mix, shoppers, seed, shop_url, intents=intents,
                                      refresh_catalogue=refresh_catalogue)

        async def main() -> Any:
            # Ctrl-C and SIGTERM stop the run the same way: sessions get their end marker, the
            # trace and run.json are finished, the report is written. A second signal while
            # that happens only says so (no traceback, nothing half-written).
            loop, task = asyncio.get_running_loop(), asyncio.current_task()
            stopping: list[str] = []

            def stop(name: str) -> None:
                if stopping:
                    console.print(f"[yellow]{name}: already stopping — finishing the trace and report[/]")
                    return
                stopping.append(name)
                console.print(f"[yellow]{name}: stopping; sessions in progress end as interrupted[/]")
                assert task is not None
                task.cancel()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop, sig.name)
            try:
                return await _run(config, spec, personas)
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

        async def _run(config: Any, spec: Any, personas: list[Persona]) -> Any:
            if ray:
                from shop_r1.simulator.loop.cluster import run_on_ray  # imports ray (the `cluster` extra)

                with LiveView(console) as view:
                    return await run_on_ray(config, spec, personas, address=ray, observer=view,
                                            host_capacity_override=host_capacity, retry_lost=retry_lost)
            async with open_policy(spec) as pol:
                with LiveView(console) as view:
                    return await Runner(config, pol, personas, observer=view).run()

        interrupted = False
        try:
            result = asyncio.run(main())
            interrupted = result.interrupted
        except (KeyboardInterrupt, asyncio.CancelledError):  # stopped before the runner began
            interrupted = True
            result = None
        except Exception as exc:  # a setup failure (browser, model): one clear line
            log.debug("run failed", exc_info=True)
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    if (out_dir / "trace.jsonl").exists():
        if (out_dir / "run.json").exists():
            record_realism(out_dir)
        build_report(out_dir, console=console)
        if tasks:
            for o in task_outcomes(out_dir):
                console.print(Text.assemble("task ", (o.task_id, "bold"), f" ({o.intent}): {o.verdict}"
                                            + (f" — {o.condition}" if o.condition else "")))
        console.print(f"trace: {out_dir / 'trace.jsonl'}   report: {out_dir / 'report.html'}")
    if interrupted:
        console.print("[yellow]interrupted: everything recorded so far is kept[/]")
        return 130
    orders = (result.outcomes if result is not None else {}).get(ORDER_PLACED, 0)
    if orders:
        console.print(Text(f"{orders} session(s) placed an order although purchases were not allowed "
                           f"(outcome {ORDER_PLACED}; the report lists each): the run fails", style="bold red"))
        return 4
    failed = {k: v for k, v in (result.outcomes if result is not None else {}).items() if k in FAILED_OUTCOMES}
    if sum(failed.values()) > max_failed:
        console.print(f"[red]{sum(failed.values())} of {len(result.sessions)} sessions failed for reasons other than "
                      f"the shopper's choice ({', '.join(f'{k} {v}' for k, v in sorted(failed.items()))}); "
                      f"--max-failed is {max_failed}[/]")
        return 3
    return 0


def _common_options(fn: Any) -> Any:
    """simulate's options; the knobs it shares with ``ab`` come from :mod:`shop_r1.simulator.cli.options`
    (RunConfig's fields, the policy's options), declared there once."""
    P, R = POLICY_OPTIONS, RUN_OPTIONS
    return apply(fn, [
        click.option("--shop", "shop", metavar="URL", default=None, help="Storefront start URL (default: the bundled shop on 127.0.0.1)."),
        P["shop_seed"],
        click.option("--shoppers", "-n", type=int, default=None,
                     help="Number of simulated shoppers (default 4; with --tasks, one per task)."),
        R["concurrency"],
        P["policy"], P["model"], P["base_url"], P["personas"], P["mix"],
        click.option("--intents", type=click.Choice(["shop", "library"]), default="shop", show_default=True,
                     help="shop: drawn from the shop's own catalogue (a bounded crawl, cached per origin); "
                          "library: real human intents ranked by overlap with the shop's home page."),
        click.option("--refresh-catalogue", is_flag=True, help="Crawl the shop again instead of using its cached catalogue."),
        click.option("--tasks", "tasks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="A UX team's scenarios (JSON/YAML list: intent, optional start_url, optional success); "
                          "each becomes a shopper and the report says per task whether it succeeded."),
        R["max_steps"], R["seed"],
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Run directory (default: runs/<time>)."),
        R["allow_purchase"],
        click.option("--allow-origin", multiple=True, help="Extra origin shoppers may load from (repeatable)."),
        click.option("--headed", is_flag=True, help="Show the browser windows."),
        R["browser_path"],
        click.option("--constrained/--no-constrained", default=True, show_default=True,
                     help="Schema-constrained decoding: names restricted to the page's (transformers, vllm)."),
        P["temperature"], R["step_timeout"], R["session_timeout"],
        config_option("--screenshots", field="screenshots"),
        config_option("--page-budget", field="page_token_budget"),
        config_option("--redact/--no-redact", field="redact"),
        click.option("--max-failed", default=0, show_default=True,
                     help="Sessions that may fail (browser/shop/policy errors, timeouts, lost hosts) before the run exits non-zero."),
        R["ray"], R["host_capacity"],
        click.option("--retry-lost", is_flag=True, help="With --ray: retry a session once elsewhere when its host dies."),
        click.option("--prompt-budget", type=int, default=None,
                     help="Prompt tokens for model policies (current page first, then recent history); default: for "
                          "transformers, sized to the model's speed measured here so a batch of decisions takes a third "
                          "of --step-timeout; the backend's for the others."),
    ])


@click.command()
@_common_options
def simulate(**kwargs: Any) -> None:
    """Run N simulated shoppers, C at a time, against a storefront; write DIR/trace.jsonl,
    DIR/run.json and DIR/report.html, and print the summary. Ctrl-C stops cleanly and keeps
    everything recorded."""
    console = Console()
    sys.exit(run_and_report(console=console, **kwargs))


DEMO_POLICIES = ("mixed", "transformers", "scripted")


def demo_specs(policy: str, seed: int, prompt_budget: int, page_budget: int = 900) -> tuple[Any, ...]:
    """The demo's policy parts, in routing order (shopper i uses part i % n).

    The embedded model reads short pages and writes short rationales (32 tokens) so that a step
    costs seconds on a CPU; scripted shoppers next to it read whole pages (they cost nothing to
    read) and show on the same shop what a full session looks like.
    """
    model = PolicySpec(name="transformers", model="default", seed=seed, constrained=True, prompt_budget=prompt_budget,
                       page_budget=page_budget, extra={"grammar_bounds": {"rationale_max_tokens": 32}})
    scripted = PolicySpec(name="scripted", seed=seed)
    return {"mixed": (model, scripted), "transformers": (model,), "scripted": (scripted,)}[policy]


def _demo_summary(out_dir: Path, parts: tuple[Any, ...], console: Console) -> None:
    """Per policy part: sessions, steps, and how far its shoppers got (pages classified by content)."""
    trace = read_trace(out_dir)
    for k, part in enumerate(parts):
        steps = [s for s in trace.steps if (session_index(s.session_id) or 0) % len(parts) == k]
        if not steps:
            continue
        block = realism(steps)
        executable = sum(1 for s in steps if s.action is not None and s.exec_error is None)
        console.print(f"  {part.describe_line()}\n    {block.sessions} shoppers, {len(steps)} steps, "
                      f"{executable / len(steps):.0%} executable; reached a product page: "
                      f"{block.funnel.get('product', 0.0):.0%}, added to cart: {block.funnel.get('added_to_cart', 0.0):.0%}")


@click.command()
@click.option("--shoppers", "-n", default=4, show_default=True)
@click.option("--max-steps", default=5, show_default=True)
@click.option("--policy", type=click.Choice(list(DEMO_POLICIES)), default="mixed", show_default=True,
              help="mixed = even-numbered shoppers use the embedded model (SmolLM2-135M-Instruct, constrained "
                   "decoding), odd-numbered ones the scripted shopper; transformers / scripted = all shoppers one way.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--seed", default=0, show_default=True)
@click.option("--page-budget", default=900, show_default=True,
              help="Tokens per reduced page for the model's shoppers: small, so the 135M model's prefill on a "
                   "CPU takes seconds (scripted shoppers read whole pages).")
@click.option("--prompt-budget", default=1300, show_default=True, help="Prompt tokens (current page first, then history).")
def demo(shoppers: int, max_steps: int, policy: str, out: Path | None, seed: int, page_budget: int,
         prompt_budget: int) -> None:
    """Simulated shoppers on the bundled shop -- the embedded model next to scripted shoppers by
    default -- then the report and a line per policy on how far its shoppers got."""
    console = Console()
    console.rule("[bold]shop-r1 demo")
    parts = demo_specs(policy, seed, prompt_budget, page_budget)
    console.print(f"{shoppers} shoppers, {max_steps} steps each, on the bundled shop. Policies:")
    for k, part in enumerate(parts):
        who = [i for i in range(shoppers) if i % len(parts) == k]
        console.print(f"  shoppers {', '.join(map(str, who)) or '(none)'}: [bold]{part.describe_line()}[/]")
    top = PolicySpec(name="mixed", seed=seed, parts=parts) if len(parts) > 1 else parts[0]
    out_dir = out or _default_out(Path("runs") / "demo")
    code = run_and_report(
        shop=None, shop_seed=0, shoppers=shoppers, concurrency=shoppers, policy=top.name, model="default",
        base_url=None, personas_file=None, mix=None, max_steps=max_steps, seed=seed,
        out=out_dir, allow_purchase=False, allow_origin=(), headed=False,
        browser_path=None, constrained=True, temperature=None, step_timeout=600.0, session_timeout=3600.0,
        screenshots=False, console=console, prompt_budget=prompt_budget,
        policy_parts=top.parts)
    if (out_dir / "trace.jsonl").exists():
        console.print("How far each policy's shoppers got:")
        _demo_summary(out_dir, parts, console)
    sys.exit(code)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--segment-by", multiple=True, help="Persona field to segment rates by (repeatable).")
def report(run_dir: Path, segment_by: tuple[str, ...]) -> None:
    """Rebuild DIR/report.html and print the summary of a run directory."""
    from shop_r1.simulator.analysis.report import ReportError, build_report
    from shop_r1.simulator.records.trace import TraceFormatError

    try:
        build_report(run_dir, console=Console(), segment_by=list(segment_by) or None)
    except (TraceFormatError, FileNotFoundError, ReportError) as exc:
        raise click.ClickException(str(exc)) from exc
    Console().print(f"report: {run_dir / 'report.html'}")
