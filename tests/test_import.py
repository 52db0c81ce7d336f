"""OPeRA import: rows in the OPeRA schema (JSON Lines and Parquet) become a valid trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.opera_builder import (
    EXPECTED_EVENTS,
    EXPECTED_SKIPPED,
    EXPECTED_STEPS,
    SESSION_A,
    SESSION_B,
    SESSION_C,
    USER_A,
    USER_B,
    write_opera_fixture,
)

from shop_r1.envs.actions import Click, Terminate, TypeAndSubmit
from shop_r1.simulator.cli.main import main
from shop_r1.simulator.records.opera_import import (
    OperaImportError,
    import_opera,
    load_hf_rows,
    load_users,
    map_action,
    parse_timestamp,
    read_rows,
)
from shop_r1.simulator.records.trace import load_run_info, read_trace


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    return write_opera_fixture(tmp_path_factory.mktemp("opera"))


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_import_maps_actions_orders_rows_and_counts_skips(fixture_files, tmp_path: Path, kind: str) -> None:
    source = getattr(fixture_files, kind)
    out = tmp_path / "imported"
    report = import_opera(read_rows(source), out, users=load_users(fixture_files.users), source=str(source))

    assert dict(report.skipped) == EXPECTED_SKIPPED
    assert report.rows == 16
    assert report.steps == sum(EXPECTED_STEPS.values())
    assert report.events == sum(EXPECTED_EVENTS.values())
    # Every skipped row is reported with where it was.
    assert all(report.examples[r] and str(source) in report.examples[r][0] for r in EXPECTED_SKIPPED)

    trace = read_trace(out)
    assert trace.problems == []
    assert {sid: len(trace.sessions.get(sid, [])) for sid in EXPECTED_STEPS} == EXPECTED_STEPS
    a = trace.sessions[SESSION_A]
    # Sorted by timestamp, not file order; unmappable rows left out.
    assert [s.action for s in a] == [
        TypeAndSubmit(name="header.search_bar.search", text="wireless headphones"),
        Click(name="results.anker_q30.view_product"),
        Click(name="add_to_cart"),
        Terminate(),
    ]
    assert [s.step for s in a] == [0, 1, 2, 3]
    assert a[0].rationale == "I need new headphones for my commute."
    assert a[0].ts.startswith("2025-03-01T10:00:10")
    # Elements parsed from the simplified HTML, kind from the tag.
    assert a[0].element("header.search_bar.search").kind == "input"
    assert a[2].element("color").kind == "select"
    # ... and stored whole (tag, options), so nobody parses the HTML again.
    assert a[2].element("color").tag == "select" and a[2].element("color").options
    assert a[0].element("header.search_bar.search").tag == "input"
    assert a[2].element("add_to_cart").kind == "clickable"
    assert a[-1].done and a[-1].outcome == "purchased"
    assert a[1].extra["opera"]["click_type"] == "product_link"
    # Context rows are events placed before the right step.
    events_a = [e for e in trace.events_for(SESSION_A)]
    assert [(e.event, e.step) for e in events_a] == [("navigate", 0), ("scroll", 1)]
    b = trace.sessions[SESSION_B]
    assert b[-1].done and b[-1].outcome == "abandoned" and "no terminate" in (b[-1].end_reason or "")
    assert [e.event for e in trace.events_for(SESSION_B)] == ["tab_activate"]
    # Session C had no decision: zero steps, ended by a session_end event.
    assert SESSION_C in trace.session_ids and SESSION_C not in trace.sessions
    assert trace.outcome(SESSION_C) == "abandoned"

    info = load_run_info(out)
    assert info.summary["import"]["skipped"] == EXPECTED_SKIPPED
    assert info.summary["steps"] == report.steps
    persona_a = info.persona(a[0].persona_id)
    assert persona_a is not None and persona_a["user_id"] == USER_A
    assert persona_a["age_band"] == "25-34" and persona_a["big_five"]["openness"] == "high"
    persona_b = info.persona(b[0].persona_id)
    assert persona_b is not None and persona_b["user_id"] == USER_B and "raw" in persona_b
    assert report.personas_mapped == 1 and report.personas_raw == 1 and report.sessions_without_persona == 1


def test_jsonl_and_parquet_give_the_same_trace(fixture_files, tmp_path: Path) -> None:
    import_opera(read_rows(fixture_files.jsonl), tmp_path / "a")
    import_opera(read_rows(fixture_files.parquet), tmp_path / "b")
    ta, tb = read_trace(tmp_path / "a"), read_trace(tmp_path / "b")
    strip = lambda s: {k: v for k, v in s.to_json().items() if k not in ("run_id", "source_row")}
    assert [strip(s) for s in ta.steps] == [strip(s) for s in tb.steps]


def test_map_action_reasons() -> None:
    assert map_action({"action_type": "input", "semantic_id": "q", "input_text": "  "}) == "input without input_text"
    assert map_action({"action_type": "CLICK", "semantic_id": " a.b "}) == Click(name="a.b")
    assert map_action({"action_type": "scroll"}) is None
    assert map_action({"action_type": ""}) == "missing action_type"
    assert map_action({"action_type": "drag"}) == "unknown action_type 'drag'"


def test_parse_timestamp_forms() -> None:
    iso = parse_timestamp("2025-03-01T10:00:00Z")
    assert parse_timestamp(iso.timestamp()) == iso
    assert parse_timestamp(int(iso.timestamp() * 1000)) == iso
    assert parse_timestamp("2025-03-01 10:00:00") == iso
    for bad in ("soon", None, float("nan"), True):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_cli_import_prints_skips_and_writes_trace(fixture_files, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["import", "opera", str(fixture_files.parquet), "--out", str(out),
                                    "--users", str(fixture_files.users)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "rows not imported: 5" in res.output
    for reason in ("click without semantic_id", "bad timestamp", "unknown action_type 'zoom'"):
        assert reason in res.output
    assert read_trace(out).steps
    # A second import into the same directory is refused, naming it.
    again = CliRunner().invoke(main, ["import", "opera", str(fixture_files.jsonl), "--out", str(out)])
    assert again.exit_code != 0 and str(out) in again.output


def test_broken_jsonl_lines_are_counted_not_dropped(tmp_path: Path) -> None:
    src = tmp_path / "rows.jsonl"
    good = {"session_id": "s", "action_id": 1, "timestamp": "2025-01-01T00:00:00Z", "action_type": "terminate"}
    src.write_text(json.dumps(good) + "\n{not json\n[1, 2]\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["import", "opera", str(src), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    info = load_run_info(tmp_path / "o")
    assert info.summary["import"]["skipped"] == {"not valid JSON": 1, "row is not a JSON object": 1}
    assert info.summary["import"]["skipped_examples"]["not valid JSON"] == [f"{src}:2"]


def test_input_errors_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(OperaImportError, match="no rows"):
        import_opera(read_rows(empty), tmp_path / "o")
    bad_users = tmp_path / "users.json"
    bad_users.write_text('[{"age": "25-34"}]', encoding="utf-8")
    with pytest.raises(OperaImportError, match=r"users\.json:item 0: user profile without"):
        load_users(bad_users)
    res = CliRunner().invoke(main, ["import", "opera", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "either FILE or --hf" in res.output


def test_hf_without_network_fails_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no cache to fall back on
    with pytest.raises(OperaImportError, match="NEU-HAI/OPeRA.*network"):
        list(load_hf_rows("NEU-HAI/OPeRA"))
    res = CliRunner().invoke(main, ["import", "opera", "--hf", "NEU-HAI/OPeRA", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "could not load 'NEU-HAI/OPeRA'" in res.output
    assert not (tmp_path / "o" / "trace.jsonl").exists()
