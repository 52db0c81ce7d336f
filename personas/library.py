"""The seed library: 52 real OPeRA shoppers and pools of real shopping intents.

The package ships verbatim copies of the sources (``personas/data/``, provenance and licences in
``personas/data/README.md``) and maps them to :class:`~shop_r1.personas.model.Persona` at load time, so the
mapping is code that can be read and tested rather than a frozen conversion. Loading 52 records
takes about a millisecond; :func:`load_library` caches the result anyway.

OPeRA field mapping (source field -> Persona field):

- ``id``                 -> ``persona_id`` = ``"opera-" + first 8 hex digits`` (unique over the 52);
  the full id is kept in ``source``.
- ``age`` "25-34 years old" -> ``age_band`` "25-34"; ``gender`` -> lower case;
  ``income`` kept as the band text ("Prefer not to say" -> None);
  ``education`` without its parenthetical examples; ``employment`` lower case, "a, b" spacing
  ("Shopper" is the placeholder of profiles without survey answers -> None);
  ``city`` -> ``location`` (all-lower-case names title-cased; empty -> the "in X" of ``name``).
- ``shop_frequency`` -> ``shopping_frequency``; ``budget`` "About $200/month online" ->
  ``budget`` 200.0 (a range "$50-150" -> its midpoint 100.0; "Not specified" -> None) and
  ``budget_text`` the source wording.
- ``priorities``/``avoids`` verbatim; ``bio`` verbatim (the placeholder "Shopper shopper, , ." -> "").
- ``personality`` uses the IPIP Big-Five factor names: Intellect -> openness,
  Emotional Stability -> neuroticism INVERTED (high stability = low neuroticism); the five-step
  scale is folded to three levels: extremely low/low -> low, medium, high/extremely high -> high.
- ``prime`` and ``label`` are not mapped (``label`` repeats other fields; Prime membership is
  not part of the persona model).
"""

from __future__ import annotations

import difflib
import json
import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from shop_r1.personas.model import BigFiveLevel, BigFiveTrait, Persona

logger = logging.getLogger(__name__)

IntentKind = Literal["webshop", "opera", "all"]
INTENT_KINDS: tuple[str, ...] = ("webshop", "opera")

OPERA_PERSONAS_FILE = "opera_personas.json"
OPERA_QUERIES_FILE = "opera_queries.json"
WEBSHOP_GOALS_FILE = "webshop_goals_2000.json"

# How personas/data/webshop_goals_2000.json was drawn from WebShop's human_goals.json (12,087
# instructions): see select_goal_subset. tests/test_personas.py re-derives it from the source.
WEBSHOP_SUBSET_SIZE = 2000
WEBSHOP_SUBSET_SEED = 2507

_LEVELS: dict[str, BigFiveLevel] = {"extremely low": "low", "low": "low", "medium": "medium", "high": "high",
                                    "extremely high": "high"}
_INVERT: dict[BigFiveLevel, BigFiveLevel] = {"low": "high", "medium": "medium", "high": "low"}
_TRAITS: dict[str, tuple[BigFiveTrait, bool]] = {  # OPeRA (IPIP) factor -> (Big-Five trait, inverted?)
    "extraversion": ("extraversion", False),
    "agreeableness": ("agreeableness", False),
    "conscientiousness": ("conscientiousness", False),
    "emotional stability": ("neuroticism", True),
    "intellect": ("openness", False),
}


class LibraryDataError(ValueError):
    """A shipped data file that does not have the expected shape; names the file and record."""


@dataclass(frozen=True)
class PersonaLibrary:
    """The seed personas and the intent pools, by kind (``webshop``, ``opera``)."""

    personas: tuple[Persona, ...]
    intents: Mapping[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.personas)

    def all_intents(self) -> tuple[str, ...]:
        """Every intent of every kind, de-duplicated, in kind order."""
        seen: dict[str, None] = {}
        for kind in INTENT_KINDS:
            for intent in self.intents.get(kind, ()):
                seen.setdefault(intent, None)
        return tuple(seen)

    def intents_of(self, kind: IntentKind) -> tuple[str, ...]:
        if kind == "all":
            return self.all_intents()
        if kind not in self.intents:
            raise ValueError(f"unknown intent kind {kind!r}; known: {', '.join(INTENT_KINDS)}, all")
        return self.intents[kind]

    def get(self, persona_id: str) -> Persona:
        for p in self.personas:
            if p.persona_id == persona_id:
                return p
        close = difflib.get_close_matches(persona_id, [p.persona_id for p in self.personas], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no persona {persona_id!r} in the library{hint}")


# -- data files -------------------------------------------------------------------------------

def _read_json(name: str) -> Any:
    ref = resources.files("shop_r1.personas") / "data" / name
    try:
        return json.loads(ref.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LibraryDataError(f"personas/data/{name}: missing from the package") from exc
    except json.JSONDecodeError as exc:
        raise LibraryDataError(f"personas/data/{name}:{exc.lineno}: not valid JSON: {exc.msg}") from exc


# -- OPeRA personas ---------------------------------------------------------------------------

def parse_budget(text: str | None) -> float | None:
    """Typical spend from survey text: "About $200/month online" -> 200.0, "$50-150" -> 100.0.

    Tolerates the source's typos ("$$30", "$about 50"); returns None when no number is given.
    """
    if not text:
        return None
    numbers = [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]
    if not numbers:
        return None
    if len(numbers) >= 2 and re.search(r"\d\s*(?:-|–|to)\s*\$?\s*\d", text):
        return (numbers[0] + numbers[1]) / 2
    return numbers[0]


def _blank_to_none(value: Any) -> str | None:
    if value is None:
        return None
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text or None


def _location(record: Mapping[str, Any]) -> str | None:
    city = _blank_to_none(record.get("city"))
    if city is None:
        m = re.search(r"\bin\s+(.+)$", str(record.get("name") or ""))
        city = _blank_to_none(m.group(1)) if m else None
    if city and city == city.lower():
        city = city.title()
    return city


def _big_five(personality: Any, where: str) -> dict[BigFiveTrait, BigFiveLevel]:
    if not isinstance(personality, Mapping):
        raise LibraryDataError(f"{where}: personality must be an object, got {type(personality).__name__}")
    out: dict[BigFiveTrait, BigFiveLevel] = {}
    for factor, level in personality.items():
        key = str(factor).strip().lower()
        if key not in _TRAITS:
            raise LibraryDataError(f"{where}: unknown personality factor {factor!r}")
        lvl = _LEVELS.get(str(level).strip().lower())
        if lvl is None:
            raise LibraryDataError(f"{where}: personality {factor!r} has unknown level {level!r}")
        trait, inverted = _TRAITS[key]
        out[trait] = _INVERT[lvl] if inverted else lvl
    return out


def opera_to_persona(record: Mapping[str, Any], where: str = "opera record") -> Persona:
    """Map one OPeRA profile (the shape of ``opera_personas.json``) to a :class:`Persona`."""
    if not isinstance(record, Mapping) or not record.get("id"):
        raise LibraryDataError(f"{where}: not an OPeRA profile (no 'id')")
    age = _blank_to_none(record.get("age"))
    if age:
        age = re.sub(r"\s*years?\s+old$", "", age, flags=re.I)
    income = _blank_to_none(record.get("income"))
    if income and income.lower().startswith("prefer not"):
        income = None
    education = _blank_to_none(record.get("education"))
    if education:
        education = re.sub(r"\s*\([^)]*\)\s*$", "", education)
    employment = _blank_to_none(record.get("employment"))
    if employment:
        employment = ", ".join(part.strip().lower() for part in employment.split(",") if part.strip())
        if employment == "shopper":
            employment = None
    gender = _blank_to_none(record.get("gender"))
    budget_text = _blank_to_none(record.get("budget"))
    budget = parse_budget(budget_text)
    if budget is None:
        budget_text = None
    bio = str(record.get("bio") or "").strip()
    if re.fullmatch(r"shopper shopper[\s,.]*", bio, flags=re.I):
        bio = ""
    return Persona(
        persona_id="opera-" + str(record["id"]).replace("-", "")[:8],
        age_band=age,
        gender=gender.lower() if gender else None,
        income=income,
        education=education,
        employment=employment,
        location=_location(record),
        shopping_frequency=_blank_to_none(record.get("shop_frequency")),
        budget=budget,
        budget_text=budget_text,
        priorities=[str(p) for p in record.get("priorities") or []],
        avoids=[str(p) for p in record.get("avoids") or []],
        big_five=_big_five(record.get("personality") or {}, where),
        bio=bio,
        source=f"OPeRA (NEU-HAI/OPeRA, CC-BY-4.0), user {record['id']}",
    )


def load_opera_personas() -> list[Persona]:
    """The 52 OPeRA profiles shipped in ``personas/data/opera_personas.json``."""
    data = _read_json(OPERA_PERSONAS_FILE)
    records = data.get("personas") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise LibraryDataError(f"personas/data/{OPERA_PERSONAS_FILE}: expected {{\"personas\": [...]}}")
    personas = [opera_to_persona(r, f"personas/data/{OPERA_PERSONAS_FILE}[{i}]") for i, r in enumerate(records)]
    ids = [p.persona_id for p in personas]
    if len(set(ids)) != len(ids):
        raise LibraryDataError(f"personas/data/{OPERA_PERSONAS_FILE}: persona ids are not unique")
    return personas


# -- intents ----------------------------------------------------------------------------------

def select_goal_subset(goals: Sequence[str], k: int = WEBSHOP_SUBSET_SIZE,
                       seed: int = WEBSHOP_SUBSET_SEED) -> list[str]:
    """The deterministic subset shipped as ``webshop_goals_2000.json``.

    Exact duplicates are removed (first occurrence kept) and so are goals of fewer than three
    words (a handful of fragments in the source); then ``k`` are drawn with
    ``random.Random(seed).sample`` and kept in source order.
    """
    unique = list(dict.fromkeys(g for g in goals if isinstance(g, str) and len(g.split()) >= 3))
    if k >= len(unique):
        return unique
    chosen = sorted(random.Random(seed).sample(range(len(unique)), k))
    return [unique[i] for i in chosen]


def clean_query(query: str) -> str | None:
    """An OPeRA query as an intent, or None when the entry is a logging artefact.

    Dropped: the CSV header that leaked into the data ("# of Actions Recorded") and redacted
    entries ("[EMAIL_MASKED]"). Kept as typed (real people type fragments like "Bike bott"), with
    zero-width characters removed and URL-style "+" joins turned into spaces.
    """
    text = query.replace("\u200b", "").strip()
    if not text or text.startswith("#") or re.search(r"\[[A-Z_]*MASKED\]", text):
        return None
    if re.fullmatch(r"[\w ]+(?:\+[\w ]+)+", text):
        text = text.replace("+", " ")
    return re.sub(r"\s+", " ", text)


def _load_webshop() -> tuple[str, ...]:
    data = _read_json(WEBSHOP_GOALS_FILE)
    goals = data.get("goals") if isinstance(data, dict) else None
    if not isinstance(goals, list) or not all(isinstance(g, str) for g in goals):
        raise LibraryDataError(f"personas/data/{WEBSHOP_GOALS_FILE}: expected {{\"goals\": [str, ...]}}")
    return tuple(goals)


def _load_opera_queries() -> tuple[str, ...]:
    data = _read_json(OPERA_QUERIES_FILE)
    queries = data.get("queries") if isinstance(data, dict) else None
    if not isinstance(queries, list):
        raise LibraryDataError(f"personas/data/{OPERA_QUERIES_FILE}: expected {{\"queries\": [...]}}")
    cleaned = (clean_query(str(q)) for q in queries)
    return tuple(dict.fromkeys(q for q in cleaned if q))


@lru_cache(maxsize=None)
def _intent_pool(kind: str) -> tuple[str, ...]:
    if kind == "webshop":
        return _load_webshop()
    if kind == "opera":
        return _load_opera_queries()
    raise ValueError(f"unknown intent kind {kind!r}; known: {', '.join(INTENT_KINDS)}, all")


def load_intents(kind: IntentKind = "all") -> list[str]:
    """Real shopping intents: ``webshop`` (2,000 written goals), ``opera`` (typed first
    queries, cleaned of artefacts) or ``all`` (both, de-duplicated)."""
    if kind == "all":
        return list(dict.fromkeys(i for k in INTENT_KINDS for i in _intent_pool(k)))
    return list(_intent_pool(kind))


@lru_cache(maxsize=1)
def load_library() -> PersonaLibrary:
    """The shipped library: 52 OPeRA personas and both intent pools (cached)."""
    library = PersonaLibrary(
        personas=tuple(load_opera_personas()),
        intents={kind: _intent_pool(kind) for kind in INTENT_KINDS},
    )
    logger.debug("persona library: %d personas, %s", len(library),
                 ", ".join(f"{len(v)} {k} intents" for k, v in library.intents.items()))
    return library
