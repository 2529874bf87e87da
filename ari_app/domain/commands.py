"""Commands the call logic asks for, in the imperative, carried out by services/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ari_app.domain.call import Call


@dataclass(frozen=True)
class AnswerChannel:
    call_id: str


@dataclass(frozen=True)
class WatchChannel:
    """Keep receiving the channel's events after it leaves the application, up to its end."""

    call_id: str


@dataclass(frozen=True)
class PlayPrompt:
    """Play media in order as one playback (one PlaybackFinished at the end)."""

    call_id: str
    playback_id: str
    media: tuple[str, ...]
    language: str = "en"


@dataclass(frozen=True)
class StopPlayback:
    call_id: str
    playback_id: str


@dataclass(frozen=True)
class StartTimer:
    """Fire IvrTimerFired(seq) after the given seconds, replacing the call's previous timer."""

    call_id: str
    seq: int
    seconds: float


@dataclass(frozen=True)
class LookUp:
    """Ask a self-service backend over HTTP; answer with LookupReturned(seq)."""

    call_id: str
    seq: int
    method: str
    url: str
    params: Mapping[str, str]
    timeout: float


@dataclass(frozen=True)
class EnterQueue:
    """Hand the caller to the ACD: the waiting room, then an agent."""

    call_id: str
    queue: str
    priority: int
    skills: Mapping[str, int]
    caller: str
    language: str = "en"  # of the announcements the caller hears while waiting


@dataclass(frozen=True)
class ContinueInDialplan:
    """Leave the application for the dialplan (transfers, voicemail)."""

    call_id: str
    context: str
    extension: str


@dataclass(frozen=True)
class HangupChannel:
    call_id: str
    reason: str


@dataclass(frozen=True)
class RememberStep:
    """Keep where the call is on the channel itself (channel variables)."""

    call_id: str
    step: str
    ivr: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SaveCall:
    """Store the call record as it is now."""

    call: Call


@dataclass(frozen=True)
class PublishCallEvent:
    call_id: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)


Command = (
    AnswerChannel
    | WatchChannel
    | PlayPrompt
    | StopPlayback
    | StartTimer
    | LookUp
    | ContinueInDialplan
    | EnterQueue
    | HangupChannel
    | RememberStep
    | SaveCall
    | PublishCallEvent
)
