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
