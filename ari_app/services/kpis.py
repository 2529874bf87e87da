"""KPI reports: the interaction records of a window, read from the database, put
through the definitions in domain/kpi.py, per queue, per agent and per interval."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from ari_app.adapters.interaction_store import InteractionStore
from ari_app.domain.interaction import agent_spans
from ari_app.domain.kpi import (
    Arrivals,
    Interaction,
    Targets,
    agent_figures,
    intervals,
    ivr_figures,
    queue_figures,
)

MAX_WINDOW = timedelta(days=92)


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
    def __init__(self, store: InteractionStore, targets: Callable[[], Targets]) -> None:
        self.store, self.targets = store, targets

    async def report(self, ask: ReportAsk) -> dict[str, Any]:
        """The figures of the window, and of each interval when one is asked for."""
        if ask.start.tzinfo is None or ask.end.tzinfo is None:
            raise ReportRefused("from and to need a time zone (for example Z or +01:00)")
        if ask.end <= ask.start:
            raise ReportRefused("to must be after from")
        if ask.end - ask.start > MAX_WINDOW:
            raise ReportRefused(f"a window is at most {MAX_WINDOW.days} days")
        if ask.interval not in (None, 15, 30, 60):
            raise ReportRefused("interval is 15, 30 or 60 minutes")
        targets = self.targets()
        calls = await self.store.between(ask.start, ask.end)
        # the repeat test of FCR looks past the window's end
        later = await self.store.between(ask.end, ask.end + timedelta(seconds=targets.fcr_window))
        history = [*calls, *later]
        changes = await self.store.agent_changes(ask.start, ask.end)
        queues = sorted({c.queue for c in calls if c.queue} | ({ask.queue} if ask.queue else set()))
        if ask.queue:
            queues = [ask.queue]
        agents = sorted(
            {s.agent_id for c in calls for s in c.segments} | set(changes)
            if ask.agent is None
            else {ask.agent}
        )
        spans = {agent: agent_spans(agent, changes.get(agent, []), ask.end) for agent in agents}
        # each figure looks only at its own calls: by queue, and by agent (their segments)
        arrivals = Arrivals(history)
        by_queue: dict[str, list[Interaction]] = defaultdict(list)
        by_agent: dict[str, list[Interaction]] = defaultdict(list)
        for call in calls:
            if call.queue:
                by_queue[call.queue].append(call)
            for agent_id in {s.agent_id for s in call.segments}:
                by_agent[agent_id].append(call)

        def figures(start: datetime, end: datetime) -> dict[str, Any]:
            return {
                "from": start,
                "to": end,
                "queues": [
                    asdict(queue_figures(q, by_queue[q], start, end, targets, arrivals=arrivals))
                    for q in queues
                ],
                "agents": [
                    asdict(agent_figures(a, by_agent[a], spans[a], start, end)) for a in agents
                ],
                "ivr": asdict(ivr_figures(calls, start, end)),
            }

        body = figures(ask.start, ask.end)
        if ask.interval:
            body["intervals"] = [
                figures(*cut) for cut in intervals(ask.start, ask.end, ask.interval)
            ]
        body["definitions"] = "ari_app/domain/kpi.py"
        return body
