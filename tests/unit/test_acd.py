"""The ACD coordinator: waiting calls, ringing agents, wrap-up, escalation, endings."""

from __future__ import annotations

from dataclasses import replace
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
    Announce,
    CallbackBusy,
    CallbackChanged,
    CancelAcdTimer,
    ConnectAgent,
    DialCustomer,
    HandOver,
    RingAgent,
    Routed,
    SendToEnding,
    StartAcdTimer,
    StopRinging,
    TransferRefused,
)
from ari_app.domain.agents import AgentProfile, AgentState, AgentStateError
from ari_app.domain.announce import announcement, expected_wait
from ari_app.domain.ivr.flow import Voicemail
from ari_app.domain.routing.config import Callback
from ari_app.domain.routing.router import WaitingCall
from ari_app.domain.routing.rules import RoutingStep
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


def test_a_transfer_hands_the_conversation_to_the_chosen_agent_and_wraps_up_the_first() -> None:
    acd = center("anna", "ben", "cleo")
    acd.call_waiting(waiting("c1"), at(1))
    acd.agent_answered("c1", at(2))
    with pytest.raises(TransferRefused):
        acd.transfer("c1", "anna", at(30))  # she has it
    with pytest.raises(TransferRefused):
        acd.transfer("c9", "ben", at(30))  # no such conversation
    acd.agent_event("ben", agent_logic.Pause("lunch"), at(29))
    with pytest.raises(TransferRefused):
        acd.transfer("c1", "ben", at(30))  # not available
    assert acd.statuses["anna"].state is AgentState.ON_CALL  # nothing changed
    acd.agent_event("ben", agent_logic.Unpause(), at(31))
    # any available agent a person chooses, skills or not
    commands = acd.transfer("c1", "cleo", at(40))
    assert commands[0] == HandOver("c1", "anna")
    (ring,) = of(RingAgent, commands)
    assert (ring.call_id, ring.agent_id) == ("c1", "cleo")
    assert acd.statuses["anna"].state is AgentState.WRAP_UP
    assert acd.statuses["cleo"].state is AgentState.RESERVED
    # another caller does not take the agent the transfer rings
    assert "cleo" not in acd.router.free
    assert of(RingAgent, acd.call_waiting(waiting("c2", "support", 41, internet=3), at(41))) == []
    assert ConnectAgent("c1", "cleo") in acd.agent_answered("c1", at(45))
    assert acd.statuses["cleo"].state is AgentState.ON_CALL
    # her conversation over (no wrap-up time), the waiting caller rings her
    assert of(RingAgent, acd.talk_ended("c1", at(90))) == [
        RingAgent("c2", "cleo", "agent-cleo", 15.0)
    ]


def test_a_transfer_nobody_answers_puts_the_call_back_at_its_place() -> None:
    acd = center("anna", "ben")
    acd.call_waiting(waiting("c1"), at(1))
    acd.agent_answered("c1", at(2))
    acd.transfer("c1", "ben", at(30))
    acd.call_waiting(waiting("c2", since=35), at(35))  # nobody free: it waits
    commands = acd.ring_failed("c1", at(45))
    assert acd.statuses["ben"].missed == 1
    assert acd.router.positions()["c1"][0] == 1  # ahead of c2, who came later
    # it waits at the routing step it was at (level 7 first): then Ben's level will do
    assert of(RingAgent, commands) == []
    (step,) = [c for c in of(StartAcdTimer, commands) if c.key == "step:c1"]
    later = acd.timer("step:c1", at(45 + step.seconds))
    assert of(RingAgent, later) == [RingAgent("c1", "ben", "agent-ben", 15.0)]


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
        st.tuples(st.just("transfer"), st.integers(0, 5), st.sampled_from(sorted(PROFILES))),
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
            elif kind == "transfer":
                commands = acd.transfer(f"c{item[1]}", item[2], now)
            elif kind == "timer":
                ident = f"c{item[2]}" if item[1] != "wrap" else AGENT_IDS[item[2] % 4]
                commands = acd.timer(f"{item[1]}:{ident}", now)
            else:
                commands = acd.agent_event(item[1], item[2], now)
        except (AgentStateError, TransferRefused):
            continue
        for ring in of(RingAgent, commands) if kind != "transfer" else []:  # a person chose
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


# -- a restart: what Asterisk still holds is taken back ------------------------------------


def restarted(**statuses: agent_logic.AgentStatus) -> Acd:
    """A new process: profiles and states as the database has them, phones reachable."""
    acd = Acd(dict(QUEUES), dict(PROFILES))
    for agent_id in PROFILES:
        acd.statuses[agent_id] = statuses.get(agent_id, agent_logic.AgentStatus(agent_id))
    for agent_id in PROFILES:
        acd.agent_event(agent_id, agent_logic.Reachability(True), at(29))
    return acd


def test_a_restart_keeps_the_conversation_the_order_and_the_escalation_step() -> None:
    state = agent_logic.AgentState
    acd = restarted(
        anna=agent_logic.AgentStatus("anna", state.ON_CALL, at(3), call_id="c1"),
        ben=agent_logic.AgentStatus("ben", state.RESERVED, at(4), call_id="gone", missed=1),
        olga=agent_logic.AgentStatus("olga", state.WRAP_UP, at(20), wrap_up_until=at(100)),
    )
    talking = {"c1": (waiting("c1"), "anna")}
    commands = acd.resume([waiting("c2", since=5), waiting("c3", since=2)], talking, at(30))
    # Ben's ring was cut by the restart: released without a miss, he takes the oldest call
    # (both calls have waited past the 20 s expert step, so level 4 is enough)
    (ring,) = of(RingAgent, commands)
    assert (ring.call_id, ring.agent_id) == ("c3", "ben")
    assert acd.statuses["ben"].missed == 1
    (routed,) = of(Routed, commands)
    assert (routed.assignment.step, routed.assignment.requirement) == (1, "billing >= 4")
    assert StartAcdTimer("step:c2", 35) in commands  # c2 entered step 1 at 25 s: 35 s left
    assert StartAcdTimer("wrap:olga", 70) in commands
    assert acd.statuses["anna"].state is AgentState.ON_CALL
    assert of(StartAcdTimer, acd.talk_ended("c1", at(40))) == [StartAcdTimer("wrap:anna", 20)]
    assert acd.statuses["anna"].state is AgentState.WRAP_UP
    # Anna's wrap-up ends: the next caller in order is hers
    (ring,) = of(RingAgent, acd.timer("wrap:anna", at(60)))
    assert (ring.call_id, ring.agent_id) == ("c2", "anna")


def test_a_conversation_that_ended_while_the_service_was_away_gets_its_wrap_up() -> None:
    status = agent_logic.AgentStatus("anna", AgentState.ON_CALL, at(3), call_id="c1")
    acd = restarted(anna=status)
    commands = acd.resume([], {}, at(30))
    assert StartAcdTimer("wrap:anna", 20) in commands
    assert acd.statuses["anna"].state is AgentState.WRAP_UP


def test_a_ring_answered_just_before_the_restart_is_a_conversation() -> None:
    status = agent_logic.AgentStatus("anna", AgentState.RESERVED, at(3), call_id="c1")
    acd = restarted(anna=status)
    acd.resume([], {"c1": (waiting("c1"), "anna")}, at(30))
    assert acd.statuses["anna"].state is AgentState.ON_CALL
    assert acd.calls["c1"].talking


def test_a_caller_who_passed_the_longest_wait_while_the_service_was_away_leaves() -> None:
    acd = restarted()
    (ending,) = of(SendToEnding, acd.resume([waiting("c1", since=0)], {}, at(400)))
    assert isinstance(ending.node, Voicemail)
    assert "c1" not in acd.calls


def test_a_call_resumed_past_its_steps_waits_in_the_overflow_queue() -> None:
    acd = restarted()
    commands = acd.resume([waiting("c1", since=0)], {}, at(70))
    assert acd.router.calls["c1"].queue == "billing_tier2"
    assert StartAcdTimer("wait:c1", 230) in commands
    assert of(RingAgent, commands) == []  # nobody has billing >= 8


def test_new_queue_rules_apply_to_the_next_decision() -> None:
    acd = center("ben")
    acd.call_waiting(waiting("c1"), at(1))  # Ben (5) is below the expert step (7)
    assert acd.statuses["ben"].state is AgentState.AVAILABLE
    easier = dict(QUEUES)
    rules = replace(easier["billing"].rules, steps=(RoutingStep(min_level=1),))
    easier["billing"] = replace(easier["billing"], rules=rules)
    (ring,) = of(RingAgent, acd.set_queues(easier, at(2)))
    assert (ring.call_id, ring.agent_id) == ("c1", "ben")


# -- announcements of place in line and expected wait ---------------------------------------


def test_the_words_of_an_announcement() -> None:
    assert announcement(1, None) == ("sound:queue-youarenext", "sound:queue-thankyou")
    assert announcement(3, 150) == (
        "sound:queue-thereare",
        "number:3",
        "sound:queue-callswaiting",
        "sound:queue-holdtime",
        "number:3",
        "sound:queue-minutes",
        "sound:queue-thankyou",
    )
    assert announcement(2, 40)[3:6] == ("sound:queue-holdtime", "sound:queue-less-than", "number:1")


@given(
    position=st.integers(1, 500),
    serving=st.integers(0, 50),
    handle=st.none() | st.floats(1, 3600),
)
def test_the_expected_wait_grows_with_the_place_and_shrinks_with_the_agents(
    position: int, serving: int, handle: float | None
) -> None:
    expected = expected_wait(position, serving, handle)
    if handle is None or serving == 0:
        assert expected is None
        return
    assert expected is not None
    assert expected > 0
    assert expected <= position * handle
    later = expected_wait(position + serving, serving, handle)
    assert later is not None
    assert later == pytest.approx(expected + handle)
    more_help = expected_wait(position, serving + 1, handle)
    assert more_help is not None
    assert more_help <= expected


def test_waiting_callers_hear_their_place_and_once_calls_were_handled_the_wait() -> None:
    acd = center("ben")  # billing 5: below the expert step, so nobody is rung for 20 s
    acd.agent_event("ben", agent_logic.Pause("lunch"), at(0))
    assert StartAcdTimer("announce:c1", 30) in acd.call_waiting(waiting("c1", since=1), at(1))
    acd.call_waiting(waiting("c2", since=2), at(2))
    first = acd.timer("announce:c2", at(32))
    assert first == [
        Announce("c2", announcement(2, None)),  # nobody serves: no expected wait is told
        StartAcdTimer("announce:c2", 30),
    ]
    # Ben is back and handles c1 in 100 s of talk and 20 s of wrap-up
    acd.agent_event("ben", agent_logic.Unpause(), at(33))
    acd.timer("step:c1", at(33))
    acd.agent_answered("c1", at(40))
    assert acd.timer("announce:c1", at(41)) == []  # talking: no more announcements
    acd.talk_ended("c1", at(140))
    assert acd.handle_seconds["billing"] == 120
    (announce, _) = acd.timer("announce:c2", at(142))
    assert announce == Announce("c2", announcement(1, 60))  # half a handle time, one agent


def test_a_caller_whose_agent_rings_hears_no_announcement() -> None:
    acd = center("anna")
    acd.call_waiting(waiting("c1"), at(1))
    assert acd.timer("announce:c1", at(31)) == [StartAcdTimer("announce:c1", 30)]


# -- callbacks: the caller hangs up and keeps their place -------------------------------------


def with_callbacks(attempts: int = 2) -> Acd:
    """Support's longest wait (600 s) ends in a callback; Cleo (internet) serves it."""
    queues = dict(QUEUES)
    ending = Callback(("sound:queue-thankyou",), attempts=attempts, retry_after=60)
    queues["support"] = replace(queues["support"], on_max_wait=ending, announce_every=None)
    return Acd(queues, dict(PROFILES))


def log_in(acd: Acd, agent_id: str, now: datetime) -> list[AcdCommand]:
    acd.agent_event(agent_id, agent_logic.Reachability(True), now)
    return acd.agent_event(agent_id, agent_logic.LogIn(), now)


def test_a_callback_keeps_the_place_and_the_agent_who_takes_it_has_the_caller_dialled() -> None:
    acd = with_callbacks()
    call = replace(waiting("c1", queue="support", since=0, internet=1), caller="5551234")
    acd.call_waiting(call, at(0))
    commands = acd.timer("wait:c1", at(600))
    (ending,) = of(SendToEnding, commands)
    assert (ending.call_id, type(ending.node)) == ("c1", Callback)
    (stored,) = of(CallbackChanged, commands)
    assert (stored.call.call_id, stored.state, stored.call.waiting_since) == (
        "cb-c1",
        "waiting",
        at(0),
    )
    assert "c1" not in acd.calls
    (view,) = acd.waiting(at(601))
    assert (view.call_id, view.callback, view.position) == ("cb-c1", True, 1)
    (ring,) = of(RingAgent, log_in(acd, "cleo", at(700)))
    assert (ring.call_id, ring.agent_id) == ("cb-c1", "cleo")
    (dial,) = of(DialCustomer, acd.agent_answered("cb-c1", at(705)))
    assert (dial.number, dial.agent_id) == ("5551234", "cleo")
    assert acd.statuses["cleo"].state is AgentState.ON_CALL
    (talking,) = of(CallbackChanged, acd.customer_answered("cb-c1", at(712)))
    assert (talking.state, talking.attempts) == ("talking", 1)
    (done,) = of(CallbackChanged, acd.talk_ended("cb-c1", at(800)))
    assert (done.state, done.agent_id) == ("done", "cleo")
    assert acd.statuses["cleo"].state is AgentState.AVAILABLE  # no wrap-up time
    assert acd.calls == {}


def test_an_unanswered_callback_is_tried_again_later_then_given_up() -> None:
    acd = with_callbacks(attempts=2)
    call = replace(waiting("c1", queue="support", since=0, internet=1), caller="5551234")
    acd.call_waiting(call, at(0))
    acd.timer("wait:c1", at(600))
    log_in(acd, "cleo", at(601))
    acd.agent_answered("cb-c1", at(602))
    commands = acd.customer_unreached("cb-c1", at(632))
    assert StartAcdTimer("retry:cb-c1", 60) in commands
    (scheduled,) = of(CallbackChanged, commands)
    assert (scheduled.state, scheduled.attempts, scheduled.retry_at) == ("scheduled", 1, at(692))
    assert of(RingAgent, commands) == []  # Cleo is free, but the retry is not due
    assert acd.statuses["cleo"].state is AgentState.AVAILABLE
    (ring,) = of(RingAgent, acd.timer("retry:cb-c1", at(692)))
    assert ring.agent_id == "cleo"
    acd.agent_answered("cb-c1", at(693))
    (failed,) = of(CallbackChanged, acd.customer_unreached("cb-c1", at(723)))
    assert (failed.state, failed.attempts) == ("failed", 2)
    assert acd.calls == {}


def test_a_callback_comes_back_after_a_restart_with_its_attempts_and_due_time() -> None:
    acd = with_callbacks()
    log_in(acd, "cleo", at(0))
    kept = replace(waiting("cb-c1", queue="support", since=0, internet=1), caller="5551234")
    ending = acd.queues["support"].on_max_wait
    assert isinstance(ending, Callback)
    commands = acd.resume([kept], {}, at(650), {"cb-c1": (ending, 1, at(700))})
    assert StartAcdTimer("retry:cb-c1", 50) in commands
    assert of(RingAgent, commands) == []
    (ring,) = of(RingAgent, acd.timer("retry:cb-c1", at(700)))
    assert ring.call_id == "cb-c1"
    assert acd.calls["cb-c1"].attempts == 1


def test_a_callback_is_cancelled_while_it_waits_or_rings_but_not_once_taken() -> None:
    acd = with_callbacks()
    for call_id, since in (("c1", 0), ("c2", 1)):
        call = replace(waiting(call_id, queue="support", since=since, internet=1), caller="555")
        acd.call_waiting(call, at(since))
        acd.timer(f"wait:{call_id}", at(600 + since))
    (cancelled,) = of(CallbackChanged, acd.cancel_callback("cb-c2", at(650)))
    assert cancelled.state == "cancelled"
    assert "cb-c2" not in acd.calls
    assert "cb-c2" not in acd.router.calls
    (ring,) = of(RingAgent, log_in(acd, "cleo", at(700)))
    assert (ring.call_id, ring.agent_id) == ("cb-c1", "cleo")
    commands = acd.cancel_callback("cb-c1", at(701))
    assert StopRinging("cb-c1", "cleo") in commands
    assert acd.statuses["cleo"].state is AgentState.AVAILABLE
    assert acd.statuses["cleo"].missed == 0  # not her miss
    with pytest.raises(KeyError):
        acd.cancel_callback("cb-c1", at(702))
    acd.agent_event("cleo", agent_logic.Pause("lunch"), at(790))
    call = replace(waiting("c3", queue="support", since=800, internet=1), caller="555")
    acd.call_waiting(call, at(800))
    acd.timer("wait:c3", at(1400))
    (ring,) = of(RingAgent, acd.agent_event("cleo", agent_logic.Unpause(), at(1401)))
    assert ring.call_id == "cb-c3"
    acd.agent_answered("cb-c3", at(1402))
    with pytest.raises(CallbackBusy):
        acd.cancel_callback("cb-c3", at(1403))
