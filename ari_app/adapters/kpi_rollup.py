"""The KPI sums of 15-minute intervals, kept added up so that a month's report reads
a few thousand rows instead of every call.

An interval is added up (adapters/kpi_store.py `materialize`) from the interaction
records once it is over, under the targets of the moment (service levels, short
abandon, FCR window), and marked in `kpi_interval`. Any later change to a record
that counts in a marked interval (a call that was still going, a disposition, a
repeat call that decides an earlier call's FCR) takes the mark and the sums away
in the same transaction, and the report adds that interval up from the records
again until it is marked anew. Sums under other targets are never read. An agent's
state change written late (the database was away) takes away every marked
interval from its moment on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from ari_app.adapters.tables import (
    KpiAgentIntervalRecord,
    KpiIntervalRecord,
    KpiIvrIntervalRecord,
    KpiQueueIntervalRecord,
)

STEP_US = timedelta(minutes=15) // timedelta(microseconds=1)
INTERVALS = KpiIntervalRecord.__table__  # type: ignore[attr-defined]
QUEUE_SUMS = KpiQueueIntervalRecord.__table__  # type: ignore[attr-defined]
AGENT_SUMS = KpiAgentIntervalRecord.__table__  # type: ignore[attr-defined]
IVR_SUMS = KpiIvrIntervalRecord.__table__  # type: ignore[attr-defined]
SUMS = (QUEUE_SUMS, AGENT_SUMS, IVR_SUMS)


def bucket_of(moment_us: int) -> int:
    """The start of the 15-minute interval (aligned to the epoch's hours) holding it."""
    return moment_us - moment_us % STEP_US


async def unmark(connection: AsyncConnection, moments_us: Iterable[int | None]) -> None:
    """Take away the sums of the marked intervals these moments fall in."""
    buckets = {bucket_of(m) for m in moments_us if m is not None}
    gathered: _Gathered | None = connection.info.get(_GATHERED)
    if gathered is not None:
        gathered.buckets |= buckets
    elif buckets:
        await _take_away(connection, INTERVALS.c.bucket_us.in_(sorted(buckets)))


async def unmark_from(connection: AsyncConnection, moment_us: int) -> None:
    """Take away the sums of every marked interval from this moment's on: an agent's
    state change counts until their next one. Written as it happens, the change is
    newer than any kept interval, and nothing is taken away."""
    gathered: _Gathered | None = connection.info.get(_GATHERED)
    if gathered is None:
        await _take_away(connection, INTERVALS.c.bucket_us >= bucket_of(moment_us))
    elif gathered.since is None or moment_us < gathered.since:
        gathered.since = moment_us


_GATHERED = "kpi_unmarks"  # in the connection's info while a transaction gathers them


@dataclass
class _Gathered:
    buckets: set[int] = field(default_factory=set)
    since: int | None = None


@contextlib.asynccontextmanager
async def gathering_unmarks(connection: AsyncConnection) -> AsyncIterator[None]:
    """Within, `unmark` and `unmark_from` gather what they take away, and it is taken
    away once at the end, in the same transaction: a transaction of many writes (the
    writer's) sends one statement for all of them, not one each, most of which find
    nothing (a call of the current interval, an agent's state change as it happens)."""
    gathered = _Gathered()
    connection.info[_GATHERED] = gathered
    try:
        yield
    finally:
        connection.info.pop(_GATHERED, None)
    which = []
    if gathered.buckets:
        which.append(INTERVALS.c.bucket_us.in_(sorted(gathered.buckets)))
    if gathered.since is not None:
        which.append(INTERVALS.c.bucket_us >= bucket_of(gathered.since))
    if which:
        await _take_away(connection, or_(*which))


async def _take_away(connection: AsyncConnection, which: Any) -> None:
    """Unmark the intervals `which` selects, and delete their sums with them."""
    gone = await connection.execute(delete(INTERVALS).where(which).returning(INTERVALS.c.bucket_us))
    marked = [row[0] for row in gone.all()]
    if marked:
        for table in SUMS:
            await connection.execute(delete(table).where(table.c.bucket_us.in_(marked)))
