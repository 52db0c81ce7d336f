"""``shop-r1 reward``: score one prediction against one label and show why it earned what it did.

Meant for checking the reward by hand (and for debugging a GRPO run whose rewards look wrong):
every component is printed with the rule that produced it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shop_r1.envs.actions import Action
from shop_r1.simulator.scoring import (
    COMPONENTS,
    AnswerFormatError,
    LabelError,
    RewardBreakdown,
    RewardConfig,
    action_reward,
    answer_action,
    binary_reward,
    coerce_label,
    is_exact,
    parse_answer,
)


#: A policy answer is a few hundred characters; past this it is not one (and would cost memory).
MAX_TEXT_CHARS = 262_144


def _read_text_arg(value: str, param_hint: str) -> str:
    """``-`` reads stdin, ``@path`` reads a file, anything else is the text itself."""
    where = "stdin" if value == "-" else value[1:] if value.startswith("@") else "the argument"
    try:
        if value == "-":
            data = sys.stdin.buffer.read(MAX_TEXT_CHARS * 4 + 1)
        elif value.startswith("@"):
            with Path(value[1:]).open("rb") as fh:
                data = fh.read(MAX_TEXT_CHARS * 4 + 1)
        else:
            data = value.encode("utf-8", "surrogatepass")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {where}: {exc.strerror or exc}", param_hint=param_hint) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                                 param_hint=param_hint) from exc
    if len(text) > MAX_TEXT_CHARS:
        raise click.BadParameter(f"{where} holds more than {MAX_TEXT_CHARS:,} characters; a policy answer or "
                                 "label is far shorter", param_hint=param_hint)
    return text


def _binary_breakdown(prediction: str, label_action: Action, config: RewardConfig) -> RewardBreakdown:
    """The binary reward in the breakdown's shape: components are 0, the total is the reward."""
    total = binary_reward(prediction, label_action, config)
    try:
        parsed = parse_answer(prediction, strict=config.strict_format).action
        why = "action matches the label exactly -> 1" if is_exact(parsed, label_action, config) else (
            f"action {json.dumps(parsed.to_json())} differs from the label -> 0"
        )
    except AnswerFormatError as exc:
        parsed, why = None, f"format invalid: {exc} -> 0"
    notes = dict.fromkeys(COMPONENTS, "binary reward: not scored separately")
    notes["total"] = why
    return RewardBreakdown(0.0, 0.0, 0.0, 0.0, total, parsed, why, notes)


@click.command("reward")
@click.option("--prediction", "prediction", required=True,
              help="The policy's answer text; '-' reads stdin, '@FILE' reads a file.")
@click.option("--label", "label", required=True,
              help='The recorded action as JSON, e.g. \'{"type":"click","name":"search_button"}\' '
                   "(a full answer with an 'action' key works too); '@FILE' reads a file.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {format, type, attribute, value, total} of the chosen reward, plus exact (the "
                   "evaluation's verdict) and binary (the binary reward), as JSON.")
@click.option("--reward", "kind", type=click.Choice(["hierarchical", "binary"]), default="hierarchical",
              show_default=True,
              help="Shop-R1's hierarchical reward, or the binary baseline (components 0, total 0/1).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=RewardConfig.similarity_threshold,
              show_default=True, help="ROUGE-L threshold below which a similarity earns nothing.")
@click.option("--dars", type=click.FloatRange(min=0.0), default=RewardConfig.dars, show_default=True,
              help="Difficulty-aware reward scaling of the long-text similarity terms.")
@click.option("--rouge-measure", type=click.Choice(["fmeasure", "recall", "precision"]),
              default=RewardConfig.rouge_measure, show_default=True, help="Which ROUGE-L score to use.")
@click.option("--lenient", is_flag=True,
              help="Accept a fenced or embedded JSON answer (strict by default); the same switch as "
                   "`shop-r1 evaluate --lenient` and `shop-r1 train grpo --lenient`.")
def reward(prediction: str, label: str, as_json: bool, kind: str, threshold: float, dars: float,
           rouge_measure: str, lenient: bool) -> None:
    """Print the Shop-R1 reward components for one prediction against one label."""
    prediction_text = _read_text_arg(prediction, "--prediction")
    label_text = _read_text_arg(label, "--label")
    try:
        label_action = coerce_label(label_text)
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from exc
    config = RewardConfig(similarity_threshold=threshold, dars=dars, rouge_measure=rouge_measure,  # type: ignore[arg-type]
                          strict_format=not lenient)
    if kind == "binary":
        result = _binary_breakdown(prediction_text, label_action, config)
    else:
        result = action_reward(prediction_text, label_action, config)

    if as_json:
        # Both verdicts come from scoring's one definition of "exact" and one format rule, so they
        # agree by construction: binary is 1.0 exactly when exact is true.
        exact = is_exact(answer_action(prediction_text, config), label_action, config)
        binary = binary_reward(prediction_text, label_action, config)
        click.echo(json.dumps({**result.to_json(), "exact": exact, "binary": binary}))
        return

    table = Table(title=f"{kind} reward vs label {json.dumps(label_action.to_json())}")
    table.add_column("component")
    table.add_column("points", justify="right")
    table.add_column("why", overflow="fold")
    values = result.to_json()
    for name in COMPONENTS:
        table.add_row(name, f"{values[name]:g}", result.notes.get(name, ""))
    table.add_row("[bold]total[/bold]", f"[bold]{result.total:g}[/bold]", result.notes.get("total", ""))
    Console().print(table)
