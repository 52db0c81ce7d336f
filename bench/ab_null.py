"""False-positive rate of `shop-r1 ab` on a change with no effect: control vs recolor, many seeds.

Each seed draws other personas and other shopper choices, and runs one paired experiment of
``--pairs`` pairs with scripted shoppers in real Chromium. A 95 % interval that excludes 0 on a
cosmetic change is a false positive; over many seeds their share should be near (at most) 5 %.
Prints one line per seed and the rates at the end, per metric and for "any funnel metric".

    .venv/bin/python bench/ab_null.py --seeds 20 --pairs 6
    .venv/bin/python bench/ab_null.py --variant hidden-add-to-cart --seeds 1 --pairs 40   # an interval at N=40
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from shop_r1.simulator.analysis.ab.analysis import RATE_METRICS, ABResult, analyse
from shop_r1.simulator.analysis.ab.design import Arm
from shop_r1.simulator.analysis.ab.experiment import Experiment, run_experiment
from shop_r1.simulator.agent.policies.factory import PolicySpec

TASKS = ["electric kettle", "yoga mat", "portable ssd", "smartwatch", "coffee maker", "water bottle",
         "mechanical keyboard", "dog bed", "hair dryer", "camping tent"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="recolor", help="bundled variant for arm B (A is control)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--max-steps", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=4, help="per arm")
    ap.add_argument("--no-tasks", action="store_true", help="intents drawn by the sampler instead of TASKS")
    ap.add_argument("--out", type=Path, default=None, help="keep the experiments here (default: a temp dir)")
    ap.add_argument("--analyse-only", action="store_true",
                    help="re-analyse the experiments already in --out (no shoppers are run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    root = args.out or Path(tempfile.mkdtemp(prefix="ab_null-"))
    excluded = {m: 0 for m in (*RATE_METRICS, "any")}
    walls = []
    for i in range(args.seeds):
        seed = args.first_seed + i
        exp = Experiment(a=Arm(label="a", target="bundled:control"), b=Arm(label="b", target=f"bundled:{args.variant}"),
                         out_dir=root / f"seed{seed}", shoppers=args.pairs, seed=seed,
                         tasks=[] if args.no_tasks else TASKS, run_id=f"abnull-{seed}",
                         run={"max_steps": args.max_steps, "concurrency": args.concurrency})
        t0 = time.perf_counter()
        if args.analyse_only:
            if not (exp.out_dir / "ab.json").is_file():
                continue
            result = analyse(exp.out_dir / "a", exp.out_dir / "b", design="paired")
            walls.append(ABResult.model_validate_json((exp.out_dir / "ab.json").read_text()).wall_s or 0.0)
        else:
            result = run_experiment(exp, PolicySpec(name="scripted", seed=seed))
            walls.append(time.perf_counter() - t0)
        hit = False
        cells = []
        for name in RATE_METRICS:
            m = result.metrics[name]
            out = m.ci95[0] > 0 or m.ci95[1] < 0
            excluded[name] += out
            hit |= out
            cells.append(f"{name} {100 * m.diff:+.0f}pp [{100 * m.ci95[0]:+.0f},{100 * m.ci95[1]:+.0f}]{'*' if out else ''}")
        excluded["any"] += hit
        left_out = "".join(f"  [{note}]" for note in result.notes)
        print(f"seed {seed}: " + "  ".join(cells) + f"  ({walls[-1]:.0f} s){left_out}", flush=True)
    n = len(walls)
    print(f"\nvariant {args.variant}, {n} experiments x {args.pairs} pairs, max {args.max_steps} steps; "
          f"experiments in {root}")
    for name, k in excluded.items():
        print(f"  95% interval excludes 0: {name:17s} {k}/{n} = {100 * k / max(n, 1):.0f}%")
    print(f"  wall time per experiment {sum(walls) / max(n, 1):.0f} s, per pair {sum(walls) / max(n, 1) / args.pairs:.1f} s "
          f"(both arms at once, {args.concurrency} shoppers per arm)")


if __name__ == "__main__":
    main()
