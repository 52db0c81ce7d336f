"""A knob is declared once: the options ``simulate`` and ``ab`` share read the same, and the ones
that are RunConfig fields carry the field's default and description."""

from __future__ import annotations

import click

from shop_r1.simulator.cli.ab import ab
from shop_r1.simulator.cli.simulate import simulate
from shop_r1.simulator.loop.runner import RunConfig

# Options that mean something else in an A/B test, on purpose.
DIFFERENT = {"shoppers", "tasks_file", "out", "ray", "host_capacity", "concurrency"}


def options(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name is not None}


def test_shared_options_are_declared_once() -> None:
    sim, exp = options(simulate), options(ab)
    shared = set(sim) & set(exp) - DIFFERENT
    assert {"policy", "model", "base_url", "temperature", "personas_file", "mix", "seed", "shop_seed", "max_steps",
            "step_timeout", "session_timeout", "allow_purchase", "browser_path"} <= shared
    for name in sorted(shared):
        a, b = sim[name], exp[name]
        assert (a.opts, a.help, a.default, a.is_flag) == (b.opts, b.help, b.default, b.is_flag), name
    # --concurrency is the same knob, said per arm
    assert exp["concurrency"].help == sim["concurrency"].help.rstrip(".") + ", per arm."


def test_run_config_knobs_take_the_fields_default_and_description() -> None:
    sim = options(simulate)
    for option, field in (("max_steps", "max_steps"), ("step_timeout", "step_timeout_s"), ("seed", "seed"),
                          ("session_timeout", "session_timeout_s"), ("page_budget", "page_token_budget"),
                          ("redact", "redact"), ("screenshots", "screenshots"), ("concurrency", "concurrency")):
        info = RunConfig.model_fields[field]
        assert sim[option].default == info.default and sim[option].help == info.description, option
