"""``shop-r1 train sft|grpo``: the two training stages from the command line.

Defaults are the paper's (see :mod:`shop_r1.training.config`) and every one is overridable by a flag or
a ``--config`` JSON/YAML file (flags win). The options of ``sft`` and ``grpo`` are generated from the
settings models' fields (:func:`settings_options`): name, type, help (the field's description) and
shown default come from the field, so a knob is declared once; only ``--config`` is written here.
Torch/TRL are imported only once a command runs, so ``--help`` stays instant. Multi-GPU:
``accelerate launch --config_file training/configs/accelerate/<cfg>.yaml -m shop_r1.training.cli_train
grpo ...`` (docs/training.md).
"""

from __future__ import annotations

import enum
import logging
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shop_r1.envs.text import log_to_terminal
from shop_r1.training import config as C

log = logging.getLogger(__name__)


#: Flags whose spelling differs from their field's, kept because scripts and docs use them; the field's
#: own spelling (``--per-device-batch-size``, ``--lenient-format``) works as well. Declared here only.
FLAG_ALIASES: dict[str, tuple[str, ...]] = {
    "per_device_batch_size": ("--batch-size",),
    "lenient_format": ("--lenient",),
    "with_persona": ("--persona/--no-persona",),
}

#: Click types finer than a field's annotation says (a file that must exist, a folder to write).
CLICK_TYPES: dict[str, click.ParamType] = {
    "out": click.Path(file_okay=False),
    "chat_template": click.Path(exists=True, dir_okay=False),
}

#: "paper: 2e-5" in a description: the help marks the default "(paper)" while it still equals that value.
_PAPER_VALUE = re.compile(r"paper: (\d+(?:\.\d+)?(?:e-?\d+)?)")


class SettingOption(click.Option):
    """A ``--flag`` for one settings field. Not given, it is ``None``: the ``--config`` file's value or
    else the field's default applies (flags win over the file, the file over the default). The help is
    the field's description; the field's default is shown under it (:class:`SettingsCommand`)."""

    def __init__(self, *args: Any, shown_default: str | None = None, required_setting: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown_default = shown_default
        self.required_setting = required_setting

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        if self.shown_default is not None:
            extra["default"] = self.shown_default
        if self.required_setting:
            extra["required"] = "required, here or in --config"
        return extra

    def help_rows(self, ctx: click.Context) -> list[tuple[str, str]]:
        """The flags with the description, then the default on a line of its own, so that
        "[default: 2e-05 (paper)]" is never broken in two by the wrapping."""
        record = self.get_help_record(ctx)
        if record is None:
            return []
        extra = self.get_help_extra(ctx)
        items = [f"default: {extra['default']}"] if "default" in extra else []
        items += [extra["required"]] if "required" in extra else []
        return [(record[0], self.help or "")] + ([("", f"[{'; '.join(items)}]")] if items else [])


class SettingsCommand(click.Command):
    """``train sft|grpo``: their settings options list the default under the description."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if isinstance(param, SettingOption):
                rows += param.help_rows(ctx)
            elif isinstance(param, click.Option) and (record := param.get_help_record(ctx)) is not None:
                rows.append(record)
        if rows:
            with formatter.section("Options"):
                formatter.write_dl(rows)


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (the option is optional anyway); other annotations as they are."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _click_type(name: str, annotation: Any) -> click.ParamType | None:
    """The click type of a field (None: a bool, which becomes ``--x/--no-x``)."""
    if name in CLICK_TYPES:
        return CLICK_TYPES[name]
    kind = _unwrap_optional(annotation)
    if kind is bool:
        return None
    if get_origin(kind) is Literal:
        return click.Choice([str(a) for a in get_args(kind)])
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return click.Choice([str(m.value) for m in kind])
    simple: dict[Any, click.ParamType] = {int: click.INT, float: click.FLOAT, str: click.STRING,
                                          Path: click.Path()}
    if kind in simple:
        return simple[kind]
    raise TypeError(f"settings field {name!r} of type {annotation!r} has no command-line form; "
                    "give it one in training/cli_train.py")


def _shown_default(info: FieldInfo) -> str | None:
    """The field's default as ``--help`` shows it (None: nothing to show, the description says it)."""
    default = info.default
    if default is PydanticUndefined or default is None:
        return None
    if isinstance(default, bool):
        return "on" if default else "off"
    text = str(default)
    if isinstance(default, (int, float)) and any(
            float(v) == float(default) for v in _PAPER_VALUE.findall(info.description or "")):
        text += " (paper)"
    return text


def setting_option(name: str, info: FieldInfo) -> Callable[[Any], Any]:
    """The option of settings field ``name``: ``--name`` (plus :data:`FLAG_ALIASES`), ``--name/--no-name``
    for a bool, a choice for a Literal or Enum; its help is the field's description."""
    if not info.description:
        raise ValueError(f"settings field {name!r} needs a description: it is the --help text of its option")
    flag = "--" + name.replace("_", "-")
    kind = _click_type(name, info.annotation)
    decls = (f"{flag}/--no-{flag[2:]}",) if kind is None else (flag,)
    kwargs: dict[str, Any] = {"default": None, "help": info.description, "cls": SettingOption,
                              "shown_default": _shown_default(info),
                              "required_setting": info.default is PydanticUndefined}
    if kind is not None:
        kwargs["type"] = kind
    return click.option(*decls, *FLAG_ALIASES.get(name, ()), name, **kwargs)


def settings_options(cls: type[BaseModel]) -> Callable[[Any], Any]:
    """Every field of ``cls`` as an option (in field order), and ``--config``: the one hand-written option."""

    def decorate(f: Any) -> Any:
        options = [
            click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                         help="JSON/YAML file of settings (keys: the field names, as the long flags with '_' "
                              "or '-'); flags override it, it overrides the defaults."),
            *(setting_option(name, info) for name, info in cls.model_fields.items()),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


def _trainer(stage: str) -> Callable[[Any], Any]:
    """The training function of ``stage``, imported only now (torch, TRL)."""
    if stage == "sft":
        from shop_r1.training.sft import train_sft

        return train_sft
    from shop_r1.training.grpo import train_grpo

    return train_grpo


def _train(stage: str, cls: type[BaseModel], config_file: str | None, flags: dict[str, Any]) -> None:
    """Defaults < ``config_file`` < the flags given (:func:`shop_r1.training.config.load_settings`), then train."""
    try:
        settings = C.load_settings(cls, config_file, **flags)
        result = _trainer(stage)(settings)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    _summary(stage, result)


def _summary(stage: str, result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"shop-r1 train {stage}: {result.out_dir}", show_header=False)
    for key in ("global_step", "final_loss", "train_runtime", "train_loss"):
        if key in result.metrics:
            value = result.metrics[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    last = next((h for h in reversed(result.history) if any(k.startswith("rewards/") for k in h)), None)
    for key, value in (last or {}).items():
        if key.startswith("rewards/") and key.endswith("/mean") or key in ("reward", "kl"):
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("record", str(result.record_path))
    Console(stderr=True).print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def train() -> None:
    """Train shopper policies: SFT on sessions, then GRPO with the Shop-R1 rewards."""


@train.command(cls=SettingsCommand)
@settings_options(C.SFTSettings)
def sft(config_file: str | None, **flags: Any) -> None:
    """Cold-start SFT on whole sessions (assistant-only loss). Paper defaults: 4 epochs, lr 2e-5."""
    _train("sft", C.SFTSettings, config_file, flags)


@train.command(cls=SettingsCommand)
@settings_options(C.GRPOSettings)
def grpo(config_file: str | None, **flags: Any) -> None:
    """GRPO with the Shop-R1 rewards: v(a) + alpha*s(r) - beta*KL.

    Paper defaults: lr 1e-7, 500 steps, temperature 0.6, global batch 64 prompts (x G
    completions each), alpha 0.005, beta 0.001, DARS 1000, threshold 0.75.
    """
    _train("grpo", C.GRPOSettings, config_file, flags)


@train.command(cls=SettingsCommand)
@settings_options(C.RecipeSettings)
def recipe(config_file: str | None, **flags: Any) -> None:
    """The whole loop from nothing: scripted shoppers -> template rationales -> dataset -> SFT -> GRPO.

    Leaves OUT/policy, a checkpoint that `shop-r1 simulate --policy transformers --model OUT/policy`
    and `shop-r1 serve --model OUT/policy` load. The defaults are small (24 sessions, 4 SFT epochs, 8 GRPO
    steps of 2 prompts x 4); on a 2-core machine at load ~27 the SFT stage alone ran ~10 s per step.
    """
    from shop_r1.training.recipe import run_recipe  # the browser, the trainers: imported only to run

    try:
        settings = C.load_settings(C.RecipeSettings, config_file, **flags)
        result = run_recipe(settings)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    click.echo(str(result.policy_dir))
    log.info("recipe done: %s", result.model_dump(mode="json"))


if __name__ == "__main__":  # `accelerate launch -m shop_r1.training.cli_train grpo ...`
    log_to_terminal(logging.INFO)
    sys.exit(train())
