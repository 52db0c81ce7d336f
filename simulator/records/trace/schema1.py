"""Schema-1 lines, converted once where they are read into the schema-2 shape.

Schema 1 stored each element as ``{name, kind, text}`` only, so tag, input type, options and
disabled state are rebuilt here from the line's own simplified HTML -- the only place a trace's
HTML is parsed for its table. A schema-1 step without a table gets the whole table from the
HTML (imported logs wrote none in early versions). Everything else in schema 1 is already a
valid schema-2 value (``parse_error`` gains an empty ``detail``).
"""

from __future__ import annotations

from typing import Any

from shop_r1.simulator.records.trace.convert import trace_element
from shop_r1.simulator.records.trace.html_elements import elements_from_html
from shop_r1.simulator.records.trace.schema import SCHEMA_VERSION


def _elements(recorded: Any, simplified_html: str) -> Any:
    parsed = {el.name: trace_element(el).model_dump() for el in elements_from_html(simplified_html)}
    if not isinstance(recorded, list) or not recorded:
        return list(parsed.values())
    table = []
    for rec in recorded:
        if not isinstance(rec, dict):
            table.append(rec)  # left for validation to name
            continue
        from_html = parsed.get(str(rec.get("name")), {})
        table.append({**{k: v for k, v in from_html.items() if k not in ("name", "kind", "text")}, **rec})
    return table


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 step or event (decoded JSON) as the schema-2 record it stands for."""
    out = {**data, "schema_version": SCHEMA_VERSION}
    if out.get("kind", "step") != "step":
        return out
    recorded_html = out.get("simplified_html")
    html = recorded_html if isinstance(recorded_html, str) else ""
    out["elements"] = _elements(out.get("elements"), html)
    error = out.get("parse_error")
    if isinstance(error, dict):
        out["parse_error"] = {"detail": {}, **error}
    return out
