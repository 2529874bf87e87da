"""Events the call logic reacts to, in the past tense, parsed from ARI at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CallArrived:
    """A channel entered the Stasis application (StasisStart)."""

    call_id: str
    caller: str
    dialled: str
    started_at: datetime


@dataclass(frozen=True)
class CallAdopted:
    """After a (re)connect, a channel Asterisk still holds for the application."""

    call_id: str
    caller: str
    dialled: str
    started_at: datetime
    channel_up: bool
    step: str | None
    playback_active: bool
    answered_at: datetime | None = None


@dataclass(frozen=True)
class ChannelAnswered:
    call_id: str


@dataclass(frozen=True)
class PromptFinished:
    call_id: str
    playback_id: str


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
    CallArrived | CallAdopted | ChannelAnswered | PromptFinished | ChannelGone | CommandFailed
)
