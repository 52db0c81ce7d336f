"""Catalogues cached per origin, so a run against a shop does not crawl it again.

JSON files under ``$SHOP_R1_CACHE/catalogues/`` (one per origin, named for it), refreshed after
``max_age_s`` or on request (``--refresh-catalogue``). Loopback origins are not cached unless
asked: a port on 127.0.0.1 is reused by whatever server starts next (the bundled shop in another
layout, a test fixture), so a catalogue cached for it would describe another shop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from shop_r1.envs.cache import cache_dir
from shop_r1.envs.storefront.catalogue import CATALOGUE_SCHEMA, Catalogue
from shop_r1.envs.storefront.crawl import CrawlLimits, crawl, origin_of

log = logging.getLogger(__name__)

MAX_AGE_S = 7 * 24 * 3600.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK


def cache_path(start_url: str, root: Path | None = None) -> Path:
    """Where ``start_url``'s origin's catalogue is kept."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", origin_of(start_url).split("://", 1)[1])
    scheme = urlsplit(start_url).scheme
    return (root or cache_dir("catalogues")) / f"{scheme}_{slug}.json"


def _read(path: Path, max_age_s: float) -> Catalogue | None:
    try:
        if time.time() - path.stat().st_mtime > max_age_s:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("schema_version") != CATALOGUE_SCHEMA:
        return None
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        log.warning("%s: cached catalogue unreadable (%s); crawling again", path, exc.errors()[0]["msg"])
        return None


def load_catalogue(start_url: str, limits: CrawlLimits | None = None, *, refresh: bool = False,
                   cache: bool | None = None, root: Path | None = None, max_age_s: float = MAX_AGE_S) -> Catalogue:
    """The shop's catalogue: from the cache when fresh (and ``refresh`` is off), else crawled."""
    use_cache = (not is_loopback(start_url)) if cache is None else cache
    path = cache_path(start_url, root) if use_cache else None
    if path is not None and not refresh:
        cached = _read(path, max_age_s)
        if cached is not None:
            log.info("catalogue of %s from %s (crawled %s)", cached.origin, path, cached.crawled_at)
            return cached
    catalogue = crawl(start_url, limits)
    if path is not None:
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(catalogue.model_dump_json(indent=1), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a cache that cannot be written costs a crawl next time, nothing more
            tmp.unlink(missing_ok=True)
            log.warning("cannot cache the catalogue at %s: %s", path, exc.strerror or exc)
    return catalogue
