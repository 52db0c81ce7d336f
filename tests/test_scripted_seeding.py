"""The scripted shopper's random stream: keyed by persona and session slot (issue 23).

Keyed by persona alone, the train and test sessions of one persona made the same hidden choices
(query typos, patience, which product to compare), so a persona split was not needed to leak them.
The two arms of an A/B pair (slot i of both runs, different run ids) must still share every draw.
"""

from __future__ import annotations

from shop_r1.envs.observation import Observation
from shop_r1.personas.sampler import sample
from shop_r1.simulator.records.exchange import PolicyRequest
from shop_r1.simulator.agent.policies.scripted import ScriptedPolicy


def _draws(session_id: str, persona) -> tuple:
    st = ScriptedPolicy(seed=0)._state(PolicyRequest(
        session_id=session_id, persona=persona, step=1,
        observation=Observation(url="http://127.0.0.1/", title="", simplified_html="", elements=())))
    return st.query, st.patience, st.compare, tuple(st.rng.random() for _ in range(4)), st.aux.random()


def test_two_sessions_of_one_persona_differ_and_a_pairs_arms_agree():
    persona = sample(1, seed=5)[0]
    first, second = _draws("run-a-0003", persona), _draws("run-a-0017", persona)
    assert first[3] != second[3] and first[4] != second[4]  # two sessions of the persona in one run
    assert _draws("run-b-0003", persona) == first  # the other arm of pair 3 (another run id, slot 3)
    assert _draws("run-a-0003", persona) == first  # a rerun
    other = sample(2, seed=5)[1]
    assert _draws("run-a-0003", other)[3] != first[3]  # another persona in the same slot
