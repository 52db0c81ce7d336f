"""The output trace: the source trace with the new rationales, written whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from shop_r1.simulator.records.trace import RunInfo, TraceWriter
from shop_r1.training.data import LoadedTrace
from shop_r1.training.rationales.teachers import Teacher


def write_trace(trace: LoadedTrace, out: Path, results: Mapping[tuple[str, int], str], teacher: Teacher) -> int:
    """Write the trace with the new rationales into ``out`` via a temp folder + rename; the number
    of rationales written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary run folder
    info: RunInfo | None = trace.run_info
    run_id = trace.result.run_ids[0] if trace.result.run_ids else (info.run_id if info else None)
    source_note = {"source": str(trace.result.path), "teacher": teacher.describe()}
    written = 0
    try:
        writer = TraceWriter(
            tmp, run_id=run_id,
            config={**(info.config if info else {}), "rationales": source_note},
            seed=info.seed if info else None,
            personas=info.personas if info else (),
            versions=info.versions if info else None,
        )
        with writer:
            for step in trace.result.steps:
                data = step.to_json()
                new = results.get((step.session_id, step.step))
                if new is not None:
                    data["rationale"] = new
                    data["rationale_source"] = teacher.model_id
                    written += 1
                writer.write_step(data)
            for event in trace.result.events:
                writer.write_event(event.to_json())
            writer.finish(dict(info.summary) if info else None)
        if out.exists():
            if any(out.iterdir()):
                raise FileExistsError(f"{out} is not empty; choose a new --out folder")
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return written


__all__ = ["write_trace"]
