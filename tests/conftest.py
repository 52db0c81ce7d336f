"""Shared fixtures: the real bundled shop on 127.0.0.1 and one real Chromium per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED.is_dir(), f"reference data missing: {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def shop_url():
    """A real HTTP storefront (seed 0) served from a background thread for the whole session."""
    from shop_r1.envs.shop.server import run_in_thread

    with run_in_thread(seed=0, port=0) as shop:
        yield shop.url


@pytest.fixture
def fresh_shop():
    """A shop of its own for tests that inspect server-side carts/orders."""
    from shop_r1.envs.shop.server import run_in_thread

    with run_in_thread(seed=0, port=0) as shop:
        yield shop
