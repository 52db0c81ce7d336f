"""The package type-checks at zero errors (mypy, configured in pyproject.toml's [tool.mypy]).

The four folders install as ``shop_r1.*`` through an import hook that static tools cannot
follow, so mypy reads them through ``build/typing/shop_r1/`` (directory links made by
``.ci/typing-tree.sh``; pyright/Pylance use the same tree). mypy follows the typed libraries we
call (pydantic, click, playwright, torch, transformers, trl), so a change in their API -- e.g. the
private GRPOTrainer methods ``training/grpo.py`` overrides -- shows up here. A cold run (fresh
clone) takes about 75 s of CPU; the cache in ``.mypy_cache/`` brings a re-run down to seconds.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("envs", "personas", "simulator", "training")


def test_package_has_no_type_errors() -> None:
    subprocess.run(["bash", str(ROOT / ".ci" / "typing-tree.sh")], check=True, timeout=60)
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    errors = [line.replace("build/typing/shop_r1/", "") for line in out.splitlines() if ": error:" in line]
    assert proc.returncode == 0 and not errors, f"{len(errors)} type errors:\n" + "\n".join(errors[:60]) + "\n" + out[-600:]
    # Every module was checked: a link tree that lost a folder would pass on fewer files. (mypy
    # also counts each data folder, a namespace package to it, hence at least.)
    checked = re.search(r"(?:checked|no issues found in) (\d+) source files", out)
    assert checked, out[-600:]
    on_disk = sum(1 for top in TOP for path in (ROOT / top).rglob("*.py") if "__pycache__" not in path.parts)
    assert int(checked.group(1)) >= on_disk, (on_disk, out[-600:])
