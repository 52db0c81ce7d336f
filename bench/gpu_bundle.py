"""Pack what ``bench/gpu_run.sh`` needs on a bare GPU machine with no network (issue 23).

The device machine starts bare, reaches nothing, and receives the working tree plus the paths a
``run`` call names in ``carry``: 64 MiB in all. This script fills one folder (default
``build/gpu-bundle/``, ignored by git through ``build/``) with

* ``data/``: the built datasets of the designed data (paper_table's data stage: scripted shoppers
  on the bundled shop in real Chromium, template rationales, the persona split, budgets counted in
  the model's tokens) -- made here once, or taken from an earlier run folder (``--from RUN_DIR``,
  e.g. ``paper_table.py --out RUN_DIR``), since Chromium is not on the GPU machine;
* ``model/``: the base model built offline (``small`` by default: 4 layers x 256, 4,096-symbol
  BPE trained on the train split, ~21 MB in fp32; ``tiny4k`` is ~5 MB). A pretrained model does
  not fit: SmolLM2-135M-Instruct is ~270 MB in bf16. The other training seeds' bases are
  re-initialised from its config on the GPU machine, exactly as ``build_tiny_model`` seeds them
  (``bench/gpu_run.py``), so one copy serves every seed;
* ``wheels/``: the Python distributions the driver imports that the GPU image lacks or holds at
  another version (:data:`CARRIED`), at *this* virtualenv's versions (the code the CPU dry run
  tested), for CPython 3.12 on manylinux x86-64, plus the project itself (``pip wheel --no-deps .``);
* ``manifest.json``: what is where, sizes, sha256, the data settings and the wheel list.

It prints the bundle's size and fails with a clear message when it exceeds the limit (64 MiB,
together with the working tree that travels with it).

    .venv/bin/python bench/gpu_bundle.py                       # data stage here (~7 min), small model
    .venv/bin/python bench/gpu_bundle.py --from runs/paper     # reuse a paper_table run's data
    .venv/bin/python bench/gpu_bundle.py --wheels-from DIR     # wheels from a local folder (no download)

Then (docs/reproduction.md, "On a GPU, from a bare machine"): the device ``run`` call with
``carry: ["build/gpu-bundle"]`` and ``bash bench/gpu_run.sh``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "gpu-bundle"
LIMIT_MIB = 64.0
MIB = 1024 * 1024
MANIFEST = "manifest.json"
SCHEMA = "shop-r1.gpu-bundle/1"

#: The distributions the driver imports (bench/gpu_run.py with the browser stubbed) that the GPU
#: image lacks, plus those it holds at a version this code was not tested with or that a carried
#: one rules out: transformers 5.17 there (5.25 here) needs huggingface-hub < 2, which 5.25 rules
#: out; accelerate 1.15 there; pydantic needs typing-extensions >= 4.16; datasets pins fsspec
#: <= 2026.9.0. Not carried on purpose: torch, numpy, pyarrow, pandas, tokenizers, safetensors,
#: regex, tqdm, pyyaml, jinja2, aiohttp, lxml, scipy, statsmodels (there, and large), playwright
#: (~45 MB with its node driver; the GPU run never opens a browser, gpu_run.py stubs its import),
#: peft and rouge-score (not imported by this path). The GPU image's list: /work/.library/device/KINDS.md.
CARRIED: tuple[str, ...] = (
    "trl", "datasets", "dill", "multiprocess",
    "transformers", "huggingface-hub", "kernels", "tomlkit", "accelerate",
    "httpx2", "httpcore2", "truststore", "sniffio",
    "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions",
    "openai", "diskcache", "aiolimiter", "fsspec",
)
#: What the GPU image holds already (names, from the device KINDS.md list read 2026-11-17).
GPU_IMAGE: frozenset[str] = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless
optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel
wrapt xarray xxhash yarl zipp
""".split())
#: The device README's platform tags for CPython 3.12 there (pip matches manylinux_2_N exactly).
PLATFORMS: tuple[str, ...] = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
                              "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64",
                              "manylinux_2_31_x86_64", "manylinux_2_34_x86_64", "manylinux_2_35_x86_64")
GPU_PYTHON = "3.12"


def norm(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return name.lower().replace("_", "-").replace(".", "-")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else (
        path.stat().st_size if path.is_file() else 0)


def tree_bytes(root: Path = ROOT) -> int:
    """What travels besides the carried paths: tracked files and untracked files git does not ignore."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                               check=True, capture_output=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return 0
    total = 0
    for name in filter(None, names):
        p = root / os.fsdecode(name)
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class BundleTooLarge(SystemExit):
    pass


def check_size(bundle: Path, limit_mib: float = LIMIT_MIB, tree: int | None = None) -> dict[str, Any]:
    """The bundle's size (and with the working tree); raises :class:`BundleTooLarge` over ``limit_mib``."""
    size = dir_bytes(bundle)
    tree = tree_bytes() if tree is None else tree
    parts = {p.name: dir_bytes(p) for p in sorted(bundle.iterdir())} if bundle.is_dir() else {}
    report = {"bundle_bytes": size, "tree_bytes": tree, "travel_bytes": size + tree, "limit_mib": limit_mib,
              "parts": parts}
    if size + tree > limit_mib * MIB:
        biggest = sorted(((dir_bytes(p), p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()),
                         reverse=True)[:5]
        raise BundleTooLarge(
            f"bench/gpu_bundle.py: the bundle is {size / MIB:.1f} MiB, {(size + tree) / MIB:.1f} MiB with the "
            f"working tree ({tree / MIB:.1f} MiB) that travels with it: over the device's {limit_mib:g} MiB per "
            "call. Largest files: " + ", ".join(f"{p} {b / MIB:.1f} MiB" for b, p in biggest)
            + ". Use --model tiny4k, fewer wheels, or a smaller data set.")
    return report


# --------------------------------------------------------------------------------------------
# Data and model
# --------------------------------------------------------------------------------------------


def _paper_table() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    import paper_table  # noqa: E402  (bench/ is not a package)

    return paper_table


def data_stage(run_dir: Path, model: str, seed: int) -> None:
    """paper_table's data stage (simulate, template rationales) into ``run_dir``: real Chromium."""
    pt = _paper_table()
    cfg, _ = pt.parse_args(["--model", model])
    from shop_r1.training import recipe as R

    timer: dict[str, float] = {}
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"▶ data stage into {run_dir} (scripted shoppers in Chromium; several minutes)", file=sys.stderr)
    with R.stage("simulate", timer):
        try:
            scripted = R.simulate_scripted(run_dir, shoppers=cfg.shoppers, max_steps=cfg.max_steps,
                                           seed=cfg.data_seed, run_id="paper-table", port=cfg.shop_port)
        except OSError:
            scripted = R.simulate_scripted(run_dir, shoppers=cfg.shoppers, max_steps=cfg.max_steps,
                                           seed=cfg.data_seed, run_id="paper-table", port=0)
    with R.stage("template rationales", timer):
        R.template_rationales(scripted, run_dir, seed=cfg.data_seed)
    print(f"  {timer}", file=sys.stderr)


def prepare_data_and_model(run_dir: Path, bundle: Path, model: str, seed: int) -> dict[str, Any]:
    """The base model (``model:seed``, BPE from the run's train split) and the datasets, into the bundle.

    A run folder's ``data/`` is reused when its settings are this shape's preset and its tokenizer
    is the model's; otherwise the datasets are built again from the run's template trace."""
    pt = _paper_table()
    from shop_r1.training import recipe as R

    cfg, _ = pt.parse_args(["--model", model])
    trace = run_dir / "trace-template"
    if not (trace / "trace.jsonl").is_file():
        raise SystemExit(f"bench/gpu_bundle.py: {trace} has no trace.jsonl (run the data stage, or --from a "
                         "paper_table --out folder)")
    work = Path(tempfile.mkdtemp(prefix="gpu-bundle-"))
    try:
        base = R.base_model(f"{model}:{seed}", trace, work, seed=cfg.data_seed, val=cfg.val_fraction,
                            test=cfg.test_fraction, by=cfg.split_by)
        wanted = {"rl_token_budget": cfg.rl_token_budget, "sft_max_tokens": cfg.sft_max_tokens,
                  "sft_max_page_tokens": cfg.sft_max_page_tokens, "with_persona": cfg.with_persona}
        data = run_dir / "data"
        reuse = False
        if (data / "manifest.json").is_file():
            m = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
            same = all(m.get("settings", {}).get(k) == v for k, v in wanted.items())
            split = m.get("split", {})
            same = same and (split.get("by"), split.get("seed"), split.get("val"), split.get("test")) == (
                cfg.split_by, cfg.data_seed, cfg.val_fraction, cfg.test_fraction)
            toks = [p for p in run_dir.glob("seed*/base-*/tokenizer.json")]
            same = same and any(t.read_bytes() == (base / "tokenizer.json").read_bytes() for t in toks)
            reuse = same
        if not reuse:
            print(f"▶ datasets for {model} ({wanted})", file=sys.stderr)
            data, _ = R.build_data(trace, base, work, seed=cfg.data_seed, val=cfg.val_fraction,
                                   test=cfg.test_fraction, rl_token_budget=cfg.rl_token_budget,
                                   sft_max_tokens=cfg.sft_max_tokens, sft_max_page_tokens=cfg.sft_max_page_tokens,
                                   with_persona=cfg.with_persona, by=cfg.split_by)
        budget, report = R.completion_budget(data, base)
        facts = {"labels": pt.label_visibility(data), "split": pt.persona_overlap(data)}
        shutil.copytree(data, bundle / "data")
        shutil.copytree(base, bundle / "model")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = json.loads((bundle / "data" / "manifest.json").read_text(encoding="utf-8"))
    return {"model": model, "model_seed": seed, "data_reused_from": str(run_dir / "data") if reuse else None,
            "settings": {**wanted, "data_seed": cfg.data_seed, "val_fraction": cfg.val_fraction,
                         "test_fraction": cfg.test_fraction, "split_by": cfg.split_by, "shoppers": cfg.shoppers,
                         "max_steps": cfg.max_steps},
            "completion_budget": budget, "completion_report": report, "counts": manifest["counts"],
            "skipped": {"rl": manifest["rl"]["skipped"], "sft": manifest["sft"]["skipped"]},
            "split": {**manifest["split"], **facts["split"]}, **facts["labels"]}


# --------------------------------------------------------------------------------------------
# Wheels
# --------------------------------------------------------------------------------------------


def pins(names: tuple[str, ...] = CARRIED) -> dict[str, str]:
    """``name -> version`` as installed in this virtualenv: the code the CPU dry run runs."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError as exc:
            raise SystemExit(f"bench/gpu_bundle.py: {name} is not installed here; `make setup` first") from exc
    return out


def download_wheels(wheels: Path, versions: dict[str, str]) -> None:
    """``pip download`` for CPython 3.12 on manylinux x86-64 (the device README's command)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
           GPU_PYTHON, "--implementation", "cp", "--disable-pip-version-check", "-q", "-d", str(wheels)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    cmd += [f"{n}=={v}" for n, v in sorted(versions.items())]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:  # pip's warnings (local index folders it skips) only when it fails
        raise SystemExit(f"bench/gpu_bundle.py: pip download failed:\n{done.stdout}{done.stderr}")


def copy_wheels(source: Path, wheels: Path, versions: dict[str, str]) -> None:
    """The wheels from a local folder (tests; a machine without the registry): one per pinned name."""
    by_name: dict[str, Path] = {}
    for whl in source.glob("*.whl"):
        name, version = whl.name.split("-")[:2]
        if norm(name) in {norm(n) for n in versions} and version == versions.get(
                next(n for n in versions if norm(n) == norm(name))):
            by_name[norm(name)] = whl
    missing = sorted(n for n in versions if norm(n) not in by_name)
    if missing:
        raise SystemExit(f"bench/gpu_bundle.py: {source} lacks wheels of {', '.join(missing)} "
                         f"(wanted {', '.join(f'{n}=={versions[n]}' for n in missing)})")
    for whl in by_name.values():
        shutil.copy2(whl, wheels / whl.name)


def project_wheel(wheels: Path) -> Path:
    """The project itself, as a wheel of this checkout (pure Python: any platform)."""
    with tempfile.TemporaryDirectory(prefix="gpu-bundle-wheel-") as tmp:
        # setuptools builds in the source tree (build/lib, where stale files would end up in the
        # wheel): build from a copy of the files git tracks, as they are on disk now.
        src = Path(tmp) / "src"
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
        for name in filter(None, names.split(b"\0")):
            rel = os.fsdecode(name)
            if (ROOT / rel).is_file():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, src / rel)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                               "--disable-pip-version-check", "-w", tmp, str(src)], cwd=tmp, capture_output=True,
                              text=True)
        if done.returncode:  # setuptools' warnings only when it fails
            raise SystemExit(f"bench/gpu_bundle.py: pip wheel failed:\n{done.stdout}{done.stderr}")
        made = sorted(Path(tmp).glob("shop_r1-*.whl"))
        if not made:
            raise SystemExit("bench/gpu_bundle.py: pip wheel made no shop_r1 wheel")
        return Path(shutil.copy2(made[0], wheels / made[0].name))


def check_wheels(wheels: Path) -> list[str]:
    """One wheel per distribution (two stop the install on the device), each for CPython 3.12 on x86-64."""
    problems, seen = [], {}
    for whl in sorted(wheels.glob("*.whl")):
        parts = whl.name[:-4].split("-")
        name, tags = norm(parts[0]), parts[-3:]
        if name in seen:
            problems.append(f"two wheels of {name}: {seen[name]} and {whl.name}")
        seen[name] = whl.name
        py, _abi, plat = tags
        if not any(t in ("py3", "py312", "cp312") for t in py.split(".")):
            problems.append(f"{whl.name}: not for CPython 3.12 ({py})")
        if plat != "any" and "x86_64" not in plat:
            problems.append(f"{whl.name}: not for x86-64 ({plat})")
    return problems


# --------------------------------------------------------------------------------------------
# Closure: every distribution the driver imports is in the GPU image or carried
# --------------------------------------------------------------------------------------------

CLOSURE_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import gpu_run
gpu_run.stub_playwright()
gpu_run.import_stack()
print(json.dumps(gpu_run.imported_distributions()))
"""


def closure(bench: Path = ROOT / "bench") -> list[str]:
    """The distributions a process imports when it loads the driver's stack (~10 s: torch, TRL)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", CLOSURE_PROBE, str(bench)], check=True, capture_output=True,
                         text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def uncovered(imported: list[str], carried: tuple[str, ...] = CARRIED) -> list[str]:
    have = GPU_IMAGE | {norm(n) for n in carried} | {"shop-r1"}
    return sorted(d for d in imported if norm(d) not in have)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def write_manifest(bundle: Path, facts: dict[str, Any]) -> dict[str, Any]:
    files = {str(p.relative_to(bundle)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
             for p in sorted(bundle.rglob("*")) if p.is_file() and p != bundle / MANIFEST}
    manifest = {"schema": SCHEMA, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "bytes": sum(f["bytes"] for f in files.values()), **facts, "files": files}
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest


def build(out: Path, *, run_dir: Path | None, model: str, seed: int, wheels_from: Path | None,
          limit_mib: float, closure_check: bool, project: bool = True,
          data_and_model: Any = prepare_data_and_model) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if run_dir is None:
        run_dir = ROOT / "build" / "gpu-bundle-run"
        if not (run_dir / "trace-template" / "trace.jsonl").is_file():
            data_stage(run_dir, model, seed)
    facts: dict[str, Any] = {"data": data_and_model(run_dir, out, model, seed)}
    wheels = out / "wheels"
    wheels.mkdir()
    versions = pins()
    if wheels_from is not None:
        copy_wheels(wheels_from, wheels, versions)
    else:
        download_wheels(wheels, versions)
    if project:
        project_wheel(wheels)
    problems = check_wheels(wheels)
    if problems:
        raise SystemExit("bench/gpu_bundle.py: " + "; ".join(problems))
    facts["wheels"] = {"python": GPU_PYTHON, "pins": versions,
                       "files": sorted(p.name for p in wheels.glob("*.whl"))}
    if closure_check:
        imported = closure()
        missing = uncovered(imported)
        if missing:
            raise SystemExit("bench/gpu_bundle.py: the driver imports distributions that are neither in the GPU "
                             f"image nor carried: {', '.join(missing)} (add them to CARRIED)")
        facts["closure"] = imported
    manifest = write_manifest(out, facts)
    manifest["size"] = check_size(out, limit_mib)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the bundle folder (default: {DEFAULT_OUT})")
    ap.add_argument("--from", dest="run_dir", type=Path, default=None,
                    help="a paper_table --out folder whose trace-template/ (and data/, if it matches) to use; "
                    "default: build/gpu-bundle-run/, made by the data stage when missing")
    ap.add_argument("--model", default="small", choices=("small", "tiny4k", "tiny"),
                    help="the built shape to carry (default: small, ~21 MB)")
    ap.add_argument("--seed", type=int, default=0, help="the carried base's seed (the first training seed)")
    ap.add_argument("--wheels-from", type=Path, default=None,
                    help="copy the wheels from this folder instead of downloading them")
    ap.add_argument("--limit-mib", type=float, default=LIMIT_MIB, help="size guard (default: 64, the device's)")
    ap.add_argument("--no-closure-check", dest="closure_check", action="store_false",
                    help="skip importing the driver's stack to check that every imported distribution is covered")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    manifest = build(args.out, run_dir=args.run_dir, model=args.model, seed=args.seed, wheels_from=args.wheels_from,
                     limit_mib=args.limit_mib, closure_check=args.closure_check)
    size = manifest["size"]
    parts = ", ".join(f"{k} {v / MIB:.1f}" for k, v in size["parts"].items())
    print(f"bundle {args.out}: {size['bundle_bytes'] / MIB:.1f} MiB ({parts}); with the working tree "
          f"{size['travel_bytes'] / MIB:.1f} MiB of {size['limit_mib']:g} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
