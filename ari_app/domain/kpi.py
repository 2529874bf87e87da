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

from bisect import bisect_left, bisect_right
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


def _mean(total: float, count: int) -> float | None:
    return total / count if count else None


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

    def repeat_after(self, call: Interaction) -> float | None:
        """Seconds from the call's end to the caller's next arrival at or after it."""
        if call.ended_at is None:
            return None
        moments = self.times.get(call.caller, [])
        first = bisect_left(moments, call.ended_at)
        return (moments[first] - call.ended_at).total_seconds() if first < len(moments) else None


@dataclass(frozen=True)
class QueueSums:
    """The counts and sums a queue's figures are made of. They add up: the sums of
    two disjoint sets of calls are the sums of their union (longest: the larger)."""

    blocked: int = 0
    entered: int = 0  # came into the queue (not blocked)
    short_abandoned: int = 0
    handled: int = 0
    abandoned: int = 0
    within_target: int = 0  # handled within the service-level seconds
    answer_wait: float = 0.0  # the handled calls' waits
    waited: int = 0  # offered calls with a wait
    wait: float = 0.0  # their waits
    longest_wait: float | None = None
    handle: float = 0.0  # the handled calls' segments: talk + hold + wrap-up
    wrap_up: float = 0.0
    resolved: int = 0  # handled calls resolved at first contact

    def __add__(self, other: QueueSums) -> QueueSums:
        longest = [w for w in (self.longest_wait, other.longest_wait) if w is not None]
        return QueueSums(
            **{name: getattr(self, name) + getattr(other, name) for name in _QUEUE_SUMMED},
            longest_wait=max(longest) if longest else None,
        )

    def figures(self, queue: str) -> QueueFigures:
        offered = self.entered - self.short_abandoned
        return QueueFigures(
            queue=queue,
            offered=offered,
            handled=self.handled,
            abandoned=self.abandoned,
            short_abandoned=self.short_abandoned,
            blocked=self.blocked,
            service_level=_percent(self.within_target, offered),
            asa=_mean(self.answer_wait, self.handled),
            average_wait=_mean(self.wait, self.waited),
            longest_wait=self.longest_wait,
            aht=_mean(self.handle, self.handled),
            average_wrap_up=_mean(self.wrap_up, self.handled),
            fcr=_percent(self.resolved, self.handled),
            blocked_rate=_percent(self.blocked, self.entered + self.blocked),
        )


_QUEUE_SUMMED = [f for f in QueueSums.__dataclass_fields__ if f != "longest_wait"]


def queue_sums(
    queue: str,
    calls: Iterable[Interaction],
    start: datetime,
    end: datetime,
    targets: Targets,
    arrivals: Arrivals,
) -> QueueSums:
    """The sums of the calls that came to `queue` in [start, end)."""
    mine = [c for c in calls if c.queue == queue and _within(c.queued_at, start, end)]
    entered = [c for c in mine if not c.blocked]
    short = [
        c
        for c in entered
        if c.answered_at is None
        and c.abandoned_at is not None
        and (c.wait_seconds or 0.0) < targets.short_abandon
    ]
    shorts = {c.call_id for c in short}
    offered = [c for c in entered if c.call_id not in shorts]
    handled = [c for c in offered if c.answered_at is not None]
    waits = [w for c in offered if (w := c.wait_seconds) is not None]
    answers = [c.wait_seconds or 0.0 for c in handled]
    target = targets.service_level(queue)
    segments = [s for c in handled for s in c.segments]
    return QueueSums(
        blocked=len(mine) - len(entered),
        entered=len(entered),
        short_abandoned=len(short),
        handled=len(handled),
        abandoned=sum(1 for c in offered if c.answered_at is None and c.abandoned_at is not None),
        within_target=sum(1 for w in answers if w <= target),
        answer_wait=sum(answers),
        waited=len(waits),
        wait=sum(waits),
        longest_wait=max(waits) if waits else None,
        handle=sum(s.handle_seconds for s in segments),
        wrap_up=sum(s.wrap_up_seconds for s in segments),
        resolved=sum(1 for c in handled if resolved(c, arrivals.repeat_after(c), targets)),
    )


def resolved(call: Interaction, repeat_after: float | None, targets: Targets) -> bool:
    """FCR's test: the disposition's say, else no repeat call within the window."""
    if call.resolved is not None:
        return call.resolved
    return repeat_after is None or repeat_after >= targets.fcr_window


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
    arrivals = arrivals or Arrivals(history or calls)
    return queue_sums(queue, calls, start, end, targets, arrivals).figures(queue)


def _clipped(span: StateSpan, start: datetime, end: datetime) -> float:
    return max((min(span.until, end) - max(span.since, start)).total_seconds(), 0.0)


@dataclass(frozen=True)
class AgentSums:
    """The agent's answered segments (how many, their handle and wrap-up seconds) and
    their time on call or in wrap-up (handling) and logged in and not paused (staffed)."""

    handled: int = 0
    handle: float = 0.0
    wrap_up: float = 0.0
    handling: float = 0.0
    staffed: float = 0.0

    def __add__(self, other: AgentSums) -> AgentSums:
        return AgentSums(
            self.handled + other.handled,
            self.handle + other.handle,
            self.wrap_up + other.wrap_up,
            self.handling + other.handling,
            self.staffed + other.staffed,
        )

    def __bool__(self) -> bool:
        return bool(self.handled or self.handling or self.staffed)

    def figures(self, agent_id: str) -> AgentFigures:
        return AgentFigures(
            agent_id=agent_id,
            handled=self.handled,
            aht=_mean(self.handle, self.handled),
            average_wrap_up=_mean(self.wrap_up, self.handled),
            handling_seconds=self.handling,
            staffed_seconds=self.staffed,
            occupancy=_percent_of(self.handling, self.staffed),
        )


def state_times(
    spans: Iterable[StateSpan], cuts: Sequence[tuple[datetime, datetime]]
) -> list[AgentSums]:
    """`state_time` in each of the cuts (in order, not overlapping), each span visiting
    only the cuts it overlaps."""
    handling, staffed = [0.0] * len(cuts), [0.0] * len(cuts)
    ends = [end for _, end in cuts]
    for span in spans:
        kind = HANDLING if span.state in HANDLING else STAFFED if span.state in STAFFED else None
        if kind is None:
            continue
        n = bisect_right(ends, span.since)
        while n < len(cuts) and cuts[n][0] < span.until:
            seconds = max(
                (min(span.until, cuts[n][1]) - max(span.since, cuts[n][0])).total_seconds(), 0.0
            )
            staffed[n] += seconds
            if kind is HANDLING:
                handling[n] += seconds
            n += 1
    return [AgentSums(handling=h, staffed=s) for h, s in zip(handling, staffed, strict=True)]


def state_time(spans: Iterable[StateSpan], start: datetime, end: datetime) -> AgentSums:
    """The time of an agent's state spans within [start, end): handling and staffed."""
    time: dict[str, float] = defaultdict(float)
    for span in spans:
        time[span.state] += _clipped(span, start, end)
    return AgentSums(
        handling=sum(time[state] for state in HANDLING),
        staffed=sum(time[state] for state in STAFFED),
    )


def _percent_of(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def agent_sums(
    agent_id: str, calls: Iterable[Interaction], start: datetime, end: datetime
) -> AgentSums:
    """The segments `agent_id` answered in [start, end)."""
    segments = [
        s
        for c in calls
        for s in c.segments
        if s.agent_id == agent_id and _within(s.answered_at, start, end)
    ]
    return AgentSums(
        len(segments),
        sum(s.handle_seconds for s in segments),
        sum(s.wrap_up_seconds for s in segments),
    )


def agent_figures(
    agent_id: str,
    calls: Iterable[Interaction],
    spans: Iterable[StateSpan],
    start: datetime,
    end: datetime,
) -> AgentFigures:
    """One agent's figures: the segments they answered in [start, end), and their time."""
    mine = [span for span in spans if span.agent_id == agent_id]
    sums = agent_sums(agent_id, calls, start, end) + state_time(mine, start, end)
    return sums.figures(agent_id)


@dataclass(frozen=True)
class IvrSums:
    entered: int = 0
    contained: int = 0

    def __add__(self, other: IvrSums) -> IvrSums:
        return IvrSums(self.entered + other.entered, self.contained + other.contained)

    def figures(self) -> IvrFigures:
        return IvrFigures(self.entered, self.contained, _percent(self.contained, self.entered))


def ivr_figures(calls: Iterable[Interaction], start: datetime, end: datetime) -> IvrFigures:
    """Containment of the calls that arrived in [start, end) and reached an IVR flow."""
    entered = [c for c in calls if c.ivr and _within(c.arrived_at, start, end)]
    return IvrSums(len(entered), sum(1 for c in entered if c.self_served)).figures()


def interval_start(moment: datetime, minutes: int) -> datetime:
    """The start of the `minutes`-long interval, aligned to the hour, holding `moment`."""
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


def intervals(start: datetime, end: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into `minutes`-long intervals aligned to the hour (15, 30 or 60)."""
    if minutes not in (15, 30, 60):
        raise ValueError("an interval is 15, 30 or 60 minutes")
    step = timedelta(minutes=minutes)
    first = interval_start(start, minutes)
    cuts = []
    moment = first
    while moment < end:
        cuts.append((max(moment, start), min(moment + step, end)))
        moment += step
    return cuts
