"""Shared fixtures: the real bundled shop on 127.0.0.1 and one real Chromium per test session."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker is one of several processes on few cores: torch computes on
    one thread there, or two workers' default thread pools oversubscribe the cores and spin
    against each other. (Servers and benchmarks a test starts keep their own defaults.)"""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch  # the worker would import it for its first model test anyway

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heaviest test files first (``tests/file_seconds.py`` says why and what it measured): a slow
    file is not handed out last. A stable sort: a file's tests keep their order, unlisted files their place."""
    from file_seconds import load

    seconds = load()
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::", 1)[0], 0.0))


@pytest.fixture(autouse=True)
def _ctrl_c_reaches_children():
    """A child process inherits an ignored or blocked SIGINT from the test process, and a Python
    child then never raises KeyboardInterrupt: the Ctrl-C tests (``shop serve``, ``serve``) would
    hang. Whatever an earlier test or library did to it, each test starts with Ctrl-C as Python's."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    yield


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
