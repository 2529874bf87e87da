"""The ACD: waiting calls, agents and their phones, put together (pure).

It owns the routing core and every agent's state machine, takes what happened
(a caller starts to wait, a phone is answered or rings out, a caller hangs up,
a timer runs out, an agent logs in) and answers with commands for the services
to carry out: ring this agent, connect these two, stop ringing, start a timer,
store this state change and this routing reason, send this caller to the
queue's ending (voicemail, transfer) after too long a wait.

Timers are named: `step:<call>` (the routing step ran out), `wait:<call>` (the
queue's longest wait), `wrap:<agent>` (wrap-up time), `announce:<call>` (the next
announcement of place in line and expected wait).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ari_app.domain import agents as agent_logic
from ari_app.domain.agents import AgentEvent, AgentProfile, AgentState, AgentStatus
from ari_app.domain.announce import announcement, expected_wait
from ari_app.domain.ivr.flow import Node
from ari_app.domain.routing.config import Callback, QueueConfig
from ari_app.domain.routing.router import Assignment, FreeAgent, Router, WaitingCall
from ari_app.domain.routing.rules import step_reached

_LEG = re.compile(r"(?P<call>.+)-agent-(?P<agent>[a-z0-9][a-z0-9_-]{0,31})-[0-9a-f]{8}")


def agent_leg(call_id: str, agent_id: str) -> str:
    """The channel id of a ring to an agent's phone for a call: it names both, and is new
    each time (a ring started before a restart never shares an id with one after)."""
    return f"{call_id}-agent-{agent_id}-{secrets.token_hex(4)}"


def leg_of(channel_id: str) -> tuple[str, str] | None:
    """(call, agent) when the channel is a ring to an agent's phone, else None."""
    found = _LEG.fullmatch(channel_id)
    return (found["call"], found["agent"]) if found else None


def callback_id(call_id: str) -> str:
    """The id of the callback a caller asked for (their place in line, without a channel)."""
    return f"cb-{call_id}"


def is_callback(call_id: str) -> bool:
    return call_id.startswith("cb-")


_CUSTOMER = re.compile(r"(?P<call>cb-.+)-customer-[0-9a-f]{8}")


def customer_leg(call_id: str) -> str:
    """The channel id of a call back to the customer of a callback."""
    return f"{call_id}-customer-{secrets.token_hex(4)}"


def customer_of(channel_id: str) -> str | None:
    """The callback whose customer this channel calls, if it is one."""
    found = _CUSTOMER.fullmatch(channel_id)
    return found["call"] if found else None


def acd_channel(channel_id: str) -> bool:
    """Whether the channel is one the ACD dialled (a ring to an agent, a call back)."""
    return leg_of(channel_id) is not None or customer_of(channel_id) is not None


DEFAULT_RING_SECONDS = 15.0  # a transfer's ring when the call's queue is gone
CUSTOMER_RING_SECONDS = 30.0  # how long a called-back customer's phone rings


class CallbackBusy(Exception):
    """A callback already in the hands of an agent."""


# -- commands -------------------------------------------------------------------------------


class TransferRefused(Exception):
    """The call is not in a conversation, or the agent asked for cannot take it now."""


@dataclass(frozen=True)
class HandOver:
    """A conversation goes to another agent: this agent's phone leaves it (the caller
    stays in the conversation's bridge, with music, until the next agent answers)."""

    call_id: str
    agent_id: str  # the agent who hands the call over


@dataclass(frozen=True)
class RingAgent:
    call_id: str
    agent_id: str
    endpoint: str
    timeout: float


@dataclass(frozen=True)
class StopRinging:
    call_id: str
    agent_id: str


@dataclass(frozen=True)
class ConnectAgent:
    """Caller and agent talk: out of the waiting room, into one bridge."""

    call_id: str
    agent_id: str


@dataclass(frozen=True)
class StartAcdTimer:
    key: str
    seconds: float


@dataclass(frozen=True)
class CancelAcdTimer:
    key: str


@dataclass(frozen=True)
class AgentChanged:
    """Store the agent's new state and an audit row saying why."""

    status: AgentStatus
    event: str
    before: AgentState


@dataclass(frozen=True)
class Routed:
    """Store why this call went to this agent."""

    assignment: Assignment


@dataclass(frozen=True)
class SendToEnding:
    """The caller leaves the queue for one of its endings (max wait, nobody there)."""

    call_id: str
    node: Node | Callback
    why: str


@dataclass(frozen=True)
class Announce:
    """Tell a waiting caller their place in line and expected wait (over the music)."""

    call_id: str
    media: tuple[str, ...]


@dataclass(frozen=True)
class DialCustomer:
    """The agent took a callback: call the customer back into the agent's conversation."""

    call_id: str
    number: str
    agent_id: str
    timeout: float = CUSTOMER_RING_SECONDS


@dataclass(frozen=True)
class CallbackChanged:
    """Store where a callback request stands: waiting, scheduled (to be tried again at
    `retry_at`), talking, done, failed (every attempt went unanswered) or cancelled."""

    call: WaitingCall
    state: str
    attempts: int  # calls to the customer so far
    agent_id: str | None = None
    retry_at: datetime | None = None
    ending: Callback | None = None


AcdCommand = (
    Announce
    | DialCustomer
    | CallbackChanged
    | RingAgent
    | StopRinging
    | ConnectAgent
    | HandOver
    | StartAcdTimer
    | CancelAcdTimer
    | AgentChanged
    | Routed
    | SendToEnding
)


@dataclass(frozen=True)
class Waiting:
    """A call in a queue, as it came: kept to put it back at its place after a missed ring."""

    call: WaitingCall
    agent_id: str | None = None  # ringing this agent
    talking: bool = False
    answered_at: datetime | None = None
    callback: Callback | None = None  # a callback request, with its attempts and retry time
    attempts: int = 0  # calls back to the customer so far


@dataclass(frozen=True)
class WaitingView:
    """A caller not yet talking, as a supervisor sees them."""

    call_id: str
    queue: str  # where the call stands now (after any overflow)
    step: int
    priority: int
    waiting_since: datetime
    waited_seconds: float
    position: int | None  # in its queue, from 1; None while an agent's phone rings
    overall: int | None  # among every waiting call of the center, by priority then wait
    ringing: str | None  # the agent whose phone rings for it
    callback: bool = False  # a callback request: the caller hung up and keeps this place


@dataclass
class Acd:
    queues: dict[str, QueueConfig]
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    statuses: dict[str, AgentStatus] = field(default_factory=dict)
    calls: dict[str, Waiting] = field(default_factory=dict)
    handle_seconds: dict[str, float] = field(default_factory=dict)  # by queue: talk + wrap-up
    router: Router = field(init=False)

    def __post_init__(self) -> None:
        self.router = Router({name: queue.rules for name, queue in self.queues.items()})

    # -- callers ----------------------------------------------------------------------------

    def call_waiting(self, call: WaitingCall, now: datetime) -> list[AcdCommand]:
        """A caller starts to wait in a queue (handed over by the IVR)."""
        queue = self.queues[call.queue]
        nobody = queue.when_no_agents == "leave" and not self._anyone_for(call)
        if nobody and queue.on_no_agents is not None:
            return self._leave(call, queue.on_no_agents, "no agent is logged in", now)
        self.calls[call.call_id] = Waiting(call)
        commands: list[AcdCommand] = []
        if queue.max_wait is not None:
            commands.append(StartAcdTimer(f"wait:{call.call_id}", queue.max_wait))
        if queue.announce_every is not None:
            commands.append(StartAcdTimer(f"announce:{call.call_id}", queue.announce_every))
        commands += self._offer(self.router.queue_call(call, now), now)
        return commands + self._placed(call.call_id)

    def caller_left(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """The caller hung up, wherever they were."""
        waiting = self.calls.pop(call_id, None)
        if waiting is None:
            return []
        commands: list[AcdCommand] = [
            CancelAcdTimer(f"step:{call_id}"),
            CancelAcdTimer(f"wait:{call_id}"),
            CancelAcdTimer(f"announce:{call_id}"),
        ]
        self.router.remove_call(call_id)
        if waiting.agent_id is None:
            return commands
        if waiting.talking:
            self._handled(waiting, now)
            if waiting.callback is not None:
                commands.append(
                    CallbackChanged(waiting.call, "done", waiting.attempts, waiting.agent_id)
                )
            return commands + self._agent(waiting.agent_id, agent_logic.CallEnded(call_id), now)
        commands.append(StopRinging(call_id, waiting.agent_id))
        return commands + self._agent(waiting.agent_id, agent_logic.OfferWithdrawn(call_id), now)

    def agent_answered(self, call_id: str, now: datetime) -> list[AcdCommand]:
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.agent_id is None or waiting.talking:
            return []
        self.calls[call_id] = replace(waiting, talking=True, answered_at=now)
        connect: AcdCommand = ConnectAgent(call_id, waiting.agent_id)
        if waiting.callback is not None:
            connect = DialCustomer(call_id, waiting.call.caller, waiting.agent_id)
        return [
            CancelAcdTimer(f"step:{call_id}"),
            CancelAcdTimer(f"wait:{call_id}"),
            CancelAcdTimer(f"announce:{call_id}"),
            *self._agent(waiting.agent_id, agent_logic.Answered(call_id), now),
            connect,
        ]

    def customer_answered(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """The customer of a callback picked up: agent and customer talk."""
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.callback is None or not waiting.talking:
            return []
        attempts = waiting.attempts + 1
        self.calls[call_id] = replace(waiting, attempts=attempts, answered_at=now)
        return [CallbackChanged(waiting.call, "talking", attempts, waiting.agent_id)]

    def cancel_callback(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """The caller no longer wants the callback (or called again): out of the line.
        Raises CallbackBusy while an agent is already talking to the customer (or dialling
        them), and KeyError for a callback that is not open."""
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.callback is None:
            raise KeyError(call_id)
        if waiting.talking:
            raise CallbackBusy(f"{call_id} is already with agent {waiting.agent_id}")
        del self.calls[call_id]
        self.router.remove_call(call_id)
        commands: list[AcdCommand] = [
            CancelAcdTimer(f"step:{call_id}"),
            CancelAcdTimer(f"retry:{call_id}"),
            CallbackChanged(waiting.call, "cancelled", waiting.attempts),
        ]
        if waiting.agent_id is not None:  # their phone rings for it: not their miss
            commands.append(StopRinging(call_id, waiting.agent_id))
            event = agent_logic.OfferWithdrawn(call_id)
            commands += self._agent(waiting.agent_id, event, now)
        return commands

    def customer_unreached(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """The customer of a callback did not pick up (or was busy): the agent is freed
        through wrap-up, and the call back is tried again later or given up."""
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.callback is None or waiting.agent_id is None:
            return []
        ending, attempts = waiting.callback, waiting.attempts + 1
        commands = self._agent(waiting.agent_id, agent_logic.CallEnded(call_id), now)
        if attempts >= ending.attempts:
            del self.calls[call_id]
            return [*commands, CallbackChanged(waiting.call, "failed", attempts, waiting.agent_id)]
        self.calls[call_id] = Waiting(waiting.call, callback=ending, attempts=attempts)
        retry_at = now + timedelta(seconds=ending.retry_after)
        return [
            *commands,
            StartAcdTimer(f"retry:{call_id}", ending.retry_after),
            CallbackChanged(waiting.call, "scheduled", attempts, waiting.agent_id, retry_at),
        ]

    def ring_failed(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """The agent's phone rang out, was busy or refused: the call goes back to its place."""
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.agent_id is None or waiting.talking:
            return []
        agent_id = waiting.agent_id
        self.calls[call_id] = replace(waiting, agent_id=None)
        # the call first, so that another agent can take it before this one is free again
        commands = self._offer(self.router.queue_call(waiting.call, now), now)
        commands += self._agent(agent_id, agent_logic.RingUnanswered(call_id), now)
        return commands + self._placed(call_id)

    def transfer(self, call_id: str, agent_id: str, now: datetime) -> list[AcdCommand]:
        """Hand a conversation to another agent, chosen by a person (no skill check): the
        agent talking now goes into wrap-up and the new agent's phone rings. If it is not
        answered the call goes back to its queue at the place it had."""
        held = self.calls.get(call_id)
        if held is None or not held.talking or held.agent_id is None:
            raise TransferRefused(f"call {call_id} is not in a conversation with an agent")
        if held.callback is not None:
            raise TransferRefused("a callback's conversation cannot be transferred yet")
        status = self.statuses.get(agent_id)
        if agent_id == held.agent_id:
            raise TransferRefused(f"agent {agent_id} has the call already")
        if agent_id not in self.profiles or status is None or not status.routable:
            raise TransferRefused(f"agent {agent_id} is not available")
        before = held.agent_id
        self._handled(held, now)
        self.calls[call_id] = replace(held, agent_id=agent_id, talking=False, answered_at=None)
        queue = self.queues.get(held.call.queue)
        ring = queue.ring_timeout if queue else DEFAULT_RING_SECONDS
        # the new agent is booked first, so no other call can take them meanwhile
        commands = self._agent(agent_id, agent_logic.Offered(call_id), now)
        return [
            HandOver(call_id, before),
            *commands,
            RingAgent(call_id, agent_id, self.profiles[agent_id].endpoint, ring),
            *self._agent(before, agent_logic.CallEnded(call_id), now),
        ]

    def talk_ended(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """Caller or agent hung up the conversation."""
        return self.caller_left(call_id, now)

    def waiting(self, now: datetime) -> list[WaitingView]:
        """Every caller not yet talking: waiting in order, then those ringing an agent."""
        positions = self.router.positions()
        views = []
        for call_id, held in self.calls.items():
            if held.talking:
                continue
            placed = self.router.calls.get(call_id, held.call)
            position, overall = positions.get(call_id, (None, None))
            views.append(
                WaitingView(
                    call_id,
                    placed.queue,
                    placed.step,
                    placed.priority,
                    placed.waiting_since,
                    max(0.0, (now - placed.waiting_since).total_seconds()),
                    position,
                    overall,
                    held.agent_id,
                    held.callback is not None,
                )
            )
        return sorted(views, key=lambda v: (v.overall is None, v.overall or 0, v.waiting_since))

    # -- a restart --------------------------------------------------------------------------

    def resume(
        self,
        waiting: list[WaitingCall],
        talking: Mapping[str, tuple[WaitingCall, str]],
        now: datetime,
        callbacks: Mapping[str, tuple[Callback, int, datetime | None]] | None = None,
    ) -> list[AcdCommand]:
        """Take back what Asterisk still holds after the service was away.

        `waiting` are callers still in their waiting room, as they entered the queue (their
        order and escalation step follow from when they entered); `talking` maps a call
        still in its conversation to the agent on the other side. An agent the database
        has ringing or talking to a call that is no longer there is released (a ring cut
        by the restart is not their miss; a conversation that ended meanwhile gets its
        wrap-up), and wrap-ups run on for the time they have left. `callbacks` are the
        open callback requests (their ending, the calls back so far, when the next is
        due), whose customers wait without a channel."""
        commands: list[AcdCommand] = []
        requests = callbacks or {}

        def held(call: WaitingCall, **fields: Any) -> Waiting:
            ending, attempts, _ = requests.get(call.call_id, (None, 0, None))
            return Waiting(call, callback=ending, attempts=attempts, **fields)

        for call_id, (call, agent_id) in talking.items():
            if call_id in self.calls or agent_id not in self.profiles:
                continue
            self.calls[call_id] = held(call, agent_id=agent_id, talking=True)
            self.router.remove_call(call_id)
            status = self.statuses.get(agent_id, AgentStatus(agent_id))
            if status.state is AgentState.RESERVED and status.call_id == call_id:
                commands += self._agent(agent_id, agent_logic.Answered(call_id), now)
        for agent_id, status in list(self.statuses.items()):
            gone = status.call_id
            if gone is None or gone in self.calls or agent_id not in self.profiles:
                continue
            if status.state is AgentState.RESERVED:
                commands += self._agent(agent_id, agent_logic.OfferWithdrawn(gone), now)
            elif status.state is AgentState.ON_CALL:
                commands += self._agent(agent_id, agent_logic.CallEnded(gone), now)
        for agent_id, status in self.statuses.items():
            if status.state is AgentState.WRAP_UP and status.wrap_up_until is not None:
                wrap_left = max(0.0, (status.wrap_up_until - now).total_seconds())
                commands.append(StartAcdTimer(f"wrap:{agent_id}", wrap_left))
        left_in_step: dict[str, float | None] = {}
        for call in sorted(waiting, key=lambda c: (-c.priority, c.waiting_since, c.call_id)):
            if call.call_id in self.calls or call.queue not in self.queues:
                continue
            waited = max(0.0, (now - call.waiting_since).total_seconds())
            queue = self.queues[call.queue]
            ending = queue.on_max_wait
            request = requests.get(call.call_id)
            if request is not None and request[2] is not None and request[2] > now:
                # a callback whose next attempt is not due yet
                self.calls[call.call_id] = held(call)
                due = (request[2] - now).total_seconds()
                commands.append(StartAcdTimer(f"retry:{call.call_id}", due))
                continue
            late = queue.max_wait is not None and waited >= queue.max_wait
            if request is None and late and ending is not None:
                why = f"waited {queue.max_wait:g} s in {queue.name}"
                commands += self._leave(call, ending, why, now)
                continue
            rules = {name: q.rules for name, q in self.queues.items()}
            where, step, left_in_step[call.call_id] = step_reached(rules, call.queue, waited)
            self.calls[call.call_id] = held(call)
            self.router.place_call(replace(call, queue=where, step=step))
            if request is not None:
                continue  # a callback: no longest wait, nobody to announce to
            if queue.max_wait is not None:
                left = max(0.0, queue.max_wait - waited)
                commands.append(StartAcdTimer(f"wait:{call.call_id}", left))
            if queue.announce_every is not None:
                commands.append(StartAcdTimer(f"announce:{call.call_id}", queue.announce_every))
        commands += self._offer(self.router.decide_all(now), now)
        for call_id, step_left in left_in_step.items():
            if call_id in self.router.calls and step_left is not None:
                commands.append(StartAcdTimer(f"step:{call_id}", step_left))
        return commands

    # -- configuration ----------------------------------------------------------------------

    def set_queues(self, queues: Mapping[str, QueueConfig], now: datetime) -> list[AcdCommand]:
        """New queues apply to the next decision; waiting calls keep their place and step."""
        self.queues = dict(queues)
        rules = {name: queue.rules for name, queue in self.queues.items()}
        return self._offer(self.router.set_queues(rules, now), now)

    # -- agents -----------------------------------------------------------------------------

    def agent_event(self, agent_id: str, event: AgentEvent, now: datetime) -> list[AcdCommand]:
        """A change from the API, the agent's phone, or the phone's reachability.

        Raises AgentStateError when the agent's state does not allow it."""
        return self._agent(agent_id, event, now)

    def timer(self, key: str, now: datetime) -> list[AcdCommand]:
        kind, _, ident = key.partition(":")
        if kind == "wrap":
            status = self.statuses.get(ident)
            if status is None or status.state is not AgentState.WRAP_UP:
                return []
            return self._agent(ident, agent_logic.WrapUpEnded(), now)
        waiting = self.calls.get(ident)
        if kind == "announce" and waiting is not None and not waiting.talking:
            return self._announce(waiting)
        if waiting is None or waiting.agent_id is not None:
            return []
        if kind == "retry" and ident not in self.router.calls:
            # a callback's next attempt: back at its place in line
            again = CallbackChanged(waiting.call, "waiting", waiting.attempts)
            offered = self._offer(self.router.queue_call(waiting.call, now), now)
            return [again, *offered, *self._placed(ident)]
        if kind == "step":
            return self._offer(self.router.next_step(ident, now), now) + self._placed(ident)
        if kind == "wait":
            placed = self.router.calls.get(ident)
            queue = self.queues.get(placed.queue if placed else waiting.call.queue)
            self.router.remove_call(ident)
            del self.calls[ident]
            ending = queue.on_max_wait if queue else None
            if queue is None or ending is None:
                return []
            why = f"waited {queue.max_wait:g} s in {queue.name}"
            where = replace(waiting.call, queue=placed.queue, step=placed.step) if placed else None
            return [
                CancelAcdTimer(f"step:{ident}"),
                CancelAcdTimer(f"announce:{ident}"),
                *self._leave(where or waiting.call, ending, why, now),
            ]
        return []

    # -- inside -----------------------------------------------------------------------------

    def _agent(self, agent_id: str, event: AgentEvent, now: datetime) -> list[AcdCommand]:
        profile = self.profiles[agent_id]
        before = self.statuses.get(agent_id, AgentStatus(agent_id))
        queue = self._queue_of(before.call_id)
        max_missed = queue.max_missed if queue else 3
        status = agent_logic.step(before, event, now, profile, max_missed=max_missed)
        self.statuses[agent_id] = status
        commands: list[AcdCommand] = []
        if status != before or not isinstance(event, agent_logic.Reachability):
            commands.append(AgentChanged(status, type(event).__name__, before.state))
        if before.state is AgentState.WRAP_UP and status.state is not AgentState.WRAP_UP:
            commands.append(CancelAcdTimer(f"wrap:{agent_id}"))
        if status.state is AgentState.WRAP_UP and before.state is not AgentState.WRAP_UP:
            commands.append(StartAcdTimer(f"wrap:{agent_id}", profile.wrap_up_seconds))
        if status.routable:
            idle_since = status.since or now
            free = FreeAgent(agent_id, profile.name, profile.skills, idle_since)
            commands += self._offer(self.router.agent_free(free, now), now)
        else:
            self.router.agent_gone(agent_id)
        return commands

    def _offer(self, assignments: list[Assignment], now: datetime) -> list[AcdCommand]:
        commands: list[AcdCommand] = []
        for assignment in assignments:
            call_id, agent_id = assignment.call_id, assignment.agent_id
            # where the call stood (queue and step), to put it back there if the ring fails
            placed = replace(self.calls[call_id].call, queue=assignment.queue, step=assignment.step)
            self.calls[call_id] = replace(self.calls[call_id], call=placed, agent_id=agent_id)
            queue = self.queues[assignment.queue]
            commands += [
                CancelAcdTimer(f"step:{call_id}"),
                Routed(assignment),
                *self._agent(agent_id, agent_logic.Offered(call_id), now),
                RingAgent(call_id, agent_id, self.profiles[agent_id].endpoint, queue.ring_timeout),
            ]
        return commands

    def _placed(self, call_id: str) -> list[AcdCommand]:
        """A call that still waits after a decision: the timer of its routing step."""
        seconds = self.router.step_seconds(call_id) if call_id in self.router.calls else None
        return [] if seconds is None else [StartAcdTimer(f"step:{call_id}", seconds)]

    def _queue_of(self, call_id: str | None) -> QueueConfig | None:
        waiting = self.calls.get(call_id) if call_id else None
        return self.queues.get(waiting.call.queue) if waiting else None

    def _leave(
        self, call: WaitingCall, ending: Node | Callback, why: str, now: datetime
    ) -> list[AcdCommand]:
        """The caller leaves the queue for its ending; a callback keeps their place."""
        commands: list[AcdCommand] = [SendToEnding(call.call_id, ending, why)]
        if not isinstance(ending, Callback):
            return commands
        kept = replace(call, call_id=callback_id(call.call_id))
        self.calls[kept.call_id] = Waiting(kept, callback=ending)
        commands.append(CallbackChanged(kept, "waiting", 0, ending=ending))
        commands += self._offer(self.router.queue_call(kept, now), now)
        return commands + self._placed(kept.call_id)

    def _announce(self, waiting: Waiting) -> list[AcdCommand]:
        """The periodic announcement: not over a ringing phone, and again after the period."""
        call_id = waiting.call.call_id
        placed = self.router.calls.get(call_id, waiting.call)
        queue = self.queues.get(placed.queue)
        if queue is None or queue.announce_every is None:
            return []
        commands: list[AcdCommand] = [StartAcdTimer(f"announce:{call_id}", queue.announce_every)]
        position = self.router.positions().get(call_id)
        if waiting.agent_id is not None or position is None:
            return commands
        rules = queue.rules
        need = rules.requirement(len(rules.steps) - 1, placed.skills)
        serving = sum(
            1
            for agent_id, status in self.statuses.items()
            if status.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)
            and agent_id in self.profiles
            and need.met_by(self.profiles[agent_id].skills)
        )
        expected = expected_wait(position[0], serving, self.handle_seconds.get(queue.name))
        return [Announce(call_id, announcement(position[0], expected)), *commands]

    def _handled(self, waiting: Waiting, now: datetime) -> None:
        """A conversation ended: the queue's average handle time (talk plus wrap-up) moves."""
        if waiting.answered_at is None or waiting.agent_id not in self.profiles:
            return
        talk = max(0.0, (now - waiting.answered_at).total_seconds())
        spent = talk + self.profiles[waiting.agent_id].wrap_up_seconds
        queue = waiting.call.queue
        before = self.handle_seconds.get(queue)
        # a moving average, as app_queue keeps its hold time: recent calls weigh most
        self.handle_seconds[queue] = spent if before is None else 0.8 * before + 0.2 * spent

    def _anyone_for(self, call: WaitingCall) -> bool:
        """Whether any logged-in agent has the queue's skills at its lowest level."""
        rules = self.queues[call.queue].rules
        need = rules.requirement(len(rules.steps) - 1, call.skills)
        return any(
            status.state is not AgentState.LOGGED_OUT
            and need.met_by(self.profiles[agent_id].skills)
            for agent_id, status in self.statuses.items()
        )
