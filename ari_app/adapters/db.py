"""The database: URLs, Alembic migrations, and the stores the services use.

SQLite (a file) is the embedded default, PostgreSQL the production database.
The service talks to both asynchronously (aiosqlite, psycopg); migrations run
synchronously (sqlite3, psycopg) before the service starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement, TextClause
from sqlalchemy.sql.util import find_tables

from ari_app.adapters.tables import ApiToken, CallRecord, InteractionSegmentRecord

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
    if sync_url.get_backend_name() == "sqlite" and sync_url.database not in (None, "", ":memory:"):
        _write_ahead(sync_url)


def _write_ahead(url: URL) -> None:
    """SQLite in write-ahead-log mode (kept in the file): a commit appends to the log and
    syncs it once, instead of a journal file made, synced and deleted around two syncs;
    and readers (the API, the KPIs) no longer hold up the writer, nor it them."""
    connection = sqlite3.connect(url.database, timeout=30.0)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def engine_for(url: str) -> AsyncEngine:
    async_url = _driver_url(url, asynchronous=True)
    _ensure_sqlite_folder(async_url)
    # SQLite lets one connection write at a time: another waits up to 30 s for the lock
    # (the writer's transaction under load, Asterisk's CDR file caught up meanwhile)
    # rather than fail at sqlite3's default of 5 s
    if async_url.get_backend_name() != "sqlite":
        return create_async_engine(async_url, pool_pre_ping=True)
    # a file's connection cannot drop: no ping (a round trip to sqlite's thread) per use
    engine = create_async_engine(async_url, connect_args={"timeout": 30.0})
    event.listen(engine.sync_engine, "connect", _durable)
    return engine


def _durable(connection: Any, _record: Any) -> None:
    """Every commit synced to disk before it counts as written (SQLite's own default,
    stated: in write-ahead-log mode the lighter NORMAL can lose the last commits to a
    power cut)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def upsert(connection: AsyncConnection, table: Any, row: dict[str, Any], key: str) -> None:
    """Insert the row, or update the one with its key."""
    statement = _upsert(connection.dialect.name, table, tuple(row), key)
    await write_row(connection, table, statement, row, row[key])


async def insert(connection: AsyncConnection, table: Any, row: dict[str, Any]) -> None:
    await write_row(connection, table, _insert(table, tuple(row)), row)


async def write_row(
    connection: AsyncConnection, table: Any, statement: Any, row: dict[str, Any], key: Any = None
) -> None:
    """A blind write of one row (`key`: the one an upsert replaces): held with the rows of
    the same statement when the writer's transaction gathers them (`Gathering`), which
    needs `statement` to be one object for all of them (cached)."""
    if isinstance(connection, Gathering):
        connection.gather(table, statement, row, key)
    else:
        await connection.execute(statement, row)


@functools.cache
def _insert(table: Any, columns: tuple[str, ...]) -> Any:
    return table.insert()


@functools.cache
def _upsert(dialect: str, table: Any, columns: tuple[str, ...], key: str) -> Any:
    """One statement per table and set of columns, the values bound at execution: it is
    compiled once, not once per row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: statement.excluded[name] for name in columns if name != key},
    )


class CallStore:
    """Call records: written in order by one writer, read by the API."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await self.write(connection, row)

    @staticmethod
    async def write(connection: AsyncConnection, row: dict[str, Any]) -> None:
        await upsert(connection, CallRecord.__table__, row, "id")

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.engine.connect() as connection:
            found = (
                await connection.execute(
                    select(CallRecord).where(CallRecord.id == call_id)  # type: ignore[arg-type]
                )
            ).first()
        return _call(found) if found else None

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        agents: Collection[str] | None = None,
        talking: Collection[str] = (),
        live: bool = False,
    ) -> tuple[list[CallRecord], int]:
        """Newest first; with `agents`, the calls one of them had a part in (or those of
        `talking`, whose part is still going on); `live`, those not ended."""
        chosen = select(CallRecord)
        counted = select(func.count()).select_from(CallRecord)
        if agents is not None:
            column = CallRecord.id  # type: ignore[var-annotated]
            theirs = column.in_(calls_answered_by(agents)) | column.in_(sorted(talking))
            chosen, counted = chosen.where(theirs), counted.where(theirs)
        if live:
            going = CallRecord.ended_at.is_(None)  # type: ignore[union-attr]
            chosen, counted = chosen.where(going), counted.where(going)
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    chosen.order_by(
                        CallRecord.started_at.desc(),  # type: ignore[attr-defined]
                        CallRecord.id,
                    )
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            total = (await connection.execute(counted)).scalar()
        return [_call(row) for row in rows], int(total or 0)

    async def answered_by(self, call_id: str, agents: Collection[str]) -> bool:
        """Whether one of the agents had a part in the call (a segment of it)."""
        query = calls_answered_by(agents).where(_SEGMENT.c.call_id == call_id).limit(1)
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).first() is not None

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
        self,
        *,
        name: str,
        role: str,
        token_hash: str,
        subject: str | None = None,
        expires_at: datetime | None = None,
    ) -> int:
        """The new token's id."""
        async with self.engine.begin() as connection:
            added = await connection.execute(
                ApiToken.__table__.insert().values(  # type: ignore[attr-defined]
                    name=name,
                    role=role,
                    token_hash=token_hash,
                    subject=subject,
                    created_at=datetime.now(UTC),
                    expires_at=expires_at,
                )
            )
        return int(added.inserted_primary_key[0])

    async def revoke_subject(self, subject: str, token_id: int | None = None) -> int:
        """Revoke every live token of a user (or the one of `token_id`); how many were."""
        where = [ApiToken.subject == subject, ApiToken.revoked_at.is_(None)]  # type: ignore[union-attr]
        if token_id is not None:
            where.append(ApiToken.id == token_id)
        async with self.engine.begin() as connection:
            done = await connection.execute(
                update(ApiToken).where(*where).values(revoked_at=datetime.now(UTC))  # type: ignore[arg-type]
            )
        return int(done.rowcount)

    async def of_subject(self, subject: str) -> list[ApiToken]:
        """A user's tokens, newest first (hashes and all: not for showing as they are)."""
        query = select(ApiToken).where(ApiToken.subject == subject).order_by(ApiToken.id.desc())  # type: ignore[arg-type,union-attr]
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_token(row) for row in rows]

    async def find(self, token_hash: str) -> ApiToken | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(ApiToken).where(ApiToken.token_hash == token_hash)  # type: ignore[arg-type]
                )
            ).first()
        return None if row is None else _token(row)


def _token(row: Any) -> ApiToken:
    token = ApiToken.model_validate(dict(row._mapping))
    token.created_at = utc(token.created_at)
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


class _Run:
    """Rows of one statement, in the order given, sent as one `executemany`."""

    __slots__ = ("keys", "rows", "statement", "table")

    def __init__(self, table: Any, statement: Any) -> None:
        self.table, self.statement = table, statement
        self.rows: list[dict[str, Any]] = []
        self.keys: set[Any] = set()


class Gathering:
    """The connection of one writer transaction, gathering its blind writes.

    A row written with `insert` or `upsert` (nobody reads what the statement returns) is
    held, with the rows of the same statement after it, and sent as one `executemany`:
    the agents' states and their audit rows, the calls' and interactions' rows and the
    routing log of a transaction go in a few statements rather than one per row, the
    round trips that cost the most. What is held of a table is sent before any other
    statement that names that table (a read sees every write before it), and all of it
    at the transaction's end. Each table's rows keep their order: a row of a statement
    other than its table's last run, or an upsert of a key already in that run, starts
    a new run. Only rows of different tables can change places; no table of ours refers
    to another (no foreign keys)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._runs: list[_Run] = []
        self._last: dict[Any, _Run] = {}  # table -> its latest run

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def gather(self, table: Any, statement: Any, row: dict[str, Any], key: Any = None) -> None:
        run = self._last.get(table)
        if run is None or run.statement is not statement or (key is not None and key in run.keys):
            run = self._last[table] = _Run(table, statement)
            self._runs.append(run)
        run.rows.append(row)
        if key is not None:
            run.keys.add(key)

    async def flush(self, tables: set[Any] | None = None) -> None:
        """Send the rows held (of `tables`, or all), each run as one statement."""
        if not self._runs:
            return
        held, self._runs = self._runs, []
        for run in held:
            if tables is not None and run.table not in tables:
                self._runs.append(run)
                continue
            if self._last.get(run.table) is run:
                del self._last[run.table]
            await self.connection.execute(run.statement, run.rows)

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self.flush(_tables(statement))
        return await self.connection.execute(statement, *args, **kwargs)

    async def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self.flush(_tables(statement))
        return await self.connection.scalar(statement, *args, **kwargs)

    async def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self.flush(_tables(statement))
        return await self.connection.scalars(statement, *args, **kwargs)

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await self.flush()
        return await self.connection.run_sync(fn, *args, **kwargs)


def _tables(statement: Any) -> set[Any] | None:
    """The tables a statement names (None: it cannot be told, so everything is sent)."""
    if not isinstance(statement, ClauseElement) or isinstance(statement, TextClause):
        return None
    return set(find_tables(statement, include_crud=True)) or None


class _Item:
    """One write waiting its turn."""

    __slots__ = ("alone", "key", "row", "what", "write")

    def __init__(self, what: str, write: Any, row: dict[str, Any], key: str | None, alone: bool):
        self.what, self.write, self.row, self.key, self.alone = what, write, row, key, alone


class Writer:
    """Applies writes one after the other, in the order given, retrying until they land.

    The call path only enqueues (never waits on the database); a database
    outage delays records, it does not lose them while the process lives. A
    write the database rejects for its content is logged with the row and
    skipped, so that one bad row cannot hold up every later one.

    The writes waiting at one moment go in one transaction (`write(connection, row)`
    each, in order), up to `batch` of them: one commit instead of one per row. If the
    database refuses that transaction for a row's content, each write is tried again
    in a transaction of its own, and only the refused one is skipped. A job given to
    `submit_alone` (`job(row)`, its own transactions) runs by itself, in its turn.

    A write given a key (a record's state: a call's row, its interaction) that is still
    waiting for its turn takes the newer row instead of queueing another: a record
    written now holds every change made to it so far. When the writer has been idle it
    waits `gather` seconds before writing, so that the burst of changes one moment of a
    call makes (answered, prompt started; queued, rung, answered) is written once.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        max_backoff: float = 10.0,
        gather: float = 0.0,
        batch: int = 500,
        around: Callable[[AsyncConnection], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.engine = engine
        self.around = around  # what each transaction of writes runs within
        self._items: deque[_Item] = deque()
        self._arrived = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._waiting: dict[tuple[str, str], _Item] = {}
        self.max_backoff = max_backoff
        self.gather = gather
        self.batch = batch
        self.healthy = True
        self.coalesced = 0
        self.transactions = 0

    def submit(
        self,
        what: str,
        write: Callable[[AsyncConnection, dict[str, Any]], Awaitable[Any]],
        row: dict[str, Any],
        key: str | None = None,
        merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """`write(connection, row)` in a transaction shared with the writes next to it.

        A row with the `key` of one still waiting takes its place (`merge(waiting, row)`
        when what the waiting row carried must not be lost)."""
        if key is not None:
            waiting = self._waiting.get((what, key))
            if waiting is not None:
                waiting.row = row if merge is None else merge(waiting.row, row)
                self.coalesced += 1
                return
        item = _Item(what, write, row, key, alone=False)
        if key is not None:
            self._waiting[(what, key)] = item
        self._push(item)

    def submit_alone(
        self, what: str, job: Callable[[dict[str, Any]], Awaitable[Any]], row: dict[str, Any]
    ) -> None:
        """`job(row)` by itself, after every write submitted before it: it opens its own
        transactions (and may read in between)."""
        self._push(_Item(what, job, row, None, alone=True))

    def _push(self, item: _Item) -> None:
        self._items.append(item)
        self._drained.clear()
        self._arrived.set()

    @property
    def backlog(self) -> int:
        return len(self._items)

    async def run(self) -> None:
        idle = True
        while True:
            while not self._items:
                self._drained.set()
                self._arrived.clear()
                await self._arrived.wait()
                idle = True
            if idle and self.gather:
                await asyncio.sleep(self.gather)
            batch = self._take()
            for item in batch:
                if item.key is not None:
                    del self._waiting[(item.what, item.key)]  # a change from now on is a new write
            writing = asyncio.get_running_loop().create_task(self._write(batch))
            try:
                await asyncio.shield(writing)
            except asyncio.CancelledError:
                # stopping: the transaction under way is let finish (a few seconds at most),
                # so that it lands and its connection goes back to the pool to be closed
                await asyncio.wait({writing}, timeout=5.0)
                writing.cancel()
                raise
            idle = False

    def _take(self) -> list[_Item]:
        items = self._items
        if items[0].alone:
            return [items.popleft()]
        batch = []
        while items and not items[0].alone and len(batch) < self.batch:
            batch.append(items.popleft())
        return batch

    async def _write(self, batch: list[_Item]) -> None:
        backoff = 0.2
        while True:
            try:
                await self._attempt(batch)
            except (SQLAlchemyError, OSError) as exc:
                if _transient(exc):
                    self.healthy = False
                    log.error("db_write_failed", what=batch[0].what, rows=len(batch),
                              error=repr(exc), retry_in=backoff)  # fmt: skip
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                if len(batch) == 1:
                    log.error("db_write_rejected", what=batch[0].what, error=repr(exc),
                              row=batch[0].row)  # fmt: skip
                else:
                    # a row the database refuses: each on its own, so that only it is lost
                    for item in batch:
                        await self._write([item])
                    return
            self.healthy = True
            return

    async def _attempt(self, batch: list[_Item]) -> None:
        if batch[0].alone:
            await batch[0].write(batch[0].row)
            return
        self.transactions += 1
        async with self.engine.begin() as connection:
            around = self.around(connection) if self.around else contextlib.nullcontext()
            async with around:
                gathering = Gathering(connection)
                for item in batch:
                    await item.write(cast(AsyncConnection, gathering), item.row)
                await gathering.flush()

    async def drain(self, timeout: float) -> None:
        """Wait until everything enqueued so far is written (or the timeout passes)."""
        async with asyncio.timeout(timeout):
            await self._drained.wait()


_SEGMENT = InteractionSegmentRecord.__table__  # type: ignore[attr-defined]


def calls_answered_by(agents: Collection[str]) -> Any:
    """The calls the agents had a part in, as a subquery of their ids."""
    return select(_SEGMENT.c.call_id).where(_SEGMENT.c.agent_id.in_(sorted(agents)))
