"""Users of the admin API and what their role lets them do.

A user's id is their login. An `agent` user is the agent of the same id and may
read and change only their own state and dispositions; a `supervisor` user
watches the teams they hold (and the team of their phone, if they have one); an
`ops` user edits the configuration (IVR flows, queues, dialplan); a `reporting`
user reads KPIs and records; an `admin` may do everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

RoleName = Literal["admin", "ops", "supervisor", "agent", "reporting"]
ROLES: tuple[str, ...] = get_args(RoleName)
ADMIN, OPS, SUPERVISOR, AGENT, REPORTING = ROLES
USER_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
TEAM = re.compile(r"\S(.{0,38}\S)?")
LONGEST_TOKEN_LIFE = timedelta(days=366)
TOKEN_DAYS = 90  # a user token's life unless asked otherwise


class UserRefused(ValueError):
    """A user as asked for cannot be: the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who asks: the user (or, for a token made before users, the token's own name and
    role), and the teams they may watch."""

    name: str  # the token's label, shown where a request is named (monitor sessions)
    role: str
    subject: str | None  # the user id (an agent's, a supervisor's)
    teams: frozenset[str]
    token_id: int

    @property
    def actor(self) -> str:
        """What audit rows name: the user, else the token."""
        return self.subject or f"token {self.token_id} ({self.name})"


def check_user(user_id: str, role: str, teams: list[str]) -> list[str]:
    """The user's teams, tidied; raises UserRefused for a user that cannot be."""
    if not USER_ID.fullmatch(user_id):
        raise UserRefused(
            f"user id {user_id!r}: 1 to 32 of a-z, 0-9, '_', '-', '.', starting with a letter"
            " or digit"
        )
    if role not in ROLES:
        raise UserRefused(f"role {role!r}: one of {', '.join(ROLES)}")
    tidy = sorted({team.strip() for team in teams})
    bad = [team for team in tidy if not TEAM.fullmatch(team)]
    if bad:
        raise UserRefused(f"team {bad[0]!r}: 1 to 40 characters")
    if tidy and role != SUPERVISOR:
        raise UserRefused(f"teams are for supervisors, not for a user whose role is {role}")
    return tidy


def token_expiry(now: datetime, days: float) -> datetime:
    """When a token made now for `days` expires; raises UserRefused."""
    life = timedelta(days=days)
    if life <= timedelta(0) or life > LONGEST_TOKEN_LIFE:
        raise UserRefused(f"a token lives more than 0 and at most {LONGEST_TOKEN_LIFE.days} days")
    return now + life


def may_act_for_agent(who: Principal, agent_id: str, agent_team: str) -> bool:
    """Whether `who` may read or change this agent's state: admins any, supervisors
    their teams' agents, an agent themself."""
    if who.role == ADMIN:
        return True
    if who.role == SUPERVISOR:
        return bool(agent_team) and agent_team in who.teams
    return who.role == AGENT and who.subject == agent_id
