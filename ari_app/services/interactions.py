"""The interaction log: folds the call and ACD services' events into one record per
customer call (domain/interaction.py) and keeps each record stored as it changes.

The call service tells it of every saved call row (arrival, IVR, self-service,
end); the ACD of queue entries, refusals, departures and every agent state
change (an answer opens a segment, the end of the conversation closes it, the
end of wrap-up times the wrap-up). Records of live calls are kept in memory and
loaded back on start, so a restart loses none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ari_app.adapters.db import Writer
from ari_app.adapters.interaction_store import InteractionStore, changed_row, merge_changes
from ari_app.domain.interaction import (
    AgentAnswered,
    AgentLeft,
    Arrived,
    Blocked,
    Disposed,
    Ended,
    HoldEnded,
    HoldStarted,
    InteractionEvent,
    IvrEntered,
    LeftQueue,
    Queued,
    Record,
    SelfServed,
    WrapUpEnded,
    stitch,
)
from ari_app.services.live import LiveService

log = structlog.get_logger(__name__)


class InteractionLog:
    def __init__(
        self,
        store: InteractionStore,
        writer: Writer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.writer, self._clock = store, writer, clock
        self.records: dict[str, Record] = {}
        self.live: LiveService | None = None  # told of waits and agents, for live stats
        self._talking: dict[str, str] = {}  # agent -> the call of their open segment
        self._wrapping: dict[str, str] = {}  # agent -> the call they wrap up

    async def load(self) -> None:
        """Take back the records of calls that were live when the service stopped."""
        for record in await self.store.unfinished(self._clock() - timedelta(days=1)):
            self.records[record.interaction.call_id] = record
            if record.open_segment is not None:
                self._talking[record.open_segment[0]] = record.interaction.call_id
            for agent, _ in record.wrapping:
                self._wrapping[agent] = record.interaction.call_id
        log.info("interactions_loaded", live=len(self.records))

    def record(self, event: InteractionEvent) -> Record | None:
        """Fold one event into its call's record and store the record if it changed."""
        before = self.records.get(event.call_id)
        after = stitch(before, event)
        if after is None or after == before:
            return after
        self.records[event.call_id] = after
        row = changed_row(before, after)
        self.writer.submit("interaction", self.store.write, row, event.call_id, merge_changes)
        if self.live is not None:
            _tell(self.live, before, after)
        call = after.interaction
        if call.ended_at is not None and after.open_segment is None and not after.wrapping:
            del self.records[event.call_id]  # finished: stored, no more events to come
        return after

    # -- what the services report -----------------------------------------------------

    def call_saved(self, row: dict[str, Any]) -> None:
        """A call row as the call service stores it."""
        call_id, now = row["id"], self._clock()
        self.record(Arrived(call_id, row["started_at"], row["caller"]))
        if row.get("flow"):
            self.record(IvrEntered(call_id, row["started_at"]))
        if row.get("ivr_outcome") == "self_service":
            self.record(SelfServed(call_id, row.get("ended_at") or now))
        if row.get("ended_at") is not None:
            self.record(Ended(call_id, row["ended_at"]))

    def queued(self, call_id: str, queue: str, at: datetime) -> None:
        self.record(Queued(call_id, at, queue))

    def callback_dialled(self, call_id: str, number: str, at: datetime) -> None:
        """A call back begins (an agent answered its ring; the customer is dialled): one
        interaction for all its attempts, each agent's time a segment."""
        self.record(Arrived(call_id, at, number))

    def callback_over(self, call_id: str, at: datetime) -> None:
        """The call back talked and ended, was given up, or was cancelled."""
        self.record(Ended(call_id, at))

    def hold_changed(self, call_id: str, on: bool, at: datetime) -> None:
        """The agent put the caller on hold, or took them off it."""
        self.record(HoldStarted(call_id, at) if on else HoldEnded(call_id, at))

    def sent_on(self, call_id: str, why: str, at: datetime) -> None:
        """The ACD sent a waiting caller to the queue's ending."""
        if why.startswith("no agent"):
            self.record(Blocked(call_id, at, ""))
        else:
            self.record(LeftQueue(call_id, at))

    def agent_removed(self, agent_id: str) -> None:
        if self.live is not None:
            self.live.agent_removed(agent_id)

    def agent_changed(
        self,
        agent_id: str,
        before: str,
        after: str,
        call_id: str | None,
        at: datetime,
        reason: str = "",
    ) -> None:
        if self.live is not None:
            self.live.agent_state(agent_id, after, reason, at)
        if before == "reserved" and after == "on_call" and call_id:
            self._talking[agent_id] = call_id
            self.record(AgentAnswered(call_id, at, agent_id))
        elif before == "on_call" and after != "on_call":
            talked = self._talking.pop(agent_id, None)
            if talked is not None:
                self.record(AgentLeft(talked, at, agent_id))
                if after == "wrap_up":
                    self._wrapping[agent_id] = talked
                else:
                    self.record(WrapUpEnded(talked, at, agent_id))
        elif before == "wrap_up" and after != "wrap_up":
            wrapped = self._wrapping.pop(agent_id, None)
            if wrapped is not None:
                self.record(WrapUpEnded(wrapped, at, agent_id))

    async def get(self, call_id: str) -> Record | None:
        """The call's record, live or finished (as last written); None for an unknown call."""
        return self.records.get(call_id) or await self.store.get(call_id)

    async def dispose(self, call_id: str, code: str, resolved: bool | None) -> Record | None:
        """An agent's disposition for a call, live or finished; None for an unknown call."""
        if call_id not in self.records:
            stored = await self.store.get(call_id)
            if stored is None:
                return None
            self.records[call_id] = stored
        return self.record(Disposed(call_id, self._clock(), code, resolved))


def _tell(live: LiveService, before: Record | None, after: Record) -> None:
    """What a record's change means for the live figures: a wait began or ended."""
    old = before.interaction if before else None
    new = after.interaction
    call_id = new.call_id
    if new.queue and new.queued_at and (old is None or old.queued_at is None):
        live.queued(call_id, new.queue, new.queued_at)
    if new.blocked and (old is None or not old.blocked):
        live.blocked(call_id)
    for name, answered, abandoned in (
        ("answered_at", True, False),
        ("abandoned_at", False, True),
        ("left_at", False, False),
    ):
        moment = getattr(new, name)
        if moment is not None and (old is None or getattr(old, name) is None):
            live.wait_ended(call_id, moment, answered=answered, abandoned=abandoned)
