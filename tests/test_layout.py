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
    for data in ("shop_r1/envs/js/reduce.js", "shop_r1/simulator/analysis/templates/report.html",
                 "shop_r1/personas/data/opera_personas.json", "shop_r1/simulator/agent/prompt/system.md",
                 "shop_r1/envs/shop/templates/base.html"):
        assert data in names, f"{data} is not in the wheel"
    top_level = [n for n in names if n.endswith("top_level.txt")]
    if top_level:
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["shop_r1"]


# -- layers: who may import whom -------------------------------------------------------------
#
# Imports point downward only. Top level: training -> simulator -> personas -> envs. Inside
# simulator/, each room may import the rooms listed for it (and itself); cli/ sits on top. A
# room is the first folder under simulator/ (simulator/__init__.py belongs to no room and may
# import nothing of ours).
LAYERS: dict[str, set[str]] = {
    "envs": set(),
    "personas": {"envs"},
    "simulator.records": {"envs", "personas"},
    "simulator.agent": {"envs", "personas", "simulator.records"},
    "simulator.scoring": {"envs", "personas", "simulator.records", "simulator.agent"},
    "simulator.loop": {"envs", "personas", "simulator.records", "simulator.agent", "simulator.scoring"},
    "simulator.analysis": {"envs", "personas", "simulator.records", "simulator.agent", "simulator.scoring",
                           "simulator.loop"},
    "simulator.cli": {"envs", "personas", "simulator.records", "simulator.agent", "simulator.scoring",
                      "simulator.loop", "simulator.analysis"},
    "simulator": set(),
    "training": {"envs", "personas", "simulator.records", "simulator.agent", "simulator.scoring", "simulator.loop",
                 "simulator.analysis", "simulator.cli"},
}


def room_of(module: str) -> str:
    """``shop_r1.simulator.loop.runner`` -> ``simulator.loop``; ``shop_r1.envs.x`` -> ``envs``;
    ``shop_r1.simulator`` itself -> ``simulator``."""
    parts = module.split(".")[1:]
    if parts[0] == "simulator" and len(parts) > 1:
        return f"simulator.{parts[1]}"
    return parts[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "shop_r1." + ".".join(parts)


def layer_violations(source: str, module: str, where: str) -> list[str]:
    """Every import in ``source`` (module ``module``) that the layer table forbids, and every
    private name (``_x``) imported from another room; as ``where:line: why`` lines. Imports
    inside functions count: a late import is still a dependency."""
    import ast

    own = room_of(module)
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [(node.module, [a.name for a in node.names])]
        elif isinstance(node, ast.Import):
            targets = [(a.name, []) for a in node.names]
        else:
            continue
        for target, names in targets:
            if not target.startswith("shop_r1."):
                continue
            room = room_of(target)
            if room != own and room not in LAYERS[own]:
                out.append(f"{where}:{node.lineno}: {own} imports {target} ({room} is not below {own})")
            if room != own:
                out += [f"{where}:{node.lineno}: private name {n} imported from {target} (another room)"
                        for n in names if n.startswith("_") and not n.startswith("__")]
    return out


def test_imports_follow_the_layer_table() -> None:
    found = []
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            module = _module_name(path)
            assert room_of(module) in LAYERS, f"{path.relative_to(ROOT)} is in no room of the layer table"
            found += layer_violations(path.read_text(encoding="utf-8"), module, str(path.relative_to(ROOT)))
    assert found == [], "imports against the layer table:\n" + "\n".join(found)


@pytest.mark.parametrize(("module", "line"), [
    ("shop_r1.simulator.records.trace.views", "from shop_r1.simulator.agent.policies.base import Policy"),
    ("shop_r1.simulator.loop.runner", "from shop_r1.simulator.analysis.realism import realism_of_run"),
    ("shop_r1.simulator.analysis.ab.experiment", "from shop_r1.simulator.cli.simulate import main"),
    ("shop_r1.envs.pagetype", "import shop_r1.personas.model"),
    ("shop_r1.personas.tasks", "from shop_r1.simulator.records.trace import read_trace"),
    ("shop_r1.simulator.agent.prompt.render", "def f():\n    from shop_r1.training.data import load_trace"),
    ("shop_r1.simulator.cli.simulate", "from shop_r1.simulator.analysis.realism import _stages"),
])
def test_the_layer_check_fails_on_a_wrong_import(module: str, line: str) -> None:
    """The check is able to fail: each of these imports goes up (or takes a private name)."""
    assert layer_violations(line, module, "x.py") != []
    assert layer_violations("import json\nfrom shop_r1.envs.actions import Click\n", module, "x.py") == []


def test_every_room_of_the_table_exists() -> None:
    rooms = {room_of(_module_name(p)) for top in TOP for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}
    assert set(LAYERS) == rooms
