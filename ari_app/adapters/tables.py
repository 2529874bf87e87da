"""Database tables (SQLModel). The schema itself is owned by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


def _when(*, nullable: bool = True, index: bool = False) -> object:
    return Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index)
    )


class CallBase(SQLModel):
    caller: str = Field(max_length=80)
    dialled: str = Field(max_length=80)
    started_at: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    answered_at: datetime | None = _when()  # type: ignore[assignment]
    ended_at: datetime | None = _when()  # type: ignore[assignment]
    hangup_cause: int | None = None
    hangup_cause_text: str | None = Field(default=None, max_length=80)
    hangup_side: str | None = Field(default=None, max_length=16)
    phase: str = Field(max_length=16)
    flow: str | None = Field(default=None, max_length=80)
    flow_version: int | None = None
    ivr_outcome: str | None = Field(default=None, max_length=32)
    # the IVR path: [{"node", "at", "note"}], in order
    ivr_path: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class CallRecord(CallBase, table=True):
    """One inbound call; its id is the Asterisk channel id (`uniqueid`)."""

    __tablename__ = "call"

    id: str = Field(primary_key=True, max_length=64)


class CallPublic(CallBase):
    id: str


class ApiToken(SQLModel, table=True):
    """A bearer token for the admin API; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    expires_at: datetime | None = _when()  # type: ignore[assignment]
    revoked_at: datetime | None = _when()  # type: ignore[assignment]


class AgentRecord(SQLModel, table=True):
    """An agent and their phone. The SIP password is kept only as the digest PJSIP checks
    (md5 of user:realm:password), so the database never holds it in clear."""

    __tablename__ = "agent"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=80)
    team: str = Field(default="", max_length=40)
    skills: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    wrap_up_seconds: int = 30
    sip_digest: str = Field(max_length=32)
    created_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class AgentStateRecord(SQLModel, table=True):
    """Where an agent's availability is now (one row per agent)."""

    __tablename__ = "agent_state"

    agent_id: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16)
    since: datetime | None = _when()  # type: ignore[assignment]
    reason: str = Field(default="", max_length=32)
    call_id: str | None = Field(default=None, max_length=64)
    missed: int = 0
    pending: str | None = Field(default=None, max_length=16)
    pending_reason: str = Field(default="", max_length=32)
    wrap_up_until: datetime | None = _when()  # type: ignore[assignment]


class AgentEventRecord(SQLModel, table=True):
    """The audit trail of every change of an agent's state, and where it came from."""

    __tablename__ = "agent_event"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(max_length=32, index=True)
    at: datetime = _when(nullable=False)  # type: ignore[assignment]
    event: str = Field(max_length=32)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=32)
    source: str = Field(max_length=16)  # api, phone, acd


class RoutingDecision(SQLModel, table=True):
    """Why a call went to an agent: the step, who was considered, why this one."""

    __tablename__ = "routing_decision"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(max_length=64, index=True)
    at: datetime = _when(nullable=False)  # type: ignore[assignment]
    agent_id: str = Field(max_length=32)
    queue: str = Field(max_length=32)
    step: int
    requirement: str = Field(max_length=400)
    strategy: str = Field(max_length=16)
    free_agents: int
    qualified: int
    waiting_calls: int
    candidates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    why: str = Field(max_length=600)
