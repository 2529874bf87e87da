"""The life of one inbound call, as a transition table: events in, commands out.

Everything that decides what a call does next lives here. The service feeds
events (parsed from ARI) and carries out the commands; nothing in this module
does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from ari_app.domain.commands import (
    AnswerChannel,
    Command,
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


class Phase(StrEnum):
    ANSWERING = "answering"
    WELCOME = "welcome"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


class HangupSide(StrEnum):
    CALLER = "caller"
    SERVICE = "service"


# What the service writes on the channel (ARI_APP_STEP) so that a restarted
# service knows where the call was: the welcome prompt started.
STEP_WELCOME = "welcome"


@dataclass(frozen=True)
class Call:
    """What the service knows about one call; the call id is its Asterisk channel id."""

    call_id: str
    caller: str
    dialled: str
    started_at: datetime
    phase: Phase
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    hangup_side: HangupSide | None = None


@dataclass(frozen=True)
class Config:
    """What the call logic needs from the center's configuration."""

    welcome_prompt: str


def welcome_playback_id(call_id: str) -> str:
    """The playback id of a call's welcome prompt: derived, so a restart can look it up."""
    return f"{call_id}-welcome"


Result = tuple[Call | None, list[Command]]
Handler = Callable[[Call, CallEvent, datetime, Config], Result]


def _arrived(call: Call | None, event: CallArrived, now: datetime) -> Result:
    if call is not None:  # a repeated StasisStart (replayed after a reconnect)
        return call, []
    new = Call(event.call_id, event.caller, event.dialled, event.started_at, Phase.ANSWERING)
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


def _play_welcome(call: Call, config: Config) -> list[Command]:
    return [
        RememberStep(call.call_id, STEP_WELCOME),
        PlayPrompt(call.call_id, welcome_playback_id(call.call_id), config.welcome_prompt),
    ]


def _answered(call: Call, event: CallEvent, now: datetime, config: Config) -> Result:
    answered = replace(call, phase=Phase.WELCOME, answered_at=now)
    return answered, [
        SaveCall(answered),
        PublishCallEvent(call.call_id, "call_answered", {}),
        *_play_welcome(answered, config),
    ]


def _welcome_finished(call: Call, event: CallEvent, now: datetime, config: Config) -> Result:
    assert isinstance(event, PromptFinished)
    if event.playback_id != welcome_playback_id(call.call_id):
        return call, []
    return _hang_up(call, "normal", "prompt_finished")


def _hang_up(call: Call, reason: str, why: str) -> Result:
    leaving = replace(call, phase=Phase.HANGING_UP)
    return leaving, [PublishCallEvent(call.call_id, why, {}), HangupChannel(call.call_id, reason)]


def _failed(call: Call, event: CallEvent, now: datetime, config: Config) -> Result:
    assert isinstance(event, CommandFailed)
    # A prompt that cannot be played, or an answer that fails, must not leave
    # the caller in silence: end the call.
    return _hang_up(call, "normal", "command_failed")


def _gone(call: Call, event: CallEvent, now: datetime, config: Config) -> Result:
    assert isinstance(event, ChannelGone)
    side: HangupSide | None = HangupSide.CALLER
    if call.phase is Phase.HANGING_UP:
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
    )
    return ended, [
        SaveCall(ended),
        PublishCallEvent(
            call.call_id,
            "call_ended",
            {"cause": event.cause, "cause_text": event.cause_text, "side": side and side.value},
        ),
    ]


def _ignore(call: Call, event: CallEvent, now: datetime, config: Config) -> Result:
    return call, []


# (phase, event type) -> handler. A pair that is missing is ignored: late
# events for a call that moved on (a PlaybackFinished after the caller hung up).
TRANSITIONS: dict[tuple[Phase, type[CallEvent]], Handler] = {
    (Phase.ANSWERING, ChannelAnswered): _answered,
    (Phase.ANSWERING, CommandFailed): _failed,
    (Phase.WELCOME, PromptFinished): _welcome_finished,
    (Phase.WELCOME, CommandFailed): _failed,
    (Phase.ANSWERING, ChannelGone): _gone,
    (Phase.WELCOME, ChannelGone): _gone,
    (Phase.HANGING_UP, ChannelGone): _gone,
    (Phase.HANGING_UP, CommandFailed): _ignore,
}


def adopt(event: CallAdopted, now: datetime, config: Config) -> Result:
    """Rebuild a call that Asterisk still holds after the service (re)connected."""
    call = Call(
        event.call_id,
        event.caller,
        event.dialled,
        event.started_at,
        Phase.ANSWERING,
        answered_at=event.answered_at,
    )
    watch = WatchChannel(call.call_id)
    if not event.channel_up:
        return call, [watch, SaveCall(call), AnswerChannel(call.call_id)]
    answered_at = event.answered_at or now
    if event.step != STEP_WELCOME:
        answered, commands = _answered(
            replace(call, answered_at=answered_at), event, answered_at, config
        )
        return answered, [watch, *commands]
    playing = replace(call, phase=Phase.WELCOME, answered_at=answered_at)
    if event.playback_active:
        return playing, [watch, SaveCall(playing)]
    # the welcome finished while the service was away: carry on from there
    leaving, commands = _hang_up(playing, "normal", "prompt_finished")
    return leaving, [watch, *commands]


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
