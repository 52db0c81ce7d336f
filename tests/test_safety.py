"""The session redactor: a typed secret never reappears, in any encoding, in anything recorded."""

from __future__ import annotations

from shop_r1.envs.observation import Element
from shop_r1.simulator.records.safety import REDACTED, Redactor, scrub_url

PASSWORD = Element(name="account.password", kind="input", input_type="password")
SEARCH = Element(name="search.field_keywords", kind="input", input_type="search")


def test_typed_secret_is_masked_and_remembered_in_every_encoding() -> None:
    r = Redactor()
    assert r.typed("hunter2 & co", PASSWORD, PASSWORD.name) == REDACTED
    record = {
        "raw_output": '{"action": {"type": "type_and_submit", "text": "hunter2 & co"}}',
        "url": "http://127.0.0.1:9/account?user=alice&pw=hunter2+%26+co",
        "simplified_html": "<p>Welcome back, hunter2 &amp; co</p>",
        "elements": [{"name": "x", "text": "hunter2%20%26%20co"}],
    }
    out = r.scrub_value(record)
    flat = repr(out)
    for form in ("hunter2 & co", "hunter2+%26+co", "hunter2 &amp; co", "hunter2%20%26%20co"):
        assert form not in flat, form
    assert out["elements"][0]["name"] == "x"


def test_ordinary_search_text_is_kept() -> None:
    r = Redactor()
    assert r.typed("wireless headphones", SEARCH, SEARCH.name) == "wireless headphones"
    assert r.scrub("results for wireless headphones") == "results for wireless headphones"


def test_value_patterns_card_iban_email_but_not_prices_or_ids() -> None:
    r = Redactor()
    text = ("card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00, mail bob@example.org, "
            "price $1,299.99, sku 1234567890123, phone-like 2026-12-01")
    out = r.scrub(text)
    assert "4111" not in out and "DE89" not in out and "bob@example.org" not in out
    assert "$1,299.99" in out and "1234567890123" in out and "2026-12-01" in out


def test_secret_named_query_values_are_masked() -> None:
    url = "http://127.0.0.1:8000/login?email=a%40b.co&password=x&next=%2Fcart"
    masked = scrub_url(url)
    assert "password=x" not in masked and "a%40b.co" not in masked
    assert "next=%2Fcart" in masked
    assert scrub_url("http://127.0.0.1:8000/s?k=shoes") == "http://127.0.0.1:8000/s?k=shoes"


def test_disabled_redactor_records_as_is() -> None:
    r = Redactor(enabled=False)
    assert r.typed("hunter2", PASSWORD, PASSWORD.name) == "hunter2"
    assert r.scrub("4111 1111 1111 1111") == "4111 1111 1111 1111"
