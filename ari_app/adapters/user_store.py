"""The admin API's users, and the audit rows of what was changed through it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.db import utc
from ari_app.adapters.rows import Rows
from ari_app.adapters.tables import AuditRecord, UserRecord


class UserExists(Exception):
    pass


class UserStore(Rows[UserRecord]):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, UserRecord, newest="created_at")

    async def add(self, row: dict[str, Any]) -> None:
        try:
            await super().add(row)
        except IntegrityError as exc:
            raise UserExists(str(row.get("id"))) from exc


class AuditStore:
    """Audit rows are added, never changed; read newest first."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._table = AuditRecord.__table__  # type: ignore[attr-defined]

    async def add(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(self._table.insert().values(**row))

    async def find(
        self,
        limit: int,
        offset: int = 0,
        *,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRecord]:
        table = self._table
        query = select(table).order_by(table.c.id.desc())
        if actor is not None:
            query = query.where(table.c.actor == actor)
        if since is not None:
            query = query.where(table.c.at >= since)
        if until is not None:
            query = query.where(table.c.at < until)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.limit(limit).offset(offset))).all()
        found = [AuditRecord.model_validate(dict(row._mapping)) for row in rows]
        for record in found:
            record.at = utc(record.at) or record.at
        return found
