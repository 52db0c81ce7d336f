"""A fetched page's HTML read the way the shared page classifier reads a reduced page.

The crawl uses plain HTTP (a browser per page would make a 40-page crawl take minutes), so
there is no reducer output to classify. Rather than a second set of page rules, the raw HTML is
turned into what :func:`shop_r1.envs.pagetype.classify` reads — the document without scripts,
styles and hidden inputs, every control stamped with a ``name``, and an element table — so the
crawl and the shoppers agree on what a product page or a listing is. The stamped names map back
to the links' URLs, which the crawl follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
from lxml.etree import ParserError

from shop_r1.envs.observation import Element
from shop_r1.envs.pagetype import PRICE_TEXT, PageClass, classify

_DROP = ("script", "style", "noscript", "svg", "template", "iframe", "head")
_QUANTITY = re.compile(r"\b(?:qty|quantity|menge|anzahl)\b", re.I)
_PLACEHOLDER = re.compile(r"^\s*(?:-+|select|choose|pick|please select|select an? \w+|--.*--|)\s*$", re.I)
_SORT_OR_FILTER = re.compile(r"\bsort\b|\bfilter\b|\bper page\b|\bsearch in\b|\bdepartment|\bcategor", re.I)


class PageReadError(ValueError):
    """The body is not HTML that can be parsed; the message names the URL."""


@dataclass(frozen=True)
class _View:
    """The :class:`shop_r1.envs.pagetype.PageView` protocol over a fetched document."""

    title: str
    simplified_html: str
    elements: tuple[Element, ...]


@dataclass(frozen=True)
class Link:
    name: str
    url: str  # absolute, without fragment
    text: str


@dataclass(frozen=True)
class HtmlPage:
    """One fetched page: its class, its links (by stamped name) and its product facts."""

    url: str
    title: str
    page: PageClass
    links: dict[str, Link]
    options: dict[str, list[str]] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    currency_marks: tuple[str, ...] = ()

    def same_origin_links(self) -> list[Link]:
        origin = urlsplit(self.url)[:2]
        return [link for link in self.links.values() if urlsplit(link.url)[:2] == origin]


def _text(node: lxml.html.HtmlElement) -> str:
    return " ".join(" ".join(node.itertext()).split())


def _label_for(root: lxml.html.HtmlElement, node: lxml.html.HtmlElement) -> str:
    """A control's visible label: <label for=id>, an enclosing <label> or <fieldset>'s legend, aria-label."""
    ident = node.get("id")
    if ident:
        for label in root.iter("label"):
            if label.get("for") == ident:
                return _text(label).rstrip(":").strip()
    for anc in node.iterancestors():
        if anc.tag == "fieldset":
            legend = anc.find("legend")
            if legend is not None:
                return _text(legend).rstrip(":").strip()
    return (node.get("aria-label") or node.get("name") or "").strip()


def _options(root: lxml.html.HtmlElement) -> dict[str, list[str]]:
    """The product's choices (size, colour…): selects and radio groups, quantity and sort left out."""
    out: dict[str, list[str]] = {}
    for sel in root.iter("select"):
        label = _label_for(root, sel)
        if not label or _QUANTITY.search(label) or _SORT_OR_FILTER.search(label):
            continue
        values = [_text(o) for o in sel.iter("option") if o.get("value", "x") != "" and not _PLACEHOLDER.match(_text(o))]
        if values:
            out[label] = values
    radios: dict[str, list[lxml.html.HtmlElement]] = {}
    for inp in root.iter("input"):
        group_name = inp.get("name")
        if (inp.get("type") or "").lower() == "radio" and group_name:
            radios.setdefault(group_name, []).append(inp)
    for name, group in radios.items():
        label = _label_for(root, group[0]) or name
        if _QUANTITY.search(label) or _SORT_OR_FILTER.search(label):
            continue
        values = []
        for inp in group:
            parent = inp.getparent()
            text = _text(parent) if parent is not None and parent.tag == "label" else ""
            values.append(text or (inp.get("value") or "").strip())
        values = [v for v in values if v]
        if values:
            out[label] = values
    return out


def _attributes(root: lxml.html.HtmlElement) -> dict[str, str]:
    """Facts shown as two-column rows (``<tr><th>Material</th><td>Synthetic</td>``) or ``<dl>``."""
    out: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for tr in root.iter("tr"):
        cells = [c for c in tr if isinstance(c.tag, str) and c.tag in ("th", "td")]
        if len(cells) == 2 and not cells[0].findall(".//a"):
            pairs.append((_text(cells[0]), _text(cells[1])))
    for dl in root.iter("dl"):
        for dt in dl.iter("dt"):
            dd = dt.getnext()
            if dd is not None and dd.tag == "dd":
                pairs.append((_text(dt), _text(dd)))
    for key, value in pairs:
        key = key.rstrip(":").strip()
        if 0 < len(key) <= 40 and 0 < len(value) <= 80 and not PRICE_TEXT.search(key + " " + value):
            out.setdefault(key, value)
    return out


def read_page(url: str, body: str) -> HtmlPage:
    """Classify one fetched page and collect its links, options and attributes."""
    try:
        doc = lxml.html.document_fromstring(body)
    except (ParserError, ValueError) as exc:
        raise PageReadError(f"{url}: not parseable HTML ({exc})") from exc
    title_node = doc.find(".//title")
    title = _text(title_node) if title_node is not None else ""
    for bad in doc.xpath("|".join(f"//{t}" for t in _DROP)):
        bad.drop_tree()
    for hidden in doc.xpath("//input[@type='hidden']"):
        hidden.drop_tree()
    body_node = doc.find(".//body")
    root = body_node if body_node is not None else doc
    options, attributes = _options(root), _attributes(root)
    elements: list[Element] = []
    links: dict[str, Link] = {}
    for i, node in enumerate(root.iter("a", "button", "input", "select", "textarea")):
        name = f"e{i}"
        tag = str(node.tag)  # iter() with tag names yields elements only, whose tag is a str
        input_type = (node.get("type") or ("submit" if tag == "button" else "text")).lower()
        if tag == "a":
            href = node.get("href")
            text = _text(node) or (node.get("aria-label") or "").strip()
            if href and not href.startswith(("javascript:", "mailto:", "tel:")):
                links[name] = Link(name=name, url=urldefrag(urljoin(url, href))[0], text=text)
            elements.append(Element(name=name, kind="clickable", text=text, tag=tag))
        elif tag == "select":
            opts = tuple(_text(o) for o in node.iter("option"))
            elements.append(Element(name=name, kind="select", text=_label_for(root, node), tag=tag, options=opts))
        elif tag == "button" or input_type in ("submit", "button", "image"):
            text = _text(node) or (node.get("value") or node.get("aria-label") or "").strip()
            elements.append(Element(name=name, kind="clickable", text=text, tag=tag, input_type=input_type))
        else:
            elements.append(Element(name=name, kind="input", text=_label_for(root, node), tag=tag,
                                    input_type=input_type))
        node.set("name", name)
    html_text = lxml.html.tostring(root, encoding="unicode")
    page = classify(_View(title=title, simplified_html=html_text, elements=tuple(elements)))
    marks = tuple(m.group(0) for m in PRICE_TEXT.finditer(_text(root)))
    return HtmlPage(url=url, title=title, page=page, links=links, options=options, attributes=attributes,
                    currency_marks=marks)
