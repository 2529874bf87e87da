"""The KPI sums the database adds up are the sums domain/kpi.py's definitions give,
on generated calls of every kind (answered, transferred, abandoned short and long,
sent on, blocked, self-served, still waiting, disposed), for any window, interval
and targets, on SQLite and PostgreSQL. The calls are saved in a shuffled order, so
a repeat call is noted whether it is saved before or after the call it repeats.

The report itself, with some intervals kept added up (under these targets or
others) and then changed by late saves (a disposition, a repeat call, a call that
ends), gives the figures the definitions give over all the calls."""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.agent_store import AgentStore
from ari_app.adapters.db import Writer
from ari_app.adapters.interaction_store import (
    AGENT_EVENTS,
    SEGMENTS,
    TABLE,
    InteractionStore,
    changed_row,
    merge_changes,
    record_row,
)
from ari_app.adapters.interaction_store import AGENTS as PROFILES
from ari_app.adapters.interaction_store import (
    micros as micros_of,
)
from ari_app.adapters.kpi_rollup import INTERVALS, STEP_US, SUMS, bucket_of, gathering_unmarks
from ari_app.adapters.kpi_store import Cuts, KpiStore
from ari_app.domain.interaction import Record, agent_spans
from ari_app.domain.kpi import (
    AgentSums,
    Arrivals,
    Interaction,
    IvrSums,
    QueueSums,
    Segment,
    Targets,
    agent_figures,
    agent_sums,
    interval_start,
    intervals,
    ivr_figures,
    queue_figures,
    queue_sums,
    state_time,
)
from ari_app.services.kpis import KpiKeeper, KpiReports, ReportAsk, targets_key
from tests.db.parts import THROUGH_THE_DATABASE, drained, same_figures

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
QUEUES = ("billing", "sales", "tech")
AGENTS = ("anna", "ben", "chloe")


def _at(rng: random.Random, after: datetime, most: float) -> datetime:
    """A moment after `after`, whole seconds or not (both kinds reach the edges)."""
    seconds = rng.choice([rng.randrange(1, int(most) + 1), rng.uniform(0.5, most)])
    return after + timedelta(seconds=seconds)


def _call(n: int, rng: random.Random) -> Interaction:
    arrived = T0 + timedelta(seconds=rng.choice([rng.randrange(4 * 3600), rng.uniform(0, 14400)]))
    caller = f"55501{rng.randrange(8)}"  # few callers: repeats happen
    queue = rng.choice(QUEUES)
    queued = _at(rng, arrived, 30)
    fate = rng.choice(["answered", "transferred", "abandoned", "short", "sent_on", "blocked",
                       "self_served", "waiting", "ivr_only"])  # fmt: skip
    resolved = rng.choice([None, None, True, False])
    call_id = f"c{n}"
    if fate == "self_served":
        return Interaction(call_id, caller, arrived, _at(rng, arrived, 120), True, True)
    if fate == "ivr_only":
        return Interaction(call_id, caller, arrived, _at(rng, arrived, 60), rng.random() < 0.5)
    ivr = rng.random() < 0.7
    if fate in ("answered", "transferred"):
        answered = _at(rng, queued, 60)
        ended = _at(rng, answered, 400)
        hold = rng.choice([0.0, 12.5])
        segments = [Segment(rng.choice(AGENTS), answered, ended, hold, rng.uniform(0, 40))]
        if fate == "transferred":
            later = _at(rng, ended, 200)
            segments.append(Segment(rng.choice(AGENTS), ended, later, 0.0, 10.0))
            ended = later
        return Interaction(call_id, caller, arrived, ended, ivr, False, queue, queued, answered,
                           segments=tuple(segments), resolved=resolved)  # fmt: skip
    if fate in ("abandoned", "short"):
        gone = _at(rng, queued, 9 if fate == "short" else 120)
        return Interaction(call_id, caller, arrived, gone, ivr, False, queue, queued,
                           abandoned_at=gone)  # fmt: skip
    if fate == "sent_on":
        left = _at(rng, queued, 300)
        return Interaction(call_id, caller, arrived, _at(rng, left, 60), ivr, False, queue,
                           queued, left_at=left)  # fmt: skip
    if fate == "blocked":
        return Interaction(call_id, caller, arrived, _at(rng, queued, 20), ivr, False, queue,
                           queued, blocked=True)  # fmt: skip
    return Interaction(call_id, caller, arrived, None, ivr, False, queue, queued)  # waiting


@settings(THROUGH_THE_DATABASE, max_examples=25)
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(0, 40),
    window=st.tuples(st.integers(-30, 240), st.integers(1, 300)),
    interval=st.sampled_from([None, 15, 30, 60]),
    short=st.sampled_from([0.0, 5.0, 5.5]),
    fcr_window=st.sampled_from([600.0, 3600.0, 86400.0]),
    sl=st.dictionaries(st.sampled_from(QUEUES), st.sampled_from([10.0, 20.0, 30.5])),
)
async def test_the_database_sums_are_the_definitions(
    engine: AsyncEngine,
    rng: random.Random,
    count: int,
    window: tuple[int, int],
    interval: int | None,
    short: float,
    fcr_window: float,
    sl: dict[str, float],
) -> None:
    async with engine.begin() as connection:
        await connection.execute(SEGMENTS.delete())
        await connection.execute(TABLE.delete())
    calls = [_call(n, rng) for n in range(count)]
    store = InteractionStore(engine)
    for call in rng.sample(calls, len(calls)):
        await store.save(record_row(Record(call)))
    start = T0 + timedelta(minutes=window[0])
    end = start + timedelta(minutes=window[1])
    targets = Targets(sl, short_abandon=short, fcr_window=fcr_window)
    if interval:
        cuts = intervals(start, end, interval)
        first, step = interval_start(start, interval), timedelta(minutes=interval)
    else:
        cuts, first, step = [(start, end)], start, end - start
    window_cuts = Cuts(start, end, first, step // timedelta(microseconds=1))
    sums = KpiStore(engine)
    by_queue = await sums.queue_sums(window_cuts, targets, None)
    by_agent = await sums.agent_sums(window_cuts, None)
    by_ivr = await sums.ivr_sums(window_cuts)

    arrivals = Arrivals(calls)
    for n, (cut_start, cut_end) in enumerate(cuts):
        for queue in QUEUES:
            expected = queue_sums(queue, calls, cut_start, cut_end, targets, arrivals)
            got = by_queue.get((queue, n), QueueSums())
            same_figures(asdict(got), asdict(expected), f"{queue} {n}")
        for agent in AGENTS:
            same_figures(
                asdict(by_agent.get((agent, n), AgentSums())),
                asdict(agent_sums(agent, calls, cut_start, cut_end)),
                f"{agent} {n}",
            )
        arrived = [c for c in calls if c.ivr and cut_start <= c.arrived_at < cut_end]
        assert by_ivr.get(n, IvrSums()) == IvrSums(
            len(arrived), sum(1 for c in arrived if c.self_served)
        )
    assert {n for _, n in by_queue} <= set(range(len(cuts)))


async def _agents_at_work(
    engine: AsyncEngine, rng: random.Random
) -> dict[str, list[tuple[datetime, str]]]:
    """Each agent's profile and a few hours of state changes (from before the calls on),
    stored as the ACD stores them; the changes, in order."""
    states = ["available", "reserved", "on_call", "wrap_up", "paused", "logged_out"]
    changes: dict[str, list[tuple[datetime, str]]] = {}
    rows = []
    for agent in AGENTS:
        moment = T0 - timedelta(minutes=rng.uniform(0, 90))
        changes[agent] = []
        while moment < T0 + timedelta(hours=6) and len(changes[agent]) < 30:
            changes[agent].append((moment, rng.choice(states)))
            moment += timedelta(seconds=rng.choice([rng.uniform(5, 1800), rng.randrange(1, 900)]))
        rows += [{"agent_id": agent, "at": at, "event": "e", "from_state": "", "to_state": state,
                  "reason": "", "source": "acd"} for at, state in changes[agent]]  # fmt: skip
    rows.sort(key=lambda row: row["at"])  # ids in the order of time, as the ACD writes them
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        profiles = [{"id": a, "name": a, "team": "", "skills": {}, "wrap_up_seconds": 0,
                     "sip_digest": "0" * 32, "created_at": now, "updated_at": now}
                    for a in AGENTS]  # fmt: skip
        await connection.execute(PROFILES.insert(), profiles)
        await connection.execute(AGENT_EVENTS.insert(), rows)
    return changes


def _late(call: Interaction, rng: random.Random, n: int) -> list[Interaction]:
    """A change after the sums were kept: disposed, ended, or called again."""
    kind = rng.choice(["disposed", "again", "ended"])
    if kind == "disposed" and call.answered_at is not None:
        return [replace(call, resolved=not call.resolved)]
    if kind == "ended" and call.ended_at is None:
        end = (call.queued_at or call.arrived_at) + timedelta(seconds=50)
        return [replace(call, ended_at=end, abandoned_at=end if call.queued_at else None)]
    after = (call.ended_at or call.arrived_at) + timedelta(seconds=rng.uniform(1, 900))
    return [call, Interaction(f"late{n}", call.caller, after, after + timedelta(seconds=9), True)]


def _as_it_happens(call: Interaction) -> list[Interaction]:
    """The record of a call as the call path writes it: arrived, then each segment as it
    opens (and the transfer's first one closed), then as it is (ended, or waiting)."""
    versions = [replace(call, ended_at=None, queue=None, queued_at=None, answered_at=None,
                        abandoned_at=None, left_at=None, blocked=False, resolved=None,
                        segments=())]  # fmt: skip
    for n in range(len(call.segments)):
        versions.append(replace(call, ended_at=None, segments=call.segments[: n + 1]))
    return [*versions, call]


async def _stored(engine: AsyncEngine) -> tuple[dict[str, dict[str, Any]], set[tuple[Any, ...]]]:
    """Each call's row (but when it was written) and every segment row."""
    async with engine.connect() as connection:
        calls = (await connection.execute(TABLE.select())).mappings().all()
        segments = (await connection.execute(SEGMENTS.select())).all()
    rows = {row["call_id"]: {k: v for k, v in row.items() if k != "updated_at"} for row in calls}
    return rows, {tuple(row) for row in segments}


@settings(THROUGH_THE_DATABASE, max_examples=15)
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(1, 30),
    every=st.sampled_from([1, 4, 1000]),
)
async def test_records_written_change_by_change_are_stored_as_if_written_whole(
    engine: AsyncEngine, rng: random.Random, count: int, every: int
) -> None:
    """The call path writes each change of a record with what changed (the arrival's
    repeat links on its first row, the segments when they change, its own repeat link
    at its end), a newer row taking the place of one still waiting: the calls of a
    few callers, their changes interleaved and written in batches of `every` changes,
    end stored as their final records written whole."""
    async with engine.begin() as connection:
        await connection.execute(SEGMENTS.delete())
        await connection.execute(TABLE.delete())
    calls = [_call(n, rng) for n in range(count)]
    pending = {c.call_id: _as_it_happens(c) for c in calls}
    store, writer = InteractionStore(engine), Writer(engine)
    last: dict[str, Record] = {}
    changes = 0
    while pending:
        call_id = rng.choice(sorted(pending))
        record = Record(pending[call_id].pop(0))
        if not pending[call_id]:
            del pending[call_id]
        row = changed_row(last.get(call_id), record)
        writer.submit("interaction", store.write, row, call_id, merge_changes)
        last[call_id], changes = record, changes + 1
        if changes % every == 0:
            await drained(writer)
    await drained(writer)
    changed_by_change = await _stored(engine)
    async with engine.begin() as connection:
        await connection.execute(SEGMENTS.delete())
        await connection.execute(TABLE.delete())
    for call in calls:
        await store.save(record_row(Record(call)))
    whole = await _stored(engine)
    differ = {
        call_id: {k: (v, whole[0][call_id][k]) for k, v in row.items() if whole[0][call_id][k] != v}
        for call_id, row in changed_by_change[0].items()
    }
    assert {c: d for c, d in differ.items() if d} == {}
    assert changed_by_change[0].keys() == whole[0].keys()
    assert changed_by_change[1] == whole[1]


@settings(THROUGH_THE_DATABASE, max_examples=30)
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(0, 40),
    window=st.tuples(st.integers(-30, 240), st.integers(1, 300)),
    interval=st.sampled_from([None, 15, 30, 60]),
    kept=st.lists(st.tuples(st.integers(-4, 16), st.integers(1, 24)), min_size=1, max_size=4),
    other_targets=st.sampled_from([False, False, False, True]),
    late=st.integers(0, 4),
    together=st.booleans(),
)
async def test_a_report_over_kept_and_changed_intervals_is_the_definitions(
    engine: AsyncEngine,
    rng: random.Random,
    count: int,
    window: tuple[int, int],
    interval: int | None,
    kept: list[tuple[int, int]],
    other_targets: bool,
    late: int,
    together: bool,
) -> None:
    """`together`: the late saves go as the service writes, in one transaction of the
    writer's that takes away what they unmark once, at its end."""
    async with engine.begin() as connection:
        for table in (*SUMS, INTERVALS, SEGMENTS, TABLE, AGENT_EVENTS, PROFILES):
            await connection.execute(table.delete())
    calls = {c.call_id: c for c in (_call(n, rng) for n in range(count))}
    store, sums = InteractionStore(engine), KpiStore(engine)
    for call in calls.values():
        await store.save(record_row(Record(call)))
    changes = await _agents_at_work(engine, rng)
    targets = Targets({"billing": 15.0}, short_abandon=5.0, fcr_window=3600.0)
    keep_under = Targets(fcr_window=60.0) if other_targets else targets
    for first, length in kept:
        lo = micros_of(T0) + first * STEP_US
        await sums.keep((lo, lo + length * STEP_US), keep_under, targets_key(keep_under))
    writer = Writer(engine, around=gathering_unmarks)
    for n, call in enumerate(rng.sample(list(calls.values()), min(late, len(calls)))):
        for changed in _late(call, rng, n):
            calls[changed.call_id] = changed
            if together:
                writer.submit("interaction", store.write, record_row(Record(changed)))
            else:
                await store.save(record_row(Record(changed)))
    await drained(writer)
    start = T0 + timedelta(minutes=window[0])
    end = start + timedelta(minutes=window[1])
    body = await KpiReports(sums, lambda: targets).report(ReportAsk(start, end, interval=interval))

    everything = list(calls.values())
    arrivals = Arrivals(everything)
    queues = sorted(
        {c.queue for c in everything if c.queue and c.queued_at and start <= c.queued_at < end}
    )
    spans = [span for a in AGENTS for span in agent_spans(a, changes[a], T0 + timedelta(days=1))]
    agents = [a for a in AGENTS if agent_sums(a, everything, start, end) + state_time(
        [s for s in spans if s.agent_id == a], start, end)]  # fmt: skip

    def expected(cut_start: datetime, cut_end: datetime) -> dict[str, object]:
        return {
            "from": cut_start,
            "to": cut_end,
            "queues": [
                asdict(queue_figures(q, everything, cut_start, cut_end, targets, arrivals=arrivals))
                for q in queues
            ],
            "agents": [
                asdict(agent_figures(a, everything, spans, cut_start, cut_end)) for a in agents
            ],
            "ivr": asdict(ivr_figures(everything, cut_start, cut_end)),
        }

    wanted = expected(start, end)
    if interval:
        wanted["intervals"] = [expected(*cut) for cut in intervals(start, end, interval)]
    wanted["definitions"] = "ari_app/domain/kpi.py"
    same_figures(body, wanted, "report")


async def test_the_keeper_keeps_what_is_over_and_the_report_stays_thesame_figures(
    engine: AsyncEngine,
) -> None:
    rng = random.Random(11)
    store, sums = InteractionStore(engine), KpiStore(engine)
    for n in range(60):
        await store.save(record_row(Record(_call(n, rng))))
    targets = Targets({"billing": 15.0})
    reports = KpiReports(sums, lambda: targets)
    ask = ReportAsk(T0 - timedelta(minutes=7), T0 + timedelta(hours=5), interval=30)
    before = await reports.report(ask)

    writer = Writer(engine)
    now = T0 + timedelta(hours=4, minutes=20)  # intervals over for an hour: to 03:15
    keeper = KpiKeeper(sums, writer, lambda: targets, clock=lambda: now)
    assert await keeper.catch_up() == 1  # from the first record on: less than a day
    assert await keeper.catch_up() == 0  # not again while that is written
    await drained(writer)
    day = (micros_of(T0), micros_of(T0 + timedelta(hours=5)))
    kept = await sums.marked(day, targets_key(targets))
    # from the first arrival's interval (08:00) to those over for an hour (to 11:15)
    assert kept == [micros_of(T0) + n * STEP_US for n in range(13)]
    assert await keeper.catch_up() == 0  # nothing new is over
    same_figures(await reports.report(ask), before, "report")

    # a late disposition unmarks its interval; the next round keeps it again
    stored = [(await store.get(f"c{n}")) for n in range(60)]
    answered = next(
        r.interaction
        for r in stored
        if r is not None
        and r.interaction.answered_at
        and r.interaction.queued_at
        and r.interaction.queued_at < T0 + timedelta(hours=3)
    )
    assert answered.queued_at is not None
    await store.save(record_row(Record(replace(answered, resolved=answered.resolved is not True))))
    bucket = bucket_of(micros_of(answered.queued_at))
    assert bucket not in await sums.marked((kept[0], kept[-1] + STEP_US), targets_key(targets))
    assert await keeper.catch_up() == 1
    await drained(writer)
    assert bucket in await sums.marked((kept[0], kept[-1] + STEP_US), targets_key(targets))
    after = await reports.report(ask)
    async with engine.begin() as connection:
        for table in (*SUMS, INTERVALS):
            await connection.execute(table.delete())
    same_figures(after, await reports.report(ask), "report")  # kept or not, the same figures
    assert after != before  # the disposition counts

    # an agent's state change written late (the database was away) unmarks from its
    # moment on: the state lasts until the next change
    await keeper.catch_up()
    await drained(writer)
    late = T0 + timedelta(hours=2, minutes=5)
    await AgentStore(engine).save_state(
        {"agent_id": "anna", "state": "available"},
        {"agent_id": "anna", "at": late, "event": "e", "from_state": "logged_out",
         "to_state": "available", "reason": "", "source": "api"},
    )  # fmt: skip
    left = await sums.marked(day, targets_key(targets))
    assert left == [m for m in kept if m < bucket_of(micros_of(late))]

    # the same, written as the service writes: with a record's late change, in one
    # transaction that takes away once, at its end, what both unmark
    await keeper.catch_up()
    await drained(writer)
    together = Writer(engine, around=gathering_unmarks)
    earlier = T0 + timedelta(hours=1, minutes=50)
    for agent, at in (("chloe", earlier + timedelta(hours=1)), ("ben", earlier)):
        together.submit("agent_state", AgentStore.write_state, {
            "state": {"agent_id": agent, "state": "paused"},
            "event": {"agent_id": agent, "at": at, "event": "e", "from_state": "available",
                      "to_state": "paused", "reason": "", "source": "api"},
        })  # fmt: skip
    first_call = stored[0]
    assert first_call is not None
    together.submit("interaction", store.write, record_row(first_call))
    await drained(together)
    assert together.transactions == 1
    call = first_call.interaction
    moments = [call.arrived_at, call.queued_at, *(s.answered_at for s in call.segments)]
    unmarked = {bucket_of(micros_of(m)) for m in moments if m is not None}
    assert await sums.marked(day, targets_key(targets)) == [
        m for m in kept if m < bucket_of(micros_of(earlier)) and m not in unmarked
    ]
