"""``shop-r1 import``: bring real logs into the trace format (``shop-r1 import opera``)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console

from shop_r1.simulator.records.opera_import import (
    ImportReport,
    OperaImportError,
    import_opera,
    load_hf_rows,
    load_users,
    read_rows,
)

log = logging.getLogger(__name__)


@click.group(name="import")
def import_() -> None:
    """Import real shopping logs as a shop-r1 trace (replay, evaluate and train on them)."""


@import_.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to write (trace.jsonl + run.json); must not hold a trace yet.")
@click.option("--users", "users_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="User table (JSON list, {\"personas\": [...]}, JSON Lines or Parquet): attaches personas.")
@click.option("--hf", "hf_name", default=None, metavar="DATASET",
              help="Load the rows from the Hugging Face Hub instead of FILE (e.g. NEU-HAI/OPeRA; needs network).")
@click.option("--hf-config", default=None, help="Dataset configuration name for --hf.")
@click.option("--split", default="train", show_default=True, help="Dataset split for --hf.")
@click.option("--run-id", default=None, help="Run id of the written trace (default: opera-<time>).")
def opera(file: Path | None, out: Path, users_file: Path | None, hf_name: str | None, hf_config: str | None,
          split: str, run_id: str | None) -> None:
    """Import OPeRA-schema rows (Parquet, JSON Lines or a JSON list) from FILE (or --hf) into --out.

    input -> type_and_submit, click -> click, terminate -> terminate; scroll, navigate,
    tab_activate and other context rows become trace events. Rows that cannot be mapped are
    counted by reason and listed (also in run.json), never dropped silently.
    """
    console = Console()
    if (file is None) == (hf_name is None):
        raise click.UsageError("give either FILE or --hf DATASET (one of them)")
    if (out / "trace.jsonl").exists():
        raise click.ClickException(f"{out} already holds a trace; choose another --out")
    report = ImportReport(out_dir=out)
    try:
        users = load_users(users_file) if users_file is not None else None
        if hf_name is not None:
            rows = load_hf_rows(hf_name, hf_config, split)
            source = f"hf:{hf_name}" + (f"/{hf_config}" if hf_config else "") + f":{split}"
        else:
            assert file is not None
            if not file.is_file():
                raise OperaImportError(f"{file}: no such file")
            rows = read_rows(file, report)
            source = str(file)
        import_opera(rows, out, users=users, source=source, report=report, run_id=run_id)
    except (OperaImportError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    report.render(console)
