"""Commands the call logic asks for, in the imperative, carried out by services/."""

from __future__ import annotations

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
    call_id: str
    playback_id: str
    media: str


@dataclass(frozen=True)
class HangupChannel:
    call_id: str
    reason: str


@dataclass(frozen=True)
class RememberStep:
    """Keep where the call is on the channel itself (a channel variable)."""

    call_id: str
    step: str


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
    | HangupChannel
    | RememberStep
    | SaveCall
    | PublishCallEvent
)
