"""Import real shopping logs in the OPeRA schema (NEU-HAI/OPeRA, CC-BY-4.0) as a shop-r1 trace.

OPeRA has one row per browser action: ``session_id, action_id, timestamp, action_type,
click_type, semantic_id, input_text, url, simplified_html, rationale, products, element_meta,
page_meta, window_size, mouse_position, image``. The mapping to the Shop-R1 action space is the
paper's:

* ``input``     -> ``type_and_submit(name=semantic_id, text=input_text)``
* ``click``     -> ``click(name=semantic_id)``
* ``terminate`` -> ``terminate``
* ``scroll``, ``navigate``, ``tab_activate`` and the other context types -> trace *events*
  (context for replay, never training targets).

Rows are ordered per session by ``timestamp``, then ``action_id``. A row that cannot be mapped
(a click without ``semantic_id``, an input without ``input_text``, an unknown ``action_type``,
a timestamp that does not parse, ...) is counted under its reason, with examples of where it
was (``file:line``), in the returned :class:`ImportReport` and in ``run.json``'s summary --
never dropped silently. Each imported step's element table is parsed from its simplified HTML
once, here at the edge (:func:`shop_r1.simulator.records.trace.elements_from_html`), and stored whole in
the trace, so replay and training read it rather than the HTML. With a user table the session's persona is
attached (mapped to :class:`shop_r1.personas.model.Persona` where the profile allows, kept raw
otherwise).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from shop_r1.envs.actions import Action, Click, Terminate, TypeAndSubmit
from shop_r1.envs.controls import control_label
from shop_r1.envs.funnel import step_events
from shop_r1.envs.pagetype import classify
from shop_r1.envs.purchase import order_confirmation
from shop_r1.envs.observation import Element, Observation
from shop_r1.personas.library import LibraryDataError, opera_to_persona
from shop_r1.simulator.records.trace import TraceWriter, elements_from_html, trace_elements

log = logging.getLogger(__name__)

OPERA_COLUMNS: tuple[str, ...] = (
    "session_id", "action_id", "timestamp", "action_type", "click_type", "semantic_id", "input_text", "url",
    "simplified_html", "rationale", "products", "element_meta", "page_meta", "window_size", "mouse_position",
    "image",
)
#: Action types kept as context events (not decisions).
CONTEXT_TYPES: frozenset[str] = frozenset({
    "scroll", "navigate", "tab_activate", "tab_open", "tab_close", "tab_switch", "hover", "page_load",
    "back", "forward", "reload", "focus", "blur", "key_press", "resize",
})
DECISION_TYPES: frozenset[str] = frozenset({"click", "input", "terminate"})
#: Fields carried along on each imported step under ``opera`` (the image is only flagged: it is large).
_CARRIED = ("action_id", "click_type", "timestamp", "products", "element_meta", "page_meta", "window_size",
            "mouse_position")
_EXAMPLES_PER_REASON = 5
#: OPeRA's own ``click_type`` for a click that bought something (its annotation, not our words).
_PURCHASE_CLICK_TYPE = "purchase"


class OperaImportError(ValueError):
    """The input cannot be imported at all (unreadable file, no rows, dataset unavailable)."""


@dataclass
class Row:
    """One input row and where it came from (``file:line`` or ``file:row N``)."""

    where: str
    data: dict[str, Any]


@dataclass
class ImportReport:
    out_dir: Path
    rows: int = 0
    sessions: int = 0
    steps: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    personas_mapped: int = 0
    personas_raw: int = 0
    sessions_without_persona: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples[reason]) < _EXAMPLES_PER_REASON:
            self.examples[reason].append(where)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "sessions": self.sessions, "steps": self.steps, "events": self.events,
            "skipped_rows": sum(self.skipped.values()), "skipped": dict(self.skipped),
            "skipped_examples": {k: list(v) for k, v in self.examples.items()},
            "personas_mapped": self.personas_mapped, "personas_raw": self.personas_raw,
            "sessions_without_persona": self.sessions_without_persona,
        }

    def render(self, console: Any) -> None:
        console.print(f"imported {self.rows} rows → {self.sessions} sessions, {self.steps} steps, "
                      f"{self.events} context events · trace: {self.out_dir}")
        if self.personas_mapped or self.personas_raw or self.sessions_without_persona:
            console.print(f"personas: {self.personas_mapped} mapped, {self.personas_raw} kept raw, "
                          f"{self.sessions_without_persona} sessions without a user profile")
        table = Table(title=f"rows not imported: {sum(self.skipped.values())}")
        table.add_column("reason")
        table.add_column("rows", justify="right")
        table.add_column("examples")
        for reason, n in self.skipped.most_common():
            table.add_row(reason, str(n), ", ".join(self.examples[reason]))
        if not self.skipped:
            table.add_row("-", "0", "every row was mapped")
        console.print(table)


# --------------------------------------------------------------------------------------------
# Reading rows
# --------------------------------------------------------------------------------------------


def _read_jsonl(path: Path, report: ImportReport | None) -> Iterator[Row]:
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                if report is None:
                    raise OperaImportError(f"{where}: not valid JSON: {exc.msg}") from None
                report.rows += 1
                report.skip("not valid JSON", where)
                continue
            if not isinstance(data, dict):
                if report is None:
                    raise OperaImportError(f"{where}: a row must be a JSON object")
                report.rows += 1
                report.skip("row is not a JSON object", where)
                continue
            yield Row(where, data)


def _read_parquet(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
        raise OperaImportError(f"{path}: reading Parquet needs pyarrow ({exc})") from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise OperaImportError(f"{path}: not a readable Parquet file: {exc}") from exc
    for index, data in enumerate(table.to_pylist()):
        yield Row(f"{path}:row {index}", data)


def read_rows(path: str | os.PathLike[str], report: ImportReport | None = None) -> Iterator[Row]:
    """Rows of an OPeRA file: Parquet (``.parquet``), JSON Lines, or a JSON list (``.json``).

    With a ``report``, unreadable JSON lines are counted there; without one they raise.
    """
    p = Path(path)
    if not p.is_file():
        raise OperaImportError(f"{p}: no such file")
    if p.suffix.lower() in (".parquet", ".pq"):
        yield from _read_parquet(p)
        return
    if p.suffix.lower() == ".json":
        text = p.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise OperaImportError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from None
            for index, item in enumerate(data):
                if not isinstance(item, dict):
                    if report is None:
                        raise OperaImportError(f"{p}: item {index} is not a JSON object")
                    report.rows += 1
                    report.skip("row is not a JSON object", f"{p}:item {index}")
                    continue
                yield Row(f"{p}:item {index}", item)
            return
    yield from _read_jsonl(p, report)


def load_hf_rows(name: str, config: str | None = None, split: str = "train") -> Iterator[Row]:
    """Rows of a Hugging Face dataset (e.g. ``NEU-HAI/OPeRA``), loaded through ``datasets``.

    Needs network access to the Hub (or a local cache); otherwise an :class:`OperaImportError`
    says so plainly.
    """
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise OperaImportError(f"--hf needs the 'datasets' package: {exc}") from exc
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown dataset, gated: datasets raises many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OperaImportError(
            f"could not load {name!r}{f' ({config})' if config else ''} split {split!r} from the Hugging Face "
            f"Hub: {type(exc).__name__}: {first}. This needs network access (or a local datasets cache); "
            "otherwise download the files elsewhere and pass them as FILE") from exc
    for index, data in enumerate(ds):
        yield Row(f"{name}:{split}:row {index}", dict(data))


# --------------------------------------------------------------------------------------------
# Users (personas)
# --------------------------------------------------------------------------------------------


def _user_id(record: Mapping[str, Any]) -> str | None:
    for key in ("user_id", "id", "participant_id"):
        value = record.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def load_users(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """User profiles by user id: a JSON list, ``{"personas": [...]}``, JSON Lines or Parquet."""
    p = Path(path)
    if not p.is_file():
        raise OperaImportError(f"{p}: no such users file")
    records: list[tuple[str, dict[str, Any]]] = []
    text = p.read_text(encoding="utf-8") if p.suffix.lower() not in (".parquet", ".pq") else ""
    if text.lstrip().startswith(("[", "{")) and p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OperaImportError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        items = data.get("personas", data.get("users")) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise OperaImportError(f"{p}: expected a list of user profiles (or {{\"personas\": [...]}})")
        records = [(f"{p}:item {i}", item) for i, item in enumerate(items)]
    else:
        records = [(row.where, row.data) for row in read_rows(p)]
    users: dict[str, dict[str, Any]] = {}
    for where, record in records:
        if not isinstance(record, dict):
            raise OperaImportError(f"{where}: a user profile must be a JSON object")
        uid = _user_id(record)
        if uid is None:
            raise OperaImportError(f"{where}: user profile without 'user_id' or 'id'")
        users[uid] = record
    return users


def persona_for(record: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(persona dict for run.json, mapped?) -- a :class:`Persona` when the profile maps, else raw."""
    uid = _user_id(record) or "unknown"
    profile = dict(record)
    profile.setdefault("id", uid)
    try:
        persona = opera_to_persona(profile, where=f"user {uid}")
    except (LibraryDataError, ValueError) as exc:
        log.info("user %s kept raw: %s", uid, exc)
        return {"persona_id": "opera-" + uid.replace("-", "")[:8], "user_id": uid, "raw": _jsonable(record),
                "mapping_error": str(exc)}, False
    return {**persona.model_dump(mode="json"), "user_id": uid}, True


def _user_of(row: Mapping[str, Any], session_id: str, users: Mapping[str, Any]) -> str | None:
    uid = row.get("user_id")
    if uid not in (None, "") and str(uid) in users:
        return str(uid)
    for candidate in users:  # OPeRA session ids start with the user id
        if session_id.startswith(candidate):
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# Mapping rows
# --------------------------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 text, epoch seconds or milliseconds, or a datetime -> an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"not a timestamp: {value!r}")
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, tz=UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return parse_timestamp(float(text))
    try:
        parsed = datetime.fromisoformat(text)  # 3.11 reads a trailing Z
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sort_key_action_id(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    text = str(value or "")
    return (0, int(text)) if text.isdigit() else (1, text)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _title(row: Mapping[str, Any]) -> str:
    meta = row.get("page_meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = None
    return str(meta.get("title") or "") if isinstance(meta, dict) else ""


def map_action(row: Mapping[str, Any]) -> Click | TypeAndSubmit | Terminate | str | None:
    """The Shop-R1 action of a decision row, ``None`` for a context row, or the reason (str) it
    cannot be mapped."""
    kind = _text(row.get("action_type")).lower()
    if kind == "click":
        name = _text(row.get("semantic_id"))
        return Click(name=name) if name else "click without semantic_id"
    if kind == "input":
        name = _text(row.get("semantic_id"))
        if not name:
            return "input without semantic_id"
        text = row.get("input_text")
        if not isinstance(text, str) or not text.strip():
            return "input without input_text"
        return TypeAndSubmit(name=name, text=text)
    if kind == "terminate":
        return Terminate()
    if kind in CONTEXT_TYPES:
        return None
    return f"unknown action_type {kind!r}" if kind else "missing action_type"


def _page(row: Row, elements: list[Element]) -> Observation | None:
    html = row.data.get("simplified_html")
    if not isinstance(html, str):
        return None
    return Observation(url=_text(row.data.get("url")), title=_title(row.data), simplified_html=html,
                       elements=tuple(elements))


def _orders_placed(decisions: list[tuple[Row, Action | None, datetime, list[Element]]]) -> set[int]:
    """Indices of the decisions whose action led to an order confirmation page (the next decision's
    page reads as one and this one's does not): the runner's order_placed rule, on a log."""
    pages = [_page(row, elements) for row, action, _, elements in decisions if action is not None]
    index = [i for i, (_, action, _, _) in enumerate(decisions) if action is not None]
    confirmed = [p is not None and order_confirmation(p) is not None for p in pages]
    return {index[k] for k in range(len(index) - 1) if confirmed[k + 1] and not confirmed[k]}


def _outcome(decisions: list[tuple[Row, Action | None, datetime, list[Element]]]) -> str:
    """The session's outcome: OPeRA's ``purchase`` annotation, else what its steps achieved by the
    funnel's one rule (:func:`shop_r1.envs.funnel.step_events`: the clicked controls' words and
    the pages seen, an order confirmation included), as the runner and the report decide it."""
    achieved: set[str] = set()
    for row, action, _, elements in decisions:
        if action is None:
            continue
        if isinstance(action, Click) and _text(row.data.get("click_type")).lower() == _PURCHASE_CLICK_TYPE:
            return "purchased"
        label = ""
        if isinstance(action, Click):
            label = control_label(action.name, next((el.text for el in elements if el.name == action.name), ""))
        seen = _page(row, elements)
        page = classify(seen) if seen is not None else None
        # A logged action happened: it executed.
        achieved |= step_events(action, label, executed=True, page_kind=page.type if page else None,
                                confirmation=page.confirmation if page else False)
    if "purchased" in achieved:
        return "purchased"
    if "added_to_cart" in achieved:
        return "added_to_cart"
    return "abandoned"


def import_opera(rows: Iterable[Row], out_dir: str | os.PathLike[str], *,
                 users: Mapping[str, Mapping[str, Any]] | None = None, source: str = "",
                 report: ImportReport | None = None, run_id: str | None = None) -> ImportReport:
    """Write the rows as a trace in ``out_dir`` (``trace.jsonl`` + ``run.json``); see the module doc."""
    out = Path(out_dir)
    report = report or ImportReport(out_dir=out)
    report.out_dir = out
    sessions: dict[str, list[tuple[datetime, Any, Row]]] = {}
    for row in rows:
        report.rows += 1
        sid = row.data.get("session_id")
        if sid in (None, "") or not isinstance(sid, (str, int)):
            report.skip("missing session_id", row.where)
            continue
        try:
            ts = parse_timestamp(row.data.get("timestamp"))
        except (ValueError, OverflowError, OSError):
            report.skip("bad timestamp", row.where)
            continue
        sessions.setdefault(str(sid), []).append((ts, _sort_key_action_id(row.data.get("action_id")), row))
    if report.rows == 0:
        raise OperaImportError(f"{source or 'the input'}: no rows to import")

    users = users or {}
    personas: dict[str, dict[str, Any]] = {}  # user id -> persona dict
    session_user: dict[str, str | None] = {}
    for sid, items in sessions.items():
        uid = _user_of(items[0][2].data, sid, users) if users else None
        session_user[sid] = uid
        if uid is not None and uid not in personas:
            persona, persona_mapped = persona_for(users[uid])
            personas[uid] = persona
            report.personas_mapped += persona_mapped
            report.personas_raw += not persona_mapped
        if uid is None and users:
            report.sessions_without_persona += 1

    config = {"source": "opera", "input": source, "rows": report.rows,
              "mapping": "input->type_and_submit, click->click, terminate->terminate, others->events"}
    writer = TraceWriter(out, run_id=run_id or f"opera-{time.strftime('%Y%m%d-%H%M%S')}", config=config,
                         personas=list(personas.values()))
    try:
        for sid, items in sessions.items():
            items.sort(key=lambda t: (t[0], t[1]))
            uid = session_user[sid]
            persona_id = personas[uid]["persona_id"] if uid is not None else None
            mapped: list[tuple[Row, Action | None, datetime, list[Element]]] = []
            for ts, _, row in items:
                action = map_action(row.data)
                if isinstance(action, str):
                    report.skip(action, row.where)
                    continue
                html = row.data.get("simplified_html")
                elements = elements_from_html(html) if action is not None and isinstance(html, str) else []
                mapped.append((row, action, ts, elements))
            # The last decision ends the session (it carries the outcome); a terminate earlier in
            # the log (the shopper came back) stays an ordinary step.
            k = 0
            last_decision = max((i for i, (_, a, _, _) in enumerate(mapped) if a is not None), default=-1)
            placed = _orders_placed(mapped)
            for i, (row, action, ts, elements) in enumerate(mapped):
                d = row.data
                if action is None:
                    writer.write_event(sid, _text(d.get("action_type")).lower(), step=k, persona_id=persona_id,
                                       url=_text(d.get("url")) or None, title=_title(d) or None,
                                       data={"opera": _carried(d), "where": row.where}, ts=ts.isoformat())
                    report.events += 1
                    continue
                done = i == last_decision
                html = d.get("simplified_html") if isinstance(d.get("simplified_html"), str) else ""
                writer.write_step({
                    "session_id": sid, "step": k, "persona_id": persona_id, "url": _text(d.get("url")),
                    "title": _title(d), "simplified_html": html, "action": action,
                    "rationale": _text(d.get("rationale")), "elements": trace_elements(elements),
                    "ts": ts.isoformat(), "done": done,
                    "outcome": _outcome(mapped) if done else None,
                    "events": ["order_placed"] if i in placed else [],
                    "end_reason": (None if not done else "the shopper closed the browser"
                                   if isinstance(action, Terminate) else "the log ends here (no terminate action)"),
                    "opera": _carried(d), "source_row": row.where,
                })
                report.steps += 1
                k += 1
            if last_decision < 0:
                writer.write_event(sid, "session_end", step=0, persona_id=persona_id, outcome="abandoned",
                                   end_reason="no row of this session maps to a decision")
            report.sessions += 1
        writer.finish({"import": report.to_json()})
    except BaseException:
        writer.finish({"status": "error", "import": report.to_json()})
        raise
    log.info("imported %d rows into %s: %d steps, %d events, %d skipped", report.rows, out, report.steps,
             report.events, sum(report.skipped.values()))
    return report


def _carried(d: Mapping[str, Any]) -> dict[str, Any]:
    carried = {k: _jsonable(d[k]) for k in _CARRIED if d.get(k) not in (None, "")}
    if d.get("image"):
        carried["has_image"] = True
    return carried


__all__ = [
    "CONTEXT_TYPES",
    "DECISION_TYPES",
    "OPERA_COLUMNS",
    "ImportReport",
    "OperaImportError",
    "Row",
    "import_opera",
    "load_hf_rows",
    "load_users",
    "map_action",
    "parse_timestamp",
    "persona_for",
    "read_rows",
]
