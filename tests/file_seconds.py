"""Seconds each test file takes under ``make test``, for ordering the files heaviest first.

Why: pytest-xdist (``--dist loadfile``) hands whole files to its two workers in order. By default it
orders them by their number of tests, so a file of a few slow tests (the vLLM server, the Ray
cluster, the paper-table smoke run) is handed out last and one worker runs it alone while the other
has finished. ``conftest.py`` orders the files by the seconds in ``file_seconds.json`` instead
(heaviest first, the classic longest-processing-time rule) and ``make test`` passes
``--no-loadscope-reorder`` so xdist keeps that order. A file missing from the table keeps its place
after the listed ones; the table only changes the order, never what runs.

What it buys is small, and was measured on 2026-12-08 (2 quiet cores, 718 tests): 17 min 55 s with
xdist's own order, 17 min 12 s with this table (18 min 9 s with an early table of 10 files); the
tests sum to ~1,045 s per worker, so the suite is CPU-bound and the order only trims the tail.

Refresh the table from a run's durations::

    make test PYTEST_ARGS="--durations=0" | tee /tmp/suite.log
    .venv/bin/python tests/file_seconds.py /tmp/suite.log
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

TABLE = Path(__file__).with_name("file_seconds.json")
_LINE = re.compile(r"^([0-9.]+)s (?:call|setup|teardown)\s+(\S+?)::")


def seconds_per_file(lines: list[str]) -> dict[str, float]:
    """Sum pytest's ``--durations`` lines by test file (setup, call and teardown alike)."""
    total: Counter[str] = Counter()
    for line in lines:
        m = _LINE.match(line)
        if m:
            total[m.group(2)] += float(m.group(1))
    return {path: round(s, 1) for path, s in total.most_common()}


def load() -> dict[str, float]:
    """The committed table (empty when absent: collection order is kept)."""
    if not TABLE.is_file():
        return {}
    return {str(k): float(v) for k, v in json.loads(TABLE.read_text(encoding="utf-8")).items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    table = seconds_per_file(Path(argv[0]).read_text(encoding="utf-8").splitlines())
    if not table:
        print(f"{argv[0]}: no --durations lines (run pytest with --durations=0)", file=sys.stderr)
        return 1
    TABLE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{TABLE}: {len(table)} files, {sum(table.values()):.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
