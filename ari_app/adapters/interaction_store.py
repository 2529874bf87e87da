"""Interaction records and agents' state history, as rows and back."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ari_app.adapters.db import insert, upsert, utc
from ari_app.adapters.kpi_rollup import unmark
from ari_app.adapters.tables import (
    AgentEventRecord,
    AgentRecord,
    InteractionRecord,
    InteractionSegmentRecord,
)
from ari_app.domain.interaction import Record
from ari_app.domain.kpi import Interaction, Segment

TABLE = InteractionRecord.__table__  # type: ignore[attr-defined]
SEGMENTS = InteractionSegmentRecord.__table__  # type: ignore[attr-defined]
AGENT_EVENTS = AgentEventRecord.__table__  # type: ignore[attr-defined]
AGENTS = AgentRecord.__table__  # type: ignore[attr-defined]
_SCALARS = [f.name for f in fields(Interaction) if f.name != "segments"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, and the same arithmetic on every database."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)


def row_sums(call: Interaction) -> dict[str, Any]:
    """The columns the KPI queries add up (adapters/kpi_store.py)."""
    return {
        "arrived_us": micros(call.arrived_at),
        "queued_us": _micros(call.queued_at),
        "ended_us": _micros(call.ended_at),
        "wait_seconds": call.wait_seconds,
        "handle_seconds": sum(s.handle_seconds for s in call.segments),
        "wrap_up_seconds": sum(s.wrap_up_seconds for s in call.segments),
    }


def row_sums_columns() -> tuple[str, ...]:
    """The columns `row_sums` fills, and the repeat gap the store keeps."""
    return (*row_sums(Interaction("", "", EPOCH)), "repeat_after")


def segment_rows(call: Interaction) -> list[dict[str, Any]]:
    return _segment_rows(call.call_id, call.segments)


def _segment_rows(call_id: str, segments: tuple[Segment, ...]) -> list[dict[str, Any]]:
    return [
        {
            "call_id": call_id,
            "n": n,
            "agent_id": s.agent_id,
            "answered_us": micros(s.answered_at),
            "handle_seconds": s.handle_seconds,
            "wrap_up_seconds": s.wrap_up_seconds,
        }
        for n, s in enumerate(segments)
    ]


def _gap(later: Any, earlier: Any) -> Any:
    return (later - earlier) / 1e6


def fill_repeats(connection: Connection) -> None:
    """Set every ended call's gap to the same caller's next arrival (bulk: a new
    database filled from elsewhere; the service keeps them as calls arrive)."""
    other = TABLE.alias("other")
    following = (
        select(func.min(other.c.arrived_us))
        .where(
            other.c.caller == TABLE.c.caller,
            other.c.call_id != TABLE.c.call_id,
            other.c.arrived_us >= TABLE.c.ended_us,
        )
        .scalar_subquery()
    )
    connection.execute(
        TABLE.update()
        .where(TABLE.c.ended_us.is_not(None), TABLE.c.repeat_after.is_(None))
        .values(repeat_after=_gap(following, TABLE.c.ended_us))
    )


async def _note_repeats(
    connection: AsyncConnection, row: dict[str, Any], arrival: bool, end: bool
) -> None:
    """On the call's `arrival`: the caller's earlier calls that ended by then, for which
    this is the repeat call unless an earlier one is. At its `end`: its own repeat,
    when one arrived already (a late save, or two calls at once)."""
    if arrival:
        gap = _gap(row["arrived_us"], TABLE.c.ended_us)
        repeated = await connection.execute(
            TABLE.update()
            .where(
                TABLE.c.caller == row["caller"],
                TABLE.c.call_id != row["call_id"],
                TABLE.c.ended_us <= row["arrived_us"],
                TABLE.c.repeat_after.is_(None) | (TABLE.c.repeat_after > gap),
            )
            .values(repeat_after=gap)
            .returning(TABLE.c.queued_us)
        )
        await unmark(connection, [queued for (queued,) in repeated.all()])
    if row["ended_us"] is None or not end:
        return
    other = TABLE.alias("other")
    following = (
        select(func.min(other.c.arrived_us))
        .where(
            other.c.caller == row["caller"],
            other.c.call_id != row["call_id"],
            other.c.arrived_us >= row["ended_us"],
        )
        .scalar_subquery()
    )
    # one statement: the gap to the next arrival if there is one, else as it was
    gap = func.coalesce(_gap(following, row["ended_us"]), TABLE.c.repeat_after)
    await connection.execute(
        TABLE.update().where(TABLE.c.call_id == row["call_id"]).values(repeat_after=gap)
    )


CHANGED = "changed"  # in a row to write: what changed since the record's last row
ALL_CHANGED = frozenset({"arrival", "segments", "end"})


def changed_row(before: Record | None, after: Record) -> dict[str, Any]:
    """The row of `after`, saying what changed since `before` (the record as last
    given to the writer): a first row is the arrival, and so on."""
    changed = set()
    if before is None:
        changed.add("arrival")
    segments = after.interaction.segments
    if segments != (before.interaction.segments if before is not None else ()):
        changed.add("segments")  # an arrival with none has none to replace
    if after.interaction.ended_at is not None and (
        before is None or before.interaction.ended_at is None
    ):
        changed.add("end")
    return {**record_row(after), CHANGED: frozenset(changed)}


def merge_changes(waiting: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """A newer row of a record takes the place of one still waiting to be written: it
    writes what either changed."""
    return {**newer, CHANGED: waiting.get(CHANGED, ALL_CHANGED) | newer.get(CHANGED, ALL_CHANGED)}


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
    row.update(row_sums(call))
    return row


def _segments(rows: list[dict[str, Any]]) -> tuple[Segment, ...]:
    return tuple(
        Segment(
            s["agent_id"],
            _moment(s["answered_at"]),  # type: ignore[arg-type]
            _moment(s["ended_at"]),  # type: ignore[arg-type]
            s.get("hold_seconds", 0.0),
            s.get("wrap_up_seconds", 0.0),
        )
        for s in rows
    )


def row_record(row: dict[str, Any]) -> Record:
    values = {name: row[name] for name in _SCALARS}
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = utc(value)
    segments = _segments(row["segments"])
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
        """Store a record as it is now, with its segments and the callers' repeat gaps."""
        async with self.engine.begin() as connection:
            await self.write(connection, row)

    @staticmethod
    async def write(connection: AsyncConnection, row: dict[str, Any]) -> None:
        """`save` within a transaction of the caller's.

        A row from `changed_row` says what changed since the record's last stored row,
        and only that is written besides the record's own row: its segments, the repeat
        links of its arrival (the first row) and of its end."""
        changed = row.get(CHANGED, ALL_CHANGED)
        segments = _segment_rows(row["call_id"], _segments(row["segments"]))
        await upsert(connection, TABLE, {k: v for k, v in row.items() if k != CHANGED}, "call_id")
        if "segments" in changed:
            call = SEGMENTS.c.call_id == row["call_id"]
            await connection.execute(SEGMENTS.delete().where(call))
            for segment in segments:
                await insert(connection, SEGMENTS, segment)
        await _note_repeats(connection, row, "arrival" in changed, "end" in changed)
        moments = [row["arrived_us"], row["queued_us"]]
        await unmark(connection, [*moments, *(s["answered_us"] for s in segments)])

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
    connection: AsyncConnection, start: datetime, end: datetime, agent: str | None = None
) -> dict[str, list[tuple[datetime, str]]]:
    """Each agent's state changes in [start, end), after the last one before `start`
    (the state the agent was in when the window opened): every agent with a profile or
    a change in the window, or only `agent`. Read by time, each agent's last change
    before by its own index entry, so the cost follows the window, not the history."""
    e = AGENT_EVENTS.c
    within = select(e.agent_id, e.at, e.to_state).where(e.at >= start, e.at < end)
    if agent is not None:
        within = within.where(e.agent_id == agent)
    found = (await connection.execute(within.order_by(e.at, e.id))).all()
    if agent is not None:
        who = {agent}
    else:
        profiles = (await connection.execute(select(AGENTS.c.id))).all()
        who = {row[0] for row in profiles} | {row[0] for row in found}
    rows = []
    for agent_id in sorted(who):
        last = (
            await connection.execute(
                select(e.agent_id, e.at, e.to_state)
                .where(e.agent_id == agent_id, e.at < start)
                .order_by(e.at.desc(), e.id.desc())
                .limit(1)
            )
        ).first()
        if last is not None:
            rows.append(last)
    changes: dict[str, list[tuple[datetime, str]]] = {}
    for agent_id, at, state in [*rows, *found]:
        moment = utc(at)
        assert moment is not None
        changes.setdefault(agent_id, []).append((moment, state))
    return changes
