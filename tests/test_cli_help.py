"""``shop-r1 --help``: every command listed, each with its own one-line help, and still fast.

The simulator's CLI never imports the training layer by name: ``train``, ``data`` and
``evaluate`` come in through the ``shop_r1.commands`` entry points. They used to be listed with a
placeholder ("see `shop-r1 data --help`"), and a stale install could leave ``train`` out.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import click
from click.testing import CliRunner

from shop_r1.simulator.cli.main import _COMMANDS, main

#: The training layer's commands, registered as entry points in pyproject.toml.
PLUGINS = ("train", "data", "evaluate")


def _flat(text: str) -> str:
    """The help with its wrapping undone, so a row reads as one line."""
    return " ".join(text.split())


def test_help_lists_every_command_with_its_own_help() -> None:
    result = CliRunner().invoke(main, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    registered = {ep.name for ep in entry_points(group="shop_r1.commands")}
    assert set(PLUGINS) <= registered, "pyproject.toml's shop_r1.commands entry points are not installed"
    assert sorted(listed) == sorted(set(_COMMANDS) | registered)
    assert "see `shop-r1" not in result.output and "(shop_r1)" not in result.output
    ctx = click.Context(main)
    for name in PLUGINS:
        command = main.get_command(ctx, name)
        assert command is not None
        own = command.get_short_help_str(200)
        assert own and f"{name} {_flat(own)}" in _flat(commands), f"{name!r} is not listed with its own help {own!r}"


def test_every_listed_command_resolves_to_a_click_command() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        assert isinstance(main.get_command(ctx, name), click.Command), name


def test_help_imports_no_ml_stack() -> None:
    """Listing the plugins imports their command modules; those must stay free of trl/transformers
    (an import of both costs ~10 s) and torch."""
    code = (
        "import sys\n"
        "from shop_r1.simulator.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('trl', 'transformers', 'torch', 'datasets') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "train " in proc.stdout
    assert "HEAVY []" in proc.stdout, proc.stdout.splitlines()[-1]
