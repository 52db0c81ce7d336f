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
from importlib.metadata import entry_points

import click

# name -> (import path, one-line help). Help is duplicated here so `--help` imports nothing.
_COMMANDS: dict[str, tuple[str, str]] = {
    "observe": ("shop_r1.envs.cli:observe", "Print the simplified page (or JSON) for a URL or a local .html file."),
    "shop": ("shop_r1.envs.shop.cli:shop", "The bundled mock storefront (serve it on 127.0.0.1)."),
    "personas": ("shop_r1.personas.cli:personas", "Sample personas from the library or a demographic mix."),
    "simulate": ("shop_r1.simulator.cli_simulate:simulate", "Run simulated shoppers against a storefront; write traces and a report."),
    "demo": ("shop_r1.simulator.cli_simulate:demo", "Set-up-free demo: simulated shoppers on the bundled shop with the default model."),
    "serve": ("shop_r1.simulator.cli_serve:serve", "Start a vLLM OpenAI-compatible server for a model folder and wait until it answers."),
    "replay": ("shop_r1.simulator.cli_replay:replay", "Step through recorded sessions, re-execute them live, or compare a policy."),
    "import": ("shop_r1.simulator.cli_import:import_", "Import real logs (OPeRA schema) as a trace."),
    "reward": ("shop_r1.simulator.cli_reward:reward", "Print the Shop-R1 reward components for one prediction."),
    "report": ("shop_r1.simulator.cli_simulate:report", "Rebuild the summary report of a run directory."),
    "ab": ("shop_r1.simulator.ab.cli:ab", "A/B experiment: the same shoppers on two builds, differences with 95% intervals."),
}

_ENTRY_GROUP = "shop_r1.commands"


def _plugin_commands() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for ep in entry_points(group=_ENTRY_GROUP):
        found[ep.name] = (ep.value, f"({ep.value.split(':')[0].split('.')[0]}) see `shop-r1 {ep.name} --help`")
    return found


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

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
            return getattr(module, attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self._lazy[name][1]) for name in self.list_commands(ctx) if name in self._lazy]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _all_commands() -> dict[str, tuple[str, str]]:
    commands = dict(_COMMANDS)
    for name, spec in _plugin_commands().items():
        commands.setdefault(name, spec)
    return commands


@click.group(cls=LazyGroup, lazy=_all_commands(), context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="shop-r1")
def main(verbose: int) -> None:
    """shop-r1: simulated human shoppers in a real browser, and the Shop-R1 training method."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=int(os.environ.get("SHOP_R1_LOG_LEVEL", level)), format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
