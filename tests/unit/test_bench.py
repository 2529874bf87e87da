"""The benchmark's scenarios walk the demo flow to the outcomes they are named after."""

from __future__ import annotations

import pytest

from ari_app.services.flows import check_file
from tests.bench import ivr_engine


@pytest.mark.parametrize(
    ("scenario", "outcome", "node"),
    [
        ("billing, balance, goodbye", "self_service", "goodbye"),
        ("support sub-menu to a queue", "queued", "internet_queue"),
        ("wrong keys and silence to the operator", "queued", "operator"),
        ("closed, to voicemail", "voicemail", "closed"),
    ],
)
def test_a_replayed_scenario_ends_where_its_name_says(
    scenario: str, outcome: str, node: str
) -> None:
    flow, _ = check_file(ivr_engine.DEMO)
    assert flow is not None
    caller, at, events = ivr_engine._events(flow, scenario)
    session = ivr_engine._replay(flow, caller, at, events)
    assert session.outcome is not None
    assert (session.outcome.kind, session.outcome.node) == (outcome, node)
