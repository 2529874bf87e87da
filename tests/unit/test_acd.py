"""The ACD coordinator: waiting calls, ringing agents, wrap-up, escalation, endings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.domain import agents as agent_logic
from ari_app.domain.acd import (
    Acd,
    AcdCommand,
    AgentChanged,
    CancelAcdTimer,
    ConnectAgent,
    RingAgent,
    Routed,
    SendToEnding,
    StartAcdTimer,
    StopRinging,
)
from ari_app.domain.agents import AgentProfile, AgentState, AgentStateError
from ari_app.domain.ivr.flow import Voicemail
from ari_app.domain.routing.router import WaitingCall
from ari_app.services.queues import read_queues

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
QUEUES, _ = read_queues(Path(__file__).resolve().parents[2] / "dialplan" / "queues.yaml")
assert QUEUES is not None


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


PROFILES = {
    "anna": AgentProfile("anna", "Anna", "billing", {"billing": 9}, wrap_up_seconds=20),
    "ben": AgentProfile("ben", "Ben", "billing", {"billing": 5}, wrap_up_seconds=20),
    "cleo": AgentProfile("cleo", "Cleo", "support", {"internet": 6}, wrap_up_seconds=0),
    "olga": AgentProfile("olga", "Olga", "front", {"operator": 1}),
}


def center(*logged_in: str) -> Acd:
    acd = Acd(dict(QUEUES), dict(PROFILES))
    for agent_id in logged_in:
        acd.agent_event(agent_id, agent_logic.Reachability(True), at(0))
        acd.agent_event(agent_id, agent_logic.LogIn(), at(0))
    return acd


def of(kind: type, commands: list[AcdCommand]) -> list[Any]:
    return [command for command in commands if isinstance(command, kind)]


def waiting(call_id: str, queue: str = "billing", since: float = 1, **skills: int) -> WaitingCall:
    return WaitingCall(call_id, queue, at(since), 0, skills)


def test_a_waiting_call_rings_the_skilled_agent_with_the_reason_stored() -> None:
    acd = center("anna", "cleo")
    commands = acd.call_waiting(waiting("c1"), at(1))
    (ring,) = of(RingAgent, commands)
    assert (ring.agent_id, ring.endpoint, ring.timeout) == ("anna", "agent-anna", 15.0)
    (routed,) = of(Routed, commands)
    assert routed.assignment.agent_id == "anna"
    assert "Anna was the only free agent with billing >= 7" in routed.assignment.why
    assert acd.statuses["anna"].state is AgentState.RESERVED
    assert acd.statuses["cleo"].state is AgentState.AVAILABLE  # no billing: never rung


def test_answer_connects_then_wrap_up_then_the_next_caller() -> None:
    acd = center("anna")
    acd.call_waiting(waiting("c1"), at(1))
    assert of(RingAgent, acd.call_waiting(waiting("c2", since=2), at(2))) == []
    commands = acd.agent_answered("c1", at(3))
    assert ConnectAgent("c1", "anna") in commands
    assert acd.statuses["anna"].state is AgentState.ON_CALL
    commands = acd.talk_ended("c1", at(60))
    assert StartAcdTimer("wrap:anna", 20) in commands
    assert acd.statuses["anna"].state is AgentState.WRAP_UP
    (ring,) = of(RingAgent, acd.timer("wrap:anna", at(80)))  # wrap-up over: c2 rings
    assert (ring.call_id, ring.agent_id) == ("c2", "anna")
    assert acd.statuses["anna"].state is AgentState.RESERVED


def test_a_ring_that_fails_goes_to_the_next_agent_and_two_misses_pause_the_operator() -> None:
    acd = center("olga")
    acd.call_waiting(waiting("c1", "operator"), at(1))
    commands = acd.ring_failed("c1", at(21))
    (ring,) = of(RingAgent, commands)  # nobody else: olga again, the call kept its place
    assert ring.agent_id == "olga"
    assert acd.statuses["olga"].missed == 1
    commands = acd.ring_failed("c1", at(41))
    assert of(RingAgent, commands) == []
    olga = acd.statuses["olga"]
    assert (olga.state, olga.reason) == (AgentState.PAUSED, "missed")
    assert "c1" in acd.router.calls  # still waiting, at its place


def test_a_caller_who_hangs_up_while_it_rings_is_not_the_agents_miss() -> None:
    acd = center("anna")
    acd.call_waiting(waiting("c1"), at(1))
    commands = acd.caller_left("c1", at(5))
    assert StopRinging("c1", "anna") in commands
    anna = acd.statuses["anna"]
    assert (anna.state, anna.missed) == (AgentState.AVAILABLE, 0)
    assert "c1" not in acd.calls


def test_escalation_rings_a_lower_level_at_the_step_timeout() -> None:
    acd = center("ben")  # billing 5: not an expert
    commands = acd.call_waiting(waiting("c1"), at(0))
    assert of(RingAgent, commands) == []
    assert StartAcdTimer("step:c1", 20.0) in commands
    (ring,) = of(RingAgent, acd.timer("step:c1", at(20)))
    assert ring.agent_id == "ben"
    assert acd.statuses["ben"].state is AgentState.RESERVED


def test_too_long_a_wait_sends_the_caller_to_the_queues_ending() -> None:
    acd = center()
    commands = acd.call_waiting(waiting("c1"), at(0))
    assert StartAcdTimer("wait:c1", 300.0) in commands
    (ending,) = of(SendToEnding, acd.timer("wait:c1", at(300)))
    assert isinstance(ending.node, Voicemail)
    assert ending.why == "waited 300 s in billing"
    assert "c1" not in acd.calls


def test_a_queue_that_leaves_when_nobody_is_logged_in_says_so_at_once() -> None:
    (ending,) = of(SendToEnding, center().call_waiting(waiting("c1", "operator"), at(0)))
    assert ending.why == "no agent is logged in"
    acd = center("olga")
    acd.agent_event("olga", agent_logic.Pause("lunch"), at(0))
    assert of(SendToEnding, acd.call_waiting(waiting("c2", "operator"), at(1))) == []


def test_an_unreachable_phone_is_not_rung_and_rings_again_once_back() -> None:
    acd = center("anna")
    acd.agent_event("anna", agent_logic.Reachability(False), at(0))
    assert of(RingAgent, acd.call_waiting(waiting("c1"), at(1))) == []
    (ring,) = of(RingAgent, acd.agent_event("anna", agent_logic.Reachability(True), at(2)))
    assert ring.call_id == "c1"


def test_a_pause_during_a_call_takes_effect_after_wrap_up_and_no_call_rings() -> None:
    acd = center("anna")
    acd.call_waiting(waiting("c1"), at(1))
    acd.agent_answered("c1", at(2))
    acd.agent_event("anna", agent_logic.Pause("training"), at(3))
    acd.call_waiting(waiting("c2", since=4), at(4))
    acd.talk_ended("c1", at(5))
    commands = acd.agent_event("anna", agent_logic.WrapUpEnded(), at(6))  # ended early
    assert CancelAcdTimer("wrap:anna") in commands
    assert acd.statuses["anna"].state is AgentState.PAUSED
    assert of(RingAgent, commands) == []
    with pytest.raises(AgentStateError):
        acd.agent_event("anna", agent_logic.LogIn(), at(7))


def test_every_change_of_an_agent_is_handed_over_for_the_audit_trail() -> None:
    acd = center()
    changed = of(AgentChanged, acd.agent_event("anna", agent_logic.LogIn(), at(0)))
    assert [(c.before, c.status.state, c.event) for c in changed] == [
        (AgentState.LOGGED_OUT, AgentState.AVAILABLE, "LogIn")
    ]


# -- properties ------------------------------------------------------------------------------

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.integers(0, 5), st.sampled_from(["billing", "support"])),
        st.tuples(st.just("answer"), st.integers(0, 5)),
        st.tuples(st.just("ring_failed"), st.integers(0, 5)),
        st.tuples(st.just("left"), st.integers(0, 5)),
        st.tuples(st.just("timer"), st.sampled_from(["step", "wait", "wrap"]), st.integers(0, 5)),
        st.tuples(
            st.just("agent"),
            st.sampled_from(sorted(PROFILES)),
            st.sampled_from(
                [
                    agent_logic.LogIn(),
                    agent_logic.LogOut(),
                    agent_logic.Pause("lunch"),
                    agent_logic.Unpause(),
                    agent_logic.Reachability(False),
                    agent_logic.Reachability(True),
                ]
            ),
        ),
    ),
    max_size=50,
)
AGENT_IDS = sorted(PROFILES)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_any_sequence_never_double_books_nor_rings_an_unskilled_agent(
    steps: list[tuple[Any, ...]],
) -> None:
    acd = center("anna", "ben", "cleo")
    for clock, item in enumerate(steps):
        now = at(clock)
        kind = item[0]
        commands: list[AcdCommand] = []
        try:
            if kind == "wait":
                call_id = f"c{item[1]}"
                if call_id not in acd.calls:
                    skills = {"internet": 1} if item[2] == "support" else {}
                    commands = acd.call_waiting(waiting(call_id, item[2], clock, **skills), now)
            elif kind == "answer":
                commands = acd.agent_answered(f"c{item[1]}", now)
            elif kind == "ring_failed":
                commands = acd.ring_failed(f"c{item[1]}", now)
            elif kind == "left":
                commands = acd.caller_left(f"c{item[1]}", now)
            elif kind == "timer":
                ident = f"c{item[2]}" if item[1] != "wrap" else AGENT_IDS[item[2] % 4]
                commands = acd.timer(f"{item[1]}:{ident}", now)
            else:
                commands = acd.agent_event(item[1], item[2], now)
        except AgentStateError:
            continue
        for ring in of(RingAgent, commands):
            queue = acd.queues[acd.calls[ring.call_id].call.queue]
            need = queue.rules.requirement(acd.calls[ring.call_id].call.step)
            assert need.met_by(PROFILES[ring.agent_id].skills)
        # an agent ringing or talking holds exactly the one call that names them
        for agent_id, status in acd.statuses.items():
            holders = [c for c, w in acd.calls.items() if w.agent_id == agent_id]
            if status.state in (AgentState.RESERVED, AgentState.ON_CALL):
                assert holders == [status.call_id]
            else:
                assert holders == []
