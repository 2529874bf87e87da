"""Supervisor monitoring, the pure part: modes, who may, and how each mode is wired.

A supervisor listens (hears both sides, is heard by nobody), whispers (hears
both sides, is heard by the agent only: coaching) or barges (joins the
conversation: all three hear each other). Listen and whisper go through an ARI
snoop channel on the agent's leg: it spies on both directions and, to whisper,
writes the supervisor's voice into what the agent hears (`out`), never into the
conversation. A barge puts the supervisor's phone into the conversation's own
bridge, so the mix (and the recording) is the ordinary three-party one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# keys on the supervisor's phone during a session
DIGITS = {"4": Mode.LISTEN, "5": Mode.WHISPER, "6": Mode.BARGE}
SUPERVISOR_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
PHONE_PREFIX = "supervisor-"
ROLES = ("admin", "supervisor")  # the tokens that may ask for a session


class MonitorRefused(Exception):
    """The asker may not monitor this call (privacy: the answer is 403)."""


@dataclass(frozen=True)
class Snoop:
    """A snoop channel's directions: `spy` is what the supervisor hears of the agent's
    leg, `whisper` where the supervisor's voice is written."""

    spy: str
    whisper: str


def snoop_for(mode: Mode) -> Snoop | None:
    """The snoop channel a mode needs; None for a barge (the conversation's bridge)."""
    if mode is Mode.LISTEN:
        return Snoop("both", "none")
    if mode is Mode.WHISPER:
        return Snoop("both", "out")
    return None


SESSION_PREFIX = "mon-"  # a session's id; its rings, snoops and bridge are named after it


def session_channel(channel_id: str) -> bool:
    """Whether the channel is one a monitor session made (a ring, a snoop)."""
    return channel_id.startswith(SESSION_PREFIX)


def endpoint_of(supervisor_id: str) -> str:
    return f"{PHONE_PREFIX}{supervisor_id}"


def supervisor_of(endpoint: str) -> str | None:
    """The supervisor whose phone this endpoint is (supervisor-<id>), if any."""
    found = endpoint.removeprefix(PHONE_PREFIX)
    if endpoint.startswith(PHONE_PREFIX) and SUPERVISOR_ID.fullmatch(found):
        return found
    return None


def check_permitted(role: str, supervisor_teams: frozenset[str], agent_team: str) -> None:
    """Admins may have any call monitored; a supervisor only their own teams' agents.
    Raises MonitorRefused."""
    if role == "admin":
        return
    if role != "supervisor":
        raise MonitorRefused(f"monitoring is for {' and '.join(ROLES)} tokens")
    if not agent_team or agent_team not in supervisor_teams:
        team = agent_team or "no team"
        raise MonitorRefused(f"the agent is in {team}, not in this supervisor's teams")


def switched(modes: list[dict[str, Any]], mode: Mode, now: datetime) -> list[dict[str, Any]]:
    """The session's mode history with `mode` from `now` (the last span closed)."""
    history = [dict(span) for span in modes]
    if history and history[-1].get("to") is None:
        history[-1]["to"] = now.isoformat()
    history.append({"mode": mode.value, "from": now.isoformat(), "to": None})
    return history


def closed(modes: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The history with its open span closed at `now` (the session ended)."""
    history = [dict(span) for span in modes]
    if history and history[-1].get("to") is None:
        history[-1]["to"] = now.isoformat()
    return history
