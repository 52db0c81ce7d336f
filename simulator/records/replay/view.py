"""The terminal view of recorded sessions: a session header, then one step at a time.

A step shows the page the shopper saw (simplified HTML, syntax-coloured, with the action's target
element highlighted), the rationale, the action, errors and timings. Pages can be megabytes, so
by default only the region around the target is shown (``full=True`` shows everything), long
lines are cut and one-line pages are broken at tag boundaries first.

Three ways to use it: :class:`ReplayViewer` (interactive, keys from :func:`read_key` on a TTY or
:func:`read_line_command` otherwise), :func:`print_sessions` (every step in order, for pipes) and
:func:`step_json` (one JSON object per step).
"""

from __future__ import annotations

import html as html_lib
import logging
import os
import re
import select
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, Literal

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from shop_r1.envs.actions import Action, Click, TypeAndSubmit
from shop_r1.simulator.records.replay import ReplaySession, ReplayTrace
from shop_r1.simulator.records.trace import TraceEvent, TraceStep

log = logging.getLogger(__name__)

#: Lines shown around the target element when the page is not shown in full.
CONTEXT_LINES = 12
#: Lines of a page shown from the top when there is no target (terminate, no action).
HEAD_LINES = 2 * CONTEXT_LINES
#: Longer lines are cut (around the target's name on the target line).
MAX_LINE_CHARS = 240

_OUTCOME_STYLE = {
    "purchased": "bold green", "added_to_cart": "green", "abandoned": "yellow", "max_steps": "yellow",
    "unfinished": "magenta", "timeout": "red", "policy_error": "red", "browser_error": "red",
    "interrupted": "magenta", "order_placed": "bold white on red", "bot_wall": "red", "stuck": "magenta",
}

Command = Literal["next", "prev", "jump", "session", "quit", "full", "help", "none"]


# --------------------------------------------------------------------------------------------
# The page excerpt
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageExcerpt:
    """The part of a page to show: lines ``start..end`` (1-based, inclusive) of ``code``."""

    code: str
    start: int
    end: int
    total_lines: int
    target_line: int | None  # 1-based line of the target element, None when not on the page
    cut_lines: int  # lines shortened to MAX_LINE_CHARS


def _page_lines(simplified_html: str) -> list[str]:
    lines = simplified_html.splitlines() or [""]
    if any(len(line) > 4 * MAX_LINE_CHARS for line in lines):
        # A page written on one line (imported logs, minified HTML): one tag per line.
        lines = [part for line in lines for part in re.sub(r">\s*<", ">\n<", line).split("\n")]
    return lines


def _cut(line: str, around: int | None = None) -> tuple[str, bool]:
    if len(line) <= MAX_LINE_CHARS:
        return line, False
    if around is None or around < MAX_LINE_CHARS // 2:
        return line[: MAX_LINE_CHARS - 1] + "…", True
    start = max(0, around - MAX_LINE_CHARS // 3)
    return "…" + line[start: start + MAX_LINE_CHARS - 2] + "…", True


def page_excerpt(simplified_html: str, target: str | None, *, full: bool = False,
                 context: int = CONTEXT_LINES) -> PageExcerpt:
    """Which lines of the page to show: around ``target``'s ``name="…"`` (or the top)."""
    lines = _page_lines(simplified_html)
    needle = f'name="{html_lib.escape(target, quote=True)}"' if target else None
    target_index = None
    if needle is not None:
        target_index = next((i for i, line in enumerate(lines) if needle in line), None)
    if full:
        start, end = 0, len(lines) - 1
    elif target_index is not None:
        start, end = max(0, target_index - context), min(len(lines) - 1, target_index + context)
    else:
        start, end = 0, min(len(lines) - 1, HEAD_LINES - 1)
    shown: list[str] = []
    cut = 0
    for i in range(start, end + 1):
        line = lines[i]
        if not full:
            pos = line.find(needle) if (needle and i == target_index) else None
            line, was_cut = _cut(line, pos)
            cut += was_cut
        shown.append(line)
    # Syntax's line_range numbers the real lines, so the excerpt is padded with the hidden ones.
    code = "\n".join([""] * start + shown)
    return PageExcerpt(code=code, start=start + 1, end=end + 1, total_lines=len(lines),
                       target_line=None if target_index is None else target_index + 1, cut_lines=cut)


def render_page(step: TraceStep, *, full: bool = False) -> RenderableType:
    target = step.target_name
    ex = page_excerpt(step.simplified_html, target, full=full)
    if not step.simplified_html.strip():
        return Panel(Text("(no page recorded)", style="dim"), title="page", border_style="dim")
    syntax = Syntax(ex.code, "html", line_numbers=True, line_range=(ex.start, ex.end), word_wrap=True,
                    highlight_lines={ex.target_line} if ex.target_line else None, theme="ansi_dark")
    notes: list[str] = []
    if ex.start > 1:
        notes.append(f"{ex.start - 1} lines above")
    if ex.end < ex.total_lines:
        notes.append(f"{ex.total_lines - ex.end} lines below")
    if ex.cut_lines:
        notes.append(f"{ex.cut_lines} long lines cut")
    hidden = f" · {', '.join(notes)} (--full shows all)" if notes and not full else ""
    where = Text(f"target on line {ex.target_line}") if ex.target_line else (
        Text(f"target {target!r} is not on this page", style="red") if target else Text("no target"))
    return Panel(syntax, title=Text(f"page · {len(step.simplified_html):,} chars · ").append_text(where),
                 subtitle=hidden.strip(" ·") or None, border_style="blue")


# --------------------------------------------------------------------------------------------
# Steps and sessions
# --------------------------------------------------------------------------------------------


def action_text(action: Action | None) -> Text:
    if action is None:
        return Text("no action", style="bold red")
    text = Text(action.type, style="bold cyan")
    if isinstance(action, (Click, TypeAndSubmit)):
        text.append(" → ").append(action.name, style="bold reverse")
    if isinstance(action, TypeAndSubmit):
        text.append(" ← ").append(repr(action.text), style="green")
    return text


def session_header(session: ReplaySession, trace: ReplayTrace | None = None) -> RenderableType:
    p = session.persona.model_dump() if session.persona is not None else (session.persona_record or {})
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("session", Text(session.session_id))
    who = ", ".join(str(p[k]) for k in ("age_band", "gender", "income", "employment", "location") if p.get(k))
    grid.add_row("persona", Text(f"{session.persona_id or '-'}" + (f"  ({who})" if who else "")))
    grid.add_row("intent", Text(session.intent or "-"))
    outcome = Text(session.outcome, style=_OUTCOME_STYLE.get(session.outcome, ""))
    if session.end_reason:
        outcome.append(f"  {session.end_reason}", style="dim")
    grid.add_row("outcome", outcome)
    grid.add_row("steps", f"{len(session.steps)} decisions, "
                 f"{len([e for e in session.events if e.event != 'session_end'])} context events")
    if trace is not None and trace.problems:
        grid.add_row("problems", Text("; ".join(str(p) for p in trace.problems[:3]), style="yellow"))
    return Panel(grid, title="recorded session", border_style="magenta")


def _event_line(e: TraceEvent) -> str:
    data = ", ".join(f"{k}={v}" for k, v in list(e.data.items())[:4])
    return f"{e.event}" + (f" {e.url}" if e.url else "") + (f" ({data})" if data else "")


def render_step(session: ReplaySession, index: int, *, full: bool = False) -> RenderableType:
    """One recorded step: page (target highlighted), rationale, action, errors, timings."""
    step = session.steps[index]
    parts: list[RenderableType] = []
    events = session.events_before(step.step)
    if events:
        parts.append(Text("context before this step: " + "; ".join(_event_line(e) for e in events), style="dim"))
    parts.append(render_page(step, full=full))
    parts.append(Text.assemble(("rationale  ", "bold"), (step.rationale or "(none)", "italic")))
    line = Text.assemble(("action     ", "bold"), action_text(step.action))
    name = step.target_name
    if name:
        el = step.element(name)
        if el is not None:
            line.append(f"   [{el.kind}: {el.text!r}]", style="dim")
        elif step.elements:
            line.append("   not in the page's element table", style="red")
    parts.append(line)
    if step.parse_error is not None:
        parts.append(Text(f"parse error  {step.parse_error.code}: {step.parse_error.message}", style="red"))
        if step.raw_output:
            parts.append(Text(f"raw output   {step.raw_output[:400]}", style="dim"))
    if step.exec_error is not None:
        err = step.exec_error
        msg = f"exec error   {err.code}: {err.message}"
        if err.suggestions:
            msg += f"  (suggestions: {', '.join(err.suggestions)})"
        parts.append(Text(msg, style="red"))
    timing = ", ".join(f"{k} {v:g}" for k, v in step.timings.items())
    tokens = f"tokens {step.tokens.prompt}+{step.tokens.completion}" if (step.tokens.prompt or step.tokens.completion) else ""
    parts.append(Text(" · ".join(x for x in (timing, tokens, step.ts) if x), style="dim"))
    if "order_placed" in step.events:
        parts.append(Text("ORDER PLACED by this step" + ("" if step.outcome == "order_placed" else
                                                        " (purchases were allowed)"), style="bold white on red"))
    if step.done:
        parts.append(Text(f"session ended: {step.outcome}" + (f" ({step.end_reason})" if step.end_reason else ""),
                          style=_OUTCOME_STYLE.get(step.outcome or "", "bold")))
    # Text, not a markup string: a page title is the shop's words ("[link=…]" included).
    title = Text(f"step {step.step} ({index + 1}/{len(session.steps)}) · {step.title or ''} · {step.url}")
    return Panel(Group(*parts), title=title, title_align="left", border_style="cyan")


def sessions_table(trace: ReplayTrace) -> Table:
    table = Table(title=f"{trace.path} · {len(trace.sessions)} sessions")
    table.add_column("#", justify="right")
    table.add_column("session", no_wrap=True)
    table.add_column("persona", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("intent", no_wrap=True, overflow="ellipsis", max_width=40)
    table.add_column("steps", justify="right")
    table.add_column("events", justify="right")
    table.add_column("outcome")
    for i, s in enumerate(trace.sessions, 1):
        info = s.summary()
        # Text cells: an intent drawn from a shop's catalogue is the shop's words, never markup.
        table.add_row(str(i), Text(s.session_id), Text(s.persona_id or "-"), Text(s.intent or "-"),
                      str(info["steps"]), str(info["events"]),
                      Text(s.outcome, style=_OUTCOME_STYLE.get(s.outcome, "")))
    return table


def print_sessions(trace: ReplayTrace, sessions: Iterable[ReplaySession], console: Console, *,
                   from_step: int = 0, full: bool = False) -> int:
    """Every step of every given session, in order (the non-interactive view); returns steps shown."""
    shown = 0
    for session in sessions:
        console.print(session_header(session, trace))
        steps = [i for i, s in enumerate(session.steps) if s.step >= from_step]
        if not steps:
            console.print(Text("no recorded steps" + (f" from step {from_step}" if from_step else ""), style="yellow"))
        for i in steps:
            console.print(render_step(session, i, full=full))
            shown += 1
        tail = session.events_after_last()
        if tail:
            console.print(Text("after the last step: " + "; ".join(_event_line(e) for e in tail), style="dim"))
    return shown


def step_json(session: ReplaySession, step: TraceStep) -> dict[str, Any]:
    """One step as a JSON object: the trace record plus where it belongs and its target."""
    name = step.target_name
    el = step.element(name) if name else None
    return {
        "kind": "step",
        **{k: v for k, v in step.to_json().items() if k != "kind"},
        "events_before": [e.to_json() for e in session.events_before(step.step)],
        "target": None if name is None else {"name": name, "on_page": el is not None or (
            f'name="{html_lib.escape(name, quote=True)}"' in step.simplified_html),
            "kind": el.kind if el else None, "text": el.text if el else None},
    }


def session_json(session: ReplaySession) -> dict[str, Any]:
    return {"kind": "session", **session.summary(),
            "persona": session.persona.model_dump(mode="json") if session.persona is not None else session.persona_record}


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------

_KEYS: dict[str, Command] = {
    "n": "next", " ": "next", "\r": "next", "\n": "next", "l": "next", "\x1b[C": "next", "\x1bOC": "next",
    "p": "prev", "h": "prev", "b": "prev", "\x1b[D": "prev", "\x1bOD": "prev",
    "j": "jump", "g": "jump", "s": "session", "\t": "session", "f": "full", "?": "help",
    "q": "quit", "\x1b": "quit", "\x03": "quit", "\x04": "quit",
}


def command_for(key: str) -> Command:
    """The viewer command a key (or escape sequence) stands for; ``none`` when it means nothing."""
    return _KEYS.get(key, _KEYS.get(key.lower(), "none") if len(key) == 1 else "none")


def read_key(fd: int) -> str:
    """One key press from a terminal: a character, or an escape sequence (arrow keys).

    The terminal is put in cbreak mode (no echo, no line buffering) just for the read and
    restored afterwards, also on Ctrl-C. After ESC, the rest of a sequence is read only if it
    arrives within 50 ms, so a lone ESC still quits.
    """
    import termios
    import tty

    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)  # not TCSAFLUSH: keys typed while drawing are kept
        first = os.read(fd, 1)
        if not first:
            return "\x04"
        data = first
        if first == b"\x1b":
            while select.select([fd], [], [], 0.05)[0]:
                more = os.read(fd, 1)
                if not more:
                    break
                data += more
                if len(data) >= 3 and data[-1:].isalpha():
                    break
        return data.decode("utf-8", "replace")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def read_line_command(stream: IO[str]) -> tuple[Command, int | None]:
    """The fallback without a TTY: one command per line (``n``, ``p``, ``j 5``, ``s``, ``q``;
    an empty line is ``next``; end of input is ``quit``)."""
    line = stream.readline()
    if not line:
        return "quit", None
    line = line.strip()
    if not line:
        return "next", None
    m = re.fullmatch(r"([a-z?])\s*(-?\d+)?", line.lower())
    if m is None:
        return ("jump", int(line)) if line.isdigit() else ("none", None)
    cmd = command_for(m.group(1))
    return cmd, int(m.group(2)) if m.group(2) else None


KeySource = Callable[[], tuple[Command, int | None]]


def terminal_keys(stdin: IO[str] | None = None, console: Console | None = None) -> KeySource:
    """Commands from the terminal: single keys when ``stdin`` is a TTY, lines otherwise."""
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        return lambda: read_line_command(stdin)
    fd = stdin.fileno()

    def next_command() -> tuple[Command, int | None]:
        cmd = command_for(read_key(fd))
        if cmd != "jump":
            return cmd, None
        if console is not None:
            console.print("jump to step: ", end="")
        answer = stdin.readline().strip()
        return ("jump", int(answer)) if answer.lstrip("-").isdigit() else ("none", None)

    return next_command


HELP = "n/→ next · p/← previous · j jump to step · s next session · f full page · q quit"


class ReplayViewer:
    """Interactive stepping through sessions; drive it with :meth:`run` and a key source."""

    def __init__(self, trace: ReplayTrace, console: Console, *, sessions: list[ReplaySession] | None = None,
                 session_index: int = 0, from_step: int = 0, full: bool = False, clear: bool = True) -> None:
        self.trace = trace
        self.console = console
        self.sessions = sessions if sessions is not None else trace.sessions
        if not self.sessions:
            raise ValueError(f"{trace.path}: the trace has no sessions to replay")
        self.session_index = session_index
        self.full = full
        self.clear = clear
        self.message: str | None = None
        self.index = self._start_index(from_step)

    @property
    def session(self) -> ReplaySession:
        return self.sessions[self.session_index]

    @property
    def step(self) -> TraceStep | None:
        steps = self.session.steps
        return steps[self.index] if steps else None

    def _start_index(self, from_step: int) -> int:
        steps = self.session.steps
        if not steps or from_step <= 0:
            return 0
        return next((i for i, s in enumerate(steps) if s.step >= from_step), len(steps) - 1)

    def show(self) -> None:
        if self.clear and self.console.is_terminal:
            self.console.clear()
        self.console.print(session_header(self.session, self.trace))
        if self.step is None:
            self.console.print(Text("this session has no recorded steps", style="yellow"))
            for e in self.session.events:
                self.console.print(Text(_event_line(e), style="dim"))
        else:
            self.console.print(render_step(self.session, self.index, full=self.full))
        footer = f"session {self.session_index + 1}/{len(self.sessions)} · {HELP}"
        self.console.print(Text(self.message, style="yellow") if self.message else Text(footer, style="dim"))
        self.message = None

    def handle(self, cmd: Command, arg: int | None = None) -> bool:
        """Apply one command; False means quit."""
        n = len(self.session.steps)
        if cmd == "quit":
            return False
        if cmd == "next":
            if self.index + 1 < n:
                self.index += 1
            else:
                self.message = "last step of this session (s: next session, q: quit)"
        elif cmd == "prev":
            if self.index > 0:
                self.index -= 1
            else:
                self.message = "first step of this session"
        elif cmd == "jump":
            if arg is None:
                self.message = "jump needs a step number (j 5)"
            else:
                found = [i for i, s in enumerate(self.session.steps) if s.step == arg]
                if found:
                    self.index = found[0]
                else:
                    self.message = f"no step {arg} in this session (steps 0..{max(n - 1, 0)})"
        elif cmd == "session":
            if self.session_index + 1 < len(self.sessions):
                self.session_index += 1
                self.index = 0
            else:
                self.message = "this is the last session (q: quit)"
        elif cmd == "full":
            self.full = not self.full
        else:
            self.message = HELP
        return True

    def run(self, keys: KeySource) -> None:
        self.show()
        while True:
            try:
                cmd, arg = keys()
            except KeyboardInterrupt:
                return
            if not self.handle(cmd, arg):
                return
            self.show()


def pick_session(trace: ReplayTrace, console: Console, ask: Callable[[str], str]) -> int | None:
    """Show the sessions and ask for one (number or id); None when the user quits."""
    console.print(sessions_table(trace))
    while True:
        try:
            answer = ask(f"session to replay (1-{len(trace.sessions)}, or an id; q quits): ").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if answer.lower() in ("q", "quit", ""):
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(trace.sessions):
            return int(answer) - 1
        for i, s in enumerate(trace.sessions):
            if s.session_id == answer:
                return i
        console.print(Text(f"no session {answer!r}", style="red"))


__all__ = [
    "CONTEXT_LINES", "HELP", "PageExcerpt", "ReplayViewer", "action_text", "command_for", "page_excerpt",
    "pick_session", "print_sessions", "read_key", "read_line_command", "render_page", "render_step",
    "session_header", "session_json", "sessions_table", "step_json", "terminal_keys",
]
