"""The pure part of monitoring: who may, how each mode is wired, the mode history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ari_app.domain.monitor import (
    DIGITS,
    Mode,
    MonitorRefused,
    Snoop,
    check_permitted,
    closed,
    session_channel,
    snoop_for,
    supervisor_of,
    switched,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)


def test_each_mode_is_wired_so_only_the_right_people_hear_the_supervisor() -> None:
    # listen: hears both directions of the agent's leg, writes nowhere
    assert snoop_for(Mode.LISTEN) == Snoop("both", "none")
    # whisper: writes only into what the agent hears
    assert snoop_for(Mode.WHISPER) == Snoop("both", "out")
    # barge: no snoop, the supervisor joins the conversation's bridge
    assert snoop_for(Mode.BARGE) is None
    assert DIGITS == {"4": Mode.LISTEN, "5": Mode.WHISPER, "6": Mode.BARGE}


@pytest.mark.parametrize(
    ("role", "supervisor_teams", "agent_team", "allowed"),
    [
        ("admin", "", "billing", True),
        ("supervisor", "billing", "billing", True),
        ("supervisor", "sales billing", "billing", True),  # one of their teams
        ("supervisor", "sales", "billing", False),
        ("supervisor", "", "", False),  # no team is nobody's team
        ("agent", "billing", "billing", False),
        ("viewer", "billing", "billing", False),
    ],
)
def test_only_admins_and_supervisors_of_the_agent_s_team_may_monitor(
    role: str, supervisor_teams: str, agent_team: str, allowed: bool
) -> None:
    teams = frozenset(supervisor_teams.split())
    if allowed:
        check_permitted(role, teams, agent_team)
    else:
        with pytest.raises(MonitorRefused):
            check_permitted(role, teams, agent_team)


def test_the_mode_history_closes_each_span_when_the_next_begins() -> None:
    history = switched([], Mode.LISTEN, T0)
    history = switched(history, Mode.WHISPER, T1)
    assert history == [
        {"mode": "listen", "from": T0.isoformat(), "to": T1.isoformat()},
        {"mode": "whisper", "from": T1.isoformat(), "to": None},
    ]
    assert closed(history, T1)[-1]["to"] == T1.isoformat()
    assert history[-1]["to"] is None  # the history given is not changed


def test_a_supervisor_phone_is_known_by_its_endpoint() -> None:
    assert supervisor_of("supervisor-sue") == "sue"
    assert supervisor_of("agent-anna") is None
    assert supervisor_of("supervisor-Bad!") is None
    # what a session makes is known by its name, so the IVR never takes it for a caller
    assert session_channel("mon-0a1b2c3d4e5f6a7b-snoop-2")
    assert not session_channel("1795630449.0")
