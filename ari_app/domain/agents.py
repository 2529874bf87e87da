"""Agents: who they are, and the state machine of their availability.

States: logged_out, available, reserved (their phone rings), on_call, wrap_up,
paused (with a reason code). A pause or a log-out asked for while the agent is
ringing, talking or in wrap-up waits for that to end (it is kept as `pending`),
so a call is never cut by a state change. An agent is offered calls only when
available and their phone is reachable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
SKILL_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
REASON = re.compile(r"[a-z0-9_-]{1,32}")
MISSED = "missed"  # the pause reason after too many rings in a row went unanswered


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


@dataclass(frozen=True)
class AgentProfile:
    """Who an agent is: the phone they answer on, their skills, their wrap-up time."""

    agent_id: str
    name: str
    team: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> level 1-10
    wrap_up_seconds: int = 30
    recording: str = "queue"  # whether their conversations are recorded: queue, always, never

    @property
    def endpoint(self) -> str:
        """The PJSIP endpoint (and SIP user name) of the agent's phone."""
        return f"agent-{self.agent_id}"


@dataclass(frozen=True)
class AgentStatus:
    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: datetime | None = None
    reason: str = ""  # the pause reason code
    call_id: str | None = None  # the call ringing or talking
    missed: int = 0  # rings unanswered in a row
    pending: AgentState | None = None  # paused or logged_out, once the call and wrap-up end
    pending_reason: str = ""
    wrap_up_until: datetime | None = None
    reachable: bool = False

    @property
    def routable(self) -> bool:
        """Whether the ACD may offer this agent a call now."""
        return self.state is AgentState.AVAILABLE and self.reachable


class AgentStateError(Exception):
    """A change that the agent's current state does not allow."""


# -- what happens to an agent -------------------------------------------------------------


@dataclass(frozen=True)
class LogIn:
    pass


@dataclass(frozen=True)
class LogOut:
    pass


@dataclass(frozen=True)
class Pause:
    reason: str


@dataclass(frozen=True)
class Unpause:
    pass


@dataclass(frozen=True)
class Offered:
    call_id: str


@dataclass(frozen=True)
class Answered:
    call_id: str


@dataclass(frozen=True)
class RingUnanswered:
    call_id: str


@dataclass(frozen=True)
class OfferWithdrawn:
    """The caller hung up while the agent's phone rang: not the agent's miss."""

    call_id: str


@dataclass(frozen=True)
class CallEnded:
    call_id: str


@dataclass(frozen=True)
class WrapUpEnded:
    """The wrap-up time ran out, or the agent ended it early."""


@dataclass(frozen=True)
class Reachability:
    reachable: bool


AgentEvent = (
    LogIn
    | LogOut
    | Pause
    | Unpause
    | Offered
    | Answered
    | RingUnanswered
    | OfferWithdrawn
    | CallEnded
    | WrapUpEnded
    | Reachability
)


def step(
    status: AgentStatus,
    event: AgentEvent,
    now: datetime,
    profile: AgentProfile,
    *,
    max_missed: int = 3,
) -> AgentStatus:
    """Apply one event; raise AgentStateError when the state does not allow it."""
    state = status.state
    busy = state in (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)
    match event:
        case Reachability(reachable):
            return replace(status, reachable=reachable)
        case LogIn() if state is AgentState.LOGGED_OUT:
            return _to(status, AgentState.AVAILABLE, now, missed=0)
        case LogIn():
            raise AgentStateError(f"already logged in ({state.value})")
        case LogOut() if state is AgentState.LOGGED_OUT:
            raise AgentStateError("already logged out")
        case LogOut() if busy:
            return replace(status, pending=AgentState.LOGGED_OUT, pending_reason="")
        case LogOut():
            return _to(status, AgentState.LOGGED_OUT, now, missed=0)
        case Pause(reason) if not REASON.fullmatch(reason):
            raise AgentStateError(f"pause reason {reason!r}: letters, digits, _ and - only")
        case Pause(reason) if busy:
            return replace(status, pending=AgentState.PAUSED, pending_reason=reason)
        case Pause(reason) if state in (AgentState.AVAILABLE, AgentState.PAUSED):
            return _to(status, AgentState.PAUSED, now, reason=reason)
        case Unpause() if state is AgentState.PAUSED:
            return _to(status, AgentState.AVAILABLE, now, missed=0)
        case Unpause() if busy and status.pending is AgentState.PAUSED:
            return replace(status, pending=None, pending_reason="")
        case Offered(call_id) if status.routable:
            return _to(status, AgentState.RESERVED, now, call_id=call_id)
        case Answered(call_id) if state is AgentState.RESERVED and call_id == status.call_id:
            return _to(status, AgentState.ON_CALL, now, call_id=call_id, missed=0)
        case RingUnanswered(call_id) if state is AgentState.RESERVED and call_id == status.call_id:
            missed = status.missed + 1
            if missed >= max_missed:
                return _after_call(
                    replace(
                        status, missed=missed, pending=AgentState.PAUSED, pending_reason=MISSED
                    ),
                    now,
                )
            return _after_call(replace(status, missed=missed), now)
        case OfferWithdrawn(call_id) if state is AgentState.RESERVED and call_id == status.call_id:
            return _after_call(status, now)
        case CallEnded(call_id) if state is AgentState.ON_CALL and call_id == status.call_id:
            if profile.wrap_up_seconds <= 0:
                return _after_call(status, now)
            until = now + timedelta(seconds=profile.wrap_up_seconds)
            return _to(status, AgentState.WRAP_UP, now, call_id=None, wrap_up_until=until)
        case WrapUpEnded() if state is AgentState.WRAP_UP:
            return _after_call(status, now)
    raise AgentStateError(f"{_describe(event)} is not possible while {state.value}")


def _after_call(status: AgentStatus, now: datetime) -> AgentStatus:
    """A ring or a wrap-up is over: a pending pause or log-out now, otherwise available."""
    pending, reason = status.pending, status.pending_reason
    status = replace(status, pending=None, pending_reason="")
    if pending is AgentState.PAUSED:
        return _to(status, AgentState.PAUSED, now, reason=reason)
    if pending is AgentState.LOGGED_OUT:
        return _to(status, AgentState.LOGGED_OUT, now, missed=0)
    return _to(status, AgentState.AVAILABLE, now)


def _to(status: AgentStatus, state: AgentState, now: datetime, **changes: Any) -> AgentStatus:
    """A new state; a pending pause or log-out rides along until `_after_call` applies it."""
    base: dict[str, Any] = {
        "state": state,
        "since": now,
        "reason": changes.pop("reason", ""),
        "call_id": changes.pop("call_id", None),
        "wrap_up_until": changes.pop("wrap_up_until", None),
    }
    return replace(status, **base, **changes)


def _describe(event: AgentEvent) -> str:
    return re.sub(r"(?<!^)([A-Z])", r" \1", type(event).__name__).lower()


# -- feature codes ----------------------------------------------------------------------

FEATURES = ("login", "logout", "pause", "unpause", "wrapup-end")
DEFAULT_PAUSE_REASON = "break"


@dataclass(frozen=True)
class FeatureDialed:
    """An agent's phone dialled a feature code (the dialplan hands it to Stasis)."""

    channel_id: str
    feature: str
    endpoint: str  # the PJSIP endpoint that dialled: agent-<id>
    argument: str = ""  # the digits after the code (a pause reason)


def agent_of(endpoint: str) -> str | None:
    """The agent whose phone is this endpoint (agent-<id>), if it is an agent's."""
    agent_id = endpoint.removeprefix("agent-")
    return agent_id if endpoint.startswith("agent-") and AGENT_ID.fullmatch(agent_id) else None


def feature_event(feature: str, argument: str) -> AgentEvent:
    """What a feature code asks for."""
    if feature == "login":
        return LogIn()
    if feature == "logout":
        return LogOut()
    if feature == "pause":
        return Pause(argument or DEFAULT_PAUSE_REASON)
    if feature == "unpause":
        return Unpause()
    if feature == "wrapup-end":
        return WrapUpEnded()
    raise AgentStateError(f"unknown feature code '{feature}'")
