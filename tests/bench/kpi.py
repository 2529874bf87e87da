"""`make bench`: the KPI report over a month of interactions, and the live figures' cost
per event.

The report: `--calls` generated interaction records (10 queues, 100 agents, 30
days; four in five answered, one in five with a transfer's second segment, the
rest abandoned or blocked), with four agent state changes around each segment,
are written to a fresh SQLite file and a fresh PostgreSQL database, and the
30-day report (every queue and agent, occupancy included) is timed on each: from
the records alone, and over the 15-minute sums the keeper keeps. The live
figures: a day of events (queued, answered or abandoned, agents' state changes)
replayed into the live service (figures and alerts evaluated on each, as in the
service), timed per event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ari_app.adapters.db import Writer, engine_for, migrate
from ari_app.adapters.interaction_store import (
    AGENT_EVENTS,
    AGENTS,
    SEGMENTS,
    TABLE,
    fill_repeats,
    record_row,
    row_record,
    segment_rows,
)
from ari_app.adapters.kpi_store import KpiStore
from ari_app.domain.acd import Acd
from ari_app.domain.interaction import Record
from ari_app.domain.kpi import Interaction, Segment, Targets
from ari_app.domain.routing.config import QueueConfig
from ari_app.domain.routing.rules import QueueRules, RoutingStep
from ari_app.services.kpis import KpiKeeper, KpiReports, ReportAsk
from ari_app.services.live import LiveService
from tests.db.parts import drained, same_figures

T0 = datetime(2026, 10, 1, tzinfo=UTC)
POSTGRES = os.environ.get("ARI_APP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _call(n: int, rng: random.Random) -> dict[str, Any]:
    arrived = T0 + timedelta(seconds=rng.uniform(0, 30 * 86400))
    queued = arrived + timedelta(seconds=rng.uniform(5, 40))
    call = Interaction(f"c{n}", f"555{rng.randrange(200000):06d}", arrived, ivr=True)
    fate = rng.random()
    if fate < 0.8:
        answered = queued + timedelta(seconds=rng.expovariate(1 / 15))
        ended = answered + timedelta(seconds=rng.uniform(60, 400))
        segments = [Segment(f"a{rng.randrange(100)}", answered, ended, 0.0, rng.uniform(5, 60))]
        if rng.random() < 0.2:
            later = ended + timedelta(seconds=rng.uniform(60, 300))
            segments.append(Segment(f"a{rng.randrange(100)}", ended, later, 0.0, 10.0))
            ended = later
        call = Interaction(
            call.call_id, call.caller, arrived, ended, True, False, f"q{rng.randrange(10)}",
            queued, answered, segments=tuple(segments),
        )  # fmt: skip
    elif fate < 0.95:
        gone = queued + timedelta(seconds=rng.uniform(1, 120))
        call = Interaction(
            call.call_id, call.caller, arrived, gone, True, False, f"q{rng.randrange(10)}",
            queued, abandoned_at=gone,
        )  # fmt: skip
    else:
        call = Interaction(
            call.call_id, call.caller, arrived, queued, True, False, f"q{rng.randrange(10)}",
            queued, blocked=True,
        )  # fmt: skip
    return record_row(Record(call))


def _agent_events(calls: list[Interaction]) -> list[dict[str, Any]]:
    """The agents' state changes around each segment: rung, on the call, wrapping up,
    free again (four a segment, as the ACD writes them)."""
    rows = []
    for call in calls:
        for s in call.segments:
            free = s.ended_at + timedelta(seconds=s.wrap_up_seconds)
            for at, before, after in (
                (s.answered_at - timedelta(seconds=3), "available", "reserved"),
                (s.answered_at, "reserved", "on_call"),
                (s.ended_at, "on_call", "wrap_up"),
                (free, "wrap_up", "available"),
            ):
                rows.append({"agent_id": s.agent_id, "at": at, "event": "e", "from_state": before,
                             "to_state": after, "reason": "", "source": "acd"})  # fmt: skip
    return rows


async def _fill(url: str, calls: int) -> float:
    migrate(url)
    engine = engine_for(url)
    rng = random.Random(7)
    started = time.perf_counter()
    async with engine.begin() as connection:
        for start in range(0, calls, 5000):
            rows = [_call(n, rng) for n in range(start, min(start + 5000, calls))]
            await connection.execute(TABLE.insert(), rows)
            calls_ = [row_record(row).interaction for row in rows]
            segments = [s for call in calls_ for s in segment_rows(call)]
            await connection.execute(SEGMENTS.insert(), segments)
            await connection.execute(AGENT_EVENTS.insert(), _agent_events(calls_))
        await connection.execute(
            AGENTS.insert(),
            [{"id": f"a{n}", "name": f"a{n}", "team": "", "skills": {}, "wrap_up_seconds": 0,
              "sip_digest": "0" * 32, "created_at": T0, "updated_at": T0} for n in range(100)],
        )  # fmt: skip
        await connection.run_sync(fill_repeats)
    await engine.dispose()
    return time.perf_counter() - started


async def _report(url: str) -> tuple[float, float, float]:
    """The 30-day report from the records alone; the time to keep the month's
    15-minute sums (as the service's keeper does); the report over the kept sums."""
    engine = engine_for(url)
    sums = KpiStore(engine)
    reports = KpiReports(sums, Targets)
    ask = ReportAsk(T0, T0 + timedelta(days=30))
    started = time.perf_counter()
    raw = await reports.report(ask)
    from_records = time.perf_counter() - started

    writer = Writer(engine)
    now = T0 + timedelta(days=30, hours=1)
    keeper = KpiKeeper(sums, writer, Targets, clock=lambda: now)
    started = time.perf_counter()
    while await keeper.catch_up():  # rounds of a few days, as the service does each minute
        await drained(writer, timeout=3600)
    keeping = time.perf_counter() - started

    started = time.perf_counter()
    body = await reports.report(ask)
    from_kept = time.perf_counter() - started
    assert sum(q["offered"] for q in body["queues"]) > 0
    same_figures(body, raw, "the report over the kept sums")
    await engine.dispose()
    return from_records, keeping, from_kept


def _print(name: str, calls: int, filled: float, times: tuple[float, float, float]) -> None:
    from_records, keeping, from_kept = times
    print(
        f"{name}: {calls:,} interactions written in {filled:.1f} s; 30-day report from the "
        f"records {from_records:.2f} s; the month's 15-minute sums kept in {keeping:.1f} s; "
        f"30-day report over the kept sums {from_kept:.3f} s"
    )


async def report_bench(calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite:///{Path(folder) / 'bench.db'}"
        filled = await _fill(sqlite, calls)
        _print("SQLite", calls, filled, await _report(sqlite))
    name = f"ari_app_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
        filled = await _fill(url, calls)
        _print("PostgreSQL", calls, filled, await _report(url))
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def live_bench(events: int) -> None:
    queues = {
        f"q{i}": QueueConfig(QueueRules(f"q{i}", {f"s{i}": 1}, (RoutingStep(),))) for i in range(10)
    }
    service = LiveService(Acd(queues), None)
    rng = random.Random(3)
    moment = T0
    waiting: list[tuple[str, str]] = []
    started = time.perf_counter()
    for n in range(events):
        moment += timedelta(seconds=0.5)
        kind = rng.random()
        if kind < 0.4 or not waiting:
            call = (f"c{n}", f"q{rng.randrange(10)}")
            waiting.append(call)
            service.queued(call[0], call[1], moment)
        elif kind < 0.8:
            call_id, _ = waiting.pop(rng.randrange(len(waiting)))
            service.wait_ended(call_id, moment, answered=rng.random() < 0.9, abandoned=False)
        else:
            service.agent_state(f"a{rng.randrange(100)}", "available", "", moment)
    took = time.perf_counter() - started
    print(f"live figures: {events:,} events, {took / events * 1e6:.1f} µs per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    live_bench(args.events)
    asyncio.run(report_bench(args.calls))


if __name__ == "__main__":
    main()
