"""Events the call logic reacts to, in the past tense, parsed from ARI at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ari_app.domain.ivr.engine import Session
from ari_app.domain.ivr.flow import Flow


@dataclass(frozen=True)
class CallArrived:
    """A channel entered the Stasis application (StasisStart); `flow` answers its number."""

    call_id: str
    caller: str
    dialled: str
    started_at: datetime
    flow: Flow | None = None


@dataclass(frozen=True)
class CallAdopted:
    """After a (re)connect, a channel Asterisk still holds for the application."""

    call_id: str
    caller: str
    dialled: str
    started_at: datetime
    channel_up: bool
    step: str | None
    answered_at: datetime | None = None
    flow: Flow | None = None
    ivr: Mapping[str, Any] = field(default_factory=dict)  # where the IVR was (ARI_APP_IVR)
    in_dialplan: bool = False  # handed back to the dialplan (a transfer, a voicemail)
    history: Session | None = None  # the IVR path (and outcome) from before the restart


@dataclass(frozen=True)
class ChannelAnswered:
    call_id: str


@dataclass(frozen=True)
class PromptFinished:
    call_id: str
    playback_id: str


@dataclass(frozen=True)
class DigitReceived:
    """A DTMF key from the caller (ChannelDtmfReceived)."""

    call_id: str
    digit: str


@dataclass(frozen=True)
class IvrTimerFired:
    call_id: str
    seq: int


@dataclass(frozen=True)
class LookupReturned:
    """A self-service backend answered (`fields`) or did not (`fields` None, `reason`)."""

    call_id: str
    seq: int
    fields: Mapping[str, Any] | None
    reason: str = ""


@dataclass(frozen=True)
class AgentHungUp:
    """The agent hung up the conversation: the caller's side goes next, by the ACD."""

    call_id: str


@dataclass(frozen=True)
class HangupRequested:
    """The caller's side hung up; the channel goes next. It comes before the end of a
    prompt the hang-up cut short, which must not count as a prompt played out."""

    call_id: str


@dataclass(frozen=True)
class ChannelGone:
    """The channel was destroyed; cause is the Q.850 hang-up cause."""

    call_id: str
    cause: int | None
    cause_text: str | None


@dataclass(frozen=True)
class CommandFailed:
    """Asterisk refused a command the call logic asked for."""

    call_id: str
    command: str
    reason: str


CallEvent = (
    CallArrived
    | CallAdopted
    | ChannelAnswered
    | PromptFinished
    | DigitReceived
    | IvrTimerFired
    | LookupReturned
    | HangupRequested
    | AgentHungUp
    | ChannelGone
    | CommandFailed
)
