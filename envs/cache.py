"""Where converted models, tokenizers and other derived files are cached (never committed)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$SHOP_R1_CACHE`` or ``$XDG_CACHE_HOME/shop-r1`` or ``~/.cache/shop-r1``, created on use."""
    base = os.environ.get("SHOP_R1_CACHE")
    if base:
        root = Path(base)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shop-r1"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
