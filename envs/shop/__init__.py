"""The bundled mock storefront: an Amazon-shaped shop served by aiohttp on 127.0.0.1.

``run_in_thread(seed, port, layout)`` starts one in the background for tests and the simulator;
``create_app(seed, layout)`` gives the aiohttp application; ``build_catalog(seed)`` the products.
Imports are lazy so that ``import envs.shop`` stays cheap (aiohttp is only loaded when serving).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from shop_r1.envs.shop.catalog import Catalog, Product, build_catalog
    from shop_r1.envs.shop.server import ShopServer, create_app, run_in_thread

__all__ = ["Catalog", "Product", "ShopServer", "build_catalog", "create_app", "run_in_thread"]

_WHERE = {"Catalog": "catalog", "Product": "catalog", "build_catalog": "catalog",
          "ShopServer": "server", "create_app": "server", "run_in_thread": "server"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"shop_r1.envs.shop.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'shop_r1.envs.shop' has no attribute {name!r}")
