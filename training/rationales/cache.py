"""Teacher answers on disk, keyed by (prompt, model): the same question is asked once.

``diskcache`` stores them in SQLite with transactions, so concurrent runs -- or a run killed
mid-write -- never corrupt what is already cached and never expose a half-written answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import diskcache

from shop_r1.envs.cache import cache_dir

log = logging.getLogger(__name__)


def cache_key(messages: Sequence[Mapping[str, str]], model: str) -> str:
    """sha256 of (prompt, model), stable across processes (``diskcache``'s own key is the value)."""
    payload = json.dumps({"model": model, "messages": list(messages)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    return cache_dir("rationales")


class RationaleCache:
    """Rationales by :func:`cache_key` in a ``diskcache.Cache`` folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._store = diskcache.Cache(str(self.root))

    def get(self, key: str) -> str | None:
        entry = self._store.get(key)
        value = entry.get("rationale") if isinstance(entry, dict) else None
        if entry is not None and not (isinstance(value, str) and value.strip()):
            log.warning("unusable cache entry %s in %s; asking again", key, self.root)
            return None
        return value

    def put(self, key: str, rationale: str, model: str) -> None:
        self._store.set(key, {"rationale": rationale, "model": model, "created": time.time()})

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> RationaleCache:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


__all__ = ["RationaleCache", "cache_key", "default_cache_dir"]
