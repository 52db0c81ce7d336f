"""Every knob is declared once: ``shop-r1 train sft|grpo`` options are generated from the settings
models' fields (name, type, help = the field's description, shown default), and the options that
``simulate`` and ``ab`` share come from ``simulator/cli/options.py``, not from either command."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner

from shop_r1.simulator.cli import ab as ab_module
from shop_r1.simulator.cli import simulate as simulate_module
from shop_r1.simulator.cli.options import POLICY_OPTIONS, RUN_OPTIONS
from shop_r1.training import cli_train
from shop_r1.training.config import GRPOSettings, RecipeSettings, SFTSettings

#: The options of ``train sft|grpo|recipe`` written by hand (dest names): not settings fields.
HAND_WRITTEN = {"config_file"}

STAGES = {"sft": SFTSettings, "grpo": GRPOSettings, "recipe": RecipeSettings}


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]


def _command(stage: str) -> click.Command:
    command = cli_train.train.commands[stage]
    assert isinstance(command, click.Command)
    return command


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_setting_has_exactly_one_option_and_every_option_a_setting(stage: str) -> None:
    cls, options = STAGES[stage], _options(_command(stage))
    names = Counter(o.name for o in options)
    assert [n for n, k in names.items() if k > 1] == [], "an option declared twice"
    generated = {o.name for o in options} - HAND_WRITTEN
    assert generated == set(cls.model_fields), (
        f"fields without an option: {sorted(set(cls.model_fields) - generated)}; "
        f"options without a field: {sorted(generated - set(cls.model_fields))}")
    assert HAND_WRITTEN <= set(names)
    for option in options:
        if option.name not in HAND_WRITTEN:
            assert isinstance(option, cli_train.SettingOption), option.name
    flags = Counter(f for o in options for f in (*o.opts, *o.secondary_opts))
    assert [f for f, k in flags.items() if k > 1] == [], "a flag spelt by two options"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_option_help_is_the_fields_description_and_not_given_is_none(stage: str) -> None:
    cls = STAGES[stage]
    for option in _options(_command(stage)):
        if option.name in HAND_WRITTEN:
            continue
        info = cls.model_fields[option.name]
        assert info.description and option.help == info.description, option.name
        # not given -> None, so a --config value (or the field's default) is not overridden
        assert option.default is None, option.name
        assert f"--{option.name.replace('_', '-')}" in option.opts, option.name
    lr = "lr" if "lr" in cls.model_fields else "sft_lr"
    assert _by_name(_command(stage))[lr].help == cls.model_fields[lr].description


def _by_name(command: click.Command) -> dict[str, click.Option]:
    return {o.name: o for o in _options(command) if o.name is not None}


def test_types_follow_the_fields() -> None:
    grpo = _by_name(_command("grpo"))
    scale = grpo["scale_rewards"].type
    assert isinstance(scale, click.Choice) and list(scale.choices) == ["group", "batch", "none"]
    assert grpo["lr"].type == click.FLOAT and grpo["num_generations"].type == click.INT
    assert grpo["max_completion_length"].type == click.INT  # int | None: optional int
    for flag in ("format_reward", "filter_zero_spread", "bf16", "use_vllm"):
        assert grpo[flag].is_flag and grpo[flag].secondary_opts == [f"--no-{flag.replace('_', '-')}"], flag
    # the old spellings stay, as aliases of the field's own flag
    assert "--batch-size" in grpo["per_device_batch_size"].opts
    assert "--per-device-batch-size" in grpo["per_device_batch_size"].opts
    assert "--lenient" in grpo["lenient_format"].opts


def test_grpo_help_lists_the_generated_options_with_the_models_defaults() -> None:
    result = CliRunner().invoke(cli_train.train, ["grpo", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for flag in ("--config", "--lr", "--batch-size", "--num-generations", "--no-format-reward", "--lenient",
                 "--scale-rewards [group|batch|none]", "--use-vllm", "--max-seconds", "--world-size"):
        assert flag in text, flag
    assert f"{GRPOSettings.model_fields['lr'].description} [default: 1e-07 (paper)]" in text
    assert "[default: 500 (paper)]" in text and "[default: 0.6 (paper)]" in text
    assert ("--num-generations INTEGER group size G (completions per prompt); not given by the paper "
            "[default: 8]") in text
    # a default that is not the paper's value is not marked as the paper's
    assert "8 (paper)" not in text


def test_a_default_is_never_broken_across_lines() -> None:
    """At click's usual 80 columns a default sits on a line of its own under the description."""
    result = CliRunner().invoke(cli_train.train, ["sft", "--help"])
    assert result.exit_code == 0, result.output
    assert "[default: 2e-05 (paper)]" in result.output and "[default: 4 (paper)]" in result.output


def test_paper_mark_only_while_the_default_is_the_papers() -> None:
    from pydantic import Field

    assert cli_train._shown_default(Field(2e-5, description="lr; paper: 2e-5")) == "2e-05 (paper)"
    assert cli_train._shown_default(Field(3e-5, description="lr; paper: 2e-5")) == "3e-05"
    assert cli_train._shown_default(Field(None, description="paper: 4")) is None
    assert cli_train._shown_default(Field(True, description="x")) == "on"


def _fake_trainer(seen: dict[str, Any]) -> Any:
    def trainer(stage: str) -> Any:
        def run(settings: Any) -> Any:
            seen[stage] = settings
            return SimpleNamespace(out_dir=settings.out, metrics={"global_step": 0}, history=[],
                                   record_path=Path(settings.out) / "shop-r1-train.json")

        return run

    return trainer


def test_flags_win_over_the_config_file_which_wins_over_the_defaults(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli_train, "_trainer", _fake_trainer(seen))
    config = tmp_path / "grpo.yaml"
    config.write_text("data: from-file\nout: out-file\nlr: 3.0e-7\ntemperature: 0.9\nreward: binary\n"
                      "format-reward: false\n")
    run = CliRunner().invoke(cli_train.train, ["grpo", "--config", str(config), "--temperature", "1.2",
                                               "--batch-size", "4", "--lenient"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    s = seen["grpo"]
    assert s.lr == 3e-7 and s.reward == "binary" and s.data == "from-file"  # the file, no flag given
    assert s.format_reward is False  # a bool the flags did not name keeps the file's value
    assert s.temperature == 1.2 and s.per_device_batch_size == 4 and s.lenient_format is True  # flags win
    assert s.max_steps == GRPOSettings.model_fields["max_steps"].default  # neither: the model's default

    run = CliRunner().invoke(cli_train.train, ["grpo", "--config", str(config), "--format-reward", "--lr", "5e-7",
                                               "--data", "from-flag"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    s = seen["grpo"]
    assert s.format_reward is True and s.lr == 5e-7 and s.data == "from-flag" and s.temperature == 0.9

    sft_config = tmp_path / "sft.json"
    sft_config.write_text('{"data": "d", "out": "o", "epochs": 2, "max-length": 512}')
    run = CliRunner().invoke(cli_train.train, ["sft", "--config", str(sft_config), "--epochs", "3"],
                             catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert seen["sft"].epochs == 3 and seen["sft"].max_length == 512 and seen["sft"].lr == 2e-5


def test_a_bad_value_is_a_usage_error_naming_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_train, "_trainer", _fake_trainer({}))
    run = CliRunner().invoke(cli_train.train, ["grpo", "--data", "d", "--out", "o", "--scale-rewards", "std"])
    assert run.exit_code == 2 and "group" in run.output
    run = CliRunner().invoke(cli_train.train, ["grpo", "--data", "d", "--out", "o", "--lr", "-1"])
    assert run.exit_code == 1 and "lr" in run.output


# ------------------------------------------------------------------------------------------------
# simulate and ab: a flag both take is declared once, in simulator/cli/options.py
# ------------------------------------------------------------------------------------------------

#: Flags both commands take with a different meaning, on purpose (each declares its own).
DIFFERENT_MEANING = {"--shoppers", "--tasks", "--out"}

_DECL = re.compile(r"""(?:click\.option|config_option)\(\s*["'](--[a-z0-9-]+)""")


def _signature(option: click.Option) -> tuple[Any, ...]:
    return (tuple(option.opts), tuple(option.secondary_opts), option.help, option.default, repr(option.type),
            option.is_flag)


def _shared_signatures() -> set[tuple[Any, ...]]:
    signatures = set()
    for decorator in (*POLICY_OPTIONS.values(), *RUN_OPTIONS.values()):
        probe = decorator(click.Command("probe"))
        signatures |= {_signature(p) for p in probe.params if isinstance(p, click.Option)}
    return signatures


def _flags(command: click.Command) -> dict[str, click.Option]:
    return {f: o for o in _options(command) for f in o.opts if f.startswith("--")}


def test_a_flag_of_both_simulate_and_ab_comes_from_the_shared_options() -> None:
    sim, exp = _flags(simulate_module.simulate), _flags(ab_module.ab)
    shared = set(sim) & set(exp)
    assert DIFFERENT_MEANING <= shared
    signatures = _shared_signatures()
    for flag in sorted(shared - DIFFERENT_MEANING):
        if flag == "--concurrency":  # one field, said per arm in ab: both from RUN_OPTIONS
            assert _signature(sim[flag]) in signatures and _signature(exp[flag]) in signatures
            continue
        assert _signature(sim[flag]) == _signature(exp[flag]), flag
        assert _signature(sim[flag]) in signatures, f"{flag} is declared by hand, not in simulator/cli/options.py"
    for flag in DIFFERENT_MEANING:
        assert sim[flag].help != exp[flag].help, f"{flag} means the same in both now: share it"


def test_no_flag_is_declared_by_hand_in_both_ab_and_simulate_sources() -> None:
    ab_source = Path(ab_module.__file__).read_text(encoding="utf-8")
    simulate_module_source = Path(simulate_module.__file__).read_text(encoding="utf-8")
    # simulate.py also holds `demo` and `report`: only simulate's own options count (_common_options)
    body = simulate_module_source.split("def _common_options", 1)[1].split("\n@click.command", 1)[0]
    in_ab, in_simulate = set(_DECL.findall(ab_source)), set(_DECL.findall(body))
    assert in_ab & in_simulate == DIFFERENT_MEANING
