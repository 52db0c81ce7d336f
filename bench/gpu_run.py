"""paper_table's RL arms and evaluation, run from a bundle (``bench/gpu_bundle.py``) on one GPU.

The GPU machine has no Chromium and no network, so this starts where paper_table's data stage
ends: the carried ``data/`` (the designed data: scripted shoppers on the bundled shop, template
rationales, persona split) and ``model/`` (the built base, seed ``model_seed``). For every
training seed it runs paper_table's own :func:`paper_table.train_seed` (SFT rounds chosen on
validation, SFT+RL(binary), SFT+RL(hierarchical), Shop-R1, SFT-continued) and
:func:`paper_table.evaluate`, then the same tables, one-thing comparisons and verdicts
(hierarchical bootstrap over seeds), into a ``results.json`` of paper_table's schema, so
``bench/results_md.py`` renders it. Nothing here re-implements a stage.

The other seeds' bases are built from the carried one's config and tokenizer under
``torch.manual_seed(seed)``, as ``build_tiny_model`` seeds them (the tokenizer, and so the
datasets, are the same for every seed, as in paper_table); for the carried seed the re-built
weights are compared with the carried ones (``results.json`` ``bundle.reinit_matches_carried``).

Sizes ("bigger" than the CPU presets; flags given win, any paper_table flag is accepted):
:data:`GPU_DEFAULTS`. A wall-clock guard (``--budget-s``) starts a seed only while the seeds
so far say it will end inside the budget; ``results.json`` says how many seeds ran.

    bash bench/gpu_run.sh                                          # on the GPU machine (installs the wheels)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/gpu_run.py --device cpu --seeds 0 --grpo-steps 1 \\
        --grpo-prompts-per-step 2 --num-generations 2 --max-rows 6 --out /tmp/gpu-dry   # the CPU dry run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import types
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

#: The GPU run's sizes. Per arm 8 GRPO steps x 16 prompts x G 8 = 1,024 rollouts (the CPU
#: ``small`` preset: 24 x 4 x 4 = 384); five seeds; every test row in one evaluation batch
#: (decoding on a GPU costs per token, not per row); free greedy decoding, the paper's table.
#: Estimated ~9 min on an H100 (docs/reproduction.md, "On a GPU, from a bare machine").
GPU_DEFAULTS: tuple[str, ...] = ("--seeds", "0,1,2,3,4", "--grpo-steps", "8", "--grpo-prompts-per-step", "16",
                                 "--num-generations", "8", "--eval-batch-size", "160", "--no-constrained",
                                 "--no-sampled")


# --------------------------------------------------------------------------------------------
# The browser is not part of this run
# --------------------------------------------------------------------------------------------


class PlaywrightAbsent(Exception):
    """Every name of the stand-in ``playwright.async_api``: the project's modules import
    Playwright at the top, but nothing this run calls opens a browser."""


def stub_playwright() -> None:
    """Stand-ins for ``playwright`` (~45 MB with its node driver: not carried). Always used here,
    also where Playwright is installed, so the CPU dry run imports what the GPU machine imports."""
    if "playwright" in sys.modules and not getattr(sys.modules["playwright"], "_shop_r1_stub", False):
        return  # the real one is already loaded in this process
    cache: dict[str, type] = {}

    def attr(name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return cache.setdefault(name, type(name, (PlaywrightAbsent,), {}))

    for mod in ("playwright", "playwright.async_api", "playwright.sync_api"):
        m = types.ModuleType(mod, "stand-in: no browser in bench/gpu_run.py")
        m._shop_r1_stub = True  # type: ignore[attr-defined]
        m.__getattr__ = attr  # type: ignore[method-assign]
        sys.modules[mod] = m
    sys.modules["playwright"].async_api = sys.modules["playwright.async_api"]  # type: ignore[attr-defined]
    sys.modules["playwright"].sync_api = sys.modules["playwright.sync_api"]  # type: ignore[attr-defined]


def import_stack() -> Any:
    """paper_table (and through it the recipe, the trainers' settings, evaluation) and the trainers."""
    sys.path.insert(0, str(BENCH))
    import paper_table  # noqa: E402  (bench/ is not a package)
    import datasets  # noqa: F401  (the stages import these when they run)
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401
    from transformers import Qwen2ForCausalLM  # noqa: F401
    from trl import GRPOTrainer, SFTTrainer  # noqa: F401

    import shop_r1.training.grpo  # noqa: F401
    import shop_r1.training.sft  # noqa: F401

    return paper_table


def imported_distributions() -> list[str]:
    """The distributions this process has imported (the stand-ins left out)."""
    from importlib import metadata

    pd = metadata.packages_distributions()
    mods = [m for m, v in list(sys.modules.items()) if not getattr(v, "_shop_r1_stub", False)]
    return sorted({d for m in mods for d in pd.get(m.split(".")[0], [])})


# --------------------------------------------------------------------------------------------
# Preflight: which versions run, and whether the carried wheels' needs are met
# --------------------------------------------------------------------------------------------


def preflight(bundle_manifest: dict[str, Any]) -> dict[str, Any]:
    from importlib import metadata

    from packaging.requirements import Requirement

    names = ["torch", "transformers", "trl", "accelerate", "datasets", "huggingface-hub", "tokenizers",
             "safetensors", "numpy", "pyarrow", "pandas", "pydantic", "shop-r1"]
    versions = {}
    for n in names:
        try:
            versions[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            versions[n] = None
    unmet = []
    for name in bundle_manifest.get("wheels", {}).get("pins", {}):
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            unmet.append(f"{name} is not installed")
            continue
        for r in map(Requirement, reqs):
            if r.marker is not None and not r.marker.evaluate({"extra": ""}):
                continue
            try:
                have = metadata.version(r.name)
            except metadata.PackageNotFoundError:
                unmet.append(f"{name} needs {r} (absent)")
                continue
            if r.specifier and not r.specifier.contains(have, prereleases=True):
                unmet.append(f"{name} needs {r} (have {have})")
    return {"versions": versions, "unmet_requirements": unmet}


# --------------------------------------------------------------------------------------------
# Bundle -> run inputs
# --------------------------------------------------------------------------------------------


def seed_base(carried: Path, seed: int, dest: Path) -> Path:
    """The base model for ``seed``: the carried config, tokenizer and generation config, weights
    drawn under ``torch.manual_seed(seed)`` as ``build_tiny_model`` draws them."""
    import torch
    from transformers import AutoConfig, Qwen2ForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    for f in carried.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors"):
            shutil.copy2(f, dest / f.name)
    config = AutoConfig.from_pretrained(carried)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.save_pretrained(dest, safe_serialization=True)
    return dest


def same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def trimmed(data: Path, dest: Path, rows: int) -> Path:
    """A copy of the datasets with the first ``rows`` rows of every split (the dry run's size)."""
    import pyarrow.parquet as pq

    for f in data.rglob("*"):
        target = dest / f.relative_to(data)
        if f.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif f.suffix == ".parquet":
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pq.read_table(f).slice(0, rows), target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    return dest


def parse_args(argv: list[str] | None, pt: Any) -> tuple[Any, argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=True)
    ap.add_argument("--bundle", type=Path, default=ROOT / "build" / "gpu-bundle")
    ap.add_argument("--out", type=Path, default=Path("/tmp/gpu-run"), help="work folder: checkpoints, results.json")
    ap.add_argument("--results", type=Path, default=None, help="also copy results.json here (e.g. $OUT/results.json)")
    ap.add_argument("--budget-s", type=float, default=500.0,
                    help="start another seed only while the seeds so far say it ends inside this many seconds "
                    "of training and evaluation (default 500)")
    ap.add_argument("--max-rows", type=int, default=0, help="train and evaluate on the first N rows of each split "
                    "(the dry run; 0: all)")
    ap.add_argument("--bootstrap", type=int, default=None, help="bootstrap replicates (paper_table's default)")
    args, rest = ap.parse_known_args(argv)
    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    data = manifest["data"]
    forwarded = ["--model", data["model"], *GPU_DEFAULTS, *rest]
    if args.bootstrap is not None:
        forwarded += ["--bootstrap", str(args.bootstrap)]
    cfg, _ = pt.parse_args(forwarded)
    # The data were built with these: the budgets are the bundle's, not a flag's.
    for k in ("rl_token_budget", "sft_max_tokens", "sft_max_page_tokens", "with_persona", "data_seed",
              "val_fraction", "test_fraction", "split_by", "shoppers", "max_steps"):
        setattr(cfg, k, data["settings"][k])
    cfg.max_completion_length = cfg.max_completion_length or data["completion_budget"]
    cfg.eval_max_new_tokens = cfg.eval_max_new_tokens or cfg.max_completion_length
    if cfg.device == "auto":
        cfg.device = "cuda"
    cfg.out = str(args.out)
    return cfg, args, forwarded


def run(argv: list[str] | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    stub_playwright()
    pt = import_stack()
    import logging
    import platform
    from datetime import datetime, timezone

    import torch
    from rich.console import Console

    cfg, args, forwarded = parse_args(argv, pt)
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("transformers", "trl", "accelerate", "datasets", "shop_r1.simulator.agent.prompt",
                  "shop_r1.training.data"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import datasets

    datasets.disable_progress_bars()
    cfg.validate()
    bundle_manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    bdata = bundle_manifest["data"]
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pre = preflight(bundle_manifest)
    console.print(f"[dim]versions {pre['versions']}; device {cfg.device}"
                  + (f" ({torch.cuda.get_device_name(0)})" if cfg.device == "cuda" else "") + "[/]")
    for line in pre["unmet_requirements"]:
        console.print(f"[yellow]requirement not met: {line}[/]")
    data_dir = args.bundle / "data"
    if args.max_rows:
        data_dir = trimmed(data_dir, out / "data", args.max_rows)
    carried = args.bundle / "model"
    timer: dict[str, float] = {}
    results: dict[str, Any] = {
        "benchmark": "paper_table", "driver": "bench/gpu_run.py",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": asdict(cfg),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg(),
                    "gpu": torch.cuda.get_device_name(0) if cfg.device == "cuda" else None},
        "paper_3b": {k: dict(zip(pt.METRICS, v)) for k, v in pt.PAPER_3B.items()},
        "timings": timer,
        "bundle": {"path": str(args.bundle), "created_at": bundle_manifest.get("created_at"),
                   "bytes": bundle_manifest.get("bytes"), "model_seed": bdata["model_seed"],
                   "max_rows": args.max_rows or None, "argv": forwarded, "preflight": pre,
                   "budget_s": args.budget_s},
        "data": {"dataset": str(data_dir), "counts": bdata["counts"], "skipped": bdata["skipped"],
                 "split": {**bdata["split"], **pt.persona_overlap(data_dir)},
                 "completion_budget": bdata["completion_report"], **pt.label_visibility(data_dir)},
    }
    results["timings"]["startup"] = round(time.perf_counter() - t0, 2)
    per_seed: dict[int, dict[str, Any]] = {}
    scores: dict[str, dict[str, list[Any]]] = {m: {s: [] for s in pt.SETTINGS} for m in pt.MODES}
    started = time.perf_counter()
    durations: list[float] = []
    skipped: list[int] = []
    for seed in cfg.seeds:
        spent = time.perf_counter() - started
        if durations and spent + max(durations) > args.budget_s:
            skipped.append(seed)
            continue
        s0 = time.perf_counter()
        with pt.R.stage(f"seed{seed} base model", timer):
            base = seed_base(carried, seed, out / f"seed{seed}" / "base")
            if seed == bdata["model_seed"]:
                results["bundle"]["reinit_matches_carried"] = same_weights(base, carried)
                base = carried
        per_seed[seed] = pt.train_seed(cfg, seed, data_dir, base, data_dir, out, timer, console)
        for name in pt.SETTINGS:
            for mode in pt.modes(cfg):
                with pt.R.stage(f"seed{seed} evaluate {name} {mode}", timer):
                    scores[mode][name].append(pt.evaluate(cfg, per_seed[seed]["ckpts"][name], data_dir, "test",
                                                          constrained=mode == "constrained", seed=seed,
                                                          sampled=mode == "sampled"))
        durations.append(time.perf_counter() - s0)
        console.print(f"[dim]seed {seed}: {durations[-1]:.0f} s[/]")
    done = list(per_seed)
    if skipped:
        console.print(f"[yellow]budget {args.budget_s:.0f} s: seeds {skipped} not run[/]")
    cfg.seeds = tuple(done)
    results["config"] = asdict(cfg)
    results["bundle"].update(seeds_run=done, seeds_skipped_for_budget=skipped,
                             seed_seconds=[round(d, 1) for d in durations])
    results["training"] = {str(s): v["facts"] for s, v in per_seed.items()}
    results["tables"] = {}
    for mode in pt.modes(cfg):
        table = pt.summarise(scores[mode], cfg.bootstrap)
        for name in table:
            table[name]["labels_visible"] = results["data"]["labels_visible"]
        for arm in pt.RL_ARMS:
            facts = [per_seed[s]["facts"][arm] for s in done]
            norms = [f["param_change_norm"] for f in facts if f["param_change_norm"] is not None]
            zero = [f["frac_reward_zero_std"] for f in facts if f["frac_reward_zero_std"] is not None]
            table[arm]["param_change_norm"] = sum(norms) / len(norms) if norms else None
            table[arm]["frac_reward_zero_std"] = sum(zero) / len(zero) if zero else None
        comparisons = pt.one_thing_comparisons(scores[mode], cfg.bootstrap)
        results["tables"][mode] = {"settings": table, "one_thing": comparisons,
                                   "ordering": pt.ordering(table, comparisons)}
    results["settings"] = results["tables"]["free"]["settings"]
    results["ordering"] = results["tables"]["free"]["ordering"]
    # What the whole run imported: every one must be on the GPU image or carried (bench/gpu_bundle.py).
    sys.path.insert(0, str(BENCH))
    import gpu_bundle

    imported = imported_distributions()
    results["bundle"]["imported"] = imported
    results["bundle"]["uncovered"] = gpu_bundle.uncovered(imported)
    if results["bundle"]["uncovered"]:
        console.print(f"[red]imported but neither on the GPU image nor carried: {results['bundle']['uncovered']}[/]")
    timer["total"] = round(time.perf_counter() - t0, 2)
    text = json.dumps(results, indent=2, default=str) + "\n"
    (out / "results.json").write_text(text, encoding="utf-8")
    if args.results is not None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text, encoding="utf-8")
    pt.render(results, console)
    console.print(f"[dim]total {timer['total']:.0f} s; results in {out / 'results.json'}"
                  + (f" and {args.results}" if args.results else "") + "[/]")
    return results


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
