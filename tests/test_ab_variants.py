"""The bundled shop's known-effect variants, served for real on 127.0.0.1."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from shop_r1.envs.shop.pages import VARIANTS
from shop_r1.envs.shop.server import create_app, run_in_thread


def _get(url: str) -> httpx.Response:
    resp = httpx.get(url, timeout=30, headers={"X-Shop-R1-Session": "variant-test"})
    resp.raise_for_status()
    return resp


def _product_path(base: str) -> str:
    return re.search(r'href="(/dp/[^"]+)"', _get(base).text).group(1)


def test_recolor_changes_only_styles() -> None:
    with run_in_thread(variant="control") as control, run_in_thread(variant="recolor") as recolor:
        for path in ("/", "/s?k=kettle", _product_path(control.url)):
            a, b = _get(control.url + path).text, _get(recolor.url + path).text
            assert a != b
            strip = re.compile(r"<style>[^<]*</style>")
            assert strip.sub("", b) == a, path  # the same page once the added stylesheet is removed


def test_hidden_add_to_cart_puts_buying_controls_in_a_collapsed_disclosure() -> None:
    with run_in_thread(variant="hidden-add-to-cart") as shop:
        html = _get(shop.url + _product_path(shop.url)).text
        box = re.search(r'<details class="more-buying-options"[^>]*>(.*?)</details>', html, re.S)
        assert box is not None and "<details class=\"more-buying-options\" open" not in html
        assert "<summary>More buying options</summary>" in box.group(1)
        assert 'id="add-to-cart-button"' in box.group(1) and 'id="buy-now-button"' in box.group(1)
        assert html.count('id="add-to-cart-button"') == 1


def test_no_search_refinements_and_slow_search() -> None:
    with run_in_thread(variant="control") as control, run_in_thread(variant="no-search-refinements") as bare, \
            run_in_thread(variant="slow-search") as slow:
        assert 'class="s-refinements"' in _get(control.url + "/s?k=kettle").text
        page = _get(bare.url + "/s?k=kettle").text
        assert 'class="s-refinements"' not in page and 'aria-label="Sort by"' in page  # sorting stays
        t0 = time.perf_counter()
        _get(control.url + "/s?k=kettle")
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        _get(slow.url + "/s?k=kettle&page=2")
        assert time.perf_counter() - t0 >= 1.5 > fast
        t0 = time.perf_counter()
        _get(slow.url + "/")
        assert time.perf_counter() - t0 < 1.5  # only results pages are slow


def test_unknown_variant_is_named() -> None:
    assert set(VARIANTS) == {"control", "recolor", "hidden-add-to-cart", "no-search-refinements", "slow-search"}
    with pytest.raises(ValueError, match="unknown shop variant 'purple'; expected one of control, recolor"):
        create_app(variant="purple")
