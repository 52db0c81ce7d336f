"""The command-line options a run's knobs become: declared once, used by ``simulate`` and ``ab``.

A knob that is a :class:`~shop_r1.simulator.loop.runner.RunConfig` field takes its default and its help
from the field (:func:`config_option`), so a new default or a reworded description reaches both
commands at once; the policy's knobs, which ``simulate`` and ``ab`` share word for word, are
written down here once (:data:`POLICY_OPTIONS`), and so are the cluster's (``--ray``,
``--host-capacity``, in :data:`RUN_OPTIONS`). Options that mean something else in one command
(``--shoppers``: pairs in an A/B test; ``--tasks``: intents vs UX scenarios; ``--out``) stay with that
command; ``tests/test_cli_options.py`` and ``tests/test_train_options.py`` keep it so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic_core import PydanticUndefined

from shop_r1.simulator.agent.policies.factory import POLICY_NAMES
from shop_r1.simulator.loop.runner import RunConfig

Decorator = Callable[[Any], Any]


def config_option(*decls: str, field: str, help_suffix: str = "", **kwargs: Any) -> Decorator:
    """A click option for ``RunConfig.<field>``: its default and description (``help_suffix`` is
    added before its full stop), a flag for a bool (``--x/--no-x`` when ``decls`` say so).
    ``kwargs`` pass through to :func:`click.option`."""
    info = RunConfig.model_fields[field]
    if info.description is None or info.default is PydanticUndefined:
        raise ValueError(f"RunConfig.{field} needs a default and a description to become an option")
    words = info.description if not help_suffix else f"{info.description.rstrip('.')}{help_suffix}."
    opts: dict[str, Any] = {"default": info.default, "help": words}
    if info.annotation is bool:
        opts["is_flag"] = True
        opts["show_default"] = "/" in decls[0]
    elif info.default is not None:
        opts["show_default"] = True
    return click.option(*decls, **{**opts, **kwargs})


def _path(**kw: Any) -> click.Path:
    return click.Path(exists=True, dir_okay=False, path_type=Path, **kw)


#: The policy's knobs, as ``simulate`` and ``ab`` both take them.
POLICY_OPTIONS: dict[str, Decorator] = {
    "policy": click.option("--policy", type=click.Choice(list(POLICY_NAMES)), default="scripted", show_default=True,
                           help="Policy backend."),
    "model": click.option("--model", default=None,
                          help="Model folder or 'default' (transformers/vllm), or a served model name (openai, vllm "
                               "with --base-url)."),
    "base_url": click.option("--base-url", default=None,
                             help="OpenAI-compatible endpoint (openai; vllm: an already running server)."),
    "temperature": click.option("--temperature", type=float, default=None,
                                help="Sampling temperature for model policies."),
    "personas": click.option("--personas", "personas_file", type=_path(), default=None,
                             help="Persona file (JSON list or JSONL); default: sampled from the bundled library."),
    "mix": click.option("--mix", type=_path(), default=None,
                        help="Demographic mix (JSON percentages per field) for sampling personas."),
    "shop_seed": click.option("--shop-seed", default=0, show_default=True, help="Catalogue seed of bundled shops."),
}

#: The run's knobs both commands take, from RunConfig's fields (``ab`` applies them to each arm), and
#: where the run goes (``--ray``, ``--host-capacity``: not RunConfig fields, the same knobs in both).
RUN_OPTIONS: dict[str, Decorator] = {
    "seed": config_option("--seed", field="seed"),
    "max_steps": config_option("--max-steps", field="max_steps"),
    "concurrency": config_option("--concurrency", "-c", field="concurrency"),
    "concurrency_per_arm": config_option("--concurrency", "-c", field="concurrency", help_suffix=", per arm"),
    "step_timeout": config_option("--step-timeout", field="step_timeout_s"),
    "session_timeout": config_option("--session-timeout", field="session_timeout_s"),
    "allow_purchase": config_option("--allow-purchase", field="allow_purchase"),
    "browser_path": config_option("--browser-path", field="browser_path"),
    "ray": click.option("--ray", default=None, metavar="ADDRESS",
                        help="Spread shoppers over a Ray cluster (HOST:PORT of its head, or 'local' for one on "
                             "this machine); `ab` runs both arms there."),
    "host_capacity": click.option("--host-capacity", type=click.IntRange(min=1), default=None,
                                  help="With --ray: browser contexts per node (default: from the node's CPUs and "
                                       "memory); `ab` splits them between the arms."),
}


def apply(fn: Any, options: list[Decorator]) -> Any:
    """``fn`` with ``options`` applied so that ``--help`` lists them in this order."""
    for option in reversed(options):
        fn = option(fn)
    return fn


__all__ = ["POLICY_OPTIONS", "RUN_OPTIONS", "apply", "config_option"]
