"""A/B experiments: the statistics against their definitions, the gate parser, the trait-balanced
split, and `ab` end to end on the bundled shop's known-effect variants with scripted shoppers in
real Chromium (a cosmetic change must show no effect; hiding add-to-cart must show fewer adds)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from shop_r1.envs.chromium import launch_options
from shop_r1.personas.sampler import sample
from shop_r1.simulator.analysis.ab.design import Arm, balanced_split, stratum, unique_ids
from shop_r1.simulator.analysis.ab.experiment import Experiment, run_experiment
from shop_r1.simulator.analysis.ab.gate import Condition, GateError, failed
from shop_r1.simulator.analysis.ab.stats import paired_mean, paired_rate, unpaired_rate
from shop_r1.simulator.agent.policies.factory import PolicySpec

ROOT = Path(__file__).resolve().parents[1]
# Intents the bundled shop (seed 0) stocks, so that scripted shoppers often reach add-to-cart on
# the control build and the known effect of hiding it has room to show.
TASKS = ["electric kettle", "yoga mat", "portable ssd", "smartwatch", "coffee maker", "water bottle",
         "mechanical keyboard", "dog bed", "hair dryer", "camping tent"]
PAIRS = 10
# Hiding add-to-cart makes every control-build carter (about 3 in 4 with TASKS) a discordant pair, so
# fewer pairs suffice; sessions on that build wander to the step budget, so each pair costs more.
HIDDEN_PAIRS = 8
RUN = {"max_steps": 8, "concurrency": 5}


# ---- statistics -------------------------------------------------------------------------------


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    """Coverage, checked by simulation. Pairs drawn from a known joint distribution: both 0.25,
    A only 0.25, B only 0.05, neither 0.45, so P(A) = 0.5, P(B) = 0.3, true difference -0.2."""
    rng = random.Random(7)
    n, trials, covered, rejected, mdes = 40, 1000, 0, 0, []
    for _ in range(trials):
        a, b = [], []
        for _ in range(n):
            u = rng.random()
            a.append(u < 0.5)
            b.append(u < 0.25 or 0.5 <= u < 0.55)
        m = paired_rate(a, b)
        covered += m.ci95[0] <= -0.2 <= m.ci95[1]
        rejected += m.p_value < 0.05
        mdes.append(m.mde)
        assert -1.0 <= m.ci95[0] <= m.diff <= m.ci95[1] <= 1.0
    assert 0.92 <= covered / trials <= 0.98, covered / trials
    # A 20-point drop at 40 pairs with 30 % discordance is below the MDE (~24 points at 80 % power),
    # so it is detected more often than not, but well under 80 % of the time: the MDE says so.
    assert 0.45 <= rejected / trials <= 0.75, rejected / trials
    assert 0.2 < sum(mdes) / trials < 0.3


def test_paired_rate_counts_discordant_pairs_and_exact_mcnemar() -> None:
    a = [True] * 10 + [False] * 10
    b = [True] * 2 + [False] * 8 + [False] * 9 + [True]
    m = paired_rate(a, b)
    assert m.discordant == (8, 1) and m.n == 20
    assert m.a == 0.5 and m.b == pytest.approx(3 / 20) and m.diff == pytest.approx(-0.35)
    from scipy.stats import binomtest

    assert m.p_value == pytest.approx(binomtest(1, 9, 0.5).pvalue)  # exact McNemar = binomial on discordants
    assert m.ci95[1] < 0
    same = paired_rate([True, False] * 10, [True, False] * 10)
    assert same.diff == 0 and same.p_value == 1.0 and same.ci95[0] < 0 < same.ci95[1]


def test_unpaired_rate_and_mde_shrink_with_n() -> None:
    small = unpaired_rate([True] * 5 + [False] * 5, [True] * 3 + [False] * 7)
    big = unpaired_rate([True] * 50 + [False] * 50, [True] * 30 + [False] * 70)
    assert small.diff == pytest.approx(-0.2) and big.diff == pytest.approx(-0.2)
    assert small.ci95[0] < -0.2 < small.ci95[1] and small.ci95[1] > 0  # too few to tell
    assert big.ci95[1] < 0 and big.p_value < 0.01
    assert small.mde is not None and big.mde is not None and big.mde < small.mde


def test_paired_mean_uses_per_pair_differences() -> None:
    a = [5.0, 7.0, 6.0, 9.0, 4.0, 8.0]
    b = [x + 2 + (0.5 if i % 2 else -0.5) for i, x in enumerate(a)]
    m = paired_mean(a, b)
    assert m.diff == pytest.approx(2.0) and m.ci95[0] > 1.0 and m.ci95[1] < 3.0 and m.p_value < 0.001


# ---- gate --------------------------------------------------------------------------------------


def test_fail_if_parses_without_eval_and_names_the_interval() -> None:
    metrics = {"added_to_cart": paired_rate([True] * 8 + [False] * 2, [True] * 2 + [False] * 8)}
    c = Condition.parse("added_to_cart.diff < -0.05")
    assert (c.metric, c.field, c.op, c.value) == ("added_to_cart", "diff", "<", -0.05)
    lines = failed([c, Condition.parse("added_to_cart.ci95.hi<0"), Condition.parse("added_to_cart.p_value > 0.5")],
                   metrics)
    assert len(lines) == 2
    assert lines[0].startswith("failed: added_to_cart.diff < -0.05") and "95% CI [" in lines[0]
    for bad in ("__import__('os').system('x') < 1", "added_to_cart.diff < -0.05 or 1", "added_to_cart.diff",
                "added_to_cart.ci95 < 0", "added_to_cart.diff << 1"):
        with pytest.raises(GateError, match="expected METRIC.FIELD OP NUMBER"):
            Condition.parse(bad)
    with pytest.raises(GateError, match="no metric 'purchsed'"):
        failed([Condition.parse("purchsed.diff < 0")], metrics)


# ---- design ------------------------------------------------------------------------------------


def test_between_split_balances_traits_and_ids_are_unique() -> None:
    people = unique_ids(sample(60, seed=4))
    assert len({p.persona_id for p in people}) == 60
    a, b = balanced_split(people, seed=1)
    assert len(a) == len(b) == 30 and not {p.persona_id for p in a} & {p.persona_id for p in b}
    ca, cb = Counter(stratum(p) for p in a), Counter(stratum(p) for p in b)
    assert all(abs(ca[k] - cb[k]) <= 1 for k in set(ca) | set(cb))
    with pytest.raises(ValueError, match="unknown bundled variant 'purple'"):
        Arm(label="b", target="bundled:purple")
    with pytest.raises(ValueError, match="http"):
        Arm(label="a", target="ftp://shop")


# ---- end to end ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recolor_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ab") / "recolor"
    exp = Experiment(a=Arm(label="a", target="bundled:control"), b=Arm(label="b", target="bundled:recolor"),
                     out_dir=out, shoppers=PAIRS, seed=11, tasks=TASKS, run_id="ab-test-recolor", run=RUN)
    return out, run_experiment(exp, PolicySpec(name="scripted", seed=11))


def test_ab_on_a_cosmetic_change_finds_no_effect(recolor_run) -> None:
    out, result = recolor_run
    data = json.loads((out / "ab.json").read_text())
    assert data["design"] == "paired" and data["shoppers"] == PAIRS
    assert data["a"]["target"] == "bundled:control" and data["b"]["target"] == "bundled:recolor"
    for name in ("viewed_product", "added_to_cart", "reached_checkout", "purchased", "mean_steps"):
        m = data["metrics"][name]
        assert set(m) >= {"a", "b", "diff", "ci95", "p_value", "mde"}
        assert m["ci95"][0] <= m["diff"] <= m["ci95"][1]
    lo, hi = data["metrics"]["added_to_cart"]["ci95"]
    assert lo <= 0 <= hi, (lo, hi)
    assert data["metrics"]["added_to_cart"]["a"] > 0.2  # the shoppers do reach the cart on the control build
    for arm in ("a", "b"):  # ordinary run directories
        assert (out / arm / "trace.jsonl").is_file() and (out / arm / "run.json").is_file()
        assert (out / arm / "report.html").is_file()
    assert len(result.pairs) == PAIRS


def test_ab_html_opens_in_chromium_and_shows_paired_sessions(recolor_run) -> None:
    out, result = recolor_run
    text = (out / "ab.html").read_text(encoding="utf-8")
    assert "<script" not in text and 'src="http' not in text and 'href="http' not in text
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_options())
        page = browser.new_page()
        page.goto((out / "ab.html").as_uri())
        assert page.locator("h2", has_text="Metrics").is_visible()
        assert page.locator("img.chart").count() == 2
        assert page.locator("img.chart").first.evaluate("img => img.naturalWidth") > 0
        links = page.locator('section:has(h2:text("Exit rate by page")) a, '
                             'section:has(h2:text("Where paired sessions first diverged")) a')
        if links.count():  # a pair linked from where the builds differ
            target = links.first.get_attribute("href")
            links.first.click()
            pair = page.locator(target)
        else:  # a cosmetic change with shared random draws: the pairs never diverged; open one directly
            pair = page.locator('section:has(h2:text("Paired sessions")) > details.session').first
            assert "never diverged" in pair.locator("summary").first.inner_text()
        pair.locator("summary").first.click()
        assert pair.locator("h3", has_text="A").is_visible() and pair.locator("h3", has_text="B").is_visible()
        # inside the pair, one session's steps: open it and read a rationale
        session = pair.locator("details.session").first
        session.locator("summary").first.click()
        assert session.locator("td.rationale").first.is_visible()
        assert session.locator("td.rationale").first.inner_text().strip()
        # the single-run report of arm A links to every session
        page.goto((out / "a" / "report.html").as_uri())
        links = page.locator('section:has(h2:text-is("Sessions")) table a')
        assert links.count() == PAIRS
        target = links.nth(2).get_attribute("href")
        sid = links.nth(2).inner_text()
        links.nth(2).click()
        block = page.locator(target)
        assert sid in block.locator("summary").first.inner_text()
        block.locator("summary").first.click()
        assert block.locator("td.rationale").first.is_visible()
        block.locator("details.page summary").first.click()
        assert block.locator("details.page pre").first.is_visible()
        browser.close()


def test_ab_cli_on_hidden_add_to_cart_finds_fewer_adds_and_gates(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("\n".join(TASKS) + "\n")
    out = tmp_path / "hidden"
    proc = subprocess.run(
        [sys.executable, "-m", "shop_r1.simulator.cli.main", "ab", "--a", "bundled:control", "--b",
         "bundled:hidden-add-to-cart", "--shoppers", str(HIDDEN_PAIRS), "--seed", "11", "--tasks", str(tasks),
         "--max-steps", str(RUN["max_steps"]), "--concurrency", str(RUN["concurrency"]), "--out", str(out),
         "--fail-if", "added_to_cart.diff < -0.05", "--fail-if", "purchased.diff > 0.5"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr[-2000:]
    data = json.loads((out / "ab.json").read_text())
    m = data["metrics"]["added_to_cart"]
    assert m["ci95"][1] < 0, m
    assert m["b"] == 0.0  # scripted shoppers never open the "More buying options" disclosure
    fail_lines = [line for line in proc.stderr.splitlines() if line.startswith("failed:")]
    assert fail_lines == [f"failed: added_to_cart.diff < -0.05 (added_to_cart: A {m['a']:.3f}, B 0.000, "
                          f"diff {m['diff']:+.3f}, 95% CI [{m['ci95'][0]:+.3f}, {m['ci95'][1]:+.3f}], "
                          f"p {m['p_value']:.3g}, n {HIDDEN_PAIRS})"]


def test_ab_on_two_urls(tmp_path: Path) -> None:
    """Any two storefronts by URL (here two builds served on 127.0.0.1, as a staging and a
    production build would be): the targets and URLs are recorded, each arm is an ordinary run."""
    from shop_r1.envs.shop.server import run_in_thread

    out = tmp_path / "urls"
    with run_in_thread(seed=0, port=0) as prod, run_in_thread(seed=0, port=0, variant="hidden-add-to-cart") as staging:
        proc = subprocess.run(
            [sys.executable, "-m", "shop_r1.simulator.cli.main", "ab", "--a", prod.url, "--b", staging.url,
             "--shoppers", "3", "--seed", "2", "--max-steps", "6", "--out", str(out)],
            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "ab.json").read_text())
    assert (data["a"]["target"], data["b"]["target"]) == (prod.url, staging.url)
    assert data["a"]["url"] == prod.url and data["b"]["url"] == staging.url
    assert len(data["pairs"]) == 3 and data["a"]["sessions"] == data["b"]["sessions"] == 3
    for arm in ("a", "b"):
        assert (out / arm / "trace.jsonl").is_file() and (out / arm / "report.html").is_file()
