"""The shoppers of one run: the personas file as given (cycled when more shoppers are asked
for), or personas sampled with intents drawn from the shop's own catalogue, or from the library
ranked by the shop's home-page words. ``simulate`` and ``ab`` both load their shoppers here.

Errors are ``ValueError`` subclasses naming the file (``PersonaFileError``, ``MixError``); the
CLI turns them into usage errors.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from shop_r1.envs.storefront import CrawlError, CrawlLimits, is_loopback, load_catalogue
from shop_r1.personas.intents import IntentSource, intent_source
from shop_r1.personas.model import Persona, PersonaFileError, load_personas
from shop_r1.personas.sampler import sample

log = logging.getLogger(__name__)


def catalog_terms(shop_url: str) -> list[str]:
    """Words from the shop's home page (categories, featured products), for matching intents.

    Read from the live page rather than from any catalogue API, so this works for any shop.
    """
    import httpx
    from lxml import html as lxml_html

    try:
        resp = httpx.get(shop_url, timeout=10.0, follow_redirects=True)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("could not read %s for catalogue terms (%s); intents are drawn unmatched", shop_url, exc)
        return []
    doc = lxml_html.fromstring(resp.text)
    for bad in doc.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    words = re.findall(r"[a-z][a-z0-9'-]{2,}", doc.text_content().lower())
    return sorted(set(words))


def shop_intents(shop_url: str, refresh: bool = False) -> IntentSource | None:
    """Intents drawn from the shop's own catalogue (crawled, or cached per origin), or None
    (with a warning) when the shop cannot be crawled or lists nothing."""
    # Our own loopback servers need no pause between requests; a real shop gets the polite default.
    limits = CrawlLimits(delay_s=0.0) if is_loopback(shop_url) else CrawlLimits()
    try:
        catalogue = load_catalogue(shop_url, limits, refresh=refresh)
    except (CrawlError, ValueError) as exc:
        log.warning("no catalogue for %s (%s); intents are drawn from the library", shop_url, exc)
        return None
    if catalogue.is_empty:
        log.warning("the crawl of %s found no items; intents are drawn from the library", shop_url)
        return None
    return intent_source(catalogue)


def shoppers_for_run(personas_file: Path | None, mix: Path | None, n: int, seed: int, shop_url: str, *,
                     intents: str = "shop", refresh_catalogue: bool = False) -> list[Persona]:
    """``intents``: ``shop`` draws them from the shop's catalogue (the bundled shop too, so
    runs on it and on any other shop are made the same way), ``library`` from the real human
    intents ranked by overlap with the home page's words (the earlier behaviour)."""
    if personas_file is not None:
        loaded = load_personas(personas_file)
        if not loaded:
            raise PersonaFileError(f"{personas_file}: no personas in the file")
        # Cycle through the given personas when more shoppers than personas are asked for.
        return [loaded[i % len(loaded)].model_copy(update={"persona_id": f"{loaded[i % len(loaded)].persona_id}"
                                                            + (f"#{i // len(loaded)}" if i >= len(loaded) else "")})
                for i in range(n)]
    source = shop_intents(shop_url, refresh_catalogue) if intents == "shop" else None
    if source is not None:
        return sample(n, seed=seed, mix=mix, intent_source=source)
    return sample(n, seed=seed, mix=mix, catalog_terms=catalog_terms(shop_url))
