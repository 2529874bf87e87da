"""CDR and channel-event rows: stored once whatever path brings them, read back by call.

Every insert is "insert, or nothing when the key is there": the live AMI path and
the file catch-up may bring the same CDR, and a catch-up interrupted by a crash
reads again what it had not checkpointed. The rows read from a file and the
file's new checkpoint are written in one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ari_app.adapters.backstop import Checkpoint
from ari_app.adapters.db import calls_answered_by, upsert, utc, write_row
from ari_app.adapters.tables import BackstopCheckpoint, CdrRecord, CelRecord

CDR = CdrRecord.__table__  # type: ignore[attr-defined]
CEL = CelRecord.__table__  # type: ignore[attr-defined]
CHECKPOINT = BackstopCheckpoint.__table__  # type: ignore[attr-defined]
KEYS = {"cdr": (CDR, ("uniqueid", "sequence")), "cel": (CEL, ("uniqueid", "event", "at"))}
BATCH = 500  # rows a statement (SQLite allows 32766 bound values)


class CdrStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def insert_new(
        self, connection: AsyncConnection, kind: str, rows: list[dict[str, Any]]
    ) -> int:
        """The rows not stored yet, in the caller's transaction; the number stored."""
        table, key = KEYS[kind]
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        # one statement whatever the number of rows, so it is compiled once and cached (a
        # multi-row VALUES is a new statement for every batch size); SQLAlchemy batches the
        # rows itself. The rows returned are those stored (rowcount is not reliable on
        # every driver).
        statement = (
            insert(table).on_conflict_do_nothing(index_elements=key).returning(table.c[key[0]])
        )
        stored = 0
        for start in range(0, len(rows), BATCH):
            result = await connection.execute(statement, rows[start : start + BATCH])
            stored += len(result.all())
        return stored

    async def write_live(self, connection: AsyncConnection, kind: str, row: dict[str, Any]) -> None:
        """One row taken live, unless stored already, in the caller's transaction."""
        table, key = KEYS[kind]
        statement = _insert_new(self.engine.dialect.name, table, key)
        await write_row(connection, table, statement, row)

    async def add(self, kind: str, rows: list[dict[str, Any]]) -> int:
        """Store the rows that are new; the number stored."""
        if not rows:
            return 0
        async with self.engine.begin() as connection:
            return await self.insert_new(connection, kind, rows)

    async def add_read(self, kind: str, rows: list[dict[str, Any]], checkpoint: Checkpoint) -> int:
        """Store rows read from `kind`'s file and move its checkpoint, all or nothing."""
        row = {
            "name": kind,
            "inode": checkpoint.inode,
            "offset": checkpoint.offset,
            "updated_at": datetime.now(UTC),
        }
        async with self.engine.begin() as connection:
            stored = await self.insert_new(connection, kind, rows) if rows else 0
            await upsert(connection, CHECKPOINT, row, "name")
        return stored

    async def checkpoint(self, kind: str) -> Checkpoint | None:
        async with self.engine.connect() as connection:
            found = (
                await connection.execute(select(CHECKPOINT).where(CHECKPOINT.c.name == kind))
            ).first()
        return Checkpoint(found.inode, found.offset) if found else None

    async def cdrs(
        self,
        *,
        linkedid: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        agents: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """CDRs, oldest first; those of one call when `linkedid` is given; with `agents`,
        of the calls one of them had a part in."""
        order = (CDR.c.start, CDR.c.uniqueid, CDR.c.sequence)
        query = select(CDR).order_by(*order).limit(limit).offset(offset)
        if linkedid is not None:
            query = query.where(CDR.c.linkedid == linkedid)
        if agents is not None:
            query = query.where(CDR.c.linkedid.in_(calls_answered_by(agents)))
        return await self._rows(query)

    async def cels(
        self, *, linkedid: str, limit: int = 1000, offset: int = 0
    ) -> list[dict[str, Any]]:
        """The channel events of one call, in order."""
        query = select(CEL).where(CEL.c.linkedid == linkedid).order_by(CEL.c.at)
        query = query.limit(limit).offset(offset)
        return await self._rows(query)

    async def _rows(self, query: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            {
                key: utc(value) if isinstance(value, datetime) else value
                for key, value in row._mapping.items()
            }
            for row in rows
        ]


@functools.cache
def _insert_new(dialect: str, table: Any, key: tuple[str, ...]) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=key)
