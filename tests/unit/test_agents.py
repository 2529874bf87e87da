"""The agent state machine: every state, the pending pause, missed rings, wrap-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.domain.agents import (
    AgentEvent,
    AgentProfile,
    AgentState,
    AgentStateError,
    AgentStatus,
    Answered,
    CallEnded,
    LogIn,
    LogOut,
    Offered,
    Pause,
    Reachability,
    RingUnanswered,
    Unpause,
    WrapUpEnded,
    step,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ANNA = AgentProfile("anna", "Anna", "billing", {"billing": 8}, wrap_up_seconds=30)


def walk(*events: AgentEvent, profile: AgentProfile = ANNA) -> AgentStatus:
    status = AgentStatus("anna")
    for seconds, event in enumerate(events):
        status = step(status, event, T0 + timedelta(seconds=seconds), profile)
    return status


def test_a_logged_in_reachable_agent_is_routable_and_nobody_else_is() -> None:
    assert not walk(LogIn()).routable  # the phone has not registered
    assert walk(Reachability(True), LogIn()).routable
    assert not walk(Reachability(True)).routable  # logged out
    assert not walk(Reachability(True), LogIn(), Pause("lunch")).routable


def test_a_call_rings_is_answered_and_ends_in_wrap_up_then_available() -> None:
    status = walk(Reachability(True), LogIn(), Offered("c1"), Answered("c1"), CallEnded("c1"))
    assert status.state is AgentState.WRAP_UP
    assert status.wrap_up_until == T0 + timedelta(seconds=4 + 30)
    assert step(status, WrapUpEnded(), T0, ANNA).state is AgentState.AVAILABLE


def test_no_wrap_up_time_means_available_at_once() -> None:
    quick = AgentProfile("anna", "Anna", wrap_up_seconds=0)
    status = walk(
        Reachability(True), LogIn(), Offered("c1"), Answered("c1"), CallEnded("c1"), profile=quick
    )
    assert status.state is AgentState.AVAILABLE


def test_a_pause_asked_for_during_a_call_waits_for_the_wrap_up_to_end() -> None:
    status = walk(Reachability(True), LogIn(), Offered("c1"), Answered("c1"), Pause("break"))
    assert (status.state, status.pending) == (AgentState.ON_CALL, AgentState.PAUSED)
    status = step(status, CallEnded("c1"), T0, ANNA)
    assert status.state is AgentState.WRAP_UP
    status = step(status, WrapUpEnded(), T0, ANNA)
    assert (status.state, status.reason) == (AgentState.PAUSED, "break")


def test_unanswered_rings_pause_the_agent_after_three_in_a_row() -> None:
    status = walk(Reachability(True), LogIn(), Offered("c1"), RingUnanswered("c1"))
    assert (status.state, status.missed) == (AgentState.AVAILABLE, 1)
    status = walk(
        Reachability(True), LogIn(),
        Offered("c1"), RingUnanswered("c1"),
        Offered("c2"), RingUnanswered("c2"),
        Offered("c3"), RingUnanswered("c3"),
    )  # fmt: skip
    assert (status.state, status.reason, status.missed) == (AgentState.PAUSED, "missed", 3)
    assert step(status, Unpause(), T0, ANNA).missed == 0


def test_an_answered_call_resets_the_missed_count() -> None:
    status = walk(
        Reachability(True), LogIn(),
        Offered("c1"), RingUnanswered("c1"),
        Offered("c2"), Answered("c2"),
    )  # fmt: skip
    assert status.missed == 0


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ((LogIn(), LogIn()), "already logged in"),
        ((LogOut(),), "already logged out"),
        ((Reachability(True), Offered("c1")), "offered is not possible while logged_out"),
        ((LogIn(), Answered("c9")), "answered is not possible while available"),
        ((LogIn(), Pause("Lunch Break!")), "pause reason 'Lunch Break!'"),
        ((Unpause(),), "unpause is not possible while logged_out"),
    ],
)
def test_a_change_the_state_does_not_allow_is_refused(
    events: tuple[AgentEvent, ...], message: str
) -> None:
    with pytest.raises(AgentStateError, match=message):
        walk(*events)


EVENTS = st.sampled_from(
    [
        LogIn(), LogOut(), Pause("lunch"), Unpause(), Offered("c1"), Answered("c1"),
        RingUnanswered("c1"), CallEnded("c1"), WrapUpEnded(),
        Reachability(True), Reachability(False),
    ]
)  # fmt: skip


@given(st.lists(EVENTS, max_size=30))
def test_any_sequence_leaves_a_consistent_agent(events: list[AgentEvent]) -> None:
    status = AgentStatus("anna")
    for event in events:
        try:
            status = step(status, event, T0, ANNA)
        except AgentStateError:
            continue
        # a call is held exactly while ringing or talking
        assert (status.call_id is not None) == (
            status.state in (AgentState.RESERVED, AgentState.ON_CALL)
        )
        assert (status.reason != "") == (status.state is AgentState.PAUSED)
        assert status.pending is None or status.state in (
            AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP,
        )  # fmt: skip
        assert not status.routable or status.state is AgentState.AVAILABLE
