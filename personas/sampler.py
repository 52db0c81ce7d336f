"""Sampling shoppers: N personas, each paired with a shopping intent, deterministic under a seed.

Two sources of personas:

- **the library** (default): real OPeRA shoppers, drawn without replacement (a sample larger
  than the library goes through it again in a new random order);
- **a demographic mix** (as UXAgent specifies populations): percentages per field, e.g.
  ``{"age_band": {"18-24": 20, "25-34": 40, "35-44": 40}, "gender": {"female": 50, "male": 50}}``.

How a mix becomes personas (the choice, and why): each field's values are allotted to the N
slots by largest-remainder quotas and shuffled, so the marginals match the mix as exactly as N
allows (random draws would miss a 5 % value by chance at small N); fields are independent, since
a mix only gives marginals. For every slot the *closest* library persona is chosen (field
similarity: equal values score 1, numeric bands such as ages and incomes score by the distance
of their midpoints, other text by word overlap; ties go to the persona used least so far, then
to the seeded RNG) and the requested values are written over it. The result is a synthesised
persona: the demographics the mix asked for, and the shopping style (priorities, avoids,
Big Five, budget, frequency) of the most similar real shopper. The base's bio is kept only when
the base agrees with every requested age band, gender and employment: a bio saying "I am a PhD
student" next to employment "retired" would contradict the prompt, so it is dropped instead.
``source`` records the base persona and the fields that were set.

Intents: with ``catalog_terms`` (the shop's category / brand / product words) intents sharing
words with the catalogue are preferred, drawn with probability proportional to the number of
shared words, without replacement; when none overlaps, any intent is used (and a warning says
so). Intents are drawn from ``load_intents(intent_kind)``.

Intents from outside: ``intent_source(persona, rng)`` replaces the library's pool (a shop's own
catalogue, see ``shop_r1.personas.intents``). It is called per persona, after the
personas are drawn, because a fitting intent depends on who shops (a budget follows income);
it gets the sampler's intent stream, so the same seed still gives the same intents.

Missions: not every shopper comes to buy. ``missions`` (default ``personas.missions.MISSION_MIX``:
60 % buy, 15 % compare, 10 % check a price, 15 % browse; its reasoning and sources are in that
module) is allotted to the N shoppers by largest-remainder quotas on a stream of its own, and a
non-buying mission is written into the intent as a lead-in ("just browsing: ..."), so the people
and their needs drawn for a seed are the same whatever the mix. ``missions=BUYERS_ONLY`` gives a
run of buyers.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shop_r1.personas.library import IntentKind, PersonaLibrary, load_library
from shop_r1.personas.missions import MISSION_MIX, allot_missions, with_mission
from shop_r1.personas.model import DEMOGRAPHIC_FIELDS, Persona

logger = logging.getLogger(__name__)

MIX_FIELDS: tuple[str, ...] = DEMOGRAPHIC_FIELDS
_BIO_FIELDS = ("age_band", "gender", "employment")
_SUM_TOLERANCE = 0.01


class MixError(ValueError):
    """A demographic mix that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class DemographicMix:
    """Percentages per persona field; every field's percentages sum to 100."""

    fields: Mapping[str, Mapping[str, float]]
    where: str = "<mix>"

    @classmethod
    def from_mapping(cls, data: Any, where: str = "<mix>") -> DemographicMix:
        """Validate a decoded mix. Keys starting with ``_`` are comments and ignored."""
        if not isinstance(data, Mapping):
            raise MixError(f"{where}: a mix must be a JSON object of fields, got {type(data).__name__}")
        fields: dict[str, dict[str, float]] = {}
        for name, dist in data.items():
            if isinstance(name, str) and name.startswith("_"):
                continue
            if name not in MIX_FIELDS:
                raise MixError(f"{where}: unknown field {name!r}; a mix may set {', '.join(MIX_FIELDS)}")
            if not isinstance(dist, Mapping) or not dist:
                raise MixError(f"{where}: field {name!r} must be a non-empty object of value -> percent")
            values: dict[str, float] = {}
            for value, pct in dist.items():
                if not isinstance(value, str) or not value.strip():
                    raise MixError(f"{where}: field {name!r} has a blank value")
                if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not math.isfinite(pct) or pct < 0:
                    raise MixError(f"{where}: field {name!r}, value {value!r}: percent must be a number >= 0, got {pct!r}")
                values[value.strip()] = float(pct)
            total = sum(values.values())
            if abs(total - 100.0) > _SUM_TOLERANCE:
                raise MixError(f"{where}: field {name!r}: percentages sum to {total:g}, not 100")
            fields[name] = values
        if not fields:
            raise MixError(f"{where}: the mix sets no field; a mix may set {', '.join(MIX_FIELDS)}")
        return cls(fields=fields, where=where)

    @classmethod
    def from_file(cls, path: str | Path) -> DemographicMix:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MixError(f"{path}: cannot read mix file: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise MixError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
        return cls.from_mapping(data, str(path))

    def allot(self, name: str, n: int, rng: random.Random) -> list[str]:
        """``n`` values of one field in proportion to the mix (largest remainder), shuffled."""
        dist = self.fields[name]
        exact = {v: pct * n / 100.0 for v, pct in dist.items()}
        counts = {v: math.floor(x) for v, x in exact.items()}
        short = n - sum(counts.values())
        by_remainder = sorted(dist, key=lambda v: (-(exact[v] - counts[v]), list(dist).index(v)))
        for v in by_remainder[:short]:
            counts[v] += 1
        values = [v for v in dist for _ in range(counts[v])]
        rng.shuffle(values)
        return values


# -- similarity of field values ---------------------------------------------------------------

def _band(text: str) -> tuple[float, float] | None:
    """A numeric band from text: "25-34" -> (25, 34), "Less than $25,000" -> (0, 25000),
    "$150,000 or more" / "65+" -> (x, 2x)."""
    nums = [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]
    if not nums:
        return None
    low = text.lower()
    if len(nums) >= 2:
        return nums[0], nums[1]
    if re.search(r"less than|under|below|<", low):
        return 0.0, nums[0]
    if re.search(r"or more|and over|or older|\+|above|>", low):
        return nums[0], nums[0] * 2
    return nums[0], nums[0]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def field_similarity(name: str, wanted: str, have: str | None) -> float:
    """How close a persona's value is to a requested one, in [0, 1]."""
    if have is None:
        return 0.0
    if wanted.strip().lower() == have.strip().lower():
        return 1.0
    if name in ("age_band", "income"):
        a, b = _band(wanted), _band(have)
        if a and b:
            ma, mb = sum(a) / 2, sum(b) / 2
            if name == "age_band":
                return max(0.0, 1.0 - abs(ma - mb) / 20.0)
            return max(0.0, 1.0 - abs(math.log10(max(ma, 1.0)) - math.log10(max(mb, 1.0))))
    wa, wb = _words(wanted), _words(have)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def closest_persona(wanted: Mapping[str, str], personas: Sequence[Persona], uses: Mapping[str, int],
                    rng: random.Random) -> Persona:
    """The library persona most similar to ``wanted``; ties to the least used, then at random."""
    def key(p: Persona) -> tuple[float, int, float]:
        score = sum(field_similarity(f, v, getattr(p, f)) for f, v in wanted.items())
        return (-round(score, 9), uses.get(p.persona_id, 0), rng.random())
    return min(personas, key=key)


def synthesise(base: Persona, wanted: Mapping[str, str], persona_id: str, source: str) -> Persona:
    """``base`` with the requested field values written over it (see the module docstring)."""
    keeps_bio = all(
        field_similarity(f, wanted[f], getattr(base, f)) == 1.0 for f in _BIO_FIELDS if f in wanted)
    update: dict[str, Any] = dict(wanted)
    update.update(persona_id=persona_id, source=source, intent=None)
    if not keeps_bio:
        update["bio"] = ""
    return Persona.model_validate({**base.model_dump(), **update})


# -- intents ----------------------------------------------------------------------------------

_STOPWORDS = frozenset("""
a an the and or of for to in on at by with without from into that this these those it its is are
am be been was were i im i'm me my we our you your he she they them their which who what when
want wants need needs looking look find get buy would like please some any also very really
just can could should will one ones less lower than under below above over more price priced
dollars dollar usd cost around about up only not no new size color colour pack count ounce
ounces oz item items product products thing things something
""".split())


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and re.search(r"(ss|x|ch|sh)es$", word):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """The words of ``text`` that say what is wanted: lower case, singular, no stop words or
    numbers. Used to match intents against a shop's catalogue words."""
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if len(w) < 2 or w.isdigit() or w in _STOPWORDS:
            continue
        out.add(_singular(w))
    return out


def rank_intents(intents: Sequence[str], catalog_terms: Iterable[str]) -> list[tuple[str, int]]:
    """``(intent, shared words)`` for the intents sharing at least one word with the catalogue."""
    catalog: set[str] = set()
    for term in catalog_terms:
        catalog |= content_words(str(term))
    if not catalog:
        return []
    ranked = [(i, len(content_words(i) & catalog)) for i in intents]
    return [(i, k) for i, k in ranked if k > 0]


@dataclass
class _IntentDraw:
    """Draws intents without replacement (weighted), starting over when the pool is used up."""

    pool: list[str]
    weights: list[float]
    rng: random.Random
    _queue: list[str] = field(default_factory=list)

    def _refill(self) -> None:
        # Efraimidis-Spirakis: the order of rng.random() ** (1/w) is a weighted sample without replacement.
        keyed = sorted(zip(self.pool, self.weights), key=lambda iw: -(self.rng.random() ** (1.0 / iw[1])))
        self._queue = [i for i, _ in keyed]

    def next(self) -> str:
        if not self._queue:
            self._refill()
        return self._queue.pop(0)


def _intent_draw(intents: Sequence[str], catalog_terms: Iterable[str] | None, rng: random.Random) -> _IntentDraw:
    if not intents:
        raise ValueError("the intent pool is empty")
    if catalog_terms is not None:
        ranked = rank_intents(intents, catalog_terms)
        if ranked:
            logger.info("%d of %d intents share words with the catalogue", len(ranked), len(intents))
            return _IntentDraw([i for i, _ in ranked], [float(k) for _, k in ranked], rng)
        logger.warning("no intent shares a word with the catalogue terms; using any intent")
    return _IntentDraw(list(intents), [1.0] * len(intents), rng)


# -- sampling ---------------------------------------------------------------------------------

def _library_personas(library: PersonaLibrary, n: int, rng: random.Random) -> list[Persona]:
    out: list[Persona] = []
    while len(out) < n:
        out.extend(rng.sample(list(library.personas), min(len(library.personas), n - len(out))))
    return out


def _mix_personas(library: PersonaLibrary, mix: DemographicMix, n: int, seed: int,
                  rng: random.Random) -> list[Persona]:
    columns = {name: mix.allot(name, n, rng) for name in mix.fields}
    uses: dict[str, int] = {}
    out: list[Persona] = []
    for i in range(n):
        wanted = {name: values[i] for name, values in columns.items()}
        base = closest_persona(wanted, library.personas, uses, rng)
        uses[base.persona_id] = uses.get(base.persona_id, 0) + 1
        set_fields = ", ".join(f"{k}={v}" for k, v in wanted.items())
        out.append(synthesise(
            base, wanted, persona_id=f"mix{seed}-{i:04d}-{base.persona_id}",
            source=f"synthesised from demographic mix {mix.where} (seed {seed}, #{i}; {set_fields}) "
                   f"over base {base.persona_id}: {base.source}",
        ))
    return out


def sample(n: int, seed: int = 0, mix: DemographicMix | Mapping[str, Any] | str | Path | None = None,
           catalog_terms: Iterable[str] | None = None, *, library: PersonaLibrary | None = None,
           intent_kind: IntentKind = "all",
           intent_source: Callable[[Persona, random.Random], str] | None = None,
           missions: Mapping[str, float] | None = MISSION_MIX) -> list[Persona]:
    """``n`` personas, each with ``intent`` set; the same arguments give the same personas.

    ``mix`` is a :class:`DemographicMix`, a decoded mix or a path to a JSON mix file.
    ``missions`` is the share of each mission (``personas.missions``); None leaves the intents
    as drawn (all buyers, the behaviour before missions existed).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    library = library or load_library()
    if not library.personas:
        raise ValueError("the persona library is empty")
    if mix is not None and not isinstance(mix, DemographicMix):
        mix = DemographicMix.from_file(mix) if isinstance(mix, (str, Path)) else DemographicMix.from_mapping(mix)
    # Separate streams, so that adding catalogue terms does not change which personas are drawn.
    persona_rng = random.Random(f"personas:{seed}")
    intent_rng = random.Random(f"intents:{seed}")
    if mix is None:
        personas = _library_personas(library, n, persona_rng)
    else:
        personas = _mix_personas(library, mix, n, seed, persona_rng)
    if intent_source is not None:
        people = [p.with_intent(intent_source(p, intent_rng)) for p in personas]
    else:
        terms = list(catalog_terms) if catalog_terms is not None else None
        draw = _intent_draw(library.intents_of(intent_kind), terms, intent_rng)
        people = [p.with_intent(draw.next()) for p in personas]
    if missions is None:
        return people
    mission_rng = random.Random(f"missions:{seed}")  # its own stream: people and needs stay the same
    allotted = allot_missions(len(people), missions, mission_rng)
    return [p.with_intent(with_mission(p.intent or "", m, mission_rng)) if p.intent else p
            for p, m in zip(people, allotted)]
