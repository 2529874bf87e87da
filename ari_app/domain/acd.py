"""The ACD: waiting calls, agents and their phones, put together (pure).

It owns the routing core and every agent's state machine, takes what happened
(a caller starts to wait, a phone is answered or rings out, a caller hangs up,
a timer runs out, an agent logs in) and answers with commands for the services
to carry out: ring this agent, connect these two, stop ringing, start a timer,
store this state change and this routing reason, send this caller to the
queue's ending (voicemail, transfer) after too long a wait.

Timers are named: `step:<call>` (the routing step ran out), `wait:<call>` (the
queue's longest wait), `wrap:<agent>` (wrap-up time).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from ari_app.domain import agents as agent_logic
from ari_app.domain.agents import AgentEvent, AgentProfile, AgentState, AgentStatus
from ari_app.domain.ivr.flow import Node
from ari_app.domain.routing.config import QueueConfig
from ari_app.domain.routing.router import Assignment, FreeAgent, Router, WaitingCall

# -- commands -------------------------------------------------------------------------------


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
    node: Node
    why: str


AcdCommand = (
    RingAgent
    | StopRinging
    | ConnectAgent
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


@dataclass
class Acd:
    queues: dict[str, QueueConfig]
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    statuses: dict[str, AgentStatus] = field(default_factory=dict)
    calls: dict[str, Waiting] = field(default_factory=dict)
    router: Router = field(init=False)

    def __post_init__(self) -> None:
        self.router = Router({name: queue.rules for name, queue in self.queues.items()})

    # -- callers ----------------------------------------------------------------------------

    def call_waiting(self, call: WaitingCall, now: datetime) -> list[AcdCommand]:
        """A caller starts to wait in a queue (handed over by the IVR)."""
        queue = self.queues[call.queue]
        nobody = queue.when_no_agents == "leave" and not self._anyone_for(call)
        if nobody and queue.on_no_agents is not None:
            return [SendToEnding(call.call_id, queue.on_no_agents, "no agent is logged in")]
        self.calls[call.call_id] = Waiting(call)
        commands: list[AcdCommand] = []
        if queue.max_wait is not None:
            commands.append(StartAcdTimer(f"wait:{call.call_id}", queue.max_wait))
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
        ]
        self.router.remove_call(call_id)
        if waiting.agent_id is None:
            return commands
        if waiting.talking:
            return commands + self._agent(waiting.agent_id, agent_logic.CallEnded(call_id), now)
        commands.append(StopRinging(call_id, waiting.agent_id))
        return commands + self._agent(waiting.agent_id, agent_logic.OfferWithdrawn(call_id), now)

    def agent_answered(self, call_id: str, now: datetime) -> list[AcdCommand]:
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.agent_id is None or waiting.talking:
            return []
        self.calls[call_id] = replace(waiting, talking=True)
        return [
            CancelAcdTimer(f"step:{call_id}"),
            CancelAcdTimer(f"wait:{call_id}"),
            *self._agent(waiting.agent_id, agent_logic.Answered(call_id), now),
            ConnectAgent(call_id, waiting.agent_id),
        ]

    def ring_failed(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """The agent's phone rang out, was busy or refused: the call goes back to its place."""
        waiting = self.calls.get(call_id)
        if waiting is None or waiting.agent_id is None or waiting.talking:
            return []
        agent_id = waiting.agent_id
        self.calls[call_id] = Waiting(waiting.call)
        # the call first, so that another agent can take it before this one is free again
        commands = self._offer(self.router.queue_call(waiting.call, now), now)
        commands += self._agent(agent_id, agent_logic.RingUnanswered(call_id), now)
        return commands + self._placed(call_id)

    def talk_ended(self, call_id: str, now: datetime) -> list[AcdCommand]:
        """Caller or agent hung up the conversation."""
        return self.caller_left(call_id, now)

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
        if waiting is None or waiting.agent_id is not None:
            return []
        if kind == "step":
            return self._offer(self.router.next_step(ident, now), now) + self._placed(ident)
        if kind == "wait":
            queue = self.queues[self.router.calls[ident].queue]
            self.router.remove_call(ident)
            del self.calls[ident]
            ending = queue.on_max_wait
            if ending is None:
                return []
            why = f"waited {queue.max_wait:g} s in {queue.name}"
            return [CancelAcdTimer(f"step:{ident}"), SendToEnding(ident, ending, why)]
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
            self.calls[call_id] = Waiting(placed, agent_id=agent_id)
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

    def _anyone_for(self, call: WaitingCall) -> bool:
        """Whether any logged-in agent has the queue's skills at its lowest level."""
        rules = self.queues[call.queue].rules
        need = rules.requirement(len(rules.steps) - 1, call.skills)
        return any(
            status.state is not AgentState.LOGGED_OUT
            and need.met_by(self.profiles[agent_id].skills)
            for agent_id, status in self.statuses.items()
        )
