"""The element table of a simplified page, parsed from its HTML.

Only two edges use it: schema-1 trace lines (which kept ``name``/``kind``/``text`` only) are
completed with it once when they are read, and the OPeRA importer builds the table of a raw
log row with it once when it writes the trace. Everything after those edges reads the table
the trace stores.
"""

from __future__ import annotations

import logging
import re

from lxml import etree
from lxml import html as lxml_html

from shop_r1.envs.observation import Element, ElementKind

log = logging.getLogger(__name__)

#: Input types that are pressed, not typed into: their element kind is ``clickable``.
_BUTTON_INPUT_TYPES = frozenset({"submit", "button", "reset", "image", "checkbox", "radio", "file"})
_TEXT_CHARS = 120


def _clean_text(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()[:_TEXT_CHARS]


def _kind_of(tag: str, input_type: str) -> ElementKind:
    if tag == "select":
        return "select"
    if tag == "textarea" or (tag == "input" and input_type not in _BUTTON_INPUT_TYPES):
        return "input"
    return "clickable"


def elements_from_html(simplified_html: str) -> list[Element]:
    """Every tag with a ``name="…"`` attribute, as an element (the first of a name wins).

    ``kind`` comes from the tag (``select``; ``input``/``textarea`` that take text; everything
    else is clickable), ``text`` from the visible text (or placeholder / aria-label / value for
    inputs).
    """
    if not simplified_html or "name=" not in simplified_html:
        return []
    try:
        root = lxml_html.fragment_fromstring(simplified_html, create_parent="div")
    except (etree.ParserError, ValueError) as exc:
        log.warning("simplified HTML could not be parsed for element names (%s)", exc)
        return []
    found: dict[str, Element] = {}
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue  # comments, processing instructions
        name = (node.get("name") or "").strip()
        if not name or name in found:
            continue
        tag = node.tag.lower()
        input_type = (node.get("type") or ("text" if tag == "input" else "")).lower()
        kind = _kind_of(tag, input_type)
        options: tuple[str, ...] = ()
        if tag == "select":
            options = tuple(_clean_text(o.text_content()) for o in node.iter("option"))
        if kind == "input":
            text = node.get("aria-label") or node.get("placeholder") or node.get("title") or node.get("value") or ""
        else:
            text = node.text_content() or node.get("aria-label") or node.get("value") or node.get("title") or ""
        found[name] = Element(name=name, kind=kind, text=_clean_text(text), tag=tag,
                              input_type=input_type if tag in ("input", "textarea") else "",
                              options=options, disabled=node.get("disabled") is not None)
    return list(found.values())
