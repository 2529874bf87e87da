"""The KPI sums, added up by the database: one pass over a window's interactions per
figure group, grouped by queue (or agent) and interval.

Each query gives, per group and interval, exactly the sums that domain/kpi.py's
`queue_sums`, `agent_sums` and the IVR count give from the same records (the
definitions live there; tests/db/test_kpi_store.py holds the two side by side on
generated calls). Moments are compared as microseconds since the epoch, so the
window's edges and the interval cuts are exact on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, case, delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.interaction_store import EPOCH, SEGMENTS, TABLE, agent_changes, micros
from ari_app.adapters.kpi_rollup import AGENT_SUMS, INTERVALS, IVR_SUMS, QUEUE_SUMS, STEP_US, SUMS
from ari_app.domain.interaction import agent_spans
from ari_app.domain.kpi import AgentSums, IvrSums, QueueSums, Targets, state_times

Span = tuple[int, int]  # [from, to) in microseconds since the epoch


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class Cuts:
    """A window [start, end) and its intervals: the interval of a moment is
    (moment - first) // step, `first` being the start rounded down to the step."""

    start: datetime
    end: datetime
    first: datetime
    step_us: int

    @property
    def span(self) -> Span:
        return micros(self.start), micros(self.end)

    def bucket(self, column: Any) -> Any:
        # whole numbers written into the statement, so that the grouping expression is
        # the selected one to PostgreSQL (bound parameters would differ)
        first = literal_column(str(micros(self.first)), BigInteger)
        return (column - first) // literal_column(str(self.step_us), BigInteger)


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _total(condition: Any, value: Any) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0.0)), 0.0)


class KpiStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _rows(self, query: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).all())

    async def queue_sums(
        self, cuts: Cuts, targets: Targets, queue: str | None, span: Span | None = None
    ) -> dict[tuple[str, int], QueueSums]:
        """(queue, interval) -> the sums of the calls that came to the queue then (within
        `span`, microseconds, when given: a part of the window)."""
        lo, hi = span or cuts.span
        t = TABLE.c
        entered = t.blocked.is_(False)
        wait = func.coalesce(t.wait_seconds, 0.0)
        unanswered = entered & t.answered_at.is_(None)
        abandoned = unanswered & t.abandoned_at.is_not(None)
        short = abandoned & (wait < targets.short_abandon)
        offered = entered & ~short
        handled = entered & t.answered_at.is_not(None)
        target: Any = targets.default_service_level_seconds
        if targets.service_level_seconds:
            target = case(targets.service_level_seconds, value=t.queue, else_=target)
        first_contact = case(
            (t.resolved.is_not(None), t.resolved.is_(True)),
            else_=t.repeat_after.is_(None) | (t.repeat_after >= targets.fcr_window),
        )
        bucket = cuts.bucket(t.queued_us).label("bucket")
        query = (
            select(
                t.queue,
                bucket,
                _count(t.blocked.is_(True)),
                _count(entered),
                _count(short),
                _count(handled),
                _count(abandoned & ~short),
                _count(handled & (wait <= target)),
                _total(handled, wait),
                _count(offered & t.wait_seconds.is_not(None)),
                _total(offered & t.wait_seconds.is_not(None), t.wait_seconds),
                func.max(case((offered, t.wait_seconds), else_=None)),
                _total(handled, t.handle_seconds),
                _total(handled, t.wrap_up_seconds),
                _count(handled & first_contact),
            )
            .where(
                t.queue.is_not(None),
                t.queued_us >= lo,
                t.queued_us < hi,
            )
            .group_by(t.queue, bucket)
        )
        if queue is not None:
            query = query.where(t.queue == queue)
        return {(row[0], row[1]): QueueSums(*row[2:]) for row in await self._rows(query)}

    async def agent_sums(
        self, cuts: Cuts, agent: str | None, span: Span | None = None
    ) -> dict[tuple[str, int], AgentSums]:
        """(agent, interval) -> the segments the agent answered then."""
        lo, hi = span or cuts.span
        s = SEGMENTS.c
        bucket = cuts.bucket(s.answered_us).label("bucket")
        query = (
            select(
                s.agent_id,
                bucket,
                func.count(),
                func.sum(s.handle_seconds),
                func.sum(s.wrap_up_seconds),
            )
            .where(s.answered_us >= lo, s.answered_us < hi)
            .group_by(s.agent_id, bucket)
        )
        if agent is not None:
            query = query.where(s.agent_id == agent)
        return {(row[0], row[1]): AgentSums(*row[2:]) for row in await self._rows(query)}

    async def ivr_sums(self, cuts: Cuts, span: Span | None = None) -> dict[int, IvrSums]:
        """interval -> the calls that arrived then and reached an IVR flow, and how
        many of them finished in self-service."""
        lo, hi = span or cuts.span
        t = TABLE.c
        bucket = cuts.bucket(t.arrived_us).label("bucket")
        query = (
            select(bucket, func.count(), _count(t.self_served.is_(True)))
            .where(
                t.ivr.is_(True),
                t.arrived_us >= lo,
                t.arrived_us < hi,
            )
            .group_by(bucket)
        )
        return {row[0]: IvrSums(*row[1:]) for row in await self._rows(query)}

    async def state_sums(
        self, cuts: Cuts, agent: str | None, span: Span | None = None
    ) -> dict[tuple[str, int], AgentSums]:
        """(agent, interval) -> the agent's time handling calls and staffed, from their
        state changes (only `agent`'s, when given)."""
        lo, hi = span or cuts.span
        start, end = moment(lo), moment(hi)
        async with self.engine.connect() as connection:
            changes = await agent_changes(connection, start, end, agent)
        first, step = micros(cuts.first), cuts.step_us
        found: dict[tuple[str, int], AgentSums] = {}
        numbers = range((lo - first) // step, (hi - 1 - first) // step + 1)
        cuts_ = [
            (moment(max(lo, first + n * step)), moment(min(hi, first + (n + 1) * step)))
            for n in numbers
        ]
        for agent_id, moves in changes.items():
            times = state_times(agent_spans(agent_id, moves, end), cuts_)
            for n, time in zip(numbers, times, strict=True):
                if time:
                    found[(agent_id, n)] = time
        return found

    # -- the sums kept added up (adapters/kpi_rollup.py) --------------------------------

    async def first_arrival(self) -> int | None:
        """The first record's arrival, in microseconds; None with no record."""
        rows = await self._rows(select(func.min(TABLE.c.arrived_us)))
        return rows[0][0] if rows else None

    async def marked(self, span: Span, key: str) -> list[int]:
        """The intervals in `span` whose sums are kept under the targets `key`."""
        m = INTERVALS.c
        query = (
            select(m.bucket_us)
            .where(m.bucket_us >= span[0], m.bucket_us < span[1], m.targets == key)
            .order_by(m.bucket_us)
        )
        return [row[0] for row in await self._rows(query)]

    async def kept_queue_sums(
        self, cuts: Cuts, span: Span, key: str, queue: str | None
    ) -> dict[tuple[str, int], QueueSums]:
        q = QUEUE_SUMS.c
        bucket = cuts.bucket(q.bucket_us).label("bucket")
        summed = [func.sum(q[name]) for name in _QUEUE_FIELDS if name != "longest_wait"]
        query = (
            select(q.queue, bucket, func.max(q.longest_wait), *summed)
            .where(q.bucket_us >= span[0], q.bucket_us < span[1], q.targets == key)
            .group_by(q.queue, bucket)
        )
        if queue is not None:
            query = query.where(q.queue == queue)
        names = ["longest_wait", *(n for n in _QUEUE_FIELDS if n != "longest_wait")]
        return {
            (row[0], row[1]): QueueSums(**dict(zip(names, row[2:], strict=True)))
            for row in await self._rows(query)
        }

    async def kept_agent_sums(
        self, cuts: Cuts, span: Span, key: str, agent: str | None
    ) -> dict[tuple[str, int], AgentSums]:
        a = AGENT_SUMS.c
        bucket = cuts.bucket(a.bucket_us).label("bucket")
        query = (
            select(
                a.agent_id,
                bucket,
                func.sum(a.handled),
                func.sum(a.handle),
                func.sum(a.wrap_up),
                func.sum(a.handling),
                func.sum(a.staffed),
            )
            .where(a.bucket_us >= span[0], a.bucket_us < span[1], a.targets == key)
            .group_by(a.agent_id, bucket)
        )
        if agent is not None:
            query = query.where(a.agent_id == agent)
        return {(row[0], row[1]): AgentSums(*row[2:]) for row in await self._rows(query)}

    async def kept_ivr_sums(self, cuts: Cuts, span: Span, key: str) -> dict[int, IvrSums]:
        i = IVR_SUMS.c
        bucket = cuts.bucket(i.bucket_us).label("bucket")
        query = (
            select(bucket, func.sum(i.entered), func.sum(i.contained))
            .where(i.bucket_us >= span[0], i.bucket_us < span[1], i.targets == key)
            .group_by(bucket)
        )
        return {row[0]: IvrSums(*row[1:]) for row in await self._rows(query)}

    async def keep(self, span: Span, targets: Targets, key: str) -> None:
        """Add up the 15-minute intervals of `span` (aligned to them) from the records
        and keep their sums under `key`, marked. Run through the writer, after every
        record change submitted before it, so that no change slips in between."""
        first = datetime.fromtimestamp(span[0] / 1e6, UTC)
        cuts = Cuts(first, first, first, STEP_US)
        queues = await self.queue_sums(cuts, targets, None, span)
        agents = await self.agent_sums(cuts, None, span)
        for key_, time in (await self.state_sums(cuts, None, span)).items():
            agents[key_] = agents[key_] + time if key_ in agents else time
        ivr = await self.ivr_sums(cuts, span)

        def at(n: int) -> int:
            return span[0] + n * STEP_US

        async with self.engine.begin() as connection:
            for table in (INTERVALS, *SUMS):
                await connection.execute(
                    delete(table).where(table.c.bucket_us >= span[0], table.c.bucket_us < span[1])
                )
            made = datetime.now(UTC)
            marks = [
                {"bucket_us": b, "targets": key, "made_at": made}
                for b in range(span[0], span[1], STEP_US)
            ]
            await connection.execute(INTERVALS.insert(), marks)
            rows: list[tuple[Any, list[dict[str, Any]]]] = [
                (
                    QUEUE_SUMS,
                    [{"bucket_us": at(n), "queue": q, "targets": key, **asdict(v)}
                     for (q, n), v in queues.items()],
                ),
                (
                    AGENT_SUMS,
                    [{"bucket_us": at(n), "agent_id": a, "targets": key, **asdict(v)}
                     for (a, n), v in agents.items()],
                ),
                (
                    IVR_SUMS,
                    [{"bucket_us": at(n), "targets": key, **asdict(v)} for n, v in ivr.items()],
                ),
            ]  # fmt: skip
            for table, values in rows:
                if values:
                    await connection.execute(table.insert(), values)


_QUEUE_FIELDS = [f.name for f in fields(QueueSums)]
