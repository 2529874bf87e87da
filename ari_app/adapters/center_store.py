"""The center's catalogue in the database: teams, skills, service numbers, flow versions.

Reads stand alone; writes take the connection of the transaction that applies a whole
change (`transaction()`), so a change of many kinds is written all or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from ari_app.adapters.db import upsert, utc
from ari_app.adapters.tables import (
    AgentRecord,
    FlowVersionRecord,
    NumberRecord,
    SkillRecord,
    SupervisorRecord,
    TeamRecord,
    UserRecord,
)

CATALOGUE: dict[str, type[SQLModel]] = {
    "teams": TeamRecord,
    "skills": SkillRecord,
    "numbers": NumberRecord,
}


class VersionTaken(Exception):
    """A flow version of that number is stored already."""


def _table(model: type[SQLModel]) -> Any:
    return model.__table__  # type: ignore[attr-defined]


class CenterStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    async def catalogue(self, kind: str) -> dict[str, dict[str, Any]]:
        """The rows of teams, skills or numbers by id, without their bookkeeping."""
        table = _table(CATALOGUE[kind])
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(table).order_by(table.c.id))).all()
        return {
            row.id: {k: v for k, v in row._mapping.items() if k not in ("id", "updated_at")}
            for row in rows
        }

    async def team_holders(self) -> dict[str, list[str]]:
        """Who names each team besides agents: users (a supervisor's teams) and phones."""
        holders: dict[str, list[str]] = {}
        async with self.engine.connect() as connection:
            for row in (await connection.execute(select(_table(UserRecord)))).all():
                for team in row.teams or []:
                    holders.setdefault(team, []).append(f"user {row.id}")
            for row in (await connection.execute(select(_table(SupervisorRecord)))).all():
                holders.setdefault(row.team, []).append(f"supervisor phone {row.id}")
        return holders

    # -- flow versions --------------------------------------------------------------------

    async def versions(self, flow: str) -> list[FlowVersionRecord]:
        """Every stored version of a flow, the highest first."""
        table = _table(FlowVersionRecord)
        query = select(table).where(table.c.flow == flow).order_by(table.c.version.desc())
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_version(dict(row._mapping)) for row in rows]

    async def version(self, flow: str, version: int) -> FlowVersionRecord | None:
        table = _table(FlowVersionRecord)
        query = select(table).where((table.c.flow == flow) & (table.c.version == version))
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return _version(dict(row._mapping)) if row is not None else None

    async def add_version(self, record: FlowVersionRecord) -> None:
        """Raises VersionTaken when another text took this version first."""
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    _table(FlowVersionRecord).insert().values(**record.model_dump())
                )
        except IntegrityError as exc:
            raise VersionTaken(f"{record.flow} v{record.version}") from exc


# -- writes within one transaction -------------------------------------------------------


async def put(connection: AsyncConnection, kind: str, key: str, row: dict[str, Any]) -> None:
    await upsert(connection, _table(CATALOGUE[kind]), {"id": key, **row}, "id")


async def remove(connection: AsyncConnection, kind: str, key: str) -> None:
    table = _table(CATALOGUE[kind])
    await connection.execute(delete(table).where(table.c.id == key))


async def put_agent(connection: AsyncConnection, record: AgentRecord, new: bool) -> None:
    table = _table(AgentRecord)
    if new:
        await connection.execute(table.insert().values(**record.model_dump()))
    else:
        values = record.model_dump(exclude={"id", "created_at", "sip_digest"})
        await connection.execute(update(table).where(table.c.id == record.id).values(**values))


async def keep_version(connection: AsyncConnection, record: FlowVersionRecord) -> None:
    """Store a version (or, when it is stored already, mark when it came into force)."""
    table = _table(FlowVersionRecord)
    found = (
        await connection.execute(
            select(table.c.version).where(
                (table.c.flow == record.flow) & (table.c.version == record.version)
            )
        )
    ).first()
    if found is None:
        await connection.execute(table.insert().values(**record.model_dump()))
    elif record.activated_at is not None:
        await connection.execute(
            update(table)
            .where((table.c.flow == record.flow) & (table.c.version == record.version))
            .values(activated_at=record.activated_at)
        )


def _version(values: dict[str, Any]) -> FlowVersionRecord:
    for key in ("stored_at", "activated_at"):
        value = values[key]
        values[key] = utc(value) if isinstance(value, datetime) else value
    return FlowVersionRecord.model_validate(values)
