"""A typed password or e-mail never reaches a run directory or a dataset, in any encoding.

A shopper types an e-mail and a password into a sign-in form that answers with a GET (so both
come back in the next page's URL), and the page echoes them in its title, text and links; the
policy's raw output carries them too. Then the whole run folder and the built dataset are
searched for every encoding of both values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, quote_plus

import pyarrow.parquet as pq
import pytest

from shop_r1.envs.actions import Terminate, TypeAndSubmit
from shop_r1.personas.sampler import sample
from shop_r1.simulator.agent.policies.base import Policy
from shop_r1.simulator.records.exchange import PolicyRequest, PolicyResponse
from shop_r1.simulator.loop.runner import RunConfig, Runner
from shop_r1.training.data import build_dataset_dir

from tests.faults.fault_shop import serve_fault_shops

EMAIL, PASSWORD = "alice.shopper@example.com", "hunter2-Sekret!"


class SignInPolicy(Policy):
    """Types the e-mail, then the password, then stops; its rationale and raw output repeat
    what it types (as a model does), and later steps mention the e-mail again."""

    name = "sign-in"

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        out = []
        for req in requests:
            fields = {el.input_type: el.name for el in req.observation.elements if el.kind == "input"}
            if req.step == 0:
                action = TypeAndSubmit(name=fields["email"], text=EMAIL)
            elif req.step == 1:
                action = TypeAndSubmit(name=fields["password"], text=PASSWORD)
            else:
                action = Terminate()
            typed = getattr(action, "text", "")
            rationale = f"I type {typed} to sign in." if typed else f"I am signed in as {EMAIL}; done."
            raw = f'{{"rationale": "{rationale}", "action": {action.model_dump_json()}}}'
            out.append(PolicyResponse(action=action, rationale=rationale, raw_text=raw))
        return out


def _forms(value: str) -> list[str]:
    return sorted({value, quote(value, safe=""), quote_plus(value), quote(value)})


def _run(tmp_path: Path, redact: bool = True) -> Path:
    with serve_fault_shops() as shops:
        out = tmp_path / "run"
        config = RunConfig(shop_url=f"{shops.url}/account", shoppers=1, concurrency=1, max_steps=4,
                           out_dir=out, redact=redact)
        asyncio.run(Runner(config, SignInPolicy(), sample(1, seed=0)).run())
    return out


def test_no_secret_in_run_dir_or_dataset(tmp_path: Path) -> None:
    out = _run(tmp_path)
    text = "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert "signed in as" in text.lower(), "the echo page was not recorded: the test would prove nothing"
    found = [f for v in (EMAIL, PASSWORD) for f in _forms(v) if f in text]
    assert found == [], f"secrets in the run folder: {found}"

    data = tmp_path / "data"
    build_dataset_dir([out], data, val=0.0, test=0.0, missing_rationale="skip")
    values: list[str] = []
    for file in data.rglob("*.parquet"):
        for column in pq.read_table(file).to_pylist():
            values.extend(str(v) for v in column.values())
    values.extend(p.read_text() for p in data.rglob("*.json"))
    dataset_text = "\n".join(values)
    assert dataset_text, "the dataset is empty: the test would prove nothing"
    found = [f for v in (EMAIL, PASSWORD) for f in _forms(v) if f in dataset_text]
    assert found == [], f"secrets in the dataset: {found}"


def test_no_redact_keeps_values(tmp_path: Path) -> None:
    """``--no-redact`` (a shop with only fake data) records as is: the switch really switches."""
    out = _run(tmp_path, redact=False)
    assert PASSWORD in (out / "trace.jsonl").read_text()


@pytest.mark.parametrize("value", ["4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00"])
def test_value_patterns_are_scrubbed_from_pages(value: str) -> None:
    from shop_r1.simulator.records.safety import Redactor

    assert value not in Redactor().scrub(f"<p>saved card {value}</p>")
