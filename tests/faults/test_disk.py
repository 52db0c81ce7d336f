"""A full disk while writing the report or a dataset: one line naming the file, nothing truncated.

The test makes its own small file system (a tmpfs it mounts), copies a real run folder onto it,
fills what is left, and runs the commands there. Without the right to mount (not root, or no
CAP_SYS_ADMIN in a container) it is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy
from shop_r1.simulator.loop.runner import RunConfig, Runner

EXE = Path(sys.executable).parent / "shop-r1"


@pytest.fixture
def full_disk(tmp_path: Path, shop_url: str):
    run = tmp_path / "run"
    config = RunConfig(shop_url=shop_url, shoppers=2, concurrency=2, max_steps=4, seed=2, out_dir=run)
    asyncio.run(Runner(config, ScriptedPolicy(seed=2), sample(2, seed=2)).run())
    size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size + 512 * 1024}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root/CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        shutil.copytree(run, mount / "run")
        try:  # fill what is left
            with open(mount / "filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:
            pass
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_report_on_a_full_disk(full_disk: Path) -> None:
    run = full_disk / "run"
    trace_before = (run / "trace.jsonl").read_bytes()
    proc = subprocess.run([str(EXE), "report", str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"cannot write {run / 'report.html'}" in proc.stderr and "No space left" in proc.stderr
    assert not (run / ".report.html.tmp").exists()
    assert not (run / "report.html").exists() or (run / "report.html").stat().st_size > 0
    assert (run / "trace.jsonl").read_bytes() == trace_before  # nothing recorded is lost


def test_data_build_on_a_full_disk(full_disk: Path) -> None:
    out = full_disk / "data"
    proc = subprocess.run([str(EXE), "data", "build", str(full_disk / "run"), "--out", str(out),
                           "--missing-rationale", "skip"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "cannot write" in proc.stderr and "No space left" in proc.stderr, proc.stderr[-1000:]
    leftovers = [p for p in out.rglob("*") if p.is_file() and (p.stat().st_size == 0 or p.name.endswith(".tmp"))]
    assert leftovers == []
