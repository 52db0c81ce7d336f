"""Page text is data, never terminal control: from a hostile page to the trace, replay, report, observe.

``/hostile`` of the review shop puts an OSC 8 hyperlink to another site, a clear-screen, a bell,
a blink, a C1 CSI, rich markup and a script-inserted ESC into its title, link and product texts.
Real Chromium and the real reducer, runner, trace writer and reader, and the real commands with
colour forced on (so rich writes its own styling): none of the page's sequences may come out,
in a new trace or an old one written before the reducer dropped them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from shop_r1.envs.browser import BrowserPool
from shop_r1.simulator.cli.main import main
from shop_r1.simulator.records.trace import read_trace
from tests.faults.review_shop import ReviewShop, serve_review_shop

# What the page holds and a terminal must never receive (rich's own colours are SGR "ESC [ … m").
HOSTILE = ("\x1b]8;", "\x1b[2J", "\x1b[H", "\x07", "\x9b", "\x1b[5m", "\x1b[31mSock")
CONTROL_CHARS = {chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}


@pytest.fixture(scope="module")
def shop() -> Iterator[ReviewShop]:
    with serve_review_shop() as s:
        yield s


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def assert_terminal_safe(output: str, where: str) -> None:
    found = [seq for seq in HOSTILE if seq in output]
    assert not found, f"{where} wrote the page's control sequences {found!r}"


async def test_the_reducer_emits_no_control_characters(shop: ReviewShop, pool: BrowserPool) -> None:
    session = await pool.new_session("hostile")
    obs = await session.reset(f"{shop.url}/hostile")
    texts = [obs.title, obs.simplified_html, *(t for el in obs.elements for t in (el.name, el.text, *el.options))]
    bad = [t for t in texts if CONTROL_CHARS & set(t)]
    assert not bad, bad
    assert "Sock shop" in obs.title  # (Chromium itself turns the title's ESC into a space)
    link = next(el for el in obs.elements if "Deal of the day" in el.text)
    assert link.text == "Deal of the day"  # the OSC 8 payload (the other site's URL) went with it
    assert "Injected by script" in obs.simplified_html
    assert "evil.example/" not in obs.simplified_html
    await session.close()


def test_trace_replay_report_and_observe_stay_text(shop: ReviewShop, run_shop, tmp_path: Path) -> None:
    run = run_shop(f"{shop.url}/hostile", ["Deal of the day"])
    run_dir = run.result.run_dir
    for line in (run_dir / "trace.jsonl").read_text().splitlines():
        bad = [s for s in strings(json.loads(line)) if CONTROL_CHARS & set(s)]
        assert not bad, bad

    # An older trace, written before the reducer dropped them, still holds raw sequences.
    old = tmp_path / "old"
    old.mkdir()
    lines = (run_dir / "trace.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["title"] = "\x1b[31mSock shop\x1b]8;;http://evil.example/\x1b\\x\x1b]8;;\x1b\\"
    first["rationale"] = "I want \x1b[2Jsocks\x07"
    first["elements"][0]["text"] = "\x9b31m\x1b[5mBlink"
    (old / "trace.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    (old / "run.json").write_text((run_dir / "run.json").read_text())
    step = read_trace(old).steps[0]
    assert step.title == "Sock shopx" and step.rationale == "I want socks" and step.elements[0].text == "Blink"

    cli = CliRunner()
    color = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "160"}
    for folder in (run_dir, old):
        res = cli.invoke(main, ["replay", str(folder), "--no-interactive", "--full"], env=color)
        assert res.exit_code == 0, res.output
        assert "Deal of the day" in res.output and "\x1b[" in res.output  # rich did colour it
        assert_terminal_safe(res.output, f"replay of {folder.name}")
        res = cli.invoke(main, ["report", str(folder)], env=color)
        assert res.exit_code == 0, res.output
        assert_terminal_safe(res.output, f"report of {folder.name}")
    res = cli.invoke(main, ["observe", f"{shop.url}/hostile"], env=color)
    assert res.exit_code == 0, res.output
    assert "Deal of the day" in res.output
    assert_terminal_safe(res.output, "observe")
