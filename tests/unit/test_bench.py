"""The benchmark's scenarios walk the demo flow to the outcomes they are named after."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from ari_app.adapters.interaction_store import row_record
from ari_app.domain.kpi import Targets, queue_figures
from ari_app.services.flows import check_file
from tests.bench import ivr_engine, kpi


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


def test_the_kpi_benchmarks_generated_calls_are_records_the_report_reads() -> None:
    rng = random.Random(1)
    calls = [row_record(kpi._call(n, rng)).interaction for n in range(2000)]
    figures = queue_figures(
        "q0", calls, kpi.T0, kpi.T0 + timedelta(days=30), Targets(), history=calls
    )
    assert figures.offered > 0
    assert 0.6 < figures.handled / figures.offered < 0.95
    assert figures.blocked > 0
    assert any(len(c.segments) == 2 for c in calls)  # transfers
