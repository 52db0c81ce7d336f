"""The ``shop-r1`` command line.

Subcommands are imported only when invoked: importing trl+transformers costs ~10 s, and
``shop-r1 observe`` or ``shop-r1 --help`` must not pay it. Commands of layers above the
simulator (training) register through the ``shop_r1.commands`` entry-point group, so this module
never imports them by name.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from shop_r1.envs.text import log_to_terminal

# name -> (import path, one-line help). Help is duplicated here so `--help` imports nothing.
_COMMANDS: dict[str, tuple[str, str]] = {
    "observe": ("shop_r1.envs.cli:observe", "Print the simplified page (or JSON) for a URL or a local .html file."),
    "shop": ("shop_r1.envs.shop.cli:shop", "The bundled mock storefront (serve it on 127.0.0.1)."),
    "personas": ("shop_r1.personas.cli:personas", "Sample personas from the library or a demographic mix."),
    "simulate": ("shop_r1.simulator.cli.simulate:simulate", "Run simulated shoppers against a storefront; write traces and a report."),
    "demo": ("shop_r1.simulator.cli.simulate:demo", "Set-up-free demo: simulated shoppers on the bundled shop with the default model."),
    "serve": ("shop_r1.simulator.cli.serve:serve", "Start a vLLM OpenAI-compatible server for a model folder and wait until it answers."),
    "replay": ("shop_r1.simulator.cli.replay:replay", "Step through recorded sessions, re-execute them live, or compare a policy."),
    "import": ("shop_r1.simulator.cli.import_trace:import_", "Import real logs (OPeRA schema) as a trace."),
    "reward": ("shop_r1.simulator.cli.reward:reward", "Print the Shop-R1 reward components for one prediction."),
    "report": ("shop_r1.simulator.cli.simulate:report", "Rebuild the summary report of a run directory."),
    "ab": ("shop_r1.simulator.cli.ab:ab", "A/B experiment: the same shoppers on two builds, differences with 95% intervals."),
}

_ENTRY_GROUP = "shop_r1.commands"

#: Listed for a plugin command whose module cannot be imported (e.g. an extra not installed).
_UNAVAILABLE = "(unavailable: {error})"


def _plugin_commands() -> dict[str, EntryPoint]:
    """Commands of the layers above the simulator, by name: read from the installed metadata,
    not imported (a name is only loaded when it is run or listed)."""
    return {ep.name: ep for ep in entry_points(group=_ENTRY_GROUP) if ep.name not in _COMMANDS}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use.

    Built-in commands carry their one-line help in ``lazy``, so ``--help`` imports none of them.
    Plugin commands (``plugins``, the ``shop_r1.commands`` entry points) are listed with their
    own one-line help, which means importing their module when ``--help`` lists them: the
    training layer keeps its command modules free of trl/transformers imports for that reason
    (``tests/test_cli_help.py`` checks that ``shop-r1 --help`` imports neither).
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None,
                 plugins: Callable[[], dict[str, EntryPoint]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy or {}
        self._plugin_source = plugins or dict
        self._plugins: dict[str, EntryPoint] | None = None

    def _plugin_entry_points(self) -> dict[str, EntryPoint]:
        if self._plugins is None:
            self._plugins = self._plugin_source()
        return self._plugins

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy) | set(self._plugin_entry_points()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            target, _ = self._lazy[name]
            module_name, attr = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                raise click.ClickException(
                    f"command {name!r} needs module {module_name!r}, which is not available ({exc})"
                ) from exc
            command: click.Command = getattr(module, attr)
            return command
        plugin = self._plugin_entry_points().get(name)
        if plugin is not None:
            try:
                loaded = plugin.load()
            except ImportError as exc:
                raise click.ClickException(
                    f"command {name!r} needs {plugin.value!r}, which is not available ({exc})") from exc
            if not isinstance(loaded, click.Command):
                raise click.ClickException(f"entry point {name} = {plugin.value} is not a click command")
            return loaded
        return super().get_command(ctx, name)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str:
        if name in self._lazy:
            return self._lazy[name][1]
        try:
            command = self.get_command(ctx, name)
        except click.ClickException as exc:
            return _UNAVAILABLE.format(error=exc.format_message())
        return command.get_short_help_str(limit) if command is not None else ""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The limit only trims a long first sentence; write_dl wraps the row to the terminal.
        rows = [(name, self._short_help(ctx, name, limit=200)) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=_COMMANDS, plugins=_plugin_commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="shop-r1")
def main(verbose: int) -> None:
    """shop-r1: simulated human shoppers in a real browser, and the Shop-R1 training method."""
    level = logging.WARNING - 10 * min(verbose, 2)
    log_to_terminal(int(os.environ.get("SHOP_R1_LOG_LEVEL", level)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
