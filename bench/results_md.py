"""The paper-table result as Markdown, from a ``results.json`` of ``bench/paper_table.py``.

``docs/reproduction.md`` opens with the current result; its table is this module's rendering of
the committed ``docs/results.json``, between the markers below, so the page and the numbers
cannot drift apart (``tests/test_reproduction_doc.py`` checks it).

    .venv/bin/python bench/results_md.py docs/results.json            # print the section
    .venv/bin/python bench/results_md.py docs/results.json --write    # replace it in docs/reproduction.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- results:begin (rendered by bench/results_md.py from docs/results.json; do not edit) -->"
END = "<!-- results:end -->"
METRICS = ("exact", "type_acc", "type_f1")
NAMES = {"exact": "exact", "type_acc": "type acc", "type_f1": "type F1"}
MODE_TITLES = {"free": "free greedy decoding (primary, as the paper)",
               "sampled": "free decoding sampled as the rollouts (temperature {t})",
               "constrained": "grammar-constrained greedy decoding (the simulator's)"}


def _label(name: str, cfg: dict[str, Any]) -> str:
    """A setting's name as the page prints it: the base of a model built here is random weights,
    not a zero-shot pretrained model, and is called what it is."""
    from shop_r1.training.recipe import built_shape

    if name == "zero-shot" and built_shape(str(cfg.get("model", ""))):
        return "untrained base (random init)"
    return name


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _ci(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    lo, hi = d["ci95"]
    seeds = " ".join(f"{100 * v:+.1f}" for v in d.get("per_seed", []))
    return f"{100 * d['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]" + (f" ({seeds})" if seeds else "")


def _machine(m: dict[str, Any]) -> str:
    if m.get("gpu"):
        return f"GPU {m['gpu']}"
    load = m.get("load_avg_start")
    return f"{m.get('cpus', '?')} CPU cores" + (f", load average {load[0]:.1f} at the start" if load else "")


def _per_type(settings: dict[str, Any]) -> list[str]:
    """Per label type: exact and how often the type was predicted (recall), and the terminate rate
    among all predictions beside the labels' (a model can score by always terminating)."""
    types = [t for t in next(iter(settings.values())).get("per_type", {}) if t != "predicted_terminate_rate"]
    if not types:
        return []
    first = next(iter(settings.values()))["per_type"]
    lines = ["", "Per label type, exact % / type recall % (mean over seeds), and the share of predictions that "
             "are terminate:", "",
             "| setting | " + " | ".join(f"{t} (n {first[t]['n']})" for t in types) + " | predicted terminate |",
             "|---|" + "---:|" * (len(types) + 1)]
    for name, r in settings.items():
        pt = r.get("per_type", {})
        cells = [f"{_pct(pt[t]['exact'])} / {_pct(pt[t]['type_recall'])}" if t in pt else "–" for t in types]
        term = pt.get("predicted_terminate_rate", {})
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_pct(term.get('rate'))} "
                     f"(labels {_pct(term.get('label_rate'))}) |")
    lines.append("")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The section: what ran, one table per decoding, the one-thing comparisons and the verdict."""
    cfg, data = results["config"], results["data"]
    seeds = list(cfg["seeds"])
    lines = [BEGIN, ""]
    first = next(iter(results["tables"].values()))["settings"]
    n_test = first["SFT"]["n_test"]
    split = data.get("split", {})
    lines += [
        f"Model `{cfg['model']}`, training seeds {seeds} (the unit of every interval), {n_test} held-out test "
        f"steps, split by {split.get('by', '?')} (test personas also in train: "
        f"{split.get('test_personas_in_train', '?')}); {cfg.get('grpo_steps')} GRPO steps per arm × "
        f"{cfg.get('grpo_prompts_per_step')} prompts × G {cfg.get('num_generations')} (lr {cfg.get('grpo_lr')}); "
        f"SFT {cfg.get('sft_rounds')} round(s) × {cfg.get('sft_epochs_per_round')} epoch (lr {cfg.get('sft_lr')}), "
        f"the round best on validation kept. Differences are percentage "
        "points against SFT with a hierarchical-bootstrap 95 % CI (seeds, then test sessions, then steps); the "
        "per-seed differences follow in parentheses.",
        "",
    ]
    for mode, block in results["tables"].items():
        settings = block["settings"]
        lines += [f"**{MODE_TITLES.get(mode, mode).format(t=cfg.get('rollout_temperature'))}**", "",
                  "| setting | " + " | ".join(f"{NAMES[m]} %" for m in METRICS) + " | "
                  + " | ".join(f"Δ {NAMES[m]} vs SFT" for m in METRICS) + " |",
                  "|---|" + "---:|" * len(METRICS) + "---|" * len(METRICS)]
        for name, r in settings.items():
            lines.append(f"| {_label(name, cfg)} | " + " | ".join(_pct(r.get(m)) for m in METRICS) + " | "
                         + " | ".join(_ci(r.get(f"{m}_vs_sft")) for m in METRICS) + " |")
        lines.append("")
        ordering = block.get("ordering", {})
        for key, comp in block.get("one_thing", {}).items():
            verdicts = ordering.get("one_thing", {}).get(key, {})
            lines.append(f"- {comp['setting']} − {comp['baseline']} (differs in {comp['differs_in']}): "
                         + "; ".join(f"{NAMES[m]} {_ci(comp.get(m))} → {verdicts.get(m, '?')}" for m in METRICS))
        lines += _per_type({_label(name, cfg): row for name, row in settings.items()})
        if ordering:
            holds = ordering.get("holds_on_primary")
            lines.append(f"- the paper's ordering SFT < SFT+RL(binary) < Shop-R1 on type accuracy and macro-F1: "
                         f"**{'holds' if holds else 'not shown'}**")
            if ordering.get("terminate_alarm"):
                lines.append(f"- terminate alarm: {', '.join(ordering['terminate_alarm'])}")
        lines.append("")
    lines += [f"Labels named on the page part of the test prompts: {_pct(data.get('labels_visible'))} %; ceiling "
              f"of exact {_pct(data.get('exact_ceiling'))} %. Total wall time "
              f"{results.get('timings', {}).get('total', 0) / 60:.0f} min "
              f"on {_machine(results.get('machine', {}))}.",
              "", END]
    return "\n".join(lines)


def replace_section(doc: str, section: str) -> str:
    """``doc`` with the text between the markers replaced by ``section`` (markers included)."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"docs/reproduction.md has no {BEGIN!r} ... {END!r} section")
    return doc[:start] + section + doc[end + len(END):]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--write", action="store_true", help="replace the section in docs/reproduction.md")
    args = ap.parse_args(argv)
    section = markdown(json.loads(args.results.read_text(encoding="utf-8")))
    if args.write:
        doc_path = ROOT / "docs" / "reproduction.md"
        doc_path.write_text(replace_section(doc_path.read_text(encoding="utf-8"), section), encoding="utf-8")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
