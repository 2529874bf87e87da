"""ARI events of the Stasis application, parsed into the call logic's events.

Thin and pure: look at one ARI message, return one domain event (or None for
messages the call logic does not use). The fatal ApplicationReplaced is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ari_app.domain.agents import FeatureDialed
from ari_app.domain.events import (
    CallArrived,
    CallEvent,
    ChannelAnswered,
    ChannelGone,
    DigitReceived,
    HangupRequested,
    PromptFinished,
)


class ApplicationReplaced(Exception):
    """Another websocket registered our application name; Asterisk now sends it our calls."""


def timestamp(value: str | None) -> datetime | None:
    """ARI's timestamps (`2026-11-24T23:57:28.856+0000`) as aware datetimes."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


MAX_NUMBER = 80  # the width of the caller and dialled columns


def _channel_of(target_uri: str) -> str | None:
    kind, _, ident = target_uri.partition(":")
    return ident if kind == "channel" and ident else None


FEATURE = "agent-feature"  # Stasis(app,agent-feature,FEATURE,ENDPOINT[,ARGUMENT])
AGENT_LEG = "agent-leg"  # an agent's phone answered the ACD's ring: agent-leg,CALL,AGENT
CUSTOMER_LEG = "callback-leg"  # a called-back customer answered: callback-leg,CALLBACK
MONITOR_LEG = "monitor-leg"  # a supervisor's phone answered: monitor-leg,SESSION
SNOOP = "monitor-snoop"  # a monitor session's snoop channel: monitor-snoop,SESSION


@dataclass(frozen=True)
class AgentLegAnswered:
    channel_id: str
    call_id: str
    agent_id: str


@dataclass(frozen=True)
class RecordingEnded:
    """A recording is over: stored (`done`) or failed (with Asterisk's cause)."""

    name: str
    stored: bool
    cause: str = ""


@dataclass(frozen=True)
class CustomerAnswered:
    channel_id: str
    call_id: str  # the callback


@dataclass(frozen=True)
class MonitorLegAnswered:
    """A supervisor's phone answered the ring for a monitor session."""

    channel_id: str
    session_id: str


@dataclass(frozen=True)
class SnoopStarted:
    """A monitor session's snoop channel is in the application."""

    channel_id: str
    session_id: str


@dataclass(frozen=True)
class EndpointChanged:
    """A phone became reachable (online) or not."""

    resource: str
    online: bool


@dataclass(frozen=True)
class HoldChanged:
    """A phone put its channel's far side on hold, or took it off (a re-INVITE)."""

    channel_id: str
    on: bool


# Every event type `parse` reads: Asterisk is asked to send the application these alone
# (a call's variable sets, dialplan steps, bridge changes and playback starts are not read,
# and were most of its events)
USED_EVENTS = (
    "StasisStart",
    "ChannelStateChange",
    "ChannelDtmfReceived",
    "ChannelHangupRequest",
    "ChannelDestroyed",
    "ChannelHold",
    "ChannelUnhold",
    "PlaybackFinished",
    "RecordingFinished",
    "RecordingFailed",
    "EndpointStateChange",
    "ApplicationReplaced",
)


def parse(
    message: dict[str, Any],
) -> (
    CallEvent
    | FeatureDialed
    | AgentLegAnswered
    | CustomerAnswered
    | RecordingEnded
    | EndpointChanged
    | MonitorLegAnswered
    | SnoopStarted
    | HoldChanged
    | None
):
    """The domain event an ARI message stands for, if the call logic uses it."""
    kind = message.get("type")
    channel = message.get("channel") or {}
    args = message.get("args") or []
    if kind == "StasisStart" and args and args[0] == FEATURE:
        return FeatureDialed(
            channel["id"],
            str(args[1]) if len(args) > 1 else "",
            str(args[2]) if len(args) > 2 else "",
            str(args[3]) if len(args) > 3 else "",
        )
    if kind == "StasisStart" and args and args[0] == AGENT_LEG and len(args) >= 3:
        return AgentLegAnswered(channel["id"], str(args[1]), str(args[2]))
    if kind == "StasisStart" and args and args[0] == CUSTOMER_LEG and len(args) >= 2:
        return CustomerAnswered(channel["id"], str(args[1]))
    if kind == "StasisStart" and args and args[0] == MONITOR_LEG and len(args) >= 2:
        return MonitorLegAnswered(channel["id"], str(args[1]))
    if kind == "StasisStart" and args and args[0] == SNOOP and len(args) >= 2:
        return SnoopStarted(channel["id"], str(args[1]))
    if kind in ("RecordingFinished", "RecordingFailed"):
        recording = message.get("recording") or {}
        stored = kind == "RecordingFinished"
        return RecordingEnded(
            str(recording.get("name", "")), stored, str(recording.get("cause", ""))
        )
    if kind == "EndpointStateChange":
        endpoint = message.get("endpoint") or {}
        return EndpointChanged(str(endpoint.get("resource", "")), endpoint.get("state") == "online")
    if kind == "StasisStart":
        return CallArrived(
            call_id=channel["id"],
            caller=(channel.get("caller") or {}).get("number", "")[:MAX_NUMBER],
            dialled=(channel.get("dialplan") or {}).get("exten", "")[:MAX_NUMBER],
            started_at=timestamp(channel.get("creationtime")) or datetime.now(UTC),
        )
    if kind == "ChannelStateChange" and channel.get("state") == "Up":
        return ChannelAnswered(channel["id"])
    if kind == "PlaybackFinished":
        playback = message["playback"]
        call_id = _channel_of(playback.get("target_uri", ""))
        return PromptFinished(call_id, playback["id"]) if call_id else None
    if kind in ("ChannelHold", "ChannelUnhold"):
        return HoldChanged(channel["id"], kind == "ChannelHold")
    if kind == "ChannelDtmfReceived":
        return DigitReceived(channel["id"], str(message.get("digit", "")))
    if kind == "ChannelHangupRequest" and not message.get("soft"):
        return HangupRequested(channel["id"])
    if kind == "ChannelDestroyed":
        return ChannelGone(channel["id"], message.get("cause"), message.get("cause_txt"))
    if kind == "ApplicationReplaced":
        raise ApplicationReplaced(message.get("application", "?"))
    return None
