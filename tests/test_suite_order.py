"""The suite's file order (tests/file_seconds.py): parsed from pytest's own durations, and a
table that names only files that exist (a renamed heavy file would silently lose its place)."""

from __future__ import annotations

from pathlib import Path

from file_seconds import load, seconds_per_file

ROOT = Path(__file__).resolve().parents[1]


def test_durations_are_summed_per_file() -> None:
    lines = ["============================= slowest durations =============================",
             "12.50s setup    tests/test_ab.py::test_a",
             "3.25s call     tests/test_ab.py::test_a",
             "0.25s teardown tests/test_ab.py::test_a",
             "7.00s call     tests/faults/test_guard.py::test_g[x-y]",
             "(3 durations < 0.005s hidden.  Use -vv to show these durations.)"]
    assert seconds_per_file(lines) == {"tests/test_ab.py": 16.0, "tests/faults/test_guard.py": 7.0}


def test_the_table_names_existing_files_heaviest_first() -> None:
    table = load()
    assert table, "tests/file_seconds.json is missing: the heavy files would be handed out last"
    missing = [path for path in table if not (ROOT / path).is_file()]
    assert not missing, f"tests/file_seconds.json names files that do not exist: {missing}"
    assert list(table.values()) == sorted(table.values(), reverse=True)


def test_collected_files_come_heaviest_first(request) -> None:  # noqa: ANN001
    table = load()
    files = list(dict.fromkeys(item.nodeid.split("::", 1)[0] for item in request.session.items))
    weights = [table.get(f, 0.0) for f in files]
    assert weights == sorted(weights, reverse=True), list(zip(files, weights))[:10]
