"""One interaction record per customer call, stitched from the service's own events.

`stitch(record, event)` folds one event into the record of its call: the IVR,
the queue, each agent's segment (a transfer closes one and the next answer opens
another), hold, wrap-up, the disposition and the end. The KPIs (domain/kpi.py)
read the records; `agent_spans` turns an agent's state changes into the spans
occupancy is measured on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ari_app.domain.kpi import Interaction, Segment, StateSpan


@dataclass(frozen=True)
class Arrived:
    call_id: str
    at: datetime
    caller: str


@dataclass(frozen=True)
class IvrEntered:
    call_id: str
    at: datetime


@dataclass(frozen=True)
class SelfServed:
    """The caller's business was done in the IVR."""

    call_id: str
    at: datetime


@dataclass(frozen=True)
class Queued:
    call_id: str
    at: datetime
    queue: str


@dataclass(frozen=True)
class Blocked:
    """Refused at the queue's door (nobody logged in)."""

    call_id: str
    at: datetime
    queue: str


@dataclass(frozen=True)
class LeftQueue:
    """Sent on unanswered: the queue's longest wait passed."""

    call_id: str
    at: datetime


@dataclass(frozen=True)
class AgentAnswered:
    call_id: str
    at: datetime
    agent_id: str


@dataclass(frozen=True)
class HoldStarted:
    call_id: str
    at: datetime


@dataclass(frozen=True)
class HoldEnded:
    call_id: str
    at: datetime


@dataclass(frozen=True)
class AgentLeft:
    """The agent's part ended: the caller hung up, the agent did, or a transfer."""

    call_id: str
    at: datetime
    agent_id: str


@dataclass(frozen=True)
class WrapUpEnded:
    call_id: str
    at: datetime
    agent_id: str


@dataclass(frozen=True)
class Disposed:
    """The agent set a disposition code, which may say whether the matter is resolved."""

    call_id: str
    at: datetime
    code: str
    resolved: bool | None


@dataclass(frozen=True)
class Ended:
    """The caller's channel is gone."""

    call_id: str
    at: datetime


InteractionEvent = (
    Arrived
    | IvrEntered
    | SelfServed
    | Queued
    | Blocked
    | LeftQueue
    | AgentAnswered
    | HoldStarted
    | HoldEnded
    | AgentLeft
    | WrapUpEnded
    | Disposed
    | Ended
)


@dataclass(frozen=True)
class Record:
    """An interaction being stitched: the KPI view, the parts still open, the extras."""

    interaction: Interaction
    open_segment: tuple[str, datetime, float] | None = None  # agent, answered, held so far
    hold_since: datetime | None = None
    wrapping: tuple[tuple[str, int], ...] = ()  # (agent, segment index) in wrap-up
    disposition: str | None = None


def agents_of(record: Record) -> frozenset[str]:
    """The agents who talked on the call, or talk now."""
    talking = {record.open_segment[0]} if record.open_segment else set()
    return frozenset({segment.agent_id for segment in record.interaction.segments} | talking)


def stitch(record: Record | None, event: InteractionEvent) -> Record | None:
    """The record after one event; None while the call is unknown (no Arrived yet)."""
    if isinstance(event, Arrived):
        return record or Record(Interaction(event.call_id, event.caller, event.at))
    if record is None:
        return None
    call = record.interaction
    match event:
        case IvrEntered():
            return replace(record, interaction=replace(call, ivr=True))
        case SelfServed():
            return replace(record, interaction=replace(call, self_served=True))
        case Queued(queue=queue) if call.queued_at is None:
            return replace(record, interaction=replace(call, queue=queue, queued_at=event.at))
        case Blocked(queue=queue) if call.answered_at is None:
            # refused on arrival: the queue's door was shut before it could wait
            moved = replace(
                call, queue=call.queue or queue, queued_at=call.queued_at or event.at, blocked=True
            )
            return replace(record, interaction=moved)
        case LeftQueue() if call.queued_at is not None and call.answered_at is None:
            return replace(record, interaction=replace(call, left_at=call.left_at or event.at))
        case AgentAnswered(agent_id=agent) if record.open_segment is None:
            first = call.answered_at or event.at
            return replace(
                record,
                interaction=replace(call, answered_at=first),
                open_segment=(agent, event.at, 0.0),
            )
        case HoldStarted() if record.open_segment is not None and record.hold_since is None:
            return replace(record, hold_since=event.at)
        case HoldEnded() if record.open_segment is not None and record.hold_since is not None:
            agent, answered, held = record.open_segment
            held += (event.at - record.hold_since).total_seconds()
            return replace(record, open_segment=(agent, answered, held), hold_since=None)
        case AgentLeft(agent_id=agent) if record.open_segment and record.open_segment[0] == agent:
            return _close_segment(record, event.at)
        case WrapUpEnded(agent_id=agent):
            return _end_wrap_up(record, agent, event.at)
        case Disposed(code=code, resolved=resolved):
            return replace(record, interaction=replace(call, resolved=resolved), disposition=code)
        case Ended():
            if record.open_segment is not None:
                record = _close_segment(record, event.at)
                call = record.interaction
            waiting = (
                call.queued_at is not None
                and not call.blocked
                and call.answered_at is None
                and call.left_at is None
            )
            abandoned = event.at if waiting else None
            return replace(
                record, interaction=replace(call, ended_at=event.at, abandoned_at=abandoned)
            )
    return record


def _close_segment(record: Record, at: datetime) -> Record:
    assert record.open_segment is not None
    agent, answered, held = record.open_segment
    if record.hold_since is not None:
        held += (at - record.hold_since).total_seconds()
    call = record.interaction
    segment = Segment(agent, answered, at, hold_seconds=held)
    return replace(
        record,
        interaction=replace(call, segments=(*call.segments, segment)),
        open_segment=None,
        hold_since=None,
        wrapping=(*record.wrapping, (agent, len(call.segments))),
    )


def _end_wrap_up(record: Record, agent: str, at: datetime) -> Record:
    for index, (who, number) in enumerate(record.wrapping):
        if who == agent:
            call = record.interaction
            segment = call.segments[number]
            wrap_up = max((at - segment.ended_at).total_seconds(), 0.0)
            segments = list(call.segments)
            segments[number] = replace(segment, wrap_up_seconds=wrap_up)
            return replace(
                record,
                interaction=replace(call, segments=tuple(segments)),
                wrapping=record.wrapping[:index] + record.wrapping[index + 1 :],
            )
    return record


def agent_spans(
    agent_id: str, changes: list[tuple[datetime, str]], until: datetime
) -> list[StateSpan]:
    """An agent's state changes (when, the state entered), in order, as spans up to `until`."""
    spans: list[StateSpan] = []
    if not changes:
        return spans
    for (since, state), (following, _) in zip(changes, [*changes[1:], (until, "")], strict=True):
        if following > since:
            spans.append(StateSpan(agent_id, state, since, following))
    return spans
