"""`shop-r1 observe` end to end: real Chromium, real pages, the real click entry point."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from shop_r1.simulator.cli.main import main


def _run(*args: str):
    return CliRunner().invoke(main, ["observe", *args], catch_exceptions=False)


def test_json_format_has_exactly_the_documented_keys(shared_data: Path) -> None:
    target = str(shared_data / "pages" / "webshop_item.html")
    result = _run(target, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"url", "title", "simplified_html", "elements", "stats"}
    assert set(data["stats"]) == {"raw_bytes", "simplified_bytes", "raw_tokens", "simplified_tokens", "ms"}
    assert all(set(e) == {"name", "kind", "text"} for e in data["elements"])
    names = [e["name"] for e in data["elements"]]
    assert "buy_now" in names and "color.black" in names
    assert 'name="buy_now"' in data["simplified_html"]
    s = data["stats"]
    assert 0 < s["simplified_tokens"] < s["raw_tokens"] and 0 < s["simplified_bytes"] < s["raw_bytes"]


def test_html_format_prints_page_and_stats_to_stderr(shared_data: Path, tmp_path: Path) -> None:
    target = str(shared_data / "pages" / "webshop_search_results.html")
    shot = tmp_path / "shot.png"
    result = _run(target, "--budget", "4000", "--screenshot", str(shot))
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("<")  # plain HTML when not a TTY
    assert "\x1b[" not in result.stdout
    assert 'name="back_to_search"' in result.stdout
    assert "tokens" in result.stderr and "elements" in result.stderr
    assert "tokens" not in result.stdout.splitlines()[-1]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.html"
    result = _run(str(missing))
    assert result.exit_code != 0
    assert str(missing) in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_url_is_one_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    result = _run(url)
    assert result.exit_code != 0
    assert url in result.stderr and "could not load" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_browser_that_will_not_start_is_one_clear_error(shared_data: Path) -> None:
    # /bin/true is executable (so discovery accepts it) but is no Chromium: the shared launcher
    # (envs.chromium.launch_chromium, also BrowserPool's) must name it in one line.
    result = _run(str(shared_data / "pages" / "webshop_item.html"), "--browser-path", "/bin/true")
    assert result.exit_code != 0
    assert "could not launch Chromium at /bin/true" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
