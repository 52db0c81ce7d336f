"""SIGTERM and Ctrl-C (once or twice) stop ``shop-r1 simulate`` cleanly: every session gets one end
marker, run.json's summary and ``ended_at`` are true, the report is written, no traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from shop_r1.simulator.records.trace import read_trace

EXE = Path(sys.executable).parent / "shop-r1"


def _start(shop_url: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(EXE), "simulate", "--shop", shop_url, "-n", "3", "-c", "3", "--max-steps", "40",
                             "--seed", "5", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(out: Path, n: int, proc: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        trace = out / "trace.jsonl"
        if trace.exists() and sum(1 for _ in trace.open()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"simulate ended before the signal: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no steps recorded in time")


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)], ids=["sigterm", "double-ctrl-c"])
def test_signal_stops_cleanly(shop_url: str, tmp_path: Path, signals: tuple[signal.Signals, ...]) -> None:
    out = tmp_path / "run"
    proc = _start(shop_url, out)
    _wait_for_steps(out, 3, proc)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.1)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    trace = read_trace(out)
    assert not trace.problems
    ends = Counter(r.session_id for r in [*trace.steps, *trace.events] if r.done)
    started = {s.session_id for s in trace.steps} | {e.session_id for e in trace.events}
    assert started and set(ends) == started and set(ends.values()) == {1}, ends
    run = json.loads((out / "run.json").read_text())
    assert run["ended_at"] is not None
    assert run["summary"]["interrupted"] is True and run["summary"]["sessions"] == len(started)
    assert (out / "report.html").stat().st_size > 0
