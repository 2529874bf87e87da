"""One table's rows by id: added, changed, found (newest first), deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from ari_app.adapters.db import utc

Row = TypeVar("Row", bound=SQLModel)


class Rows(Generic[Row]):
    """`model` is a SQLModel table with an `id` key; `newest` orders what is found."""

    def __init__(self, engine: AsyncEngine, model: type[Row], newest: str = "started_at") -> None:
        self.engine, self.model, self._newest = engine, model, newest
        self._table = model.__table__  # type: ignore[attr-defined]

    async def add(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(self._table.insert().values(**row))

    async def update(self, row_id: str, **changes: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(self._table).where(self._table.c.id == row_id).values(**changes)
            )

    async def get(self, row_id: str) -> Row | None:
        found = await self.find(id=row_id)
        return found[0] if found else None

    async def find(self, limit: int = 100, offset: int = 0, **match: Any) -> list[Row]:
        """Newest first; `match` on columns (None values are left out; a tuple is any of)."""
        query = select(self._table).order_by(self._table.c[self._newest].desc())
        for column, value in match.items():
            if isinstance(value, tuple):
                query = query.where(self._table.c[column].in_(value))
            elif value is not None:
                query = query.where(self._table.c[column] == value)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.limit(limit).offset(offset))).all()
        return [self._model(dict(row._mapping)) for row in rows]

    async def delete(self, row_id: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(self._table).where(self._table.c.id == row_id))

    def _model(self, values: dict[str, Any]) -> Row:
        for key, value in values.items():
            if isinstance(value, datetime):
                values[key] = utc(value)
        return self.model.model_validate(values)
