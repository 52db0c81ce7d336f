"""Shopping intents drawn to fit one storefront's catalogue and one persona's means.

People come to a shop with needs of different sharpness, and the mix matters for what a UX
team learns: a sharp need ("a waterproof hiking boot in size 10, under $150") tests search and
product pages, an attribute-led one ("black sneakers") tests refinement, a vague one ("kitchen
stuff", "a gift from outerwear") tests navigation. All three are drawn here from what the shop
actually sells (its titles, options, facts and departments), worded like the library's real
intents — OPeRA shoppers' own short words, WebShop's short first-person goals — and never
longer than those.

Budgets: a stated ceiling sits a little above the price of the item the intent was drawn from
(rounded as people round: $45, $150, $400) and in the shop's currency; the item itself is drawn
among those the persona can afford (a monthly online spend of $200 does not go to a $900
laptop), so budgets are consistent with both the catalogue and the persona.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shop_r1.personas.model import Persona
from shop_r1.envs.storefront.catalogue import Catalogue, Currency, ListedItem, Product

IntentStyle = Literal["specific", "attribute", "browse"]
# What ``personas.sampler.sample(intent_source=...)`` calls per persona: an intent for them.
IntentSource = Callable[[Persona, random.Random], str]
STYLE_WEIGHTS: dict[IntentStyle, float] = {"specific": 0.4, "attribute": 0.3, "browse": 0.3}

_UNIT = re.compile(r"\b\d+(?:\.\d+)?\s*-?\s*(?:inch(?:es)?|in|oz|ounces?|cm|mm|ml|l|tb|gb|pack|count|ft|w|pcs?|"
                   r"piece|x)\b\.?", re.I)
_SIZE_KEY = re.compile(r"\bsize\b|grö(?:ß|ss)e|taille|talla", re.I)
_COLOUR_KEY = re.compile(r"\bcolou?r\b|farbe|couleur", re.I)
_FUNCTION_WORDS = frozenset("over with for of and or in on to the by from under".split())
# Prepositions that join a Romance title's head noun to its qualifiers (fr/es/it/pt).
_ROMANCE_LINKS = frozenset("de du des en à au aux pour avec di da del della con per em do da para sin".split())
_SKIP_ATTR = re.compile(r"\bbrand\b|\bmodel\b|\bsku\b|\basin\b|\bdimensions?\b|\bweight\b|\bbattery\b|\bspeed\b|"
                        r"\bpower\b|\bcapacity\b|\btime\b|\bplayers?\b|\bdisplay\b", re.I)


class ShopIntent(BaseModel):
    """One drawn intent and what it was drawn from (kept so a bench can check it is findable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    style: IntentStyle
    item_title: str | None = None  # the catalogue item it describes (None for browsing)
    item_url: str | None = None
    category: str | None = None
    budget: float | None = None


def head_phrase(title: str, brand: str | None = None, words: int = 3) -> str:
    """What a person calls an item: the title's last few words, without brand, model numbers,
    sizes or the colour after a comma ("Forge Cast Iron Skillet 10 inch" -> "cast iron skillet").

    Titles in Romance languages put the kind of product first and its qualifiers after a
    preposition ("Lampe de table en laiton", "Suspension en papier de riz"): there the first
    words are taken, up to the second preposition ("lampe de table", "suspension en papier").
    """
    main = re.split(r",|\s[-–|(/]\s?|\(", title)[0]
    main = _UNIT.sub(" ", main)
    tokens = [t for t in re.findall(r"[^\W\d_][\w'&-]*", main) if not re.search(r"\d", t)]
    if brand and tokens and tokens[0].lower() == brand.lower():
        tokens = tokens[1:]
    tokens = [t for t in tokens if t != "&"]
    if not tokens:
        return title.lower().strip()
    # Lower-case prepositions only: an English title capitalises its words ("Pour Over Kettle").
    if any(t in _ROMANCE_LINKS for t in tokens[1:4]):
        head: list[str] = []
        links = 0
        for t in tokens:
            if t in _ROMANCE_LINKS:
                links += 1
                if links > 1 or len(head) >= words:
                    break
            elif len(head) >= words:
                break
            head.append(t)
        while head and head[-1] in _ROMANCE_LINKS:
            head.pop()
        return " ".join(head).lower()
    head = tokens[-words:]
    while len(head) > 1 and head[0].lower() in _FUNCTION_WORDS:  # "Pour Over Coffee Kettle" -> "coffee kettle"
        head = head[1:]
    return " ".join(head).lower()


def with_article(phrase: str) -> str:
    vowel = phrase[:1] in "aeiou" and not phrase.startswith(("uni", "use", "eu", "one"))
    return ("an " if vowel else "a ") + phrase


def spend_cap(persona: Persona | None) -> float | None:
    """The most this persona would pay for one item: 1.5x the monthly online spend, else from
    the income band's midpoint (about 1/400 of a year's income); None when neither is known."""
    if persona is None:
        return None
    if persona.budget:
        return 1.5 * float(persona.budget)
    if persona.income:
        nums = [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", persona.income)]
        if nums:
            low = persona.income.lower()
            mid = nums[0] * 2 if re.search(r"or more|\+|above", low) else (
                nums[0] if len(nums) == 1 else (nums[0] + nums[1]) / 2)
            if re.search(r"less than|under|below", low):
                mid = nums[0] / 2
            return max(20.0, mid / 400.0)
    return None


def round_budget(price: float, rng: random.Random) -> float:
    """A round ceiling a little above ``price``: 23.99 -> 25 or 30, 139 -> 150, 312 -> 350 or 400."""
    target = price * rng.uniform(1.05, 1.35)
    step = 5 if target < 50 else 10 if target < 100 else 50 if target < 500 else 100
    return float(max(step, math.ceil(target / step) * step))


def money(amount: float, currency: Currency) -> str:
    """As a person writes a budget, in a way the scripted shopper's budget reader understands."""
    n = f"{amount:.0f}"
    return {"EUR": f"{n} euros", "GBP": f"{n} pounds", "JPY": f"{n} yen"}.get(currency, f"${n}")


def _items(catalogue: Catalogue) -> list[Product | ListedItem]:
    opened = {p.url for p in catalogue.products}
    return list(catalogue.products) + [i for i in catalogue.listed if i.url not in opened]


def _affordable(items: Sequence[Product | ListedItem], cap: float | None) -> list[Product | ListedItem]:
    priced = [i for i in items if i.price is not None]
    if cap is None or not priced:
        return list(items)
    fits = [i for i in priced if i.price is not None and i.price <= cap]
    if fits:
        return fits
    return sorted(priced, key=lambda i: i.price or 0.0)[: max(1, len(priced) // 3)]


def _brand(item: Product | ListedItem) -> str | None:
    if isinstance(item, Product):
        for key, value in item.attributes.items():
            if key.lower() == "brand":
                return value
    return None


def _wordy(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z -]{1,20}", value)) and len(value.split()) <= 2


def _specific(item: Product | ListedItem, catalogue: Catalogue, rng: random.Random) -> ShopIntent:
    noun = head_phrase(item.title, _brand(item))
    parts = [with_article(noun)]
    options = item.options if isinstance(item, Product) else {}
    sizes = next((v for k, v in options.items() if _SIZE_KEY.search(k)), None)
    colours = next((v for k, v in options.items() if _COLOUR_KEY.search(k)), None)
    if sizes and rng.random() < 0.7:
        parts.append(f"in size {rng.choice(sizes).lower()}")
    elif colours and rng.random() < 0.6:
        parts[0] = with_article(f"{rng.choice(colours).lower()} {noun}")
    budget = round_budget(item.price, rng) if item.price is not None and rng.random() < 0.8 else None
    lead = rng.choice(("i'm looking for ", "i need ", "i want ", ""))
    text = lead + " ".join(parts) + (f", under {money(budget, catalogue.currency)}" if budget else "")
    return ShopIntent(text=text, style="specific", item_title=item.title, item_url=item.url,
                      category=item.category, budget=budget)


def _attribute(item: Product | ListedItem, catalogue: Catalogue, rng: random.Random) -> ShopIntent:
    noun = head_phrase(item.title, _brand(item), words=2)
    values: list[str] = []
    if isinstance(item, Product):
        values += [v for k, vs in item.options.items() if _COLOUR_KEY.search(k) for v in vs if _wordy(v)]
        values += [v for k, v in item.attributes.items() if not _SKIP_ATTR.search(k) and _wordy(v)]
    values = [v for v in values if v.lower() not in noun]
    if values:
        text = f"{rng.choice(values).lower()} {noun}"
    else:  # no facts shown: the title's own describing word ("waterproof boot", "leather sandal")
        text = head_phrase(item.title, _brand(item), words=2)
    if rng.random() < 0.4:
        text = rng.choice(("i need ", "i want ", "looking for ")) + with_article(text)
    return ShopIntent(text=text, style="attribute", item_title=item.title, item_url=item.url,
                      category=item.category)


def _browse(catalogue: Catalogue, cap: float | None, rng: random.Random) -> ShopIntent:
    cats = [c for c in catalogue.categories if c.items_seen]
    if not cats:
        items = _items(catalogue)
        return _attribute(rng.choice(items), catalogue, rng) if items else ShopIntent(text="just browsing",
                                                                                       style="browse")
    cat = rng.choice(cats)
    name = re.split(r"\s*(?:&|,| and )\s*", cat.name)[0].lower()
    in_cat = [i.price for i in catalogue.listed if i.category == cat.name and i.price is not None]
    roll = rng.random()
    if roll < 0.4:
        text = name
    elif roll < 0.7:
        text = rng.choice(("browsing {}", "new {}", "{} ideas", "something from {}")).format(name)
    elif in_cat:
        cheap = sorted(in_cat)[len(in_cat) // 2]
        budget = round_budget(min(cheap, cap) if cap else cheap, rng)
        return ShopIntent(text=f"a gift from {name} under {money(budget, catalogue.currency)}", style="browse",
                          category=cat.name, budget=budget)
    else:
        text = f"looking around {name}"
    return ShopIntent(text=text, style="browse", category=cat.name)


def draw_intent(catalogue: Catalogue, persona: Persona | None, rng: random.Random,
                style: IntentStyle | None = None) -> ShopIntent:
    """One intent for ``persona`` from ``catalogue`` (style drawn by ``STYLE_WEIGHTS`` unless given)."""
    items = _items(catalogue)
    if not items:
        raise ValueError(f"the catalogue of {catalogue.origin} lists no items; no intent can be drawn from it")
    if style is None:
        style = rng.choices(list(STYLE_WEIGHTS), weights=list(STYLE_WEIGHTS.values()))[0]
    cap = spend_cap(persona)
    if style == "browse":
        return _browse(catalogue, cap, rng)
    # Items whose pages were opened carry options and facts; prefer them for sharper intents.
    pool = _affordable([i for i in items if isinstance(i, Product)] or items, cap)
    item = rng.choice(pool)
    return _specific(item, catalogue, rng) if style == "specific" else _attribute(item, catalogue, rng)


def intent_source(catalogue: Catalogue) -> IntentSource:
    """A ``personas.sampler.sample(intent_source=...)`` callback drawing from ``catalogue``."""
    def source(persona: Persona, rng: random.Random) -> str:
        return draw_intent(catalogue, persona, rng).text
    return source
