"""Steps as a Hugging Face dataset / Parquet file, and rows back to steps.

Nested fields with a fixed shape become Arrow structs; free-form dicts (``timings``, a parse
error's ``detail``, unknown extra keys) are stored as JSON text so that rows with different
keys share one schema. Events are context, not decisions, and are left out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shop_r1.simulator.records.trace.reader import TraceReadResult, read_trace
from shop_r1.simulator.records.trace.views import TraceStep

if TYPE_CHECKING:  # pragma: no cover - typing only; datasets is imported when exporting
    import datasets


def element_table_feature():
    """The element table as an Arrow column (a list of ``TraceElement`` structs): the trace export
    and the training datasets store it alike, from this one definition."""
    from datasets import List, Value  # optional heavy dependency: only when exporting

    s = Value("string")
    return List({"name": s, "kind": s, "text": s, "tag": s, "input_type": s, "options": List(s),
                 "disabled": Value("bool"), "in_viewport": Value("bool"), "covered": Value("bool")})


def _features():
    from datasets import Features, List, Value  # optional heavy dependency: only when exporting

    s = Value("string")
    return Features({
        "schema_version": s, "run_id": s, "session_id": s, "step": Value("int64"),
        "persona_id": s, "url": s, "title": s, "simplified_html": Value("large_string"),
        "action": {"type": s, "name": s, "text": s},
        "rationale": s, "raw_output": s,
        "parse_error": {"code": s, "message": s, "detail": s},
        "exec_error": {"code": s, "message": s, "name": s, "suggestions": List(s)},
        "timings": s,
        "tokens": {"prompt": Value("int64"), "completion": Value("int64")},
        "elements": element_table_feature(),
        "blocked_requests": Value("int64"), "blocked_urls": List(s), "http_status": Value("int64"),
        "net_error": s, "scripts_stopped": Value("bool"), "screenshot": s, "events": List(s), "ts": s, "done": Value("bool"),
        "outcome": s, "end_reason": s, "extra": s,
    })


def step_to_row(step: TraceStep) -> dict[str, Any]:
    """One row per step (the shape of the exported dataset)."""
    d = step.model_dump(mode="json", exclude={"kind", *step.extra})
    if d["action"] is not None:
        d["action"] = {"type": d["action"]["type"], "name": d["action"].get("name"), "text": d["action"].get("text")}
    if d["parse_error"] is not None:
        d["parse_error"] = {**d["parse_error"], "detail": json.dumps(d["parse_error"]["detail"], sort_keys=True)}
    d["timings"] = json.dumps(d["timings"], sort_keys=True)
    d["extra"] = json.dumps(step.extra, sort_keys=True, ensure_ascii=False)
    return d


def step_from_row(row: Mapping[str, Any]) -> TraceStep:
    """Inverse of ``step_to_row``: a dataset/parquet row back to a validated ``TraceStep``."""
    d = dict(row)
    extra = json.loads(d.pop("extra") or "{}")
    d["timings"] = json.loads(d["timings"] or "{}")
    if d.get("action") is not None:
        d["action"] = {k: v for k, v in d["action"].items() if v is not None}
    if d.get("parse_error") is not None:
        d["parse_error"] = {**d["parse_error"], "detail": json.loads(d["parse_error"].get("detail") or "{}")}
    if d.get("exec_error") is not None:
        d["exec_error"] = {**d["exec_error"], "suggestions": list(d["exec_error"].get("suggestions") or [])}
    d["elements"] = [{**el, "options": list(el.get("options") or [])} for el in d.get("elements") or []]
    d.update(extra)
    d["kind"] = "step"
    return TraceStep.model_validate(d)


def _steps_of(trace: TraceReadResult | Sequence[TraceStep] | str | os.PathLike[str]) -> list[TraceStep]:
    if isinstance(trace, TraceReadResult):
        return trace.steps
    if isinstance(trace, (str, os.PathLike)):
        return read_trace(trace).steps
    return list(trace)


def to_hf_dataset(trace: TraceReadResult | Sequence[TraceStep] | str | os.PathLike[str]) -> datasets.Dataset:
    """A ``datasets.Dataset`` with one row per step; ``step_from_row`` turns a row back."""
    import datasets  # optional heavy dependency: only when exporting

    features = _features()
    rows = [step_to_row(s) for s in _steps_of(trace)]
    if not rows:  # from_list([]) would drop the columns; an empty export keeps the schema
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(rows, features=features)


def to_parquet(trace: TraceReadResult | Sequence[TraceStep] | str | os.PathLike[str],
               path: str | os.PathLike[str]) -> Path:
    """Write the step dataset to a Parquet file; returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    to_hf_dataset(trace).to_parquet(str(out))
    return out
