"""The installed distribution claims one import name, ``shop_r1``, and ships every package.

A user's own ``training/`` or ``envs/`` folder must never shadow ours (or be shadowed), so the
wheel may hold nothing outside ``shop_r1/`` but its metadata; and since the package list in
pyproject.toml is written out by hand (package-dir mapping), a new subpackage that is not listed
would be importable in the editable checkout and missing from a real install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("envs", "personas", "simulator", "training")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_folder_is_listed() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {
        "shop_r1." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk - listed == set(), f"package folders missing from pyproject.toml packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == set(), f"listed packages with no folder: {sorted(listed - on_disk)}"


def test_package_dir_maps_the_four_folders() -> None:
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapping == {f"shop_r1.{t}": t for t in TOP}


def test_no_bare_top_level_imports_of_our_packages() -> None:
    """``import envs`` would work from the checkout and fail after ``pip install .``."""
    offenders = []
    for path in [*ROOT.glob("*/**/*.py")]:
        if any(part.startswith(".venv") or part == "__pycache__" for part in path.relative_to(ROOT).parts):
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            for top in TOP:
                if stripped.startswith((f"from {top}.", f"from {top} import", f"import {top}.")) or stripped == f"import {top}":
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {stripped}")
    assert offenders == []


@pytest.mark.slow
def test_wheel_adds_only_shop_r1(tmp_path: Path) -> None:
    """Build the real wheel and look inside: only ``shop_r1/`` plus metadata, package data present."""
    # Build from a copy: setuptools leaves a build/ folder in the tree it builds.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv*", ".git", "build", "runs", "__pycache__", "*.egg-info"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("shop_r1-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"shop_r1"}
    for data in ("shop_r1/envs/js/reduce.js", "shop_r1/simulator/templates/report.html",
                 "shop_r1/personas/data/opera_personas.json", "shop_r1/simulator/prompt/system.md"):
        assert data in names, f"{data} is not in the wheel"
    top_level = [n for n in names if n.endswith("top_level.txt")]
    if top_level:
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["shop_r1"]
