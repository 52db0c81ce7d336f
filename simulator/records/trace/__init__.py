"""The trace format: the one record of what simulated (or imported real) shoppers did.

A run directory holds ``trace.jsonl`` (one record per line, appended as it happens) and
``run.json`` (what produced the trace, and its summary). The package is split by what each
part does with a record: ``views`` (the models), ``builder`` (records from live objects),
``writer``, ``reader`` (with the schema-1 conversion in ``schema1``), ``export`` (datasets,
Parquet) and ``convert`` (a recorded step back to the ``Observation``/``HistoryItem`` a policy
reads). See ``docs/trace-format.md``.
"""

from shop_r1.simulator.records.trace.builder import redacted_action, session_end_event, step_record
from shop_r1.simulator.records.trace.convert import (
    history_before,
    history_item,
    observation_element,
    observation_from_step,
    step_names,
    trace_element,
    trace_elements,
)
from shop_r1.simulator.records.trace.export import step_from_row, step_to_row, to_hf_dataset, to_parquet
from shop_r1.simulator.records.trace.html_elements import elements_from_html
from shop_r1.simulator.records.trace.reader import (
    TraceFormatError,
    TraceProblem,
    TraceReadResult,
    iter_sessions,
    load_run_info,
    parse_record,
    read_trace,
)
from shop_r1.simulator.records.trace.schema import (
    RUN_FILE,
    RUN_SCHEMA_VERSION,
    SCHEMA_VERSION,
    SCREENSHOT_DIR,
    TRACE_FILE,
    screenshot_path,
)
from shop_r1.simulator.records.trace.views import (
    FAILED_OUTCOMES,
    ORDER_PLACED,
    OUTCOMES,
    ExecErrorInfo,
    Outcome,
    RunInfo,
    Tokens,
    TraceElement,
    TraceEvent,
    TraceParseError,
    TraceRecord,
    TraceStep,
)
from shop_r1.simulator.records.trace.writer import TraceWriter, collect_versions

__all__ = [
    "FAILED_OUTCOMES", "ORDER_PLACED", "OUTCOMES", "Outcome", "RUN_FILE", "RUN_SCHEMA_VERSION", "SCHEMA_VERSION", "SCREENSHOT_DIR",
    "TRACE_FILE",
    "ExecErrorInfo", "RunInfo", "Tokens", "TraceElement", "TraceEvent", "TraceFormatError",
    "TraceParseError", "TraceProblem", "TraceReadResult", "TraceRecord", "TraceStep", "TraceWriter",
    "collect_versions", "elements_from_html", "history_before", "history_item", "iter_sessions",
    "load_run_info", "observation_element", "observation_from_step", "parse_record", "read_trace",
    "redacted_action", "screenshot_path", "session_end_event", "step_from_row", "step_names", "step_record",
    "step_to_row", "to_hf_dataset", "to_parquet", "trace_element", "trace_elements",
]
