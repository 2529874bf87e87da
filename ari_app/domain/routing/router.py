"""The routing core: waiting calls, free agents, and the decision that pairs them.

Calls are ranked across every queue by priority, then by how long they have
waited (so no queue starves while its callers are the oldest). Waiting calls
are grouped by what they require (queue, step and the call's own skills give a
`Requirement`); each group is kept in rank order. An agent who becomes free
looks at the head of every group they qualify for and takes the best-ranked
call; a call that arrives (or moves to its next step) takes the best free
agent its queue's strategy names. Either way nobody is offered a call they lack
a skill for, and an agent leaves the free set the moment they are chosen.

The router is plain data and arithmetic (no I/O, no clock: time is passed in),
mutable for speed, and every decision carries the reason a supervisor reads.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from ari_app.domain.routing.rules import QueueRules, Requirement, Skills, Strategy

TOP_CANDIDATES = 5  # how many agents a stored reason lists, best first


@dataclass(frozen=True)
class WaitingCall:
    call_id: str
    queue: str
    waiting_since: datetime
    priority: int = 0  # higher first
    skills: Skills = field(default_factory=dict)  # the call's own, on top of the queue's
    step: int = 0
    language: str = "en"  # of what the caller hears while waiting
    caller: str = ""  # the caller's number (shown on the agent's phone; dialled for a callback)


@dataclass(frozen=True)
class FreeAgent:
    agent_id: str
    name: str
    skills: Skills
    idle_since: datetime


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    name: str
    score: int  # the sum of their levels on the required skills
    idle_seconds: float


@dataclass(frozen=True)
class Assignment:
    """A call given to an agent, with the reason a supervisor can ask for."""

    call_id: str
    agent_id: str
    queue: str
    step: int
    requirement: str
    strategy: str
    candidates: tuple[Candidate, ...]  # the best few who qualified, chosen one first
    free_agents: int  # free agents at the time
    qualified: int  # of whom qualified
    waiting_calls: int  # calls waiting at the time (the agent's choice among them)
    why: str


Rank = tuple[int, datetime, int]  # (-priority, waiting since, arrival order)


class RoutingError(Exception):
    """A call names a queue the router does not know."""


class Router:
    def __init__(self, queues: Mapping[str, QueueRules]) -> None:
        self.queues = dict(queues)
        self.calls: dict[str, WaitingCall] = {}
        self.free: dict[str, FreeAgent] = {}
        self._ranks: dict[str, Rank] = {}
        self._needs: dict[str, Requirement] = {}
        self._groups: dict[Requirement, list[tuple[Rank, str]]] = {}
        self._order = itertools.count()

    # -- calls -------------------------------------------------------------------------

    def queue_call(self, call: WaitingCall, now: datetime) -> list[Assignment]:
        """A caller starts to wait (or waits again after an agent did not answer)."""
        if call.queue not in self.queues:
            raise RoutingError(f"unknown queue '{call.queue}'")
        self.remove_call(call.call_id)
        # the rank is the priority and the time the caller has waited: a call put back after
        # an agent did not answer keeps its waiting_since, so it is back at its place
        rank = (-call.priority, call.waiting_since, next(self._order))
        self._add(call, rank)
        found = self._agent_for(call.call_id, now)
        return [found] if found else []

    def place_call(self, call: WaitingCall) -> None:
        """Put a call at its place without deciding (rebuilding after a restart, where
        `decide_all` follows once every call is back)."""
        if call.queue not in self.queues:
            raise RoutingError(f"unknown queue '{call.queue}'")
        self.remove_call(call.call_id)
        self._add(call, (-call.priority, call.waiting_since, next(self._order)))

    def remove_call(self, call_id: str) -> None:
        """The call was answered, abandoned or taken out of the queue."""
        if call_id not in self.calls:
            return
        need = self._needs.pop(call_id)
        group = self._groups[need]
        group.remove((self._ranks.pop(call_id), call_id))
        if not group:
            del self._groups[need]
        del self.calls[call_id]

    def next_step(self, call_id: str, now: datetime) -> list[Assignment]:
        """The call's step ran out: on to the next step, or to the overflow queue it names."""
        call = self.calls.get(call_id)
        if call is None or call.step + 1 >= len(self.queues[call.queue].steps):
            return []
        rank = self._ranks[call_id]
        self.remove_call(call_id)
        self._add(replace(call, step=call.step + 1), rank)
        found = self._agent_for(call_id, now)
        return [found] if found else []

    def step_seconds(self, call_id: str) -> float | None:
        """How long the call's current step lasts (None: until it is answered)."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        steps = self.queues[call.queue].steps
        return steps[call.step].seconds if call.step + 1 < len(steps) else None

    # -- agents ------------------------------------------------------------------------

    def agent_free(self, agent: FreeAgent, now: datetime) -> list[Assignment]:
        """An agent became available: the best-ranked call they qualify for, if any."""
        self.free[agent.agent_id] = agent
        best: tuple[Rank, str] | None = None
        for need, group in self._groups.items():
            # the rank test is cheaper than the skill test, so it goes first
            if (best is None or group[0] < best) and need.met_by(agent.skills):
                best = group[0]
        if best is None:
            return []
        call_id = best[1]
        call = self.calls[call_id]
        need = self._needs[call_id]
        candidate = _candidate(agent, need, now)
        waiting = len(self.calls)
        self._take(call_id, agent.agent_id)
        why = (
            f"{agent.name} became free; of the {waiting} waiting calls this is the first by "
            f"priority then wait that {agent.name} qualifies for ({need})"
        )
        return [_assignment(call, need, self.queues[call.queue], (candidate,), 1, 1, waiting, why)]

    def agent_gone(self, agent_id: str) -> None:
        """The agent is no longer free (ringing, talking, wrap-up, paused, unreachable)."""
        self.free.pop(agent_id, None)

    # -- configuration -----------------------------------------------------------------

    def set_queues(self, queues: Mapping[str, QueueRules], now: datetime) -> list[Assignment]:
        """New queue rules apply to the next decision: every waiting call is placed again."""
        waiting = [(self._ranks[call_id], call) for call_id, call in self.calls.items()]
        self.queues = dict(queues)
        for _, call in waiting:
            self.remove_call(call.call_id)
        for rank, call in waiting:
            if call.queue in self.queues:  # a call of a removed queue waits for the service
                steps = len(self.queues[call.queue].steps)
                self._add(replace(call, step=min(call.step, steps - 1)), rank)
        return self.decide_all(now)

    def decide_all(self, now: datetime) -> list[Assignment]:
        """Pair every waiting call that some free agent qualifies for, best-ranked first."""
        done = []
        for _, call_id in sorted((rank, call_id) for call_id, rank in self._ranks.items()):
            if not self.free:
                break
            found = self._agent_for(call_id, now)
            if found:
                done.append(found)
        return done

    def positions(self) -> dict[str, tuple[int, int]]:
        """Each waiting call's (position in its queue, from 1; calls ahead across queues + 1)."""
        ordered = sorted((rank, call_id) for call_id, rank in self._ranks.items())
        seen: dict[str, int] = {}
        found = {}
        for overall, (_, call_id) in enumerate(ordered, start=1):
            queue = self.calls[call_id].queue
            seen[queue] = seen.get(queue, 0) + 1
            found[call_id] = (seen[queue], overall)
        return found

    # -- inside ------------------------------------------------------------------------

    def _add(self, call: WaitingCall, rank: Rank) -> None:
        call = self._past_overflows(call)
        need = self.queues[call.queue].requirement(call.step, call.skills)
        self.calls[call.call_id] = call
        self._ranks[call.call_id] = rank
        self._needs[call.call_id] = need
        bisect.insort(self._groups.setdefault(need, []), (rank, call.call_id))

    def _past_overflows(self, call: WaitingCall) -> WaitingCall:
        """A step that overflows sends the call on to the first step of that queue at once,
        keeping its rank (the time it has waited). The queue rules refuse overflow loops;
        the bound is a guard."""
        for _ in range(len(self.queues) + 1):
            step = self.queues[call.queue].steps[call.step]
            if step.overflow is None or step.overflow not in self.queues:
                return call
            call = replace(call, queue=step.overflow, step=0)
        return call

    def _agent_for(self, call_id: str, now: datetime) -> Assignment | None:
        call = self.calls[call_id]
        need = self._needs[call_id]
        rules = self.queues[call.queue]
        qualified = [agent for agent in self.free.values() if need.met_by(agent.skills)]
        if not qualified:
            return None
        # the best few in the strategy's order, with no candidate (nor a sort) for the rest
        key = _strategy_key(rules.strategy, need, now)
        ordered = [
            _candidate(a, need, now) for a in heapq.nsmallest(TOP_CANDIDATES, qualified, key)
        ]
        chosen = ordered[0]
        why = _why(chosen, ordered, len(qualified), rules.strategy, need)
        free, waiting = len(self.free), len(self.calls)
        self._take(call_id, chosen.agent_id)
        return _assignment(call, need, rules, ordered, free, len(qualified), waiting, why)

    def _take(self, call_id: str, agent_id: str) -> None:
        self.remove_call(call_id)
        self.agent_gone(agent_id)


def _candidate(agent: FreeAgent, need: Requirement, now: datetime) -> Candidate:
    idle = max(0.0, (now - agent.idle_since).total_seconds())
    return Candidate(agent.agent_id, agent.name, need.score(agent.skills), idle)


def _strategy_key(
    strategy: Strategy, need: Requirement, now: datetime
) -> Callable[[FreeAgent], tuple[object, ...]]:
    """Best first: the longest idle (idle since the earliest moment, none counted past
    now), or the best level on the required skills; each, then the other, then the id."""
    if strategy is Strategy.LONGEST_IDLE:
        return lambda a: (min(a.idle_since, now), -need.score(a.skills), a.agent_id)
    return lambda a: (-need.score(a.skills), min(a.idle_since, now), a.agent_id)


def _why(
    chosen: Candidate, ordered: list[Candidate], count: int, strategy: Strategy, need: Requirement
) -> str:
    """`ordered`: the best candidates, of `count` qualified free agents."""
    rivals = count - 1
    idle = f"idle {chosen.idle_seconds:.0f} s"
    if not rivals:
        return f"{chosen.name} was the only free agent with {need}"
    runner = ordered[1]
    if strategy is Strategy.LONGEST_IDLE:
        return (
            f"{chosen.name} had been idle longest ({idle}) of {rivals + 1} free agents with {need}"
        )
    if chosen.score > runner.score:
        return (
            f"{chosen.name} had the best level on the required skills (score {chosen.score}, "
            f"next {runner.score}) of {rivals + 1} free agents with {need}"
        )
    return (
        f"{chosen.name} tied on level (score {chosen.score}) and had been idle longest "
        f"({idle}) of {rivals + 1} free agents with {need}"
    )


def _assignment(
    call: WaitingCall,
    need: Requirement,
    rules: QueueRules,
    candidates: Iterable[Candidate],
    free: int,
    qualified: int,
    waiting: int,
    why: str,
) -> Assignment:
    return Assignment(
        call.call_id,
        candidates_first(candidates).agent_id,
        call.queue,
        call.step,
        str(need),
        rules.strategy.value,
        tuple(candidates),
        free,
        qualified,
        waiting,
        why,
    )


def candidates_first(candidates: Iterable[Candidate]) -> Candidate:
    return next(iter(candidates))
