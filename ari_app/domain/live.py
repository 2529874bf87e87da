"""Live statistics, kept up to date event by event, and the alerts they raise.

Per queue: callers waiting and the longest wait, the rolling service level,
ASA and abandonment over the last 15 minutes and since midnight (UTC); per
agent: state, since when, pause reason. Nothing here reads the database: the
figures move with each event, and `tick` moves them with the clock (a wait
grows, old calls leave the rolling window). The definitions are those of
domain/kpi.py, on the calls that ended their wait (answered, abandoned, sent
on); short abandons are left out.

Alerts compare a queue's figures with its thresholds and raise once, then clear
only when the figure is back past a margin (hysteresis), so a figure hovering at
its threshold does not flap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

ROLLING = timedelta(minutes=15)
CLEAR_MARGIN = 0.2  # a raised alert clears 20 % of its threshold back (SL: 5 points)
SL_MARGIN = 5.0


@dataclass(frozen=True)
class AlertThresholds:
    longest_wait: float | None = None  # seconds
    waiting: int | None = None  # callers
    abandon_rate: float | None = None  # percent, rolling 15 min
    service_level: bool = False  # rolling 15 min SL under the queue's target percent
    min_calls: int = 5  # the rates are judged once this many calls ended their wait


@dataclass(frozen=True)
class Alert:
    queue: str
    metric: str  # longest_wait, waiting, abandon_rate, service_level
    raised: bool  # False: cleared
    value: float
    threshold: float
    at: datetime


@dataclass(frozen=True)
class _Outcome:
    at: datetime
    wait: float
    answered: bool
    abandoned: bool
    within: bool  # answered within the queue's service-level seconds


@dataclass
class _Counts:
    """Running sums over a set of outcomes: figures without a pass over the calls."""

    offered: int = 0
    handled: int = 0
    abandoned: int = 0
    within: int = 0
    answer_wait: float = 0.0

    def add(self, outcome: _Outcome, sign: int = 1) -> None:
        self.offered += sign
        self.handled += sign * outcome.answered
        self.abandoned += sign * outcome.abandoned
        self.within += sign * outcome.within
        self.answer_wait += sign * (outcome.wait if outcome.answered else 0.0)

    def figures(self) -> dict[str, object]:
        offered, handled = self.offered, self.handled
        return {
            "offered": offered,
            "handled": handled,
            "abandoned": self.abandoned,
            "service_level": 100.0 * self.within / offered if offered else None,
            "asa": self.answer_wait / handled if handled else None,
            "abandon_rate": 100.0 * self.abandoned / offered if offered else None,
        }


@dataclass
class QueueLive:
    waiting: dict[str, datetime] = field(default_factory=dict)  # call -> since
    outcomes: deque[_Outcome] = field(default_factory=deque)  # the last 15 minutes
    rolling: _Counts = field(default_factory=_Counts)
    today: _Counts = field(default_factory=_Counts)
    day: datetime | None = None
    raised: set[str] = field(default_factory=set)


@dataclass
class AgentLive:
    state: str
    since: datetime
    reason: str = ""


class LiveStats:
    def __init__(
        self, short_abandon: float = 5.0, target: Callable[[str], float] = lambda queue: 20.0
    ) -> None:
        self.short_abandon = short_abandon
        self.target = target  # a queue's service-level seconds
        self.queues: dict[str, QueueLive] = {}
        self.agents: dict[str, AgentLive] = {}
        self._queue_of: dict[str, str] = {}  # waiting call -> queue

    # -- events in ---------------------------------------------------------------------

    def queued(self, call_id: str, queue: str, at: datetime) -> None:
        self.queues.setdefault(queue, QueueLive()).waiting[call_id] = at
        self._queue_of[call_id] = queue

    def wait_ended(
        self, call_id: str, at: datetime, *, answered: bool, abandoned: bool
    ) -> str | None:
        """The call stopped waiting: answered, abandoned, or sent on. Its queue, if known."""
        queue = self._queue_of.pop(call_id, None)
        if queue is None:
            return None
        live = self.queues[queue]
        since = live.waiting.pop(call_id)
        wait = max((at - since).total_seconds(), 0.0)
        if abandoned and wait < self.short_abandon:
            return queue  # a short abandon: not offered
        outcome = _Outcome(at, wait, answered, abandoned, answered and wait <= self.target(queue))
        self._roll(live, at)
        live.outcomes.append(outcome)
        live.rolling.add(outcome)
        live.today.add(outcome)
        return queue

    def waiting(self) -> int:
        """Callers waiting in all queues."""
        return len(self._queue_of)

    def forget(self, call_id: str) -> str | None:
        """A call that stops waiting without being offered (blocked at the door)."""
        queue = self._queue_of.pop(call_id, None)
        if queue is not None:
            self.queues[queue].waiting.pop(call_id, None)
        return queue

    def agent_state(self, agent_id: str, state: str, reason: str, at: datetime) -> None:
        self.agents[agent_id] = AgentLive(state, at, reason)

    def agent_removed(self, agent_id: str) -> bool:
        """An agent deleted from the center; False if none was known."""
        return self.agents.pop(agent_id, None) is not None

    def tick(self, now: datetime) -> None:
        for live in self.queues.values():
            self._roll(live, now)

    def _roll(self, live: QueueLive, now: datetime) -> None:
        while live.outcomes and live.outcomes[0].at < now - ROLLING:
            live.rolling.add(live.outcomes.popleft(), -1)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if live.day != midnight:
            if live.day is not None:
                live.today = _Counts()  # a new day (outcomes come in time order)
            live.day = midnight

    # -- figures out -------------------------------------------------------------------

    def queue(self, queue: str, now: datetime, agents: set[str]) -> dict[str, object]:
        """One queue's live figures; `agents` are those who may take its calls."""
        live = self.queues.setdefault(queue, QueueLive())
        self._roll(live, now)
        waits = [(now - since).total_seconds() for since in live.waiting.values()]
        states: dict[str, int] = {}
        for agent_id in agents:
            if agent_id in self.agents:
                state = self.agents[agent_id].state
                states[state] = states.get(state, 0) + 1
        return {
            "queue": queue,
            "at": now,
            "waiting": len(waits),
            "longest_wait": max(waits, default=0.0),
            "agents": states,
            "last_15_min": live.rolling.figures(),
            "today": live.today.figures(),
        }

    def agent(self, agent_id: str, now: datetime) -> dict[str, object] | None:
        live = self.agents.get(agent_id)
        if live is None:
            return None
        return {
            "agent_id": agent_id,
            "state": live.state,
            "since": live.since,
            "seconds_in_state": max((now - live.since).total_seconds(), 0.0),
            "reason": live.reason,
        }

    def alerts(
        self,
        queue: str,
        figures: dict[str, object],
        thresholds: AlertThresholds,
        sl_percent: float,
    ) -> list[Alert]:
        """The alerts a queue's figures raise or clear now."""
        live = self.queues.setdefault(queue, QueueLive())
        rolling = figures["last_15_min"]
        assert isinstance(rolling, dict)
        enough = (_num(rolling["offered"]) or 0) >= thresholds.min_calls
        checks: list[tuple[str, float | None, float | None, bool]] = [
            ("longest_wait", _num(figures["longest_wait"]), thresholds.longest_wait, True),
            ("waiting", _num(figures["waiting"]), _num(thresholds.waiting), True),
        ]
        if enough:
            checks.append(
                ("abandon_rate", _num(rolling["abandon_rate"]), thresholds.abandon_rate, True)
            )
        if enough and thresholds.service_level:
            checks.append(("service_level", _num(rolling["service_level"]), sl_percent, False))
        at = figures["at"]
        assert isinstance(at, datetime)
        changes = []
        for metric, value, threshold, above in checks:
            if value is None or threshold is None:
                continue
            if metric in live.raised:
                margin = SL_MARGIN if metric == "service_level" else threshold * CLEAR_MARGIN
                cleared = value <= threshold - margin if above else value >= threshold + margin
                if cleared:
                    live.raised.discard(metric)
                    changes.append(Alert(queue, metric, False, value, threshold, at))
            elif (value > threshold) if above else (value < threshold):
                live.raised.add(metric)
                changes.append(Alert(queue, metric, True, value, threshold, at))
        return changes


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
