"""The call's transition table, with no I/O and no event loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ari_app.domain.call import Call, Config, HangupSide, Phase, step, welcome_playback_id
from ari_app.domain.commands import (
    AnswerChannel,
    HangupChannel,
    PlayPrompt,
    PublishCallEvent,
    RememberStep,
    SaveCall,
    WatchChannel,
)
from ari_app.domain.events import (
    CallAdopted,
    CallArrived,
    CallEvent,
    ChannelAnswered,
    ChannelGone,
    CommandFailed,
    PromptFinished,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CONFIG = Config(welcome_prompt="sound:hello-world")
ARRIVED = CallArrived("c1", "5551234", "100", T0)


def _kinds(commands: list[object]) -> list[type]:
    return [type(command) for command in commands]


def _walk(*events: CallEvent) -> tuple[Call | None, list[object]]:
    call: Call | None = None
    commands: list[object] = []
    for offset, event in enumerate(events):
        call, out = step(call, event, T0 + timedelta(seconds=offset), CONFIG)
        commands.extend(out)
    return call, commands


def test_an_arriving_call_is_stored_announced_answered_and_watched() -> None:
    call, commands = step(None, ARRIVED, T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.ANSWERING
    assert (call.caller, call.dialled, call.started_at) == ("5551234", "100", T0)
    assert _kinds(commands) == [SaveCall, PublishCallEvent, AnswerChannel, WatchChannel]


def test_the_welcome_plays_once_the_channel_is_up_and_the_step_is_remembered_first() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"))
    assert call is not None
    assert call.phase is Phase.WELCOME
    assert call.answered_at == T0 + timedelta(seconds=1)
    remember, play = commands[-2:]
    assert remember == RememberStep("c1", "welcome")
    assert play == PlayPrompt("c1", welcome_playback_id("c1"), "sound:hello-world")


def test_the_service_hangs_up_when_the_welcome_finished() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), PromptFinished("c1", "c1-welcome"))
    assert call is not None
    assert call.phase is Phase.HANGING_UP
    assert commands[-1] == HangupChannel("c1", "normal")


def test_another_playback_finishing_does_not_end_the_welcome() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), PromptFinished("c1", "other"))
    assert call is not None
    assert call.phase is Phase.WELCOME
    assert HangupChannel not in _kinds(commands)


def test_the_call_record_is_complete_when_the_channel_is_gone_after_our_hangup() -> None:
    call, commands = _walk(
        ARRIVED,
        ChannelAnswered("c1"),
        PromptFinished("c1", "c1-welcome"),
        ChannelGone("c1", 16, "Normal Clearing"),
    )
    saved = commands[-2]
    assert isinstance(saved, SaveCall)
    ended = saved.call
    assert call == ended
    assert ended.phase is Phase.ENDED
    assert (ended.hangup_cause, ended.hangup_side) == (16, HangupSide.SERVICE)
    assert ended.ended_at == T0 + timedelta(seconds=3)


def test_a_caller_who_hangs_up_during_the_welcome_is_recorded_as_the_caller() -> None:
    call, _ = _walk(ARRIVED, ChannelAnswered("c1"), ChannelGone("c1", 16, "Normal Clearing"))
    assert call is not None
    assert call.hangup_side is HangupSide.CALLER


def test_a_call_abandoned_before_answer_has_no_answer_time() -> None:
    call, _ = _walk(ARRIVED, ChannelGone("c1", 16, "Normal Clearing"))
    assert call is not None
    assert call.phase is Phase.ENDED
    assert call.answered_at is None


def test_a_call_lost_while_nobody_watched_has_no_side() -> None:
    call, _ = _walk(ARRIVED, ChannelAnswered("c1"), ChannelGone("c1", None, "unknown"))
    assert call is not None
    assert call.hangup_side is None


def test_a_prompt_that_cannot_be_played_ends_the_call_rather_than_leaving_silence() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), CommandFailed("c1", "PlayPrompt", "x"))
    assert call is not None
    assert call.phase is Phase.HANGING_UP
    assert commands[-1] == HangupChannel("c1", "normal")


def test_a_repeated_stasis_start_changes_nothing() -> None:
    first, _ = step(None, ARRIVED, T0, CONFIG)
    again, commands = step(first, ARRIVED, T0 + timedelta(seconds=5), CONFIG)
    assert again == first
    assert commands == []


def test_events_for_an_unknown_call_are_ignored() -> None:
    assert step(None, ChannelAnswered("nobody"), T0, CONFIG) == (None, [])


def _adopted(**facts: object) -> CallAdopted:
    base: dict[str, object] = dict(
        call_id="c1",
        caller="5551234",
        dialled="100",
        started_at=T0,
        channel_up=True,
        step=None,
        playback_active=False,
    )
    return CallAdopted(**{**base, **facts})  # type: ignore[arg-type]


def test_an_adopted_ringing_call_is_answered() -> None:
    call, commands = step(None, _adopted(channel_up=False), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.ANSWERING
    assert AnswerChannel("c1") in commands
    assert WatchChannel("c1") in commands


def test_an_adopted_answered_call_without_a_step_gets_its_welcome() -> None:
    call, commands = step(None, _adopted(), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.WELCOME
    assert PlayPrompt in _kinds(commands)


def test_an_adopted_call_whose_welcome_still_plays_waits_for_it() -> None:
    answered = T0 + timedelta(seconds=1)
    call, commands = step(
        None, _adopted(step="welcome", playback_active=True, answered_at=answered), T0, CONFIG
    )
    assert call is not None
    assert call.phase is Phase.WELCOME
    assert call.answered_at == answered
    assert not {PlayPrompt, HangupChannel} & set(_kinds(commands))


def test_an_adopted_call_whose_welcome_ended_meanwhile_is_hung_up() -> None:
    call, commands = step(None, _adopted(step="welcome", playback_active=False), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.HANGING_UP
    assert commands[-1] == HangupChannel("c1", "normal")
    assert PlayPrompt not in _kinds(commands)  # the caller does not hear it twice


def test_adopting_a_call_already_known_changes_nothing() -> None:
    known, _ = step(None, ARRIVED, T0, CONFIG)
    assert step(known, _adopted(), T0, CONFIG) == (known, [])


EVENTS = st.sampled_from(
    [
        ChannelAnswered("c1"),
        PromptFinished("c1", "c1-welcome"),
        PromptFinished("c1", "other"),
        ChannelGone("c1", 16, "Normal Clearing"),
        ChannelGone("c1", None, None),
        CommandFailed("c1", "AnswerChannel", "404"),
        ARRIVED,
    ]
)


@given(st.lists(EVENTS, max_size=12))
def test_any_event_order_keeps_the_call_consistent(events: list[CallEvent]) -> None:
    call, _ = step(None, ARRIVED, T0, CONFIG)
    ended_once = False
    for offset, event in enumerate(events, start=1):
        before = call
        call, commands = step(call, event, T0 + timedelta(seconds=offset), CONFIG)
        assert call is not None
        if before is not None and before.phase is Phase.ENDED:
            assert commands == []
            assert call == before
        if call.phase is Phase.ENDED and not ended_once:
            ended_once = True
            assert any(isinstance(c, SaveCall) and c.call == call for c in commands)
        assert call.answered_at is None or call.answered_at >= call.started_at
        if call.ended_at is not None:
            assert call.ended_at >= (call.answered_at or call.started_at)
