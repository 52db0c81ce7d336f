"""Who shops on which build: the two arms, and the personas assigned to them.

Paired (the default): every persona + intent runs on both builds, so what the persona draw adds
to the variance cancels in the per-pair difference; pairs are keyed by persona id, which must
therefore be unique. Between-subjects: each persona shops on one build only, assigned so that
the arms are balanced on the traits that drive behaviour (AgentA/B's design): personas are
grouped into strata by those traits and alternated between arms within each stratum, in a
seeded random order.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from shop_r1.envs.shop.pages import VARIANTS
from shop_r1.envs.shop.server import run_in_thread
from shop_r1.personas.model import Persona

Design = Literal["paired", "between"]
BUNDLED = "bundled:"
# The traits stratified on in a between-subjects design: demographics a segment table shows, and
# the Big-Five levels that set a shopper's patience and curiosity.
BALANCE_FIELDS: tuple[str, ...] = ("age_band", "income", "gender")
BALANCE_TRAITS: tuple[str, ...] = ("conscientiousness", "openness")


class Arm(BaseModel):
    """One build: a storefront URL, or the bundled shop in one of its variants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Literal["a", "b"]
    target: str

    @field_validator("target")
    @classmethod
    def _valid(cls, v: str) -> str:
        v = v.strip()
        if v.startswith(BUNDLED):
            variant = v[len(BUNDLED):]
            if variant not in VARIANTS:
                raise ValueError(f"unknown bundled variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        elif not v.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL or bundled:VARIANT, got {v!r}")
        return v

    @property
    def variant(self) -> str | None:
        return self.target[len(BUNDLED):] if self.target.startswith(BUNDLED) else None


@contextlib.contextmanager
def serve_arms(arms: Sequence[Arm], shop_seed: int = 0) -> Iterator[dict[str, str]]:
    """The start URL of every arm (label -> URL), starting a bundled shop per bundled arm."""
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for arm in arms:
            if arm.variant is None:
                urls[arm.label] = arm.target
            else:
                urls[arm.label] = stack.enter_context(run_in_thread(seed=shop_seed, port=0, variant=arm.variant)).url
        yield urls


def with_tasks(personas: Sequence[Persona], tasks: Sequence[str]) -> list[Persona]:
    """Personas with the given intents, cycled (a task file fixes what every shopper looks for)."""
    if not tasks:
        return list(personas)
    return [p.with_intent(tasks[i % len(tasks)]) for i, p in enumerate(personas)]


def unique_ids(personas: Sequence[Persona]) -> list[Persona]:
    """Pairs are keyed by persona id: repeated ids get a ``#k`` suffix."""
    seen: dict[str, int] = {}
    out = []
    for p in personas:
        k = seen.get(p.persona_id, 0)
        seen[p.persona_id] = k + 1
        out.append(p if k == 0 else p.model_copy(update={"persona_id": f"{p.persona_id}#{k}"}))
    return out


def stratum(p: Persona) -> tuple[str, ...]:
    return (tuple(str(getattr(p, f) or "?") for f in BALANCE_FIELDS)
            + tuple(str(p.big_five.get(t, "?")) for t in BALANCE_TRAITS))  # type: ignore[call-overload]


def balanced_split(personas: Sequence[Persona], seed: int) -> tuple[list[Persona], list[Persona]]:
    """Two arms of (nearly) equal size, balanced on ``stratum`` (between-subjects design).

    Within each stratum personas alternate between arms; which arm a stratum starts with also
    alternates, so odd-sized strata do not all favour one arm.
    """
    rng = random.Random(seed)
    strata: dict[tuple[str, ...], list[Persona]] = {}
    for p in personas:
        strata.setdefault(stratum(p), []).append(p)
    a: list[Persona] = []
    b: list[Persona] = []
    for key in sorted(strata):
        members = strata[key]
        rng.shuffle(members)
        # the arm with fewer members so far gets the stratum's first persona
        first, second = (a, b) if len(a) <= len(b) else (b, a)
        for i, p in enumerate(members):
            (first if i % 2 == 0 else second).append(p)
    return a, b
