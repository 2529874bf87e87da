"""Agents in the database: profiles, their current state, and the audit trail of changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ari_app.adapters.db import insert, upsert, utc
from ari_app.adapters.interaction_store import micros
from ari_app.adapters.kpi_rollup import unmark_from
from ari_app.adapters.tables import (
    AgentEventRecord,
    AgentRecord,
    AgentStateRecord,
    CallbackRecord,
    RoutingDecision,
)


class AgentExists(Exception):
    """An agent with this id is already there."""


async def delete_agent(connection: AsyncConnection, agent_id: str) -> None:
    """The agent's profile, state and state trail, within the caller's transaction."""
    for table, column in (
        (AgentEventRecord, AgentEventRecord.agent_id),
        (AgentStateRecord, AgentStateRecord.agent_id),
        (AgentRecord, AgentRecord.id),
    ):
        await connection.execute(delete(table).where(column == agent_id))  # type: ignore[arg-type]


class AgentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, agent: AgentRecord) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    AgentRecord.__table__.insert().values(**agent.model_dump())  # type: ignore[attr-defined]
                )
        except IntegrityError as exc:
            raise AgentExists(agent.id) from exc

    async def get(self, agent_id: str) -> AgentRecord | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(AgentRecord).where(AgentRecord.id == agent_id)  # type: ignore[arg-type]
                )
            ).first()
        return _agent(row) if row else None

    async def all(self) -> list[AgentRecord]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(AgentRecord).order_by(AgentRecord.id))).all()
        return [_agent(row) for row in rows]

    async def update(self, agent_id: str, **changes: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(AgentRecord).where(AgentRecord.id == agent_id).values(**changes)  # type: ignore[arg-type]
            )

    async def delete(self, agent_id: str) -> None:
        async with self.engine.begin() as connection:
            await delete_agent(connection, agent_id)

    # -- state ----------------------------------------------------------------------------

    async def states(self) -> dict[str, AgentStateRecord]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(AgentStateRecord))).all()
        found = {}
        for row in rows:
            record = AgentStateRecord.model_validate(dict(row._mapping))
            record.since, record.wrap_up_until = utc(record.since), utc(record.wrap_up_until)
            found[record.agent_id] = record
        return found

    async def save_state(self, state: dict[str, Any], event: dict[str, Any]) -> None:
        """The new state and its audit row, in one transaction."""
        async with self.engine.begin() as connection:
            await self.write_state(connection, {"state": state, "event": event})

    @staticmethod
    async def write_state(connection: AsyncConnection, row: dict[str, Any]) -> None:
        """`save_state` of `row["state"]` and `row["event"]`, in the caller's transaction."""
        await upsert(connection, AgentStateRecord.__table__, row["state"], "agent_id")
        await insert(connection, AgentEventRecord.__table__, row["event"])
        await unmark_from(connection, micros(row["event"]["at"]))

    async def events(self, agent_id: str, limit: int = 50) -> list[AgentEventRecord]:
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(AgentEventRecord)
                    .where(AgentEventRecord.agent_id == agent_id)  # type: ignore[arg-type]
                    .order_by(AgentEventRecord.id.desc())  # type: ignore[union-attr]
                    .limit(limit)
                )
            ).all()
        found = []
        for row in rows:
            record = AgentEventRecord.model_validate(dict(row._mapping))
            record.at = utc(record.at) or record.at
            found.append(record)
        return found


def _agent(row: Any) -> AgentRecord:
    record = AgentRecord.model_validate(dict(row._mapping))
    record.created_at = utc(record.created_at) or record.created_at
    record.updated_at = utc(record.updated_at) or record.updated_at
    return record


class RoutingStore:
    """The reason for every assignment, for `GET /api/v1/calls/{id}/routing`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await self.write(connection, row)

    @staticmethod
    async def write(connection: AsyncConnection, row: dict[str, Any]) -> None:
        await insert(connection, RoutingDecision.__table__, row)

    async def for_call(self, call_id: str) -> list[RoutingDecision]:
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(RoutingDecision)
                    .where(RoutingDecision.call_id == call_id)  # type: ignore[arg-type]
                    .order_by(RoutingDecision.id)  # type: ignore[arg-type]
                )
            ).all()
        found = []
        for row in rows:
            record = RoutingDecision.model_validate(dict(row._mapping))
            record.at = utc(record.at) or record.at
            found.append(record)
        return found


OPEN_CALLBACK = ("waiting", "scheduled", "talking")


class CallbackStore:
    """Callback requests: written as they move, read back after a restart and by the API."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, row: dict[str, Any]) -> None:
        """Insert or update one request (the fields given; `id` names it)."""
        async with self.engine.begin() as connection:
            table = CallbackRecord.__table__  # type: ignore[attr-defined]
            found = (
                await connection.execute(select(table.c.id).where(table.c.id == row["id"]))
            ).first()
            if found is None:
                await connection.execute(CallbackRecord.__table__.insert().values(**row))  # type: ignore[attr-defined]
            else:
                changes = {key: value for key, value in row.items() if key != "id"}
                await connection.execute(
                    update(table).where(table.c.id == row["id"]).values(**changes)
                )

    async def list(
        self,
        states: tuple[str, ...] | None = None,
        callback_id: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[CallbackRecord]:
        query = select(CallbackRecord).order_by(CallbackRecord.waiting_since)  # type: ignore[arg-type]
        if states is not None:
            query = query.where(CallbackRecord.state.in_(states))  # type: ignore[attr-defined]
        if callback_id is not None:
            query = query.where(CallbackRecord.id == callback_id)  # type: ignore[arg-type]
        query = query.limit(limit).offset(offset)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        found = []
        for row in rows:
            record = CallbackRecord.model_validate(dict(row._mapping))
            record.waiting_since = utc(record.waiting_since) or record.waiting_since
            record.updated_at = utc(record.updated_at) or record.updated_at
            record.retry_at = utc(record.retry_at)
            found.append(record)
        return found
