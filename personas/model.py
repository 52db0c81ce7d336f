"""The persona model: who a simulated shopper is, validated strictly at the edge.

A persona reaches three consumers: the prompt (``to_prompt_block``), rule-based policies that read
fields directly (``budget``, ``big_five``, ``priorities``) and traces that record who shopped. So
the fields are typed and normalised (lower-case Big-Five levels, a number for the budget) rather
than left as the free text of the source survey, and a bad record in a persona file fails loudly
with the file and the record's index or line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

logger = logging.getLogger(__name__)

BigFiveTrait = Literal["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]
BigFiveLevel = Literal["low", "medium", "high"]
BIG_FIVE_TRAITS: tuple[str, ...] = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")

# Fields a demographic mix may set (see personas.sampler); also the order of the prompt block.
DEMOGRAPHIC_FIELDS: tuple[str, ...] = (
    "age_band", "gender", "income", "education", "employment", "location", "shopping_frequency",
)


class Persona(BaseModel):
    """One simulated shopper.

    ``budget`` is the typical online spend in US dollars per month (the OPeRA survey asks for a
    monthly figure); ``budget_text`` keeps the source's wording. ``intent`` is the shopping goal
    of one session: library personas have none, the sampler pairs each with one.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    persona_id: str = Field(min_length=1)
    # demographics (free text bands as the source gives them; None when not answered)
    age_band: str | None = None
    gender: str | None = None
    income: str | None = None
    education: str | None = None
    employment: str | None = None
    location: str | None = None
    # shopping style
    shopping_frequency: str | None = None
    budget: float | None = Field(default=None, ge=0)
    budget_text: str | None = None
    priorities: list[str] = Field(default_factory=list)
    avoids: list[str] = Field(default_factory=list)
    big_five: dict[BigFiveTrait, BigFiveLevel] = Field(default_factory=dict)
    bio: str = ""
    intent: str | None = None
    source: str = Field(min_length=1)

    @field_validator("persona_id", "source")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @field_validator("priorities", "avoids")
    @classmethod
    def _clean_list(cls, v: list[str]) -> list[str]:
        out = [s.strip() for s in v]
        if any(not s for s in out):
            raise ValueError("entries must not be blank")
        return out

    def with_intent(self, intent: str | None) -> Persona:
        """A copy of this persona with the session's shopping intent set."""
        return self.model_copy(update={"intent": intent})

    def to_prompt_block(self, max_bio_chars: int = 400) -> str:
        """A compact paragraph describing the shopper, for the system prompt.

        The intent is deliberately NOT included: the prompt states it separately as the goal
        ("Your goal: ..."), so the same block serves sessions with different intents. The bio is
        cleaned of survey artefacts (markdown headings, ``[Participant]``) and cut at a sentence
        end near ``max_bio_chars``: OPeRA bios are interview summaries that can run long and are
        sometimes cut mid-word in the source.
        """
        parts: list[str] = []
        who = _who_phrase(self)
        if who:
            parts.append(who + ".")
        facts = []
        if self.education:
            facts.append(f"education: {self.education}")
        if self.income:
            facts.append(f"household income {self.income}")
        if facts:
            parts.append("; ".join(facts).capitalize() + ".")
        habits = []
        if self.shopping_frequency:
            habits.append(f"shops online {self.shopping_frequency.lower()}")
        if self.budget is not None:
            habits.append(f"typically spends about ${self.budget:,.0f} a month online")
        if habits:
            parts.append(" and ".join(habits).capitalize() + ".")
        if self.priorities:
            parts.append(f"Cares about: {', '.join(self.priorities)}.")
        if self.avoids:
            parts.append(f"Avoids or ignores: {', '.join(self.avoids)}.")
        if self.big_five:
            traits = ", ".join(f"{lvl} {t}" for t, lvl in self.big_five.items())
            parts.append(f"Personality: {traits}.")
        bio = clean_bio(self.bio, max_bio_chars)
        if bio:
            parts.append(f"In their own words: {bio}")
        return " ".join(parts) if parts else "An ordinary online shopper."


def _who_phrase(p: Persona) -> str:
    bits: list[str] = []
    if p.age_band:
        bits.append(f"{p.age_band} year-old" if re.match(r"^\d", p.age_band) else p.age_band)
    if p.gender:
        bits.append(p.gender.lower())
    bits.append(p.employment.lower().replace(", ", " and ") if p.employment else "shopper")
    phrase = _article(bits[0]) + " " + " ".join(bits)
    if p.location:
        phrase += f" from {p.location}"
    return phrase if (p.age_band or p.gender or p.employment or p.location) else ""


# Markdown headings ("### Self Description"), which OPeRA bios carry mid-line after a summary.
def _article(word: str) -> str:
    """ "An" before a vowel sound, including spoken numbers ("an 18-24 year-old")."""
    if re.match(r"[aeiou]|8|11\b|11-|18\b|18-|18\d", word, re.I):
        return "An"
    return "A"


_HEADING = re.compile(r"#{2,}[^\n]*")


def clean_bio(bio: str, max_chars: int = 400) -> str:
    """The bio as prose: headings dropped, ``[Participant]`` made a noun, cut at a sentence end."""
    text = _HEADING.sub("", bio)
    text = re.sub(r"(^|[.!?]\s+)\[Participant\]", lambda m: m.group(1) + "The shopper", text)
    text = text.replace("[Participant]", "the shopper")
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= max_chars and re.search(r"[.!?]$", text):
        return text
    head = text[: max_chars + 1]
    cut = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    if cut > 0:
        return head[: cut + 1]
    if len(text) <= max_chars:
        return text  # one unfinished sentence, short: keep it whole
    return head[:max_chars].rsplit(" ", 1)[0] + " ..."


# -- files ------------------------------------------------------------------------------------

class PersonaFileError(ValueError):
    """A persona file that cannot be read; the message names the file and the record."""


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())


_LIST = TypeAdapter(list[Persona])


def parse_personas(text: str, where: str = "<string>") -> list[Persona]:
    """Personas from JSON text: a list, an object ``{"personas": [...]}``, or JSON lines.

    Errors name ``where`` and the failing record: ``file[3] (persona_id x): budget: ...`` for a
    list, ``file:7: ...`` for JSON lines.
    """
    stripped = text.lstrip()
    if not stripped:
        return []
    data: object = None
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PersonaFileError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    elif stripped[0] == "{":
        wrapper = _whole_document(text)
        if isinstance(wrapper, dict) and "personas" in wrapper:
            extra = set(wrapper) - {"personas", "source"}
            if extra:
                raise PersonaFileError(f"{where}: unknown top-level keys {sorted(extra)} "
                                       "(expected {\"personas\": [...], \"source\": ...})")
            data = wrapper["personas"]
            if not isinstance(data, list):
                raise PersonaFileError(f"{where}: \"personas\" must be a list, got {type(data).__name__}")
    if isinstance(data, list):
        return _validate_list(data, where)
    personas: list[Persona] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PersonaFileError(f"{where}:{lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
        try:
            personas.append(Persona.model_validate(record))
        except ValidationError as exc:
            pid = f" (persona_id {record['persona_id']!r})" if isinstance(record, dict) and record.get("persona_id") else ""
            raise PersonaFileError(f"{where}:{lineno}{pid}: invalid persona: {_describe(exc)}") from exc
    return personas


def _whole_document(text: str) -> object:
    """``text`` decoded as one JSON value, or None when it is not one (e.g. JSON lines)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _validate_list(data: list, where: str) -> list[Persona]:
    try:
        return _LIST.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        index = first[0] if first else "?"
        pid = ""
        if isinstance(index, int) and isinstance(data[index], dict) and data[index].get("persona_id"):
            pid = f" (persona_id {data[index]['persona_id']!r})"
        bad = [e for e in exc.errors() if e["loc"] and e["loc"][0] == index]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'record'}: {e['msg']}" for e in bad)
        raise PersonaFileError(f"{where}[{index}]{pid}: invalid persona: {detail}") from exc


def load_personas(path: str | Path) -> list[Persona]:
    """Read personas from a JSON list / ``{"personas": [...]}`` file or a JSON-lines file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PersonaFileError(f"{path}: cannot read persona file: {exc.strerror or exc}") from exc
    personas = parse_personas(text, str(path))
    logger.debug("loaded %d personas from %s", len(personas), path)
    return personas


def save_personas(personas: Iterable[Persona], path: str | Path, fmt: Literal["json", "jsonl"] | None = None) -> Path:
    """Write personas; JSON lines unless ``fmt`` or the suffix ``.json`` asks for a list."""
    path = Path(path)
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "jsonl")
    records = [p.model_dump(mode="json") for p in personas]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
    return path
