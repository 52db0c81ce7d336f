"""``shop-r1 data`` (build datasets, synthesise rationales) and ``shop-r1 evaluate``.

Heavy imports (datasets, torch, transformers) happen inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click

log = logging.getLogger(__name__)


def _quiet_datasets() -> None:
    """No per-file progress bars from ``datasets``: our own output says what happened."""
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:  # pragma: no cover - datasets is a dependency of these commands
        pass


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


# --------------------------------------------------------------------------------------------
# shop-r1 data
# --------------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Build SFT/RL datasets from traces; synthesise missing rationales."""


@data.command("build")
@click.argument("traces", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder: writes {sft,rl}/{train,validation,test}.parquet and manifest.json.")
@click.option("--by", type=click.Choice(["session", "persona"]), default="session", show_default=True,
              help="Group that never straddles two splits.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--val", type=float, default=0.1, show_default=True, help="Fraction of groups for validation.")
@click.option("--test", type=float, default=0.2, show_default=True, help="Fraction of groups for test.")
@click.option("--token-budget", type=int, default=None, help="RL prompt budget in tokens [default: 6000].")
@click.option("--sft-max-tokens", type=int, default=None,
              help="Cap on one SFT row, prompt + answer, in tokens (longer rows are dropped and counted). SFT "
                   "prompts are the RL prompts, built under --token-budget. [default: no cap]")
@click.option("--missing-rationale", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="Steps with an action but no rationale: stop with a list (error) or leave them out of SFT.")
@click.option("--no-persona", is_flag=True, help="Leave personas out of the prompts (the paper's plain setting).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def build(traces: tuple[Path, ...], out_dir: Path, by: str, seed: int, val: float, test: float,
          token_budget: int | None, sft_max_tokens: int | None, missing_rationale: str, no_persona: bool,
          as_json: bool) -> None:
    """Turn traces (run folders or trace.jsonl files) into split datasets."""
    from shop_r1.simulator.records.trace import TraceFormatError
    from shop_r1.training.data import RL_TOKEN_BUDGET, SFT_MAX_TOKENS, DatasetBuildError, build_dataset_dir
    from shop_r1.training.splits import SplitError

    _quiet_datasets()
    try:
        result = build_dataset_dir(
            list(traces), out_dir, by=by, seed=seed, val=val, test=test,  # type: ignore[arg-type]
            token_budget=token_budget or RL_TOKEN_BUDGET, sft_max_tokens=sft_max_tokens or SFT_MAX_TOKENS,
            missing_rationale=missing_rationale, with_persona=not no_persona,  # type: ignore[arg-type]
        )
    except (DatasetBuildError, SplitError, TraceFormatError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    m = result.manifest
    if as_json:
        click.echo(json.dumps(m, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    console = _console()
    table = Table(title=f"Dataset {out_dir} (split by {by}, seed {seed})")
    table.add_column("kind")
    for name in ("train", "validation", "test"):
        table.add_column(name, justify="right")
    table.add_column("skipped steps")
    for kind in ("sft", "rl"):
        skipped = ", ".join(f"{k} {v}" for k, v in m[kind]["skipped"].items()) or "-"
        table.add_row(kind, *(str(m["counts"][kind][s]) for s in ("train", "validation", "test")), skipped)
    console.print(table)
    error_pages = m["rl"]["skipped"].get("error_page", 0)
    if error_pages:
        console.print(f"{error_pages} step(s) on error pages (HTTP 5xx, network errors, the browser's error page) "
                      "left out of both datasets: an outage is not shopper behaviour.", markup=False)
    if m["problems"]:
        console.print(f"[yellow]{len(m['problems'])} bad trace row(s) skipped:[/yellow]")
        for p in m["problems"][:20]:
            console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
        if len(m["problems"]) > 20:
            console.print(f"  ... and {len(m['problems']) - 20} more (see {out_dir}/manifest.json)")


@data.command("rationales")
@click.argument("trace", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New run folder for the trace with rationales (must not hold a trace yet).")
@click.option("--teacher", type=click.Choice(["openai", "transformers", "template"]), required=True,
              help="Who writes them: an OpenAI-compatible endpoint, a local model folder, or templates.")
@click.option("--base-url", default=None, help="OpenAI-compatible API root incl. /v1 [env OPENAI_BASE_URL].")
@click.option("--model", default=None, help="Served model name (openai) or model folder / 'default' (transformers).")
@click.option("--rate", type=float, default=None, help="At most R requests per second (rate limiter).")
@click.option("--burst", type=float, default=1.0, show_default=True, help="Requests allowed at once above the rate.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Calls in flight at once.")
@click.option("--max-retries", type=int, default=3, show_default=True, help="Retries per call (429/5xx/connection).")
@click.option("--overwrite", is_flag=True, help="Replace rationales the trace already has.")
@click.option("--cache", "cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Answer cache folder [default: the shop-r1 cache dir /rationales].")
@click.option("--seed", type=int, default=0, show_default=True, help="Template teacher's variation seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rationales(trace: Path, out_dir: Path, teacher: str, base_url: str | None, model: str | None,
               rate: float | None, burst: float, concurrency: int, max_retries: int, overwrite: bool,
               cache: Path | None, seed: int, as_json: bool) -> None:
    """Write a first-person rationale for every recorded action in TRACE that lacks one.

    Answers are cached under a hash of (prompt, model): rerunning after an interruption or a
    failure asks only for what is still missing. Exits with status 1 if any step failed (they
    keep an empty rationale and are listed).
    """
    # lazy: teachers pull in the openai SDK (seconds to import); `--help` and other commands stay fast
    from shop_r1.training.rationales import make_teacher, synthesize

    try:
        t = make_teacher(teacher, base_url=base_url, model=model, concurrency=concurrency,
                         max_retries=max_retries, seed=seed)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = _console(stderr=True)
    with Progress(TextColumn("rationales"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("rationales", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = asyncio.run(synthesize(trace, out_dir, t, overwrite=overwrite, rate=rate, burst=burst,
                                            concurrency=concurrency, cache=cache, progress=progress))
        except (FileExistsError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        from rich.text import Text

        out = _console()
        out.print(f"{report.needed} step(s) needed a rationale ({report.kept} kept, {report.without_action} "
                  f"without an action): {report.cached} from cache, {report.calls} teacher call(s), "
                  f"{len(report.failures)} failed; wrote {report.written} to {out_dir} in {report.wall_s:.1f} s")
        for p in report.problems:
            out.print(Text.assemble(("bad trace row skipped:", "yellow"), f" {p}"), highlight=False)
        for f in report.failures[:20]:
            out.print(Text.assemble(("failed:", "red"), f" {f}"), highlight=False)
        if len(report.failures) > 20:
            out.print(f"... and {len(report.failures) - 20} more failures")
    if report.failures:
        click.echo(f"{len(report.failures)} step(s) got no rationale; rerun the same command to retry only those",
                   err=True)
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# shop-r1 evaluate
# --------------------------------------------------------------------------------------------


def _load_rows(data_path: Path, split: str):
    from shop_r1.training.data import load_split

    return load_split(data_path, "rl", split)  # type: ignore[arg-type]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", default=None,
              help="Model folder, 'default' (embedded SmolLM2-135M-Instruct), 'tiny', or a served model name.")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Dataset folder (from `shop-r1 data build`) or an RL .parquet file.")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default="test", show_default=True)
@click.option("--policy", type=click.Choice(["transformers", "vllm", "openai", "scripted"]), default=None,
              help="Backend [default: transformers with --model, else required].")
@click.option("--base-url", default=None, help="Endpoint for vllm/openai (vllm without it starts a server).")
@click.option("--constrained", is_flag=True,
              help="Schema-constrained decoding. Off by default: the paper scores free generation, and "
                   "constraining names to the page would hide format and name errors the metrics measure.")
@click.option("--lenient", is_flag=True,
              help="Count fenced or embedded JSON answers as predictions (strict by default: exactly one JSON "
                   "object). The rewards' format rule: the same switch as `train grpo --lenient` and `reward --lenient`.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy (reproducible).")
@click.option("--top-p", type=float, default=1.0, show_default=True,
              help="Nucleus sampling when --temperature > 0 (transformers). 1 = the full distribution, as GRPO's "
                   "rollouts sample, so a sampled evaluation scores what training rewarded.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True, help="Answer length cap (transformers).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Rows sent to the policy at once.")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N rows.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--predictions", "predictions_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every row's label, prediction and raw output as JSONL.")
def evaluate(model: str | None, data_path: Path, split: str, policy: str | None, base_url: str | None,
             constrained: bool, lenient: bool, temperature: float, top_p: float, max_new_tokens: int, batch_size: int, limit: int | None, seed: int,
             as_json: bool, predictions_path: Path | None) -> None:
    """Score a policy on recorded steps: exact / type accuracy, type macro-F1, per type (Tables 2, 3)."""
    from shop_r1.simulator.agent.policies.factory import PolicyConfigError, PolicySpec, open_policy
    from shop_r1.simulator.scoring import RewardConfig
    from shop_r1.training.evaluate import EvaluationDataError, aevaluate

    if policy is None:
        if model is None:
            raise click.UsageError("give --model (a model folder or 'default') or --policy scripted")
        policy = "transformers"
    _quiet_datasets()
    try:
        rows = _load_rows(data_path, split)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        spec = PolicySpec(name=policy, model=model, base_url=base_url, seed=seed, constrained=constrained,
                          temperature=None if policy == "scripted" else temperature,
                          extra={"max_new_tokens": max_new_tokens, "top_p": top_p} if policy == "transformers" else {})
    except PolicyConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    async def run():
        async with open_policy(spec) as p:
            return await aevaluate(p, rows, batch_size=batch_size, limit=limit,
                                   config=RewardConfig(strict_format=not lenient))

    try:
        result = asyncio.run(run())
    except (PolicyConfigError, EvaluationDataError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if predictions_path is not None:
        predictions_path.parent.mkdir(parents=True, exist_ok=True)
        with predictions_path.open("w", encoding="utf-8") as fh:
            for p in result.predictions:
                fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    meta = {"policy": policy, "model": model, "data": str(data_path), "split": split, "limit": limit,
            "constrained": constrained, "lenient": lenient, "temperature": temperature, "top_p": top_p}
    if as_json:
        click.echo(json.dumps({**result.to_json(), **meta}, indent=2))
        return
    what = f"{policy}" + (f" {model}" if model else "")
    result.report.render_table(_console(), title=f"{what} on {data_path} [{split}] (Shop-R1 Table 2)")
    click.echo(f"{result.report.n_steps} steps in {result.wall_s:.1f} s")


__all__ = ["data", "evaluate"]
