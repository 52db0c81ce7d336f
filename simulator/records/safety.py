"""Safety for runs against staging shops: origins, purchases and secrets.

A simulated shopper must never buy for real by accident or leak a typed secret into a trace
that gets shared for training, so these checks sit in the runner, outside any policy.

Redaction is not cosmetic: a password typed at step 3 comes back in step 3's raw model output,
in step 4's URL (``?password=hunter2`` after a GET form), its title and its page HTML. So a
:class:`Redactor` lives for one session, remembers every secret typed so far, and scrubs every
string of every record written after (and of the step that typed it) — plus values that look
like secrets wherever they appear (Luhn-valid card numbers, mod-97-valid IBANs, e-mail
addresses) and the values of secret-named URL query parameters.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from shop_r1.envs.hops import origin_of
from shop_r1.envs.observation import Element

REDACTED = "[REDACTED]"
_SECRET_FIELD = re.compile(
    r"pass(?:word|wd|code)?|pwd|card|cc[-_ ]?(?:num|number)|cvv|cvc|security[-_ ]?code|iban|"
    r"\bssn\b|social[-_ ]?security|e-?mail|otp|one[-_ ]?time|\bpin\b|token|secret", re.I)
_SECRET_VALUE = re.compile(r"^\s*(?:\d[ -]?){13,19}\s*$|^[^@\s]+@[^@\s]+\.[^@\s]+$")


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


# -- the session's redactor -------------------------------------------------------------------

_CARD_CANDIDATE = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?![\d.])")
_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_EMAIL_ENCODED = re.compile(r"[A-Za-z0-9._+\-]+%40[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_SECRET_QUERY_KEY = re.compile(
    r"pass|pwd|card|cc_?num|cvv|cvc|security_?code|iban|ssn|e-?mail|otp|pin$|token|secret|auth|session_?key", re.I)
#: Typed values shorter than this are not hunted down in later pages (a PIN "12" would blank
#: every "12" in the catalogue); the typed field itself is still redacted.
MIN_REMEMBERED = 4


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _scrub_patterns(text: str) -> str:
    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return REDACTED if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)

    def iban(m: re.Match[str]) -> str:
        return REDACTED if _iban_ok(m.group(0)) else m.group(0)

    text = _CARD_CANDIDATE.sub(card, text)
    text = _IBAN_CANDIDATE.sub(iban, text)
    text = _EMAIL.sub(REDACTED, text)
    return _EMAIL_ENCODED.sub(quote(REDACTED), text)


def scrub_url(url: str) -> str:
    """The URL with values of secret-named query parameters (``password=``, ``card=``) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(_SECRET_QUERY_KEY.search(k) for k, _ in pairs):
        return url
    masked = [(k, REDACTED if _SECRET_QUERY_KEY.search(k) and v else v) for k, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(masked)))


@dataclass
class Redactor:
    """What one session must never write: the secrets typed so far, and secret-looking values.

    ``enabled=False`` (``--no-redact``, for a shop with only fake data) records everything as is.
    """

    enabled: bool = True
    _secrets: set[str] = field(default_factory=set)

    def typed(self, text: str, element: Element | None, name: str = "") -> str:
        """The value to record for a typed text; a secret one is remembered for later pages."""
        if not self.enabled:
            return text
        if redact_text(text, element, name) == REDACTED:
            if len(text.strip()) >= MIN_REMEMBERED:
                self._secrets.add(text.strip())
            return REDACTED
        return text

    def _forms(self) -> list[str]:
        forms: set[str] = set()
        for secret in self._secrets:
            forms.update({secret, quote(secret, safe=""), quote_plus(secret), html_lib.escape(secret),
                          quote(secret), secret.replace(" ", "")})
        return sorted((f for f in forms if len(f) >= MIN_REMEMBERED), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every remembered secret (raw, URL- or HTML-encoded) and every
        secret-looking value replaced by ``[REDACTED]``."""
        if not self.enabled or not text:
            return text
        for form in self._forms():
            if form in text:
                text = text.replace(form, REDACTED)
        return _scrub_patterns(text)

    def scrub_value(self, value: Any) -> Any:
        """Every string inside a JSON-like value (dicts, lists, tuples) scrubbed; URLs also by key."""
        if not self.enabled:
            return value
        if isinstance(value, str):
            out = self.scrub(value)
            return scrub_url(out) if out.startswith(("http://", "https://")) else out
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub_value(v) for v in value)
        return value
