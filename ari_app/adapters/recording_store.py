"""Recordings in the database: one row a recorded conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.rows import Rows
from ari_app.adapters.tables import RecordingRecord


class RecordingStore(Rows[RecordingRecord]):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, RecordingRecord)

    async def ended_before(self, cutoff: datetime) -> list[RecordingRecord]:
        """Recordings started before `cutoff` that are no longer live."""
        query = select(self._table).where(
            self._table.c.started_at < cutoff, self._table.c.state.in_(("stored", "failed"))
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [self._model(dict(row._mapping)) for row in rows]
