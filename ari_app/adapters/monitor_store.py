"""Supervisors and the monitor sessions' audit rows in the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.rows import Rows
from ari_app.adapters.tables import MonitorRecord, SupervisorRecord


class SupervisorExists(Exception):
    pass


class SupervisorStore(Rows[SupervisorRecord]):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, SupervisorRecord, newest="created_at")

    async def add(self, row: dict[str, Any]) -> None:
        try:
            await super().add(row)
        except IntegrityError as exc:
            raise SupervisorExists(str(row.get("id"))) from exc


class MonitorStore(Rows[MonitorRecord]):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, MonitorRecord)
