"""``shop-r1 personas``: look at the persona library and draw samples from it.

Kept free of heavy imports (no simulator, no ML stack) so that it answers instantly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shop_r1.personas.library import INTENT_KINDS, LibraryDataError
from shop_r1.personas.model import Persona, save_personas
from shop_r1.personas.sampler import MixError, sample


@click.group("personas")
def personas() -> None:
    """Sample personas from the library (52 real OPeRA shoppers) or a demographic mix."""


def _table(rows: list[Persona], title: str) -> None:
    table = Table(title=title)
    table.add_column("persona", no_wrap=True, min_width=14)
    table.add_column("who", ratio=2)
    table.add_column("income", ratio=1, overflow="fold")
    table.add_column("budget/mo", justify="right", no_wrap=True)
    table.add_column("OCEAN", no_wrap=True)
    table.add_column("intent", ratio=3)
    for p in rows:
        who = " · ".join(x for x in (p.age_band, p.gender, p.employment, p.location) if x) or "-"
        ocean = "".join((p.big_five.get(t) or "-")[0].upper() for t in
                        ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"))
        table.add_row(p.persona_id, who, p.income or "-",
                      f"${p.budget:,.0f}" if p.budget is not None else "-", ocean, p.intent or "-")
    Console().print(table)


@personas.command("sample")
@click.option("-n", "n", type=click.IntRange(min=0), default=5, show_default=True, help="How many personas.")
@click.option("--mix", "mix_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Demographic mix JSON: percentages per field, e.g. {\"gender\": {\"female\": 50, \"male\": 50}}.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same personas and intents.")
@click.option("--catalog-term", "terms", multiple=True,
              help="A word of the shop's catalogue (repeatable): intents that share words are preferred.")
@click.option("--intents", "intent_kind", type=click.Choice([*INTENT_KINDS, "all"]), default="all",
              show_default=True, help="Intent pool: WebShop written goals, OPeRA typed queries, or both.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the personas here (JSON lines; a .json suffix writes one JSON list).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output on stdout: a table, or one JSON object per line.")
def sample_cmd(n: int, mix_path: Path | None, seed: int, terms: tuple[str, ...], intent_kind: str,
               out: Path | None, fmt: str) -> None:
    """Draw N personas, each paired with a shopping intent."""
    try:
        rows = sample(n, seed=seed, mix=mix_path, catalog_terms=list(terms) if terms else None,
                      intent_kind=intent_kind)  # type: ignore[arg-type]
    except (MixError, LibraryDataError) as exc:
        raise click.ClickException(str(exc)) from exc
    if out is not None:
        save_personas(rows, out)
        click.echo(f"wrote {len(rows)} personas to {out}", err=True)
        return
    if fmt == "json":
        for p in rows:
            sys.stdout.write(json.dumps(p.model_dump(mode="json"), ensure_ascii=False) + "\n")
        return
    source = f"mix {mix_path}" if mix_path else "the OPeRA library"
    _table(rows, f"{len(rows)} personas from {source} (seed {seed})")
