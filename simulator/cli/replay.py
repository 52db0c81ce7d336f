"""``shop-r1 replay``: step through recorded sessions, re-execute them live, or compare a policy."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from shop_r1.simulator.agent.policies.factory import PolicyConfigError, PolicySpec, open_policy
from shop_r1.simulator.records.replay import ReplayError, open_trace
from shop_r1.simulator.analysis.compare import ComparedStep, compare_policy, render_compared, render_summary
from shop_r1.envs.hops import origin_of
from shop_r1.simulator.records.replay.execute import StepVerdict, execute_trace, step_line
from shop_r1.simulator.records.replay.view import (
    ReplayViewer,
    pick_session,
    print_sessions,
    session_json,
    sessions_table,
    step_json,
    terminal_keys,
)

log = logging.getLogger(__name__)


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path(exists=True, path_type=Path))
@click.option("--session", "session_id", default=None, help="Session id to replay (default: list them / all).")
@click.option("--from", "from_step", default=0, show_default=True, type=click.IntRange(min=0),
              help="Start at this step number.")
@click.option("--full", is_flag=True, help="Show whole pages (default: the region around the target).")
@click.option("--interactive/--no-interactive", default=None,
              help="Step with keys (default when stdin and stdout are terminals) or print every step.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line (steps, verdicts or scores), for pipes and tools.")
@click.option("--list", "list_only", is_flag=True, help="Only list the sessions of the trace.")
@click.option("--lenient", is_flag=True, help="Skip broken lines in the middle of the trace (listed) instead of failing.")
@click.option("--execute", is_flag=True, help="Re-execute the recorded actions live in Chromium and report divergence.")
@click.option("--shop", "shop_url", default=None, metavar="URL",
              help="With --execute: replay against this origin instead of the recorded one (e.g. a staging build).")
@click.option("--resync", is_flag=True, help="With --execute: reopen the recorded URL when the live page is elsewhere.")
@click.option("--fail-on-divergence", is_flag=True, help="With --execute: exit with status 1 when any step diverged.")
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(min=1),
              help="With --execute: sessions replayed at once.")
@click.option("--allow-purchase", is_flag=True, help="With --execute: let recorded order-placing clicks through.")
@click.option("--browser-path", default=None, help="Chromium executable (else $SHOP_R1_CHROMIUM, Playwright's, /usr/bin/chromium).")
@click.option("--policy", type=click.Choice(["scripted", "transformers", "vllm", "openai"]), default=None,
              help="Compare this policy against the recorded steps (the paper's evaluation setting).")
@click.option("--model", default=None, help="Model folder or 'default' (transformers/vllm), or a served model name.")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint (openai; vllm: an already running server).")
@click.option("--seed", default=0, show_default=True, help="Policy seed.")
@click.option("--temperature", type=float, default=None, help="Sampling temperature for model policies.")
@click.option("--constrained/--no-constrained", default=True, show_default=True,
              help="Schema-constrained decoding for model policies.")
def replay(trace_path: Path, session_id: str | None, from_step: int, full: bool, interactive: bool | None,
           fmt: str, list_only: bool, lenient: bool, execute: bool, shop_url: str | None, resync: bool,
           fail_on_divergence: bool, concurrency: int, allow_purchase: bool, browser_path: str | None,
           policy: str | None, model: str | None, base_url: str | None, seed: int, temperature: float | None,
           constrained: bool) -> None:
    """Step through the recorded sessions of TRACE (a run directory or a trace.jsonl).

    Keys in the interactive view: n/→ next, p/← previous, j jump to step, s next session,
    f full page, q quit. --execute replays the actions live and compares every page;
    --policy asks a policy at every recorded step and scores it with the Shop-R1 rewards.
    """
    console = Console()
    if execute and policy:
        raise click.UsageError("--execute and --policy are separate modes; give one of them")
    if (shop_url or resync or fail_on_divergence) and not execute:
        raise click.UsageError("--shop, --resync and --fail-on-divergence only apply with --execute")
    try:
        trace = open_trace(trace_path, strict=not lenient)
        sessions = [trace.session(session_id)] if session_id else list(trace.sessions)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in trace.problems:
        click.echo(f"skipped: {problem}", err=True)
    if not trace.sessions and not list_only:
        raise click.ClickException(f"{trace.path}: the trace holds no sessions")

    if list_only:
        if fmt == "json":
            for s in sessions:
                _emit(session_json(s))
        else:
            console.print(sessions_table(trace))
        return
    if execute:
        sys.exit(_execute(trace, sessions, console, fmt=fmt, shop_url=shop_url, resync=resync,
                          fail_on_divergence=fail_on_divergence, concurrency=concurrency,
                          allow_purchase=allow_purchase, browser_path=browser_path))
    if policy:
        _compare(sessions, console, fmt=fmt, from_step=from_step, policy=policy, model=model, base_url=base_url,
                 seed=seed, temperature=temperature, constrained=constrained)
        return
    _view(trace, sessions, console, session_given=session_id is not None, from_step=from_step, full=full,
          interactive=interactive, fmt=fmt)


def _view(trace: Any, sessions: list[Any], console: Console, *, session_given: bool, from_step: int, full: bool,
          interactive: bool | None, fmt: str) -> None:
    if fmt == "json":
        for s in sessions:
            if not session_given:
                _emit(session_json(s))
            for step in s.steps:
                if step.step >= from_step:
                    _emit(step_json(s, step))
        return
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        if not session_given:
            console.print(sessions_table(trace))
        print_sessions(trace, sessions, console, from_step=from_step, full=full)
        return
    index = 0
    if not session_given:
        def ask(prompt: str) -> str:
            console.print(prompt, end="")
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line

        picked = pick_session(trace, console, ask)
        if picked is None:
            return
        index = picked
    viewer = ReplayViewer(trace, console, sessions=sessions if session_given else trace.sessions,
                          session_index=0 if session_given else index, from_step=from_step, full=full)
    viewer.run(terminal_keys(sys.stdin, console))


def _execute(trace: Any, sessions: list[Any], console: Console, *, fmt: str, shop_url: str | None, resync: bool,
             fail_on_divergence: bool, concurrency: int, allow_purchase: bool, browser_path: str | None) -> int:
    if shop_url:
        try:
            origin_of(shop_url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shop") from exc

    def on_step(v: StepVerdict) -> None:
        if fmt == "json":
            _emit(v.to_json())
        else:
            console.print(step_line(v))

    if fmt == "text":
        target = shop_url or trace.recorded_origin or "the recorded shop"
        console.print(f"re-executing {len(sessions)} sessions against {target}")
    try:
        report = asyncio.run(execute_trace(trace, sessions, shop_url=shop_url, concurrency=concurrency,
                                           allow_purchase=allow_purchase, resync=resync,
                                           browser_path=browser_path, on_step=on_step))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except Exception as exc:  # browser could not start, etc.: one clear line
        log.debug("live re-execution failed", exc_info=True)
        raise click.ClickException(f"live re-execution failed: {type(exc).__name__}: {exc}") from exc
    if fmt == "json":
        for s in report.sessions:
            _emit(s.to_json())
        _emit(report.to_json())
    else:
        report.render(console)
    return 1 if (fail_on_divergence and report.diverged) else 0


def _compare(sessions: list[Any], console: Console, *, fmt: str, from_step: int, policy: str, model: str | None,
             base_url: str | None, seed: int, temperature: float | None, constrained: bool) -> None:
    try:
        spec = PolicySpec(name=policy, model=model, base_url=base_url, seed=seed, constrained=constrained,
                          temperature=temperature)
    except PolicyConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    def on_step(c: ComparedStep) -> None:
        if fmt == "json":
            _emit(c.to_json())
        else:
            console.print(render_compared(c))

    async def main() -> Any:
        async with open_policy(spec) as pol:
            return await compare_policy(pol, sessions, from_step=from_step, on_step=on_step)

    try:
        report = asyncio.run(main())
    except (PolicyConfigError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    if fmt == "json":
        _emit(report.to_json())
    else:
        render_summary(report, console)
