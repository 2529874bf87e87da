"""The writer's transaction gathers blind writes into one statement per run of rows, on
SQLite and PostgreSQL: what lands, and what reads in between see, is what writing each
row at once gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ari_app.adapters.agent_store import AgentStore
from ari_app.adapters.db import Writer, insert, upsert
from ari_app.adapters.kpi_rollup import gathering_unmarks
from ari_app.adapters.tables import AgentEventRecord, AgentStateRecord
from tests.db.parts import THROUGH_THE_DATABASE, drained

STATES = AgentStateRecord.__table__  # type: ignore[attr-defined]
EVENTS = AgentEventRecord.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
AGENTS = ("anna", "ben", "cleo")


def _steps(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Writes of the kinds the call path makes, and statements between them that read or
    change the same tables."""
    steps: list[dict[str, Any]] = []
    for n in range(count):
        agent, at = rng.choice(AGENTS), T0 + timedelta(seconds=n)
        kind = rng.choice(["state", "state", "short", "event", "event", "read", "bump"])
        state = rng.choice(["available", "ringing", "busy", "wrap_up"])
        if kind == "state":
            row = {"agent_id": agent, "state": state, "since": at, "reason": f"r{n}", "missed": n}
        elif kind == "short":  # fewer columns: another statement for the same table
            row = {"agent_id": agent, "state": state, "reason": f"s{n}"}
        elif kind == "event":
            row = {"agent_id": agent, "at": at, "event": f"e{n}", "from_state": "available",
                   "to_state": state, "reason": "", "source": "acd"}  # fmt: skip
        else:
            row = {"agent_id": agent}
        steps.append({"kind": kind, "row": row})
    return steps


async def _step(connection: AsyncConnection, step: dict[str, Any], seen: list[Any]) -> None:
    kind, row = step["kind"], step["row"]
    if kind in ("state", "short"):
        await upsert(connection, STATES, row, "agent_id")
    elif kind == "event":
        await insert(connection, EVENTS, row)
    elif kind == "read":
        states = (await connection.execute(select(STATES).order_by(STATES.c.agent_id))).all()
        count = await connection.scalar(
            select(func.count()).select_from(EVENTS).where(EVENTS.c.agent_id == row["agent_id"])
        )
        seen.append(([tuple(r) for r in states], count))
    else:  # a statement that is no blind write, on a table with rows held
        bump = STATES.c.agent_id == row["agent_id"]
        await connection.execute(update(STATES).where(bump).values(missed=STATES.c.missed + 1))


async def _landed(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
    async with engine.connect() as connection:
        states = (await connection.execute(select(STATES).order_by(STATES.c.agent_id))).all()
        order = EVENTS.c.id
        events = (await connection.execute(select(EVENTS).order_by(order))).all()
    return [tuple(r) for r in states], [tuple(r)[1:] for r in events]


async def _cleared(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(STATES.delete())
        await connection.execute(EVENTS.delete())


@settings(THROUGH_THE_DATABASE, max_examples=30)
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(1, 40),
    every=st.sampled_from([1, 3, 1000]),
)
async def test_gathered_writes_land_and_read_as_writes_made_one_by_one(
    engine: AsyncEngine, rng: random.Random, count: int, every: int
) -> None:
    """Upserts of one agent's state with two sets of columns, audit rows, reads and an
    update of the states in between, through the writer in transactions of `every`
    steps, against each step in a transaction of its own with nothing gathered."""
    steps = _steps(rng, count)
    await _cleared(engine)
    writer, through_writer = Writer(engine), []
    for n, step in enumerate(steps, 1):
        writer.submit("step", lambda c, s: _step(c, s, through_writer), step)
        if n % every == 0:
            await drained(writer)
    await drained(writer)
    gathered = await _landed(engine)
    await _cleared(engine)
    one_by_one: list[Any] = []
    for step in steps:
        async with engine.begin() as connection:
            await _step(connection, step, one_by_one)
    assert through_writer == one_by_one
    assert gathered == await _landed(engine)


async def test_agents_states_and_their_audit_rows_of_one_transaction_go_as_two_statements(
    engine: AsyncEngine,
) -> None:
    """Ten agents' state changes written in one transaction, as the ACD writes them (with
    the KPI marks gathered, as the service's writer does): two inserts, not twenty."""
    await _cleared(engine)
    sent: list[str] = []

    def count(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 3)[2] if statement.startswith("INSERT") else "")

    writer = Writer(engine, around=gathering_unmarks)
    for n in range(10):
        at = T0 + timedelta(seconds=n)
        state = {"agent_id": f"agent-{n}", "state": "busy", "since": at, "reason": ""}
        change = {"agent_id": f"agent-{n}", "at": at, "event": "answered", "reason": "",
                  "from_state": "ringing", "to_state": "busy", "source": "acd"}  # fmt: skip
        writer.submit("agent_state", AgentStore.write_state, {"state": state, "event": change})
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await drained(writer)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert sorted(t for t in sent if t) == ["agent_event", "agent_state"], sent
    states, events = await _landed(engine)
    assert len(states) == len(events) == 10
