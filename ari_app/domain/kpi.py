"""The contact-center KPIs, computed from interaction records and agent state spans.

This module is the definition: the figures the API, the report and the live
stats give are these. Each interaction is one customer call, whatever legs,
transfers and agents it had. Definitions, for a window [start, end):

Queue figures count the calls that *entered the queue* in the window (a call
that waits across an interval boundary belongs to the interval it entered in):

- offered: calls that entered the queue, less short abandons.
- short abandon: a caller who hung up within `short_abandon` seconds of entering
  the queue (a misdial, a change of mind); left out of offered and abandoned.
- handled: offered calls an agent answered.
- abandoned: offered calls whose caller hung up before an agent answered, also
  while an agent's phone rang. A call the queue sent on unanswered (its longest
  wait passed: voicemail, a callback) is offered, neither handled nor abandoned.
- service level: handled within the queue's target seconds / offered, in %.
- ASA (average speed of answer): mean wait of the handled calls.
- average wait, longest wait: over all offered calls, answered or abandoned.
- blocked: calls refused at the queue's door (nobody logged in);
  blocked rate = blocked / (calls that entered + blocked).
- AHT (average handle time): (talk + hold + wrap-up) / handled, over every agent
  segment of the handled calls (a transfer adds the second agent's segment).
- average wrap-up: wrap-up seconds / handled.
- FCR (first-contact resolution): handled calls after which the same caller did
  not call again within `fcr_window` seconds of the call's end / handled. A
  disposition that says resolved or not resolved overrides the repeat test.

IVR figures count the calls that *arrived* in the window:

- IVR entered: calls that reached an IVR flow; contained: those that finished in
  self-service (never asked for a queue); containment = contained / entered.

Agent figures:

- handled: segments the agent answered (a transfer counts for both agents).
- occupancy: time on call or in wrap-up / time logged in and not paused
  (available, reserved, on call, wrap-up), both clipped to the window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

STAFFED = frozenset({"available", "reserved", "on_call", "wrap_up"})
HANDLING = frozenset({"on_call", "wrap_up"})


@dataclass(frozen=True)
class Segment:
    """One agent's part of a conversation: answered, ended, then wrap-up."""

    agent_id: str
    answered_at: datetime
    ended_at: datetime
    hold_seconds: float = 0.0
    wrap_up_seconds: float = 0.0

    @property
    def talk_seconds(self) -> float:
        return max((self.ended_at - self.answered_at).total_seconds() - self.hold_seconds, 0.0)

    @property
    def handle_seconds(self) -> float:
        return self.talk_seconds + self.hold_seconds + self.wrap_up_seconds


@dataclass(frozen=True)
class Interaction:
    """One customer call as the KPIs see it."""

    call_id: str
    caller: str
    arrived_at: datetime
    ended_at: datetime | None = None
    ivr: bool = False  # reached an IVR flow
    self_served: bool = False  # finished in the IVR
    queue: str | None = None  # the queue it asked for (the first, when it was moved on)
    queued_at: datetime | None = None  # when it asked: entered, or was refused (blocked)
    answered_at: datetime | None = None  # an agent answered
    abandoned_at: datetime | None = None  # the caller hung up while waiting or ringing
    left_at: datetime | None = None  # sent on unanswered (the queue's longest wait)
    blocked: bool = False  # refused at the queue's door
    segments: tuple[Segment, ...] = ()
    resolved: bool | None = None  # the disposition's say, when it has one

    @property
    def wait_seconds(self) -> float | None:
        """From entering the queue to an answer, an abandon or the end."""
        if self.queued_at is None:
            return None
        until = self.answered_at or self.abandoned_at or self.left_at or self.ended_at
        return None if until is None else max((until - self.queued_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class StateSpan:
    """An agent in one state from `since` to `until`."""

    agent_id: str
    state: str
    since: datetime
    until: datetime


@dataclass(frozen=True)
class Targets:
    service_level_seconds: dict[str, float] = field(default_factory=dict)  # per queue
    default_service_level_seconds: float = 20.0
    short_abandon: float = 5.0
    fcr_window: float = 86400.0

    def service_level(self, queue: str) -> float:
        return self.service_level_seconds.get(queue, self.default_service_level_seconds)


@dataclass(frozen=True)
class QueueFigures:
    queue: str
    offered: int
    handled: int
    abandoned: int
    short_abandoned: int
    blocked: int
    service_level: float | None  # percent
    asa: float | None  # seconds
    average_wait: float | None
    longest_wait: float | None
    aht: float | None
    average_wrap_up: float | None
    fcr: float | None  # percent
    blocked_rate: float | None  # percent


@dataclass(frozen=True)
class AgentFigures:
    agent_id: str
    handled: int
    aht: float | None
    average_wrap_up: float | None
    handling_seconds: float  # on call + wrap-up, from the state spans
    staffed_seconds: float  # logged in and not paused
    occupancy: float | None  # percent


@dataclass(frozen=True)
class IvrFigures:
    entered: int
    contained: int
    containment: float | None  # percent


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


class Arrivals:
    """Every caller's arrival times, sorted, for the repeat test of FCR."""

    def __init__(self, calls: Iterable[Interaction]) -> None:
        times: dict[str, list[datetime]] = defaultdict(list)
        for call in calls:
            times[call.caller].append(call.arrived_at)
        self.times = {caller: sorted(moments) for caller, moments in times.items()}

    def repeated(self, call: Interaction, window: float) -> bool:
        """Whether the caller called again within `window` seconds of this call's end."""
        if call.ended_at is None:
            return False
        moments = self.times.get(call.caller, [])
        first = bisect_left(moments, call.ended_at)
        return first < len(moments) and moments[first] < call.ended_at + timedelta(seconds=window)


def queue_figures(
    queue: str,
    calls: Sequence[Interaction],
    start: datetime,
    end: datetime,
    targets: Targets,
    *,
    history: Sequence[Interaction] = (),
    arrivals: Arrivals | None = None,
) -> QueueFigures:
    """One queue's figures for the calls that came to it in [start, end).

    `history` holds every call up to `end + fcr_window`, whatever its queue, for the
    repeat test of FCR; by default the calls given."""
    mine = [c for c in calls if c.queue == queue and _within(c.queued_at, start, end)]
    blocked = [c for c in mine if c.blocked]
    entered = [c for c in mine if not c.blocked]
    short = {
        c.call_id
        for c in entered
        if c.answered_at is None
        and c.abandoned_at is not None
        and (c.wait_seconds or 0.0) < targets.short_abandon
    }
    offered = [c for c in entered if c.call_id not in short]
    handled = [c for c in offered if c.answered_at is not None]
    abandoned = [c for c in offered if c.answered_at is None and c.abandoned_at is not None]
    waits = [w for c in offered if (w := c.wait_seconds) is not None]
    answers = [c.wait_seconds or 0.0 for c in handled]
    target = targets.service_level(queue)
    segments = [s for c in handled for s in c.segments]
    arrivals = arrivals or Arrivals(history or calls)
    resolved = [
        c
        for c in handled
        if (c.resolved if c.resolved is not None else not arrivals.repeated(c, targets.fcr_window))
    ]
    return QueueFigures(
        queue=queue,
        offered=len(offered),
        handled=len(handled),
        abandoned=len(abandoned),
        short_abandoned=len(short),
        blocked=len(blocked),
        service_level=_percent(sum(1 for w in answers if w <= target), len(offered)),
        asa=_mean(answers),
        average_wait=_mean(waits),
        longest_wait=max(waits) if waits else None,
        aht=sum(s.handle_seconds for s in segments) / len(handled) if handled else None,
        average_wrap_up=(
            sum(s.wrap_up_seconds for s in segments) / len(handled) if handled else None
        ),
        fcr=_percent(len(resolved), len(handled)),
        blocked_rate=_percent(len(blocked), len(entered) + len(blocked)),
    )


def _clipped(span: StateSpan, start: datetime, end: datetime) -> float:
    return max((min(span.until, end) - max(span.since, start)).total_seconds(), 0.0)


def agent_figures(
    agent_id: str,
    calls: Iterable[Interaction],
    spans: Iterable[StateSpan],
    start: datetime,
    end: datetime,
) -> AgentFigures:
    """One agent's figures: the segments they answered in [start, end), and their time."""
    segments = [
        s
        for c in calls
        for s in c.segments
        if s.agent_id == agent_id and _within(s.answered_at, start, end)
    ]
    time: dict[str, float] = defaultdict(float)
    for span in spans:
        if span.agent_id == agent_id:
            time[span.state] += _clipped(span, start, end)
    handling = sum(time[state] for state in HANDLING)
    staffed = sum(time[state] for state in STAFFED)
    return AgentFigures(
        agent_id=agent_id,
        handled=len(segments),
        aht=_mean([s.handle_seconds for s in segments]),
        average_wrap_up=_mean([s.wrap_up_seconds for s in segments]),
        handling_seconds=handling,
        staffed_seconds=staffed,
        occupancy=100.0 * handling / staffed if staffed else None,
    )


def ivr_figures(calls: Iterable[Interaction], start: datetime, end: datetime) -> IvrFigures:
    """Containment of the calls that arrived in [start, end) and reached an IVR flow."""
    entered = [c for c in calls if c.ivr and _within(c.arrived_at, start, end)]
    contained = sum(1 for c in entered if c.self_served)
    return IvrFigures(len(entered), contained, _percent(contained, len(entered)))


def intervals(start: datetime, end: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into `minutes`-long intervals aligned to the hour (15, 30 or 60)."""
    if minutes not in (15, 30, 60):
        raise ValueError("an interval is 15, 30 or 60 minutes")
    step = timedelta(minutes=minutes)
    first = start.replace(minute=start.minute - start.minute % minutes, second=0, microsecond=0)
    cuts = []
    moment = first
    while moment < end:
        cuts.append((max(moment, start), min(moment + step, end)))
        moment += step
    return cuts
