"""Why a shopper came: to buy, or only to browse, compare or check a price.

Not every visit to a shop is made to buy. Published figures for real e-commerce traffic, which
``simulator/analysis/data/realism_reference.json`` holds with their sources, put the share of sessions
that add anything to a cart at 6.4–7.9 % (all sessions, bounces included) and the share of
carts abandoned at 70.22 % (Baymard Institute, average of 49 studies); studies of visit types
(Moe 2003, "Buying, searching, or browsing", J. Consumer Psychology 13(1-2)) tell directed
buying visits apart from search/deliberation, hedonic browsing and knowledge-building ones. A
simulator whose shoppers all arrive to buy overstates every funnel stage (issue 24: 87 % of
scripted sessions added to cart on the bundled control shop).

The default mix, :data:`MISSION_MIX`, is a modelling choice, not a measurement: 60 % of
simulated shoppers come to buy, 15 % to compare options, 10 % to check a price and 15 % to
browse, and the latter three leave without adding to cart. Simulated sessions start with a need
(unlike the population figures, which count every bounce), so buyers stay the majority here:
the purchase path is what a UX team tests most, and the report shows the run's funnel next to
the population figures rather than tuning the mix to match them. Pass ``missions=BUYERS_ONLY``
to :func:`personas.sampler.sample` for a run of buyers, or another mix.

A mission is written into the intent as a lead-in ("just browsing: trail running shoes",
"comparing options, not buying yet: ..."), so every policy reads it — a model sees it in its
goal line, the scripted shopper parses it with :func:`split_mission`, and a trace's intent says
it — and the need after the lead-in is what queries and product fit are made from.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Literal

Mission = Literal["buy", "browse", "compare", "price_check"]
MISSIONS: tuple[str, ...] = ("buy", "browse", "compare", "price_check")
MISSION_MIX: dict[str, float] = {"buy": 0.60, "compare": 0.15, "price_check": 0.10, "browse": 0.15}
BUYERS_ONLY: dict[str, float] = {"buy": 1.0}

#: How each non-buying mission is written before the need (the first form is the sampler's).
LEAD_INS: dict[str, tuple[str, ...]] = {
    "browse": ("just browsing: ", "just browsing, not buying today: "),
    "compare": ("comparing options, not buying yet: ", "comparing a few options, not buying today: "),
    "price_check": ("checking prices, not buying: ", "just checking prices: "),
}

_LEADS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("browse", re.compile(r"^\s*(?:(?:just\s+)?browsing|(?:just\s+)?looking\s+around|just\s+looking)(?:\s+today)?"
                          r"(?:,?\s*not\s+buying(?:\s+(?:today|yet))?)?\s*(?::|,|-)?\s*(?:at\s+)?", re.I)),
    ("compare", re.compile(r"^\s*(?:just\s+)?compar(?:ing|e)(?:\s+(?:a\s+few\s+)?options)?"
                           r"(?:,?\s*not\s+buying(?:\s+(?:today|yet))?)?\s*(?::|,|-)\s*", re.I)),
    ("price_check", re.compile(r"^\s*(?:just\s+)?(?:checking|check)\s+(?:the\s+)?prices?(?:\s+(?:only|of))?"
                               r"(?:,?\s*not\s+buying(?:\s+(?:today|yet))?)?\s*(?::|,|-)?\s*", re.I)),
)


def split_mission(intent: str) -> tuple[str, str]:
    """``(mission, need)``: ``buy`` and the intent itself unless a lead-in says otherwise.

    Shop-derived browse intents ("browsing kitchen", "looking around kitchen") read as browsing
    too; "looking for a red dress" does not (it names a need)."""
    for mission, lead in _LEADS:
        m = lead.match(intent)
        if m and intent[m.end():].strip():
            return mission, intent[m.end():].strip()
    return "buy", intent


def with_mission(intent: str, mission: str, rng: random.Random | None = None) -> str:
    """The intent with the mission's lead-in (unchanged for ``buy`` or one that has a lead-in)."""
    if mission not in MISSIONS:
        raise ValueError(f"unknown mission {mission!r} (known: {', '.join(MISSIONS)})")
    if mission == "buy" or split_mission(intent)[0] != "buy":
        return intent
    leads = LEAD_INS[mission]
    return (rng.choice(leads) if rng is not None else leads[0]) + intent


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """A mission mix with known missions and non-negative shares summing to 1 (within 1 %)."""
    unknown = sorted(set(mix) - set(MISSIONS))
    if unknown:
        raise ValueError(f"unknown missions {unknown} (known: {', '.join(MISSIONS)})")
    if any(v < 0 for v in mix.values()):
        raise ValueError("mission shares must not be negative")
    total = sum(mix.values())
    if abs(total - 1.0) > 0.01:
        raise ValueError(f"mission shares must sum to 1, got {total:.3f}")
    return {k: float(v) for k, v in mix.items()}


def allot_missions(n: int, mix: Mapping[str, float], rng: random.Random) -> list[str]:
    """``n`` missions whose counts follow ``mix`` as exactly as ``n`` allows (largest remainders,
    ties to the larger share), in a seeded random order: a 6-shopper run of the default mix has
    4 buyers (a quota of 3.6) every time, not 0 to 6 by chance."""
    mix = check_mix(mix)
    quotas = {k: n * v for k, v in mix.items()}
    counts = {k: math.floor(q) for k, q in quotas.items()}
    left = n - sum(counts.values())
    # Remainders rounded: 6 x 0.6 is 3.5999999999999996 and 6 x 0.1 is 0.6000000000000001 in floats,
    # and a tie must go to the larger share, not to rounding noise.
    for k in sorted(mix, key=lambda k: (round(quotas[k] - counts[k], 9), mix[k]), reverse=True)[:left]:
        counts[k] += 1
    out = [k for k in MISSIONS for _ in range(counts.get(k, 0))]
    rng.shuffle(out)
    return out
