"""KPI reports: the sums of a window's interactions, added up by the database
(adapters/kpi_store.py) per queue, agent and interval, turned into the figures
domain/kpi.py defines; agents' time in each state from their state changes.

The sums of past 15-minute intervals are kept added up (adapters/kpi_rollup.py) by
`KpiKeeper`; a report reads those where they are kept under the current targets
and adds up the rest of its window (its edges, the last hour, intervals a late
change unmarked) from the records.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError

from ari_app.adapters.db import Writer
from ari_app.adapters.interaction_store import micros
from ari_app.adapters.kpi_rollup import STEP_US, bucket_of
from ari_app.adapters.kpi_store import Cuts, KpiStore, Span
from ari_app.domain.kpi import AgentSums, IvrSums, QueueSums, Targets, interval_start, intervals
from ari_app.domain.routing.config import QueueConfig
from ari_app.settings import Settings

log = structlog.get_logger(__name__)

MAX_WINDOW = timedelta(days=92)
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
MAX_PIECES = 24  # more parts of a window left to add up from the records: all of it
KEEP_SETTLE = timedelta(hours=1)  # an interval is kept added up this long after it ends
KEEP_SPAN = 96  # intervals added up in one go (a day)
KEEP_ROUND = 4  # spans a round, at most
S = TypeVar("S")


def targets_key(targets: Targets) -> str:
    """The targets the kept sums were added up under, as a short key."""
    text = json.dumps(
        [
            sorted(targets.service_level_seconds.items()),
            targets.default_service_level_seconds,
            targets.short_abandon,
            targets.fcr_window,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def pieces(span: Span, kept: list[int]) -> list[Span]:
    """The parts of `span` that the kept intervals (sorted) do not cover."""
    found, cursor = [], span[0]
    for bucket in kept:
        if bucket > cursor:
            found.append((cursor, bucket))
        cursor = bucket + STEP_US
    if cursor < span[1]:
        found.append((cursor, span[1]))
    return found


def _add(into: dict[Any, S], part: dict[Any, S]) -> None:
    for key, sums in part.items():
        into[key] = into[key] + sums if key in into else sums  # type: ignore[operator]


def targets_of(queues: Mapping[str, QueueConfig], settings: Settings) -> Targets:
    """The KPI targets: each queue's service level, the settings' rest."""
    return Targets(
        {name: queue.service_level.seconds for name, queue in queues.items()},
        short_abandon=settings.short_abandon_seconds,
        fcr_window=settings.fcr_window_hours * 3600,
    )


class ReportRefused(ValueError):
    """A report that cannot be made as asked, with the reason."""


@dataclass(frozen=True)
class ReportAsk:
    start: datetime
    end: datetime
    queue: str | None = None
    agent: str | None = None
    interval: int | None = None  # minutes: 15, 30 or 60; None: the whole window


class KpiReports:
    def __init__(self, sums: KpiStore, targets: Callable[[], Targets]) -> None:
        self.sums, self.targets = sums, targets

    async def _sums(
        self, window: Cuts, targets: Targets, ask: ReportAsk
    ) -> tuple[
        dict[tuple[str, int], QueueSums], dict[tuple[str, int], AgentSums], dict[int, IvrSums]
    ]:
        """The window's sums by interval: kept ones where there are, the rest from the
        records."""
        lo, hi = window.span
        key = targets_key(targets)
        inner = (-(-lo // STEP_US) * STEP_US, bucket_of(hi))
        # a kept interval must fall in one interval of the report: always so for a
        # whole window; for 15, 30 or 60 minutes when the zone is whole quarter hours
        aligned = window.end == window.start + timedelta(microseconds=window.step_us) or (
            micros(window.first) % STEP_US == 0
        )
        kept = await self.sums.marked(inner, key) if aligned and inner[0] < inner[1] else []
        parts = pieces((lo, hi), kept)
        if len(parts) > MAX_PIECES:
            kept, parts = [], [(lo, hi)]
        by_queue: dict[tuple[str, int], QueueSums] = {}
        by_agent: dict[tuple[str, int], AgentSums] = {}
        by_ivr: dict[int, IvrSums] = {}
        if kept:
            span = (kept[0], kept[-1] + STEP_US)
            _add(by_queue, await self.sums.kept_queue_sums(window, span, key, ask.queue))
            _add(by_agent, await self.sums.kept_agent_sums(window, span, key, ask.agent))
            _add(by_ivr, await self.sums.kept_ivr_sums(window, span, key))
        for part in parts:
            _add(by_queue, await self.sums.queue_sums(window, targets, ask.queue, part))
            _add(by_agent, await self.sums.agent_sums(window, ask.agent, part))
            _add(by_agent, await self.sums.state_sums(window, ask.agent, part))
            _add(by_ivr, await self.sums.ivr_sums(window, part))
        return by_queue, by_agent, by_ivr

    async def report(self, ask: ReportAsk) -> dict[str, Any]:
        """The figures of the window, and of each interval when one is asked for."""
        if ask.start.tzinfo is None or ask.end.tzinfo is None:
            raise ReportRefused("from and to need a time zone (for example Z or +01:00)")
        if ask.end <= ask.start:
            raise ReportRefused("to must be after from")
        if ask.start < EARLIEST or ask.end > LATEST:
            raise ReportRefused(f"a window lies between {EARLIEST:%Y} and {LATEST:%Y}")
        if ask.end - ask.start > MAX_WINDOW:
            raise ReportRefused(f"a window is at most {MAX_WINDOW.days} days")
        if ask.interval not in (None, 15, 30, 60):
            raise ReportRefused("interval is 15, 30 or 60 minutes")
        targets = self.targets()
        if ask.interval:
            cuts = intervals(ask.start, ask.end, ask.interval)
            step = timedelta(minutes=ask.interval)
            first = interval_start(ask.start, ask.interval)
        else:
            cuts, step, first = [(ask.start, ask.end)], ask.end - ask.start, ask.start
        window = Cuts(ask.start, ask.end, first, step // timedelta(microseconds=1))
        by_queue, by_agent, by_ivr = await self._sums(window, targets, ask)
        queues = [ask.queue] if ask.queue else sorted({q for q, _ in by_queue})

        def figures(
            start: datetime,
            end: datetime,
            queue_sums: Callable[[str], QueueSums],
            agent_sums: Callable[[str], AgentSums],
            ivr: IvrSums,
        ) -> dict[str, Any]:
            return {
                "from": start,
                "to": end,
                "queues": [asdict(queue_sums(q).figures(q)) for q in queues],
                "agents": [asdict(agent_sums(a).figures(a)) for a in agents],
                "ivr": asdict(ivr.figures()),
            }

        whole_queue: dict[str, QueueSums] = defaultdict(QueueSums)
        whole_agent: dict[str, AgentSums] = defaultdict(AgentSums)
        for (queue, _), sums in by_queue.items():
            whole_queue[queue] += sums
        for (agent, _), agent_sums in by_agent.items():
            whole_agent[agent] += agent_sums
        # the agents who answered or were logged in in the window (or the one asked for)
        agents = [ask.agent] if ask.agent else sorted(a for a, sums in whole_agent.items() if sums)
        body = figures(
            ask.start,
            ask.end,
            lambda q: whole_queue[q],
            lambda a: whole_agent[a],
            sum(by_ivr.values(), IvrSums()),
        )
        if ask.interval:
            body["intervals"] = [
                figures(
                    start,
                    end,
                    lambda q, n=n: by_queue.get((q, n), QueueSums()),  # type: ignore[misc]
                    lambda a, n=n: by_agent.get((a, n), AgentSums()),  # type: ignore[misc]
                    by_ivr.get(n, IvrSums()),
                )
                for n, (start, end) in enumerate(cuts)
            ]
        body["definitions"] = "ari_app/domain/kpi.py"
        return body


class KpiKeeper:
    """Keeps the sums of past 15-minute intervals added up, under the current targets,
    for the last `MAX_WINDOW` (from the first record on): every minute, the intervals
    over for an hour that are not kept (new, unmarked by a late change, or kept
    under other targets) are added up, a day at a time and a few days a round,
    through the writer (after the record changes submitted before). A few short
    writes a minute: a catch-up never holds the database long, so the calls' own
    writes go on meanwhile."""

    def __init__(
        self,
        sums: KpiStore,
        writer: Writer,
        targets: Callable[[], Targets],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        every: float = 60.0,
    ) -> None:
        self.sums, self.writer, self.targets = sums, writer, targets
        self._clock, self.every = clock, every
        self._pending = 0

    async def catch_up(self) -> int:
        """Submit this round's intervals to add up; how many spans (days at most)."""
        if self._pending:
            return 0  # the last round is still being written
        now, targets = self._clock(), self.targets()
        key = targets_key(targets)
        first = await self.sums.first_arrival()
        if first is None:
            return 0  # no record yet
        lo = max(bucket_of(micros(now - MAX_WINDOW)), bucket_of(first))
        hi = bucket_of(micros(now - KEEP_SETTLE))
        kept = set(await self.sums.marked((lo, hi), key))
        spans: list[Span] = []
        for bucket in range(lo, hi, STEP_US):
            if bucket in kept:
                continue
            last = spans[-1] if spans else None
            if last and last[1] == bucket and (last[1] - last[0]) < KEEP_SPAN * STEP_US:
                spans[-1] = (last[0], bucket + STEP_US)
            else:
                spans.append((bucket, bucket + STEP_US))
        for span in spans[-KEEP_ROUND:]:  # the newest first: reports ask for them most
            self._pending += 1
            self.writer.submit_alone("kpi_sums", self._keep, {"span": span, "targets": targets})
        return min(len(spans), KEEP_ROUND)

    async def _keep(self, job: dict[str, Any]) -> None:
        try:
            await self.sums.keep(job["span"], job["targets"], targets_key(job["targets"]))
        except (SQLAlchemyError, OSError) as exc:
            # not retried by the writer: the next round takes the span again
            log.error("kpi_sums_failed", span=job["span"], error=repr(exc))
        finally:
            self._pending -= 1

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)  # not in the rush of a start
            try:
                submitted = await self.catch_up()
                if submitted:
                    log.info("kpi_sums_submitted", spans=submitted)
            except SQLAlchemyError as exc:
                log.error("kpi_sums_failed", error=repr(exc))
