"""Personas: the OPeRA library and its mapping, persona files, the sampler and the CLI."""

from __future__ import annotations

import collections
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from shop_r1.personas.cli import personas as personas_cli
from shop_r1.personas.library import (
    clean_query,
    load_intents,
    load_library,
    opera_to_persona,
    parse_budget,
    select_goal_subset,
)
from shop_r1.personas.model import Persona, PersonaFileError, load_personas, parse_personas, save_personas
from shop_r1.personas.missions import split_mission
from shop_r1.personas.sampler import DemographicMix, MixError, content_words, sample

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def opera_raw(shared_data: Path) -> list[dict]:
    return json.loads((shared_data / "personas" / "opera_personas.json").read_text())["personas"]


# -- library ----------------------------------------------------------------------------------

def test_library_has_the_52_opera_personas_with_unique_ids(opera_raw):
    lib = load_library()
    assert len(lib) == 52 == len(opera_raw)
    ids = [p.persona_id for p in lib.personas]
    assert len(set(ids)) == 52
    for p, raw in zip(lib.personas, opera_raw):
        assert raw["id"] in p.source and "CC-BY-4.0" in p.source
        assert p.persona_id == "opera-" + raw["id"].replace("-", "")[:8]
    assert lib.get(ids[5]) is lib.personas[5]
    with pytest.raises(KeyError, match="did you mean"):
        lib.get(ids[5][:-1] + "z")


def test_opera_fields_are_mapped_from_the_real_source(opera_raw):
    lib = load_library()
    levels = {"extremely low": "low", "low": "low", "medium": "medium", "high": "high", "extremely high": "high"}
    flip = {"low": "high", "medium": "medium", "high": "low"}
    for p, raw in zip(lib.personas, opera_raw):
        if raw["age"]:
            assert p.age_band == raw["age"].replace(" years old", "")
        else:
            assert p.age_band is None
        assert p.gender == (raw["gender"].lower() or None)
        assert p.priorities == raw["priorities"] and p.avoids == raw["avoids"]
        assert p.shopping_frequency == (raw["shop_frequency"] or None)
        pers = {k.lower(): v.lower() for k, v in raw["personality"].items()}
        if "emotional stability" in pers:  # stability is the inverse of neuroticism
            assert p.big_five["neuroticism"] == flip[levels[pers["emotional stability"]]]
        if "intellect" in pers:
            assert p.big_five["openness"] == levels[pers["intellect"]]
        if "extraversion" in pers:
            assert p.big_five["extraversion"] == levels[pers["extraversion"]]
        if raw["budget"] == "Not specified":
            assert p.budget is None and p.budget_text is None
        else:
            assert p.budget is not None and p.budget > 0 and p.budget_text == raw["budget"]
    by_text = {p.budget_text: p.budget for p in lib.personas}
    assert by_text["About $200/month online"] == 200.0
    assert by_text["About $$30/month online"] == 30.0  # the source's typo
    assert by_text["About $50-150/month online"] == 100.0  # a range: its midpoint


@pytest.mark.parametrize("text, expected", [
    ("About $200/month online", 200.0), ("About $about 50/month online", 50.0),
    ("About $20-50/month online", 35.0), ("$1,000 a month", 1000.0), ("Not specified", None), ("", None),
])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


def test_opera_mapping_rejects_bad_records_naming_them():
    with pytest.raises(ValueError, match=r"rec\[3\]: personality 'Intellect' has unknown level 'Huge'"):
        opera_to_persona({"id": "x1", "personality": {"Intellect": "Huge"}}, "rec[3]")
    with pytest.raises(ValueError, match="unknown personality factor 'Charm'"):
        opera_to_persona({"id": "x1", "personality": {"Charm": "High"}})


def test_shipped_webshop_subset_is_reproducible_from_the_source(shared_data):
    goals = json.loads((shared_data / "intents" / "webshop_human_goals.json").read_text())
    assert len(goals) == 12087
    shipped = load_intents("webshop")
    assert len(shipped) == 2000 == len(set(shipped))
    assert shipped == select_goal_subset(goals)
    doc = json.loads((ROOT / "personas" / "data" / "webshop_goals_2000.json").read_text())
    assert "MIT" in doc["licence"] and "WebShop" in doc["source"]


def test_opera_queries_all_shipped_artefacts_dropped(shared_data):
    raw = json.loads((shared_data / "intents" / "opera_queries.json").read_text())["queries"]
    shipped = json.loads((ROOT / "personas" / "data" / "opera_queries.json").read_text())["queries"]
    assert shipped == raw and len(raw) == 252
    queries = load_intents("opera")
    assert "# of Actions Recorded" not in queries and not any("MASKED" in q for q in queries)
    assert "always ultra thin pads" in queries  # "always+ultra+thin+pads" de-URL-encoded
    assert "Bike bott" in queries  # what people really typed is kept
    assert len(queries) == 250
    assert clean_query("[EMAIL_MASKED]") is None
    everything = load_intents("all")
    assert set(everything) == set(queries) | set(load_intents("webshop"))
    with pytest.raises(ValueError, match="unknown intent kind"):
        load_intents("amazon")  # type: ignore[arg-type]


def test_readme_keeps_provenance_and_licences():
    text = (ROOT / "personas" / "data" / "README.md").read_text()
    for needle in ("NEU-HAI/OPeRA", "CC-BY-4.0", "WebShop", "MIT", "Princeton"):
        assert needle in text


# -- the model and its files ------------------------------------------------------------------

def _persona(**kw) -> dict:
    base = {"persona_id": "p1", "source": "test", "age_band": "25-34", "big_five": {"openness": "high"}}
    base.update(kw)
    return base


def test_persona_is_strict():
    Persona.model_validate(_persona())
    for bad in ({"nickname": "x"}, {"age_band": 30}, {"big_five": {"openness": "very"}},
                {"big_five": {"humour": "high"}}, {"budget": -5.0}, {"persona_id": "  "}, {"priorities": ["ok", " "]}):
        with pytest.raises(ValidationError):
            Persona.model_validate(_persona(**bad))


def test_prompt_block_is_compact_and_clean():
    lib = load_library()
    for p in lib.personas:
        block = p.to_prompt_block()
        assert "###" not in block and "[Participant]" not in block and "\n" not in block
        assert len(block) < 1200
        if p.age_band:
            assert p.age_band in block
        for prio in p.priorities:
            assert prio in block
    p = lib.personas[2].with_intent("a red kettle")
    assert "a red kettle" not in p.to_prompt_block()  # the goal is the prompt's job, not the block's
    assert p.to_prompt_block().startswith("An 18-24 year-old female student")


def test_files_round_trip_list_and_jsonl(tmp_path):
    people = list(load_library().personas[:5])
    for name in ("people.json", "people.jsonl"):
        path = save_personas(people, tmp_path / name)
        assert load_personas(path) == people
    assert (tmp_path / "people.json").read_text().lstrip().startswith("[")
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"source": "x", "personas": [p.model_dump() for p in people]}))
    assert load_personas(wrapped) == people


def test_file_errors_name_the_file_and_the_record(tmp_path):
    good = [_persona(persona_id=f"p{i}") for i in range(4)]
    bad = list(good)
    bad[2] = _persona(persona_id="p2", budget="lots")
    path = tmp_path / "team.json"
    path.write_text(json.dumps(bad, indent=1))
    with pytest.raises(PersonaFileError, match=r"team\.json\[2\] \(persona_id 'p2'\): invalid persona: budget"):
        load_personas(path)

    lines = [json.dumps(r) for r in good]
    lines[2] = json.dumps(_persona(persona_id="p2", shoe_size=44))
    path = tmp_path / "team.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PersonaFileError, match=r"team\.jsonl:3 \(persona_id 'p2'\): invalid persona: shoe_size"):
        load_personas(path)

    lines[2] = '{"persona_id": "p2", '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PersonaFileError, match=r"team\.jsonl:3: not valid JSON"):
        load_personas(path)

    with pytest.raises(PersonaFileError, match=r"<x>:2:\d+: not valid JSON"):
        parse_personas('[\n{"persona_id": }]', "<x>")
    with pytest.raises(PersonaFileError, match="cannot read persona file"):
        load_personas(tmp_path / "missing.json")


# -- sampler ----------------------------------------------------------------------------------

def test_sample_is_deterministic_and_pairs_each_persona_with_an_intent():
    a = sample(10, seed=7)
    assert a == sample(10, seed=7)
    assert a != sample(10, seed=8)
    assert len({p.persona_id for p in a}) == 10
    intents = set(load_intents("all"))
    # Each intent is a library intent, after the lead-in of a non-buying mission if it has one.
    assert all(split_mission(p.intent)[1] in intents for p in a)
    assert len({p.intent for p in a}) == 10


def test_sample_larger_than_the_library_goes_through_it_again():
    people = sample(104, seed=1)
    counts = collections.Counter(p.persona_id for p in people)
    assert len(counts) == 52 and set(counts.values()) == {2}


def test_catalog_terms_pick_intents_that_share_words():
    terms = ["Headphones", "Running shoes", "Sony", "backpacks"]
    vocab = content_words(" ".join(terms))
    people = sample(20, seed=3, catalog_terms=terms)
    for p in people:
        assert content_words(p.intent) & vocab, p.intent
    # the personas drawn do not depend on the catalogue, only their intents do
    assert [p.persona_id for p in people] == [p.persona_id for p in sample(20, seed=3)]
    assert people == sample(20, seed=3, catalog_terms=terms)


def test_catalog_terms_without_overlap_fall_back_to_any_intent(caplog):
    with caplog.at_level(logging.WARNING, logger="shop_r1.personas.sampler"):
        people = sample(4, seed=0, catalog_terms=["zqxjv"])
    assert len(people) == 4 and all(p.intent for p in people)
    assert "no intent shares a word" in caplog.text


MIX = {
    "_comment": "keys starting with _ are comments",
    "age_band": {"18-24": 20, "25-34": 40, "35-44": 25, "65+": 15},
    "gender": {"female": 52.5, "male": 45, "non-binary": 2.5},
    "employment": {"student": 30, "full-time employee": 55, "retired": 15},
}


def test_mix_proportions_hold_for_n_200(tmp_path):
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(MIX))
    people = sample(200, seed=11, mix=path)
    assert len(people) == 200
    for field in ("age_band", "gender", "employment"):
        counts = collections.Counter(getattr(p, field) for p in people)
        for value, pct in MIX[field].items():
            assert abs(counts[value] - pct * 2) <= 1, (field, value, counts)
    assert sample(200, seed=11, mix=path) == people
    assert all(p.intent for p in people) and all("demographic mix" in p.source for p in people)


def test_mix_personas_come_from_the_closest_real_shopper():
    lib = load_library()
    older = {p.persona_id for p in lib.personas if p.age_band == "35-44"}
    assert older  # the library has a few 35-44 shoppers
    people = sample(6, seed=0, mix={"age_band": {"35-44": 100}})
    for p in people:
        base = lib.get(p.persona_id.split("-", 2)[2])
        assert base.persona_id in older
        assert p.bio == base.bio and p.priorities == base.priorities and p.big_five == base.big_five
    # nobody in the library is retired: the closest base is used and its (student) bio dropped
    retired = sample(3, seed=0, mix={"employment": {"retired": 100}})
    assert all(p.employment == "retired" and p.bio == "" for p in retired)


@pytest.mark.parametrize("mix, message", [
    ({"age_band": {"18-24": 50, "25-34": 40}}, "field 'age_band': percentages sum to 90, not 100"),
    ({"shoe_size": {"42": 100}}, "unknown field 'shoe_size'; a mix may set age_band"),
    ({"gender": {"female": "half", "male": 50}}, "field 'gender', value 'female': percent must be a number"),
    ({"gender": {}}, "field 'gender' must be a non-empty object"),
    ({"_note": "only a comment"}, "the mix sets no field"),
    ([1, 2], "a mix must be a JSON object"),
])
def test_mix_validation_names_the_file_and_field(tmp_path, mix, message):
    path = tmp_path / "bad_mix.json"
    path.write_text(json.dumps(mix))
    with pytest.raises(MixError) as info:
        DemographicMix.from_file(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_mix_file_that_is_not_json(tmp_path):
    path = tmp_path / "mix.json"
    path.write_text('{"gender": {"female": 50,, "male": 50}}')
    with pytest.raises(MixError, match=r"mix\.json:1:\d+: not valid JSON"):
        DemographicMix.from_file(path)


# -- CLI --------------------------------------------------------------------------------------

def test_cli_sample_json_table_and_out(tmp_path):
    runner = CliRunner()
    res = runner.invoke(personas_cli, ["sample", "-n", "3", "--seed", "5", "--format", "json"])
    assert res.exit_code == 0, res.output
    people = [Persona.model_validate_json(line) for line in res.stdout.splitlines()]
    assert people == sample(3, seed=5)

    res = runner.invoke(personas_cli, ["sample", "-n", "2", "--seed", "5"], terminal_width=200)
    assert res.exit_code == 0 and people[0].persona_id in res.output and "intent" in res.output

    out = tmp_path / "people.jsonl"
    res = runner.invoke(personas_cli, ["sample", "-n", "4", "--out", str(out), "--catalog-term", "shoes"])
    assert res.exit_code == 0 and load_personas(out) == sample(4, seed=0, catalog_terms=["shoes"])

    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"gender": {"female": 70, "male": 20}}))
    res = runner.invoke(personas_cli, ["sample", "--mix", str(mix)])
    assert res.exit_code != 0 and "percentages sum to 90" in res.output and "mix.json" in res.output


def test_cli_real_subprocess():
    exe = Path(sys.executable).with_name("shop-r1")
    proc = subprocess.run([str(exe), "personas", "sample", "-n", "3", "--format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    people = [Persona.model_validate_json(line) for line in proc.stdout.splitlines()]
    assert len(people) == 3 and all(p.intent for p in people)
    assert people == sample(3, seed=0)
