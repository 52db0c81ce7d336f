"""bench/gpu_bundle.py and bench/gpu_run.py without a GPU, a browser or the network: the bundle's
manifest and size guard from a fake dataset, model and local wheel folder; the wheel checks; the
coverage of imported distributions; the Playwright stand-in; the dry run's data trimming."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gb = _load("gpu_bundle")


def _fake_data_and_model(run_dir: Path, bundle: Path, model: str, seed: int) -> dict[str, Any]:
    (bundle / "data" / "rl").mkdir(parents=True)
    (bundle / "data" / "rl" / "test.parquet").write_bytes(b"PAR1" + b"\0" * 1000)
    (bundle / "data" / "manifest.json").write_text(json.dumps({"counts": {"rl": {"test": 3}}}))
    (bundle / "model").mkdir()
    (bundle / "model" / "config.json").write_text("{}")
    (bundle / "model" / "model.safetensors").write_bytes(b"\1" * 200_000)
    return {"model": model, "model_seed": seed, "run_dir": str(run_dir)}


def _wheel_folder(tmp_path: Path) -> Path:
    """One tiny wheel per pinned distribution, named as pip names them, plus an unrelated one."""
    folder = tmp_path / "wheels-src"
    folder.mkdir()
    for name, version in gb.pins().items():
        with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", "w") as z:
            z.writestr(f"{name}/__init__.py", "")
    with zipfile.ZipFile(folder / "unrelated-1.0-py3-none-any.whl", "w") as z:
        z.writestr("unrelated/__init__.py", "")
    return folder


def _build(tmp_path: Path, limit_mib: float) -> dict[str, Any]:
    return gb.build(tmp_path / "bundle", run_dir=tmp_path / "run", model="small", seed=0,
                    wheels_from=_wheel_folder(tmp_path), limit_mib=limit_mib, closure_check=False, project=False,
                    data_and_model=_fake_data_and_model)


def test_bundle_manifest_lists_data_model_and_wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gb, "tree_bytes", lambda root=gb.ROOT: 0)
    manifest = _build(tmp_path, limit_mib=64)
    bundle = tmp_path / "bundle"
    on_disk = json.loads((bundle / gb.MANIFEST).read_text())
    assert on_disk["schema"] == gb.SCHEMA and on_disk["data"]["model"] == "small"
    files = on_disk["files"]
    assert {"data/rl/test.parquet", "data/manifest.json", "model/model.safetensors"} <= set(files)
    assert files["model/model.safetensors"]["bytes"] == 200_000
    assert len(files["model/model.safetensors"]["sha256"]) == 64
    wheels = on_disk["wheels"]["files"]
    assert len(wheels) == len(gb.CARRIED) and not any(w.startswith("unrelated") for w in wheels)
    assert set(on_disk["wheels"]["pins"]) == set(gb.CARRIED)
    assert on_disk["bytes"] == sum(f["bytes"] for f in files.values())
    assert manifest["size"]["bundle_bytes"] <= 64 * gb.MIB
    assert set(manifest["size"]["parts"]) == {"data", "model", "wheels", gb.MANIFEST}


def test_size_guard_fails_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gb, "tree_bytes", lambda root=gb.ROOT: 0)
    with pytest.raises(gb.BundleTooLarge) as err:
        _build(tmp_path, limit_mib=0.1)  # the fake model alone is 0.19 MiB
    message = str(err.value)
    assert "over the device's 0.1 MiB" in message and "model/model.safetensors" in message
    # The working tree travels too: it counts against the same limit.
    small = tmp_path / "small"
    small.mkdir()
    (small / "f").write_bytes(b"x" * 1000)
    assert gb.check_size(small, 1, tree=0)["bundle_bytes"] == 1000
    with pytest.raises(gb.BundleTooLarge, match="with the working tree"):
        gb.check_size(small, 1, tree=gb.MIB)


def test_missing_wheel_is_named(tmp_path: Path) -> None:
    src = _wheel_folder(tmp_path)
    next(src.glob("trl-*.whl")).unlink()
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SystemExit, match="lacks wheels of trl"):
        gb.copy_wheels(src, dest, gb.pins())


def test_wheel_checks(tmp_path: Path) -> None:
    for name in ("a-1.0-py3-none-any.whl", "a-2.0-py3-none-any.whl", "b-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                 "c-1.0-cp312-cp312-manylinux_2_17_aarch64.whl", "d-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                 "e-1.0-py312-none-any.whl"):
        (tmp_path / name).write_bytes(b"")
    problems = "; ".join(gb.check_wheels(tmp_path))
    assert "two wheels of a" in problems and "b-1.0" in problems and "c-1.0" in problems
    assert "d-1.0" not in problems and "e-1.0" not in problems


def test_every_imported_distribution_is_carried_or_on_the_gpu_image() -> None:
    assert gb.uncovered(["torch", "trl", "pydantic_core", "shop-r1", "typing_extensions"]) == []
    assert gb.uncovered(["torch", "playwright", "greenlet"]) == ["greenlet", "playwright"]
    assert not {"torch", "numpy", "pyarrow", "playwright"} & set(gb.CARRIED)  # too large, or stubbed


def test_playwright_stand_in_imports_as_the_project_does() -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import gpu_run; gpu_run.stub_playwright(); "
            "from playwright.async_api import Page, Error as E, TimeoutError as T, async_playwright; "
            "assert issubclass(E, Exception) and issubclass(T, gpu_run.PlaywrightAbsent); "
            "import playwright; assert playwright._shop_r1_stub")
    subprocess.run([sys.executable, "-c", code, str(ROOT / "bench")], check=True, timeout=60)


def test_dry_run_trims_every_split(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    gr = _load("gpu_run")
    data = tmp_path / "data"
    for kind in ("rl", "sft"):
        (data / kind).mkdir(parents=True)
        for split in ("train", "test"):
            pq.write_table(pa.table({"x": list(range(10))}), data / kind / f"{split}.parquet")
    (data / "manifest.json").write_text("{}")
    out = gr.trimmed(data, tmp_path / "trimmed", 3)
    assert pq.read_table(out / "rl" / "test.parquet").column("x").to_pylist() == [0, 1, 2]
    assert pq.read_table(out / "sft" / "train.parquet").num_rows == 3
    assert (out / "manifest.json").read_text() == "{}"
