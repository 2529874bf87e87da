"""The call's transition table with its IVR, with no I/O and no event loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ari_app.domain.call import (
    STEP_IVR,
    STEP_LEAVING,
    STEP_QUEUED,
    Call,
    Config,
    HangupSide,
    Phase,
    step,
)
from ari_app.domain.commands import (
    AnswerChannel,
    ContinueInDialplan,
    EnterQueue,
    HangupChannel,
    LookUp,
    PlayPrompt,
    PublishCallEvent,
    RememberStep,
    SaveCall,
    StartTimer,
    StopPlayback,
    WatchChannel,
)
from ari_app.domain.events import (
    AgentHungUp,
    CallAdopted,
    CallArrived,
    CallEvent,
    ChannelAnswered,
    ChannelGone,
    CommandFailed,
    DigitReceived,
    HangupRequested,
    IvrTimerFired,
    LookupReturned,
    PromptFinished,
)
from ari_app.domain.ivr import engine
from ari_app.domain.ivr.flow import Flow, parse_flow

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CONFIG = Config()


def _flow() -> Flow:
    flow, problems = parse_flow(
        {
            "flow": "t",
            "version": 3,
            "start": "m",
            "numbers": ["100"],
            "nodes": {
                "m": {
                    "kind": "menu",
                    "prompts": ["sound:menu"],
                    "retries": 0,
                    "on_failure": "bye",
                    "options": {"1": "bye", "2": "out", "3": "q", "4": "vm", "5": "l"},
                },
                "bye": {"kind": "hangup", "prompts": ["sound:goodbye"]},
                "out": {"kind": "transfer", "to": "5559999"},
                "q": {"kind": "queue", "queue": "billing"},
                "vm": {"kind": "voicemail", "mailbox": "100"},
                "l": {
                    "kind": "lookup",
                    "url": "http://backend/x",
                    "results": {"v": "v"},
                    "next": "bye",
                    "on_error": "bye",
                },
            },
        }
    )
    assert flow is not None, problems
    return flow


FLOW = _flow()
ARRIVED = CallArrived("c1", "5551234", "100", T0, FLOW)


def _kinds(commands: list[Any]) -> list[type]:
    return [type(command) for command in commands]


def _walk(*events: CallEvent) -> tuple[Call | None, list[Any]]:
    call: Call | None = None
    commands: list[Any] = []
    for offset, event in enumerate(events):
        call, out = step(call, event, T0 + timedelta(seconds=offset), CONFIG)
        commands.extend(out)
    return call, commands


def _in_menu() -> tuple[Call, list[Any]]:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), PromptFinished("c1", "c1-p1"))
    assert call is not None
    return call, commands


def test_an_arriving_call_is_stored_announced_answered_and_watched() -> None:
    call, commands = step(None, ARRIVED, T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.ANSWERING
    assert call.flow is FLOW
    assert _kinds(commands) == [SaveCall, PublishCallEvent, AnswerChannel, WatchChannel]


def test_an_answered_call_enters_its_flow_and_the_step_is_kept_on_the_channel() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"))
    assert call is not None
    assert call.phase is Phase.IVR
    assert call.answered_at == T0 + timedelta(seconds=1)
    remember = next(c for c in commands if isinstance(c, RememberStep))
    assert remember.step == STEP_IVR
    assert remember.ivr["node"] == "m"
    assert commands[-1] == PlayPrompt("c1", "c1-p1", ("sound:menu",), "en")


def test_the_menu_listens_once_its_prompt_is_done_and_a_key_moves_on() -> None:
    call, commands = _in_menu()
    assert commands[-1] == StartTimer("c1", 1, 5.0)
    call, commands = step(call, DigitReceived("c1", "1"), T0, CONFIG)
    assert call is not None
    assert call.ivr is not None
    assert call.ivr.node == "bye"
    assert commands[-1] == PlayPrompt("c1", "c1-p2", ("sound:goodbye",), "en")


def test_a_key_during_the_prompt_stops_that_playback() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), DigitReceived("c1", "1"))
    assert StopPlayback("c1", "c1-p1") in commands
    assert call is not None
    assert call.playback == "c1-p2"
    # the stopped playback's PlaybackFinished changes nothing
    assert step(call, PromptFinished("c1", "c1-p1"), T0, CONFIG) == (call, [])


def test_self_service_ends_in_our_hang_up_with_the_path_and_outcome_saved() -> None:
    call, commands = _walk(
        ARRIVED,
        ChannelAnswered("c1"),
        DigitReceived("c1", "1"),
        PromptFinished("c1", "c1-p2"),
        ChannelGone("c1", 16, "Normal Clearing"),
    )
    assert call is not None
    assert HangupChannel("c1", "normal") in commands
    assert call.phase is Phase.ENDED
    assert call.hangup_side is HangupSide.SERVICE
    assert call.ivr is not None
    assert call.ivr.outcome is not None
    assert call.ivr.outcome.kind == "self_service"
    assert [s.node for s in call.ivr.path] == ["m", "bye"]
    assert isinstance(commands[-2], SaveCall)


def test_a_transfer_and_voicemail_hand_the_call_to_the_dialplan() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), DigitReceived("c1", "2"))
    assert commands[-1] == ContinueInDialplan("c1", "ari-app-transfer", "5559999")
    assert call is not None
    assert call.phase is Phase.LEAVING
    _, commands = _walk(ARRIVED, ChannelAnswered("c1"), DigitReceived("c1", "4"))
    assert commands[-1] == ContinueInDialplan("c1", "ari-app-voicemail", "100")


def test_a_queued_call_hears_that_it_cannot_be_routed_yet_and_is_hung_up() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), DigitReceived("c1", "3"))
    assert call is not None
    assert call.phase is Phase.LEAVING
    assert commands[-1] == PlayPrompt("c1", "c1-p2", CONFIG.not_routed_prompts, "en")
    assert RememberStep("c1", STEP_LEAVING) in commands
    (finished,) = [
        c for c in commands if isinstance(c, PublishCallEvent) and c.name == "ivr_finished"
    ]
    assert finished.data["routed"] is False
    call, commands = step(call, PromptFinished("c1", "c1-p2"), T0, CONFIG)
    assert commands[-1] == HangupChannel("c1", "normal")


def test_a_lookup_goes_out_and_its_answer_comes_back_to_the_ivr() -> None:
    call, commands = _walk(ARRIVED, ChannelAnswered("c1"), DigitReceived("c1", "5"))
    look = commands[-1]
    assert isinstance(look, LookUp)
    assert (look.url, look.timeout) == ("http://backend/x", 2.0)
    call, commands = step(call, LookupReturned("c1", look.seq, {"v": "7"}), T0, CONFIG)
    assert call is not None
    assert call.ivr is not None
    assert call.ivr.variables == {"v": "7"}


def test_a_timer_expiring_reaches_the_engine() -> None:
    call, _ = _in_menu()
    call, _ = step(call, IvrTimerFired("c1", 1), T0, CONFIG)
    assert call is not None
    assert call.ivr is not None
    assert call.ivr.node == "bye"  # no retries: the failure target


def test_a_prompt_asterisk_cannot_play_does_not_stall_the_flow() -> None:
    call, _ = _walk(ARRIVED, ChannelAnswered("c1"))
    call, commands = step(call, CommandFailed("c1", "PlayPrompt", "404"), T0, CONFIG)
    assert commands[-1] == StartTimer("c1", 1, 5.0)


def test_a_prompt_cut_short_by_the_callers_hang_up_is_not_a_prompt_played_out() -> None:
    # Asterisk ends the playback when the caller hangs up: the PlaybackFinished that
    # follows must not walk the flow on to its end (self-service) nor hang up again
    call, _ = _walk(ARRIVED, ChannelAnswered("c1"), HangupRequested("c1"))
    call, commands = step(call, PromptFinished("c1", "c1-p1"), T0, CONFIG)
    assert commands == []
    call, _ = step(call, ChannelGone("c1", 16, "Normal Clearing"), T0, CONFIG)
    assert call is not None
    assert call.ivr is not None
    assert call.ivr.outcome is not None
    assert call.ivr.outcome.kind == "caller_hung_up"
    assert call.hangup_side is HangupSide.CALLER


def test_a_caller_who_hangs_up_in_the_ivr_is_recorded_with_that_outcome() -> None:
    call, _ = _walk(ARRIVED, ChannelAnswered("c1"), ChannelGone("c1", 16, "Normal Clearing"))
    assert call is not None
    assert call.hangup_side is HangupSide.CALLER
    assert call.ivr is not None
    assert call.ivr.outcome is not None
    assert call.ivr.outcome.kind == "caller_hung_up"


def test_a_number_without_a_flow_hears_an_apology_and_is_hung_up() -> None:
    call, commands = _walk(CallArrived("c1", "5551234", "199", T0, None), ChannelAnswered("c1"))
    assert call is not None
    assert call.phase is Phase.LEAVING
    assert commands[-1] == PlayPrompt("c1", "c1-p1", CONFIG.no_flow_prompts, "en")


def test_a_call_abandoned_before_answer_has_no_answer_time() -> None:
    call, _ = _walk(ARRIVED, ChannelGone("c1", 16, "Normal Clearing"))
    assert call is not None
    assert call.phase is Phase.ENDED
    assert call.answered_at is None


def test_a_call_lost_while_nobody_watched_has_no_side() -> None:
    call, _ = _walk(ARRIVED, ChannelAnswered("c1"), ChannelGone("c1", None, "unknown"))
    assert call is not None
    assert call.hangup_side is None


def test_a_repeated_stasis_start_changes_nothing() -> None:
    first, _ = step(None, ARRIVED, T0, CONFIG)
    assert step(first, ARRIVED, T0, CONFIG) == (first, [])


def _adopted(**facts: object) -> CallAdopted:
    base: dict[str, object] = dict(
        call_id="c1",
        caller="5551234",
        dialled="100",
        started_at=T0,
        channel_up=True,
        step=None,
        flow=FLOW,
    )
    return CallAdopted(**{**base, **facts})  # type: ignore[arg-type]


def test_an_adopted_ringing_call_is_answered() -> None:
    call, commands = step(None, _adopted(channel_up=False), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.ANSWERING
    assert AnswerChannel("c1") in commands


def test_an_adopted_call_in_the_ivr_starts_its_node_again_with_its_variables() -> None:
    position = {"node": "bye", "language": "en", "variables": {"v": "1"}, "playback": "c1-p4"}
    call, commands = step(None, _adopted(step=STEP_IVR, ivr=position), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.IVR
    assert call.ivr is not None
    assert (call.ivr.node, call.ivr.variables) == ("bye", {"v": "1"})
    assert StopPlayback("c1", "c1-p4") in commands
    assert commands[-1] == PlayPrompt("c1", "c1-p5", ("sound:goodbye",), "en")


def test_an_adopted_call_on_its_way_out_is_hung_up() -> None:
    call, commands = step(None, _adopted(step=STEP_LEAVING), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.HANGING_UP
    assert commands[-1] == HangupChannel("c1", "normal")


def test_an_adopted_call_handed_to_the_dialplan_is_left_alone_until_it_ends() -> None:
    # a transfer in progress when the service restarted: not hung up, not played to
    position = {"node": "out", "language": "en", "variables": {}}
    call, commands = step(None, _adopted(step=STEP_IVR, ivr=position, in_dialplan=True), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.LEAVING
    assert [type(command).__name__ for command in commands] == ["WatchChannel", "SaveCall"]
    call, commands = step(call, PromptFinished("c1", "c1-p1"), T0, CONFIG)
    assert call is not None
    assert call.phase is Phase.LEAVING
    assert commands == []
    ended, _ = step(call, ChannelGone("c1", 16, "Normal Clearing"), T0, CONFIG)
    assert ended is not None
    assert ended.phase is Phase.ENDED


HISTORY = engine.Session(
    "t",
    1,
    "5551234",
    "out",
    "",
    engine.Waiting.DONE,
    path=(engine.Step("menu", T0), engine.Step("out", T0, "pressed 0")),
    outcome=engine.Outcome("transferred", "out"),
)


def test_an_adopted_call_keeps_the_path_and_outcome_it_had_before_the_restart() -> None:
    handed, commands = step(None, _adopted(in_dialplan=True, history=HISTORY), T0, CONFIG)
    assert handed is not None
    assert handed.ivr == HISTORY
    assert SaveCall(handed) in commands
    position = {"node": "bye", "language": "en", "variables": {}}
    resumed, _ = step(None, _adopted(step=STEP_IVR, ivr=position, history=HISTORY), T0, CONFIG)
    assert resumed is not None
    assert resumed.ivr is not None
    assert [(s.node, s.note) for s in resumed.ivr.path] == [
        ("menu", ""),
        ("out", "pressed 0"),
        ("bye", "resumed after a restart"),
    ]


EVENTS = st.sampled_from(
    [
        ChannelAnswered("c1"),
        PromptFinished("c1", "c1-p1"),
        PromptFinished("c1", "c1-p2"),
        DigitReceived("c1", "1"),
        DigitReceived("c1", "3"),
        DigitReceived("c1", "9"),
        IvrTimerFired("c1", 1),
        IvrTimerFired("c1", 2),
        LookupReturned("c1", 1, None, "down"),
        ChannelGone("c1", 16, "Normal Clearing"),
        ChannelGone("c1", None, None),
        CommandFailed("c1", "PlayPrompt", "404"),
        CommandFailed("c1", "AnswerChannel", "404"),
        ARRIVED,
    ]
)


@given(st.lists(EVENTS, max_size=14))
def test_any_event_order_keeps_the_call_consistent(events: list[CallEvent]) -> None:
    call, _ = step(None, ARRIVED, T0, CONFIG)
    ended_once = False
    for offset, event in enumerate(events, start=1):
        before = call
        call, commands = step(call, event, T0 + timedelta(seconds=offset), CONFIG)
        assert call is not None
        if before is not None and before.phase is Phase.ENDED:
            assert commands == []
            assert call == before  # nothing happens after the end
        if call.phase is Phase.ENDED and not ended_once:
            ended_once = True
            assert any(isinstance(c, SaveCall) and c.call == call for c in commands)
        assert call.answered_at is None or call.answered_at >= call.started_at


def test_a_queue_the_acd_has_takes_the_caller_and_the_call_waits_with_it() -> None:
    config = Config(queues=frozenset({"billing"}))
    call: Call | None = None
    commands: list[Any] = []
    for offset, event in enumerate([ARRIVED, ChannelAnswered("c1"), DigitReceived("c1", "3")]):
        call, out = step(call, event, T0 + timedelta(seconds=offset), config)
        commands.extend(out)
    assert call is not None
    assert call.phase is Phase.QUEUED
    assert RememberStep("c1", STEP_QUEUED) in commands
    (enter,) = [c for c in commands if isinstance(c, EnterQueue)]
    assert (enter.queue, enter.caller, enter.language) == ("billing", "5551234", "en")
    assert not [c for c in commands if isinstance(c, PlayPrompt) and c.playback_id == "c1-p2"]
    # the ACD owns the caller now: nothing the call logic hears but the hang-up moves it
    for event in (DigitReceived("c1", "1"), PromptFinished("c1", "x"), IvrTimerFired("c1", 1)):
        assert step(call, event, T0, config) == (call, [])
    ended, commands = step(call, ChannelGone("c1", 16, "Normal Clearing"), T0, config)
    assert ended is None or ended.phase is Phase.ENDED
    (saved,) = [c for c in commands if isinstance(c, SaveCall)]
    assert saved.call.hangup_side is HangupSide.CALLER
    # the agent hung up first (the ACD says so before it hangs up the caller)
    noted, nothing = step(call, AgentHungUp("c1"), T0, config)
    assert nothing == []
    _, commands = step(noted, ChannelGone("c1", 16, "Normal Clearing"), T0, config)
    (saved,) = [c for c in commands if isinstance(c, SaveCall)]
    assert saved.call.hangup_side is HangupSide.AGENT


def test_a_queued_call_adopted_after_a_restart_is_left_where_it_is() -> None:
    adopted = CallAdopted(
        call_id="c1",
        caller="5551234",
        dialled="100",
        started_at=T0,
        channel_up=True,
        step=STEP_QUEUED,
        answered_at=T0,
        flow=FLOW,
        ivr={},
        in_dialplan=False,
        history=None,
    )
    call, commands = step(None, adopted, T0, Config(queues=frozenset({"billing"})))
    assert call is not None
    assert call.phase is Phase.QUEUED
    assert _kinds(commands) == [WatchChannel, SaveCall]
