"""The hierarchical bootstrap's draws (training/hierarchical_bootstrap.py): real numpy, constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from shop_r1.training.hierarchical_bootstrap import Run, seed_bootstrap, step_weights, verdict

ACC = {"acc": lambda p, lab, ex, w: (w * (p == lab)).sum(1) / w.sum(1)}


def test_step_weights_draw_whole_sessions_then_their_steps():
    sessions = ["a"] * 3 + ["b"] * 5 + ["c"] * 2
    w = step_weights(sessions, 500, np.random.default_rng(1))
    assert w.shape == (500, 10) and (w >= 0).all()
    sizes = {"a": 3, "b": 5, "c": 2}
    idx = {k: [i for i, s in enumerate(sessions) if s == k] for k in sizes}
    # each session's steps were drawn k times its size, and k sessions were drawn in all (3 = C)
    drawn = {k: w[:, v].sum(1) / sizes[k] for k, v in idx.items()}
    for k in sizes:
        assert np.allclose(drawn[k], np.round(drawn[k]))
    assert np.allclose(sum(drawn.values()), 3)
    # a session is left out of some replicates entirely (clusters, not steps, are the first draw)
    assert (w[:, idx["b"]].sum(1) == 0).any()


def test_seed_bootstrap_pairs_within_seed_and_reports_each_seed():
    labels = np.zeros(20, int)
    sessions = [f"s{i // 2}" for i in range(20)]

    def run(k_right: int) -> Run:
        pred = np.where(np.arange(20) < k_right, 0, 1)
        return Run(pred_type=pred, label_type=labels, exact=pred == labels)

    out = seed_bootstrap([run(12), run(16)], [run(10), run(10)], sessions, ACC, n_boot=300)["acc"]
    assert out["per_seed"] == pytest.approx([0.1, 0.3])
    assert out["diff"] == pytest.approx(0.2)
    assert out["n_seeds"] == 2 and out["n_sessions"] == 10 and out["n_boot"] == 300
    lo, hi = out["ci95"]
    assert lo <= 0.2 <= hi
    with pytest.raises(ValueError, match="one arm and one base run per seed"):
        seed_bootstrap([run(1)], [], sessions, ACC)


def test_verdict_reads_the_interval():
    assert verdict([0.01, 0.2]) == "better" and verdict([-0.2, -0.01]) == "worse"
    assert verdict([-0.01, 0.2]) == "not shown" and verdict([0.0, 0.1]) == "not shown"
