"""Live statistics moved by events and by the clock, and alerts that do not flap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ari_app.domain.acd import Acd
from ari_app.domain.live import AlertThresholds, LiveStats
from ari_app.services.live import LiveService
from ari_app.services.queues import read_queues
from tests.unit.test_kpi import CALLS, at

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_waiting_callers_and_the_longest_wait_move_with_the_clock() -> None:
    live = LiveStats()
    live.queued("a", "billing", s(0))
    live.queued("b", "billing", s(10))
    figures = live.queue("billing", s(30), set())
    assert (figures["waiting"], figures["longest_wait"]) == (2, 30.0)
    live.wait_ended("a", s(35), answered=True, abandoned=False)
    figures = live.queue("billing", s(40), set())
    assert (figures["waiting"], figures["longest_wait"]) == (1, 30.0)  # b, since 10 s


def test_the_rolling_window_and_the_day_by_hand() -> None:
    # answered after 8 s and 30 s, abandoned after 12 s, a 2 s short abandon, all before
    # 09:05; then at 09:25 the first three have left the 15 minute window
    live = LiveStats(short_abandon=5.0)
    for call, since in (("a", 0), ("b", 10), ("c", 20), ("d", 30)):
        live.queued(call, "billing", s(since))
    live.wait_ended("a", s(8), answered=True, abandoned=False)
    live.wait_ended("b", s(40), answered=True, abandoned=False)
    live.wait_ended("c", s(32), answered=False, abandoned=True)
    live.wait_ended("d", s(32), answered=False, abandoned=True)  # short
    rolling = live.queue("billing", s(60), set())["last_15_min"]
    assert rolling == {
        "offered": 3,
        "handled": 2,
        "abandoned": 1,
        "service_level": pytest.approx(100 / 3),  # only a within 20 s
        "asa": pytest.approx(19.0),  # (8 + 30) / 2
        "abandon_rate": pytest.approx(100 / 3),
    }
    later = live.queue("billing", s(25 * 60), set())
    assert later["last_15_min"]["offered"] == 0
    assert later["today"]["offered"] == 3
    tomorrow = live.queue("billing", s(24 * 3600), set())
    assert tomorrow["today"]["offered"] == 0


def test_agents_by_state_count_those_who_serve_the_queue() -> None:
    live = LiveStats()
    live.agent_state("anna", "available", "", s(0))
    live.agent_state("ben", "paused", "lunch", s(5))
    live.agent_state("carl", "on_call", "", s(6))
    figures = live.queue("billing", s(10), {"anna", "ben", "dora"})
    assert figures["agents"] == {"available": 1, "paused": 1}
    assert live.agent("ben", s(65)) == {
        "agent_id": "ben",
        "state": "paused",
        "since": s(5),
        "seconds_in_state": 60.0,
        "reason": "lunch",
    }
    assert live.agent("nobody", s(65)) is None


def test_a_longest_wait_alert_is_raised_once_and_cleared_with_a_margin() -> None:
    live = LiveStats()
    limits = AlertThresholds(longest_wait=60.0)
    live.queued("a", "billing", s(0))

    def check(at: float) -> list[tuple[str, bool]]:
        figures = live.queue("billing", s(at), set())
        return [(a.metric, a.raised) for a in live.alerts("billing", figures, limits, 80.0)]

    assert check(59) == []
    assert check(61) == [("longest_wait", True)]
    assert check(90) == []  # still raised: said once
    live.wait_ended("a", s(91), answered=True, abandoned=False)
    live.queued("b", "billing", s(91))
    assert check(91 + 55) == []  # under 60 but not under 48 (60 less 20 %): no flapping
    assert check(91 + 61) == []
    live.wait_ended("b", s(160), answered=True, abandoned=False)
    assert check(160) == [("longest_wait", False)]  # nobody waits: 0 s


def test_rate_alerts_wait_for_enough_calls_and_the_service_level_for_its_margin() -> None:
    live = LiveStats(short_abandon=0.0)
    limits = AlertThresholds(abandon_rate=20.0, service_level=True, min_calls=4)
    for n in range(3):  # three answered late: SL 0 %, but too few calls to judge
        live.queued(f"c{n}", "billing", s(n))
        live.wait_ended(f"c{n}", s(n + 30), answered=True, abandoned=False)
    figures = live.queue("billing", s(40), set())
    assert live.alerts("billing", figures, limits, 80.0) == []
    live.queued("c3", "billing", s(41))
    live.wait_ended("c3", s(50), answered=False, abandoned=True)  # 25 % abandoned
    figures = live.queue("billing", s(50), set())
    raised = live.alerts("billing", figures, limits, 80.0)
    assert sorted((a.metric, a.raised) for a in raised) == [
        ("abandon_rate", True),
        ("service_level", True),
    ]
    for n in range(4, 20):  # sixteen answered at once: SL 16/20 = 80 %, not yet 85 %
        live.queued(f"c{n}", "billing", s(60 + n))
        live.wait_ended(f"c{n}", s(61 + n), answered=True, abandoned=False)
    figures = live.queue("billing", s(90), set())
    assert [(a.metric, a.raised) for a in live.alerts("billing", figures, limits, 80.0)] == [
        ("abandon_rate", False)  # 1 of 20 = 5 %, under 16 %
    ]
    for n in range(20, 30):  # ten more: 26/30 = 86.7 %, past 80 + 5
        live.queued(f"c{n}", "billing", s(90 + n))
        live.wait_ended(f"c{n}", s(91 + n), answered=True, abandoned=False)
    figures = live.queue("billing", s(130), set())
    assert [(a.metric, a.raised) for a in live.alerts("billing", figures, limits, 80.0)] == [
        ("service_level", False)
    ]


def test_a_restart_takes_the_day_back_from_the_stored_interactions(tmp_path: Path) -> None:
    # the scripted hour of test_kpi.py, seen at 09:50: today has the five offered calls
    # (c3 was a short abandon, c7 blocked); the last 15 minutes only c5's answer (09:40)
    path = tmp_path / "queues.yaml"
    path.write_text("queues:\n  billing:\n    skills: {billing: 3}\n")
    queues, problems = read_queues(path)
    assert queues is not None, problems
    service = LiveService(Acd(dict(queues)), None, clock=lambda: at(50))
    service.load(CALLS)
    figures = service.queue("billing")
    assert figures["today"]["offered"] == 5
    assert (figures["today"]["handled"], figures["today"]["abandoned"]) == (4, 1)
    assert figures["last_15_min"]["offered"] == 1
    assert figures["waiting"] == 0
