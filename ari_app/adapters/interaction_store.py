"""Interaction records and agents' state history, as rows and back."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.db import upsert, utc
from ari_app.adapters.tables import AgentEventRecord, InteractionRecord
from ari_app.domain.interaction import Record
from ari_app.domain.kpi import Interaction, Segment

TABLE = InteractionRecord.__table__  # type: ignore[attr-defined]
AGENT_EVENTS = AgentEventRecord.__table__  # type: ignore[attr-defined]
_SCALARS = [f.name for f in fields(Interaction) if f.name != "segments"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def record_row(record: Record) -> dict[str, Any]:
    call = record.interaction
    row = {name: getattr(call, name) for name in _SCALARS}
    row["call_id"] = call.call_id
    row["segments"] = [
        {**asdict(s), "answered_at": _iso(s.answered_at), "ended_at": _iso(s.ended_at)}
        for s in call.segments
    ]
    row["disposition"] = record.disposition
    segment = record.open_segment
    row["open"] = {
        "segment": [segment[0], _iso(segment[1]), segment[2]] if segment else None,
        "hold_since": _iso(record.hold_since),
        "wrapping": [list(pair) for pair in record.wrapping],
    }
    row["updated_at"] = datetime.now(UTC)
    return row


def row_record(row: dict[str, Any]) -> Record:
    values = {name: row[name] for name in _SCALARS}
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = utc(value)
    segments = tuple(
        Segment(
            s["agent_id"],
            _moment(s["answered_at"]),  # type: ignore[arg-type]
            _moment(s["ended_at"]),  # type: ignore[arg-type]
            s.get("hold_seconds", 0.0),
            s.get("wrap_up_seconds", 0.0),
        )
        for s in row["segments"]
    )
    opened = row.get("open") or {}
    segment = opened.get("segment")
    return Record(
        Interaction(**values, segments=segments),
        open_segment=(segment[0], _moment(segment[1]), segment[2]) if segment else None,  # type: ignore[arg-type]
        hold_since=_moment(opened.get("hold_since")),
        wrapping=tuple((agent, index) for agent, index in opened.get("wrapping", [])),
        disposition=row.get("disposition"),
    )


class InteractionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(upsert(self.engine, TABLE, row, "call_id"))

    async def _records(self, query: Any) -> list[Record]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [row_record(dict(row._mapping)) for row in rows]

    async def get(self, call_id: str) -> Record | None:
        found = await self._records(select(TABLE).where(TABLE.c.call_id == call_id))
        return found[0] if found else None

    async def unfinished(self, since: datetime) -> list[Record]:
        """Calls still going, or ended after `since` with an agent still in wrap-up."""
        query = select(TABLE).where(or_(TABLE.c.ended_at.is_(None), TABLE.c.ended_at >= since))
        return [
            record
            for record in await self._records(query)
            if record.interaction.ended_at is None or record.open_segment or record.wrapping
        ]

    async def between(self, start: datetime, end: datetime) -> list[Interaction]:
        """The calls that arrived or came to a queue in [start, end)."""
        query = select(TABLE).where(
            or_(
                (TABLE.c.arrived_at >= start) & (TABLE.c.arrived_at < end),
                (TABLE.c.queued_at >= start) & (TABLE.c.queued_at < end),
            )
        )
        return [record.interaction for record in await self._records(query)]

    async def agent_changes(
        self, start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, str]]]:
        """Each agent's state changes in [start, end), after the last one before `start`
        (the state the agent was in when the window opened)."""
        columns = (AGENT_EVENTS.c.agent_id, AGENT_EVENTS.c.at, AGENT_EVENTS.c.to_state)
        last = (
            select(func.max(AGENT_EVENTS.c.id).label("id"))
            .where(AGENT_EVENTS.c.at < start)
            .group_by(AGENT_EVENTS.c.agent_id)
            .subquery()
        )
        before = select(*columns).join(last, AGENT_EVENTS.c.id == last.c.id)
        within = (
            select(*columns)
            .where(AGENT_EVENTS.c.at >= start, AGENT_EVENTS.c.at < end)
            .order_by(AGENT_EVENTS.c.at, AGENT_EVENTS.c.id)
        )
        async with self.engine.connect() as connection:
            rows = [*(await connection.execute(before)).all()]
            rows += (await connection.execute(within)).all()
        changes: dict[str, list[tuple[datetime, str]]] = {}
        for agent_id, at, state in rows:
            moment = utc(at)
            assert moment is not None
            changes.setdefault(agent_id, []).append((moment, state))
        return changes
