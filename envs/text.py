"""Page text is data, never terminal control: the one place that says which characters go.

A storefront's link and product texts can hold C0/C1 control characters, on purpose or not:
``ESC [2J`` clears a terminal, an OSC 8 sequence (``ESC ] 8 ;; URL ESC \\``) turns the following
words into a hyperlink to another site, a bare ``CR`` overwrites the line a person is reading.
Text that the reducer emits is read by people (``shop-r1 replay``, ``observe``, summaries and
errors) and by models (prompts, traces, datasets), and none of them wants the controls: the
reducer drops them from every text it emits, the trace models drop them from every string read
or written (older traces included), and the terminal views print what remains as plain text
(rich ``Text`` or ``escape``, never as markup).

Newline and tab survive where a text has lines (the simplified HTML, a model's raw output) and
become spaces where a text is one line (an element's text, a title, a name).
"""

from __future__ import annotations

import logging
import re

# A whole escape sequence goes, so its payload does not stay behind as text: CSI (ESC [ or the C1
# CSI U+009B, parameters, a final byte), OSC/DCS/APC/PM/SOS strings up to BEL or ST, and
# two-character escapes. Then every remaining C0 (U+0000-U+001F) but tab and newline, DEL
# (U+007F) and C1 (U+0080-U+009F) character. CR goes too: on its own it moves the cursor back over
# what a person is reading. reduce.js and executor_prepare.js apply the same two patterns.
_SEQUENCE = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b[\]P^_X]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -~]"
_CONTROLS = re.compile(rf"{_SEQUENCE}|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_AND_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BREAKS = re.compile(r"[\t\n]")


def strip_controls(text: str) -> str:
    """``text`` without control characters; newline and tab kept (a text with lines)."""
    return _CONTROLS.sub("", text)


def one_line(text: str) -> str:
    """``text`` without control characters, newline and tab turned into spaces (a one-line text)."""
    if not _CONTROLS_AND_BREAKS.search(text):
        return text
    return _CONTROLS.sub("", _BREAKS.sub(" ", text))


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character :func:`strip_controls` would drop."""
    return _CONTROLS.search(text) is not None


class TerminalSafeFormatter(logging.Formatter):
    """A log formatter whose lines carry no control characters: log messages quote pages (a URL,
    a control's text, the browser's error), and a log goes to the same terminal a person reads."""

    def format(self, record: logging.LogRecord) -> str:
        return strip_controls(super().format(record))


def log_to_terminal(level: int) -> None:
    """Set up logging for a command-line run: ``LEVEL name: message`` lines on stderr, control
    characters dropped (:class:`TerminalSafeFormatter`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalSafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


STOP_WORDS = set(
    "i im i'm a an the and or for of to in on with want need looking some that is are be it my me "
    "would like please buy get find which who whose also than lower less price dollars dollar under "
    "between about around from this these those has have having can am its also".split()
)


def tokens(text: str) -> set[str]:
    """Lower-cased content words (3+ chars or digits), stop words removed."""
    words = re.findall(r"[^\W_]+", text.lower().replace("_", " "))  # any alphabet: "mérinos" is one word
    return {w for w in words if w not in STOP_WORDS and (len(w) > 2 or w.isdigit())}
