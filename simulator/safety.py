"""Safety for runs against staging shops: origins, purchases and secrets.

A simulated shopper must never buy for real by accident or leak a typed secret into a trace
that gets shared for training, so these checks sit in the runner, outside any policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from shop_r1.envs.observation import Element

REDACTED = "[REDACTED]"
_SECRET_FIELD = re.compile(
    r"pass(?:word|wd|code)?|pwd|card|cc[-_ ]?(?:num|number)|cvv|cvc|security[-_ ]?code|iban|"
    r"\bssn\b|social[-_ ]?security|e-?mail|otp|one[-_ ]?time|\bpin\b|token|secret", re.I)
_SECRET_VALUE = re.compile(r"^\s*(?:\d[ -]?){13,19}\s*$|^[^@\s]+@[^@\s]+\.[^@\s]+$")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def allowed_origins(start_url: str, extra: Iterable[str] = ()) -> list[str]:
    """The start URL's origin plus any the user adds (``--allow-origin``), normalised."""
    origins = [origin_of(start_url)]
    for item in extra:
        o = origin_of(item if "://" in item else f"http://{item}")
        if o not in origins:
            origins.append(o)
    return origins


def is_secret_field(element: Element | None, name: str = "") -> bool:
    if element is not None:
        if element.input_type in ("password", "email"):
            return True
        label = f"{element.name} {element.text} {element.input_type}"
    else:
        label = name
    return bool(_SECRET_FIELD.search(label))


def redact_text(text: str, element: Element | None, name: str = "") -> str:
    """The value to record for a typed text: redacted when the field or the value looks secret."""
    if is_secret_field(element, name) or _SECRET_VALUE.match(text or ""):
        return REDACTED
    return text
