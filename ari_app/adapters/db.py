"""The database: URLs, Alembic migrations, and the stores the services use.

SQLite (a file) is the embedded default, PostgreSQL the production database.
The service talks to both asynchronously (aiosqlite, psycopg); migrations run
synchronously (sqlite3, psycopg) before the service starts.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ari_app.adapters.tables import ApiToken, CallRecord

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _driver_url(url: str, *, asynchronous: bool) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def _ensure_sqlite_folder(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def migrate(url: str) -> None:
    """Bring the schema up to the newest Alembic revision (synchronous)."""
    sync_url = _driver_url(url, asynchronous=False)
    _ensure_sqlite_folder(sync_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = sync_url
    command.upgrade(config, "head")


def engine_for(url: str) -> AsyncEngine:
    async_url = _driver_url(url, asynchronous=True)
    _ensure_sqlite_folder(async_url)
    return create_async_engine(async_url, pool_pre_ping=True)


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def upsert(engine: AsyncEngine, table: Any, row: dict[str, Any], key: str) -> Any:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**row)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={name: value for name, value in row.items() if name != key}
    )


class CallStore:
    """Call records: written in order by one writer, read by the API."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(upsert(self.engine, CallRecord.__table__, row, "id"))

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.engine.connect() as connection:
            found = (
                await connection.execute(
                    select(CallRecord).where(CallRecord.id == call_id)  # type: ignore[arg-type]
                )
            ).first()
        return _call(found) if found else None

    async def page(self, *, limit: int, offset: int) -> tuple[list[CallRecord], int]:
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(CallRecord)
                    .order_by(
                        CallRecord.started_at.desc(),  # type: ignore[attr-defined]
                        CallRecord.id,
                    )
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            total = (
                await connection.execute(select(func.count()).select_from(CallRecord))
            ).scalar()
        return [_call(row) for row in rows], int(total or 0)

    async def unfinished(self) -> list[CallRecord]:
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(CallRecord).where(CallRecord.ended_at.is_(None))  # type: ignore[union-attr]
                )
            ).all()
        return [_call(row) for row in rows]


def _call(row: Any) -> CallRecord:
    record = CallRecord.model_validate(dict(row._mapping))
    for name in ("started_at", "answered_at", "ended_at"):
        setattr(record, name, utc(getattr(record, name)))
    return record


class TokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            total = (await connection.execute(select(func.count()).select_from(ApiToken))).scalar()
        return int(total or 0)

    async def add(
        self, *, name: str, role: str, token_hash: str, subject: str | None = None
    ) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                ApiToken.__table__.insert().values(  # type: ignore[attr-defined]
                    name=name,
                    role=role,
                    token_hash=token_hash,
                    subject=subject,
                    created_at=datetime.now(UTC),
                )
            )

    async def revoke_subject(self, subject: str) -> None:
        """Revoke every token of a supervisor (they were removed)."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(ApiToken)
                .where(ApiToken.subject == subject, ApiToken.revoked_at.is_(None))  # type: ignore[arg-type,union-attr]
                .values(revoked_at=datetime.now(UTC))
            )

    async def find(self, token_hash: str) -> ApiToken | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(ApiToken).where(ApiToken.token_hash == token_hash)  # type: ignore[arg-type]
                )
            ).first()
        if row is None:
            return None
        token = ApiToken.model_validate(dict(row._mapping))
        token.expires_at, token.revoked_at = utc(token.expires_at), utc(token.revoked_at)
        return token


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True


def _transient(exc: Exception) -> bool:
    """A lost or busy connection (worth retrying), as opposed to a row the database refuses."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


class Writer:
    """Applies writes one after the other, in the order given, retrying until they land.

    The call path only enqueues (never waits on the database); a database
    outage delays records, it does not lose them while the process lives. A
    write the database rejects for its content is logged with the row and
    skipped, so that one bad row cannot hold up every later one.

    A write given a key (a record's state: a call's row, its interaction) that is still
    waiting for its turn takes the newer row instead of queueing another: a record
    written now holds every change made to it so far. When the writer has been idle it
    waits `gather` seconds before writing, so that the burst of changes one moment of a
    call makes (answered, prompt started; queued, rung, answered) is written once.
    """

    def __init__(self, max_backoff: float = 10.0, gather: float = 0.0) -> None:
        self._queue: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._waiting: dict[tuple[str, str], list[Any]] = {}
        self.max_backoff = max_backoff
        self.gather = gather
        self.healthy = True
        self.coalesced = 0

    def submit(self, what: str, write: Any, row: dict[str, Any], key: str | None = None) -> None:
        if key is not None:
            waiting = self._waiting.get((what, key))
            if waiting is not None:
                waiting[2] = row
                self.coalesced += 1
                return
        item = [what, write, row, key]
        if key is not None:
            self._waiting[(what, key)] = item
        self._queue.put_nowait(item)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        idle = True
        while True:
            item = await self._queue.get()
            if idle and self.gather:
                await asyncio.sleep(self.gather)
            what, write, _, key = item
            if key is not None:
                del self._waiting[(what, key)]  # a change from now on is a new write
            await self._write(what, write, item[2])
            self._queue.task_done()
            idle = self._queue.empty()

    async def _write(self, what: str, write: Any, row: dict[str, Any]) -> None:
        backoff = 0.2
        while True:
            try:
                await write(row)
            except (SQLAlchemyError, OSError) as exc:
                if not _transient(exc):
                    log.error("db_write_rejected", what=what, error=repr(exc), row=row)
                else:
                    self.healthy = False
                    log.error("db_write_failed", what=what, error=repr(exc), retry_in=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
            self.healthy = True
            return

    async def drain(self, timeout: float) -> None:
        """Wait until everything enqueued so far is written (or the timeout passes)."""
        async with asyncio.timeout(timeout):
            await self._queue.join()
