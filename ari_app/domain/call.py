"""The life of one inbound call, as a transition table: events in, commands out.

A call is answered, walks the IVR flow of the number it dialled (the engine in
`domain/ivr`), and leaves the way the flow ends: hung up after self-service,
handed to the dialplan (transfer, voicemail), or (until the ACD exists) told
that it cannot be routed yet. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ari_app.domain.commands import (
    AnswerChannel,
    Command,
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
from ari_app.domain.ivr.flow import Flow


class Phase(StrEnum):
    ANSWERING = "answering"
    IVR = "ivr"
    LEAVING = "leaving"  # a last prompt, or handed to the dialplan
    QUEUED = "queued"  # with the ACD: waiting, ringing an agent, or talking
    HANGING_UP = "hanging_up"
    ENDED = "ended"


class HangupSide(StrEnum):
    CALLER = "caller"
    AGENT = "agent"  # the agent hung up the conversation
    SERVICE = "service"


# ARI_APP_STEP on the channel: where a restarted service finds the call
STEP_IVR = "ivr"
STEP_LEAVING = "leaving"
STEP_QUEUED = "queued"


@dataclass(frozen=True)
class Call:
    """What the service knows about one call; the call id is its Asterisk channel id."""

    call_id: str
    caller: str
    dialled: str
    started_at: datetime
    phase: Phase
    flow: Flow | None = None  # the version the call started with, kept to its end
    ivr: engine.Session | None = None
    playback: str | None = None  # the playback of ours that is playing now
    plays: int = 0
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    hangup_side: HangupSide | None = None


@dataclass(frozen=True)
class Config:
    """What the call logic needs from the center's configuration."""

    no_flow_prompts: tuple[str, ...] = (
        "sound:all-circuits-busy-now",
        "sound:please-try-call-later",
    )
    # the queues the ACD has; a call queued to any other hears this and is hung up on
    queues: frozenset[str] = frozenset()
    not_routed_prompts: tuple[str, ...] = (
        "sound:all-circuits-busy-now",
        "sound:please-try-call-later",
    )
    transfer_context: str = "ari-app-transfer"
    voicemail_context: str = "ari-app-voicemail"
    goodbye_context: str = "ari-app-goodbye"  # a queue's hang-up ending with words to say


Result = tuple[Call | None, list[Command]]
Moved = tuple[Call, list[Command]]
Handler = Callable[[Call, CallEvent, datetime, Config], Moved]


def _arrived(call: Call | None, event: CallArrived, now: datetime) -> Result:
    if call is not None:  # a repeated StasisStart (replayed after a reconnect)
        return call, []
    new = Call(
        event.call_id,
        event.caller,
        event.dialled,
        event.started_at,
        Phase.ANSWERING,
        flow=event.flow,
    )
    return new, [
        SaveCall(new),
        PublishCallEvent(
            new.call_id, "call_arrived", {"caller": new.caller, "dialled": new.dialled}
        ),
        AnswerChannel(new.call_id),
        # without it Asterisk stops sending the channel's events at StasisEnd,
        # and ChannelDestroyed (with the hang-up cause) would never arrive
        WatchChannel(new.call_id),
    ]


def _answered(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    answered = replace(call, answered_at=now)
    announce: list[Command] = [PublishCallEvent(call.call_id, "call_answered", {})]
    if call.flow is None:
        leaving, commands = _leave_with(answered, config.no_flow_prompts, "en")
        return leaving, [SaveCall(leaving), *announce, *commands]
    session, ivr_commands = engine.start(call.flow, call.caller, now)
    in_ivr, commands = _run_ivr(replace(answered, phase=Phase.IVR), session, ivr_commands, config)
    return in_ivr, [SaveCall(in_ivr), *announce, *commands]


# -- the IVR on the call ---------------------------------------------------------------------


def _ivr(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    """Hand an event to the engine when it is one of the IVR's."""
    session, flow = call.ivr, call.flow
    assert session is not None
    assert flow is not None
    ivr_event: engine.IvrEvent
    if isinstance(event, DigitReceived):
        ivr_event = engine.DigitPressed(event.digit)
    elif isinstance(event, PromptFinished):
        if event.playback_id != call.playback:
            return call, []  # a playback we stopped, or an older one
        call = replace(call, playback=None)
        ivr_event = engine.PromptsFinished()
    elif isinstance(event, IvrTimerFired):
        ivr_event = engine.TimerFired(event.seq)
    elif isinstance(event, LookupReturned):
        ivr_event = (
            engine.LookupFailed(event.seq, event.reason)
            if event.fields is None
            else engine.LookupAnswered(event.seq, event.fields)
        )
    elif isinstance(event, CommandFailed) and event.command == "PlayPrompt":
        # a prompt Asterisk cannot play must not stall the flow: go on without it
        call = replace(call, playback=None)
        ivr_event = engine.PromptsFinished()
    else:
        return _hang_up(call, "command_failed")
    session, ivr_commands = engine.step(session, ivr_event, now, flow)
    return _run_ivr(call, session, ivr_commands, config)


def _run_ivr(
    call: Call, session: engine.Session, ivr_commands: list[engine.IvrCommand], config: Config
) -> Moved:
    """Turn the engine's commands into the call's."""
    moved = call.ivr is None or session.node != call.ivr.node
    call = replace(call, ivr=session)
    commands: list[Command] = []
    for ivr_command in ivr_commands:
        if isinstance(ivr_command, engine.PlayPrompts):
            call, play = _play(call, ivr_command.media, ivr_command.language)
            commands.append(play)
        elif isinstance(ivr_command, engine.StopPrompts) and call.playback is not None:
            commands.append(StopPlayback(call.call_id, call.playback))
            call = replace(call, playback=None)
        elif isinstance(ivr_command, engine.StartTimer):
            commands.append(StartTimer(call.call_id, ivr_command.seq, ivr_command.seconds))
        elif isinstance(ivr_command, engine.RequestLookup):
            c = ivr_command
            commands.append(LookUp(call.call_id, c.seq, c.method, c.url, c.params, c.timeout))
        elif isinstance(ivr_command, engine.Finish):
            call, finishing = _leave_ivr(call, ivr_command.outcome, config)
            return call, commands + finishing
    if moved:  # where the caller is, kept on the channel for a restarted service
        commands.insert(0, RememberStep(call.call_id, STEP_IVR, ivr_position(session)))
    return call, commands


def ivr_position(session: engine.Session) -> dict[str, Any]:
    return {
        "node": session.node,
        "language": session.language,
        "variables": dict(session.variables),
    }


def _play(call: Call, media: tuple[str, ...], language: str) -> tuple[Call, PlayPrompt]:
    plays = call.plays + 1
    playback = f"{call.call_id}-p{plays}"
    return replace(call, plays=plays, playback=playback), PlayPrompt(
        call.call_id, playback, media, language
    )


def _leave_ivr(call: Call, outcome: engine.Outcome, config: Config) -> Moved:
    facts: dict[str, Any] = {"outcome": outcome.kind, "node": outcome.node}
    if outcome.kind == "queued":
        # a queue the ACD does not have: the caller hears the apology, the call ends unrouted
        facts |= {"queue": outcome.detail.get("queue"), "routed": False}
    published = PublishCallEvent(call.call_id, "ivr_finished", facts)
    # the hand-offs to the dialplan: (its context, the outcome's field that is the extension)
    handoffs = {
        "transferred": (config.transfer_context, "to"),
        "voicemail": (config.voicemail_context, "mailbox"),
    }
    if outcome.kind in handoffs:
        context, field_name = handoffs[outcome.kind]
        leaving = replace(call, phase=Phase.LEAVING)
        extension = str(outcome.detail[field_name])
        return leaving, [
            SaveCall(leaving),
            published,
            ContinueInDialplan(call.call_id, context, extension),
        ]
    if outcome.kind == "queued" and outcome.detail.get("queue") in config.queues:
        queued = replace(call, phase=Phase.QUEUED)
        detail = outcome.detail
        enter = EnterQueue(
            call.call_id,
            str(detail["queue"]),
            int(detail.get("priority", 0)),
            dict(detail.get("skills", {})),
            call.caller,
            call.ivr.language if call.ivr else "en",
        )
        return queued, [
            SaveCall(queued),
            PublishCallEvent(call.call_id, "ivr_finished", {**facts, "routed": True}),
            RememberStep(call.call_id, STEP_QUEUED),
            enter,
        ]
    if outcome.kind == "queued":
        language = call.ivr.language if call.ivr else "en"
        leaving, commands = _leave_with(call, config.not_routed_prompts, language)
        return leaving, [SaveCall(leaving), published, *commands]
    hanging, commands = _hang_up(call, "ivr_finished")
    return hanging, [SaveCall(hanging), published, *commands]


def _leave_with(call: Call, prompts: tuple[str, ...], language: str) -> Moved:
    leaving, play = _play(replace(call, phase=Phase.LEAVING), prompts, language)
    return leaving, [RememberStep(call.call_id, STEP_LEAVING), play]


def _leaving(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    if isinstance(event, PromptFinished) and event.playback_id != call.playback:
        return call, []
    return _hang_up(replace(call, playback=None), "prompt_finished")


def _hang_up(call: Call, why: str) -> Moved:
    leaving = replace(call, phase=Phase.HANGING_UP)
    return leaving, [
        PublishCallEvent(call.call_id, "hanging_up", {"why": why}),
        HangupChannel(call.call_id, "normal"),
    ]


def _hanging_up(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    """The caller hung up in the IVR: its outcome is theirs, whatever ends next."""
    if call.ivr is None or call.flow is None:
        return call, []
    session, _ = engine.step(call.ivr, engine.CallerHungUp(), now, call.flow)
    return replace(call, ivr=session), []


def _agent_hung_up(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    """Noted, for the hang-up side; the caller's channel goes next."""
    return replace(call, hangup_side=HangupSide.AGENT), []


def _gone(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    assert isinstance(event, ChannelGone)
    if call.phase is Phase.IVR and call.ivr is not None and call.flow is not None:
        session, _ = engine.step(call.ivr, engine.CallerHungUp(), now, call.flow)
        call = replace(call, ivr=session)
    side: HangupSide | None = HangupSide.CALLER
    if call.hangup_side is HangupSide.AGENT:
        side = HangupSide.AGENT  # the ACD hung up the caller after the agent
    elif call.phase is Phase.HANGING_UP:
        side = HangupSide.SERVICE
    elif event.cause is None:
        side = None  # it ended while nobody watched: we cannot tell who hung up
    ended = replace(
        call,
        phase=Phase.ENDED,
        ended_at=now,
        hangup_cause=event.cause,
        hangup_cause_text=event.cause_text,
        hangup_side=side,
        playback=None,
    )
    return ended, [
        SaveCall(ended),
        PublishCallEvent(
            call.call_id,
            "call_ended",
            {"cause": event.cause, "cause_text": event.cause_text, "side": side and side.value},
        ),
    ]


def _answer_failed(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    return _hang_up(call, "command_failed")


def _ignore(call: Call, event: CallEvent, now: datetime, config: Config) -> Moved:
    return call, []


# (phase, event type) -> handler. A pair that is missing is ignored: late
# events for a call that moved on (a PlaybackFinished after the caller hung up).
TRANSITIONS: dict[tuple[Phase, type[CallEvent]], Handler] = {
    (Phase.ANSWERING, ChannelAnswered): _answered,
    (Phase.ANSWERING, CommandFailed): _answer_failed,
    (Phase.IVR, DigitReceived): _ivr,
    (Phase.IVR, PromptFinished): _ivr,
    (Phase.IVR, IvrTimerFired): _ivr,
    (Phase.IVR, LookupReturned): _ivr,
    (Phase.IVR, CommandFailed): _ivr,
    (Phase.IVR, HangupRequested): _hanging_up,
    (Phase.LEAVING, PromptFinished): _leaving,
    (Phase.LEAVING, CommandFailed): _leaving,
    (Phase.ANSWERING, ChannelGone): _gone,
    (Phase.IVR, ChannelGone): _gone,
    (Phase.LEAVING, ChannelGone): _gone,
    (Phase.HANGING_UP, ChannelGone): _gone,
    (Phase.QUEUED, ChannelGone): _gone,
    (Phase.QUEUED, AgentHungUp): _agent_hung_up,
}


def adopt(event: CallAdopted, now: datetime, config: Config) -> Moved:
    """Rebuild a call that Asterisk still holds after the service (re)connected."""
    call = Call(
        event.call_id,
        event.caller,
        event.dialled,
        event.started_at,
        Phase.ANSWERING,
        flow=event.flow,
        ivr=event.history,  # what it did before the restart is written back, not lost
        answered_at=event.answered_at,
    )
    watch = WatchChannel(call.call_id)
    if event.in_dialplan:
        # handed on (a transfer, a voicemail) before the restart: it goes on without us,
        # and only its end is ours to record
        handed = replace(
            call,
            phase=Phase.LEAVING,
            answered_at=event.answered_at or (now if event.channel_up else None),
        )
        return handed, [watch, SaveCall(handed)]
    if not event.channel_up:
        return call, [watch, SaveCall(call), AnswerChannel(call.call_id)]
    answered_at = event.answered_at or now
    if event.step == STEP_QUEUED:
        # with the ACD when the service stopped: waiting with music or talking to an agent;
        # it stays where it is, and the ACD takes it back from its bridge
        queued = replace(call, phase=Phase.QUEUED, answered_at=answered_at)
        return queued, [watch, SaveCall(queued)]
    if event.step == STEP_LEAVING:
        # its last prompt may be playing, or done: either way the call ends now
        hanging, commands = _hang_up(replace(call, answered_at=answered_at), "adopted")
        return hanging, [watch, *commands]
    if event.step == STEP_IVR and event.flow is not None:
        position: Mapping[str, Any] = event.ivr
        session, ivr_commands = engine.resume(
            event.flow,
            call.caller,
            str(position.get("node", event.flow.start)),
            dict(position.get("variables", {})),
            str(position.get("language", "")),
            now,
        )
        if event.history is not None:  # the path goes on from where it was
            session = replace(session, path=event.history.path + session.path)
        playing = position.get("playback")
        resumed = replace(call, phase=Phase.IVR, answered_at=answered_at, plays=_plays_of(playing))
        in_ivr, commands = _run_ivr(resumed, session, ivr_commands, config)
        # the node starts again from its prompts; the one that was playing stops
        stop = [StopPlayback(call.call_id, str(playing))] if playing else []
        return in_ivr, [watch, *stop, SaveCall(in_ivr), *commands]
    answered, commands = _answered(
        replace(call, answered_at=answered_at), event, answered_at, config
    )
    return answered, [watch, *commands]


def _plays_of(playback: object) -> int:
    """Playback ids end in -p<n>; new ones after a restart must not reuse a number."""
    _, _, number = str(playback or "").rpartition("-p")
    return int(number) if number.isdigit() else 0


def step(call: Call | None, event: CallEvent, now: datetime, config: Config) -> Result:
    """Apply one event to a call and return its new state and the commands to carry out."""
    if isinstance(event, CallArrived):
        return _arrived(call, event, now)
    if isinstance(event, CallAdopted):
        return (call, []) if call is not None else adopt(event, now, config)
    if call is None:
        return None, []
    handler = TRANSITIONS.get((call.phase, type(event)), _ignore)
    return handler(call, event, now, config)
