"""The benchmark's scenarios walk the demo flow to the outcomes they are named after."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from ari_app.adapters.interaction_store import row_record
from ari_app.domain.kpi import Targets, queue_figures
from ari_app.services.flows import check_file
from tests.bench import ivr_engine, kpi
from tests.bench.load.run import Plan, search_rate
from tests.bench.load.sipp import read_steps


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


async def _searched(plan: Plan, limit: float) -> tuple[tuple[float | None, str], list[float]]:
    tried: list[float] = []

    async def passes(rate: float) -> bool:
        tried.append(rate)
        return rate <= limit

    return await search_rate(plan, passes), tried


async def test_the_rate_search_steps_up_then_halves_the_gap_to_the_first_failure() -> None:
    found, tried = await _searched(Plan(agents=160), limit=12.0)
    assert tried == [4.0, 6.0, 9.0, 13.5, 11.2, 12.3]
    assert found == (11.2, "failures")


async def test_the_rate_search_stops_where_every_agent_would_be_busy() -> None:
    plan = Plan(agents=160)
    found, tried = await _searched(plan, limit=1000.0)
    assert tried[-1] == round(plan.ceiling, 1) == found[0]
    assert found[1] == "agents"
    assert len(tried) == len(set(tried))  # no rate twice
    found, tried = await _searched(Plan(agents=160, start_rate=1.0, max_rate=1.0), 1000.0)
    assert (found, tried) == ((1.0, "max_rate"), [1.0])


def test_a_capacity_capped_by_the_agents_judges_the_ratio_only_where_it_can() -> None:
    from tests.bench.load.run import _ratio_target

    assert _ratio_target(1.0, "failures", "agents") is True  # B at least A's limit
    assert _ratio_target(1.0, "agents", "agents") is None  # neither limit found
    assert _ratio_target(0.5, "agents", "failures") is False  # A only higher
    assert _ratio_target(0.9, "agents", "failures") is None
    assert _ratio_target(None, "failures", "failures") is None


def test_a_call_passes_only_as_a_conversation_with_an_agent() -> None:
    from tests.bench.load.measure import Readings, Trial, judge
    from tests.bench.load.sipp import CallerRun

    calls = ["c1", "c2", "c3", "c4", "c5"]
    steps = {
        "invite": dict.fromkeys(calls, 0.0),
        "answered": dict.fromkeys(calls, 0.01),
        "digit": dict.fromkeys(calls, 2.0),
        "bye": dict.fromkeys(calls, 6.0),
        "done": dict.fromkeys(calls, 6.01),
    }
    agents = {
        "invite": {"c1": 2.1, "c2": 6.5, "c4": 5.5, "c5": 2.2},
        "answered": {"c1": 2.11, "c2": 6.51, "c4": 5.51},  # c5: rang, never answered
    }
    reading = Readings(asterisk_cpu=0.0, service_cpu=0.0, lag_counts=None)
    troubles = ['{"command": "ConnectAgent", "call_id": "1.2", "event": "acd_command_failed"}']
    trial = judge(Trial("B", 1.0, 5), CallerRun(0, steps, ""), agents, reading, reading, [],
                  troubles)  # fmt: skip
    assert trial.failed == [
        "c2: an agent answered -0.5 s before the hang-up",
        "c3: no agent's phone rang",
        "c4: an agent answered 0.5 s before the hang-up",
        "c5: an agent's phone rang, and never answered",
        f"the service: {troubles[0]}",
    ]
    assert trial.to_agent_ms == pytest.approx([100.0, 4500.0, 3500.0, 200.0])


def test_a_step_logged_on_a_whole_second_counts(tmp_path: Path) -> None:
    """SIPp writes nothing for the microseconds of a moment on a whole second: such a
    call was placed all the same (a run once failed with "1 calls were never placed")."""
    log = tmp_path / "callers.log"
    log.write_text("invite 90101 1795704758.000000 181.000000\n"
                   "invite 901077 1795704777.000000 \n"
                   "bye 90101 1795704762.000000 5.000000\n"
                   "noise\n")  # fmt: skip
    steps = read_steps(log)
    assert steps["invite"] == {"90101": 1795704758.000181, "901077": 1795704777.0}
    assert steps["bye"] == {"90101": 1795704762.000005}
