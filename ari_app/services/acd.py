"""The ACD on ARI: the waiting room, ringing agents, the conversation, wrap-up.

A queued caller waits alone in a holding bridge (`wait-<call>`) with music. The
chosen agent's phone is originated into the application (`agent-leg`); when it
answers, caller and agent meet in a mixing bridge (`talk-<call>`). When either
hangs up, the other is hung up too and the agent enters wrap-up. Decisions are
the pure `Acd`'s; this service carries out its commands, one at a time and in
order, and feeds it what Asterisk reports.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ari_app.adapters.agent_store import AgentStore, RoutingStore
from ari_app.adapters.ari import AriError, AriRest, AriUnreachable
from ari_app.domain import agents as agent_logic
from ari_app.domain.acd import (
    Acd,
    AcdCommand,
    AgentChanged,
    CancelAcdTimer,
    ConnectAgent,
    RingAgent,
    Routed,
    SendToEnding,
    StartAcdTimer,
    StopRinging,
)
from ari_app.domain.agents import AgentEvent, AgentProfile, AgentStatus
from ari_app.domain.call import Config
from ari_app.domain.commands import EnterQueue
from ari_app.domain.ivr.flow import Hangup, Transfer, Voicemail
from ari_app.domain.routing.router import WaitingCall
from ari_app.services.agents import state_row

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Admit:
    """A caller handed over by the IVR: into the waiting room, then to the ACD's decision."""

    enter: EnterQueue


@dataclass(frozen=True)
class _Hangup:
    channel_id: str


@dataclass(frozen=True)
class _DestroyBridge:
    bridge_id: str


@dataclass(frozen=True)
class _Watch:
    """Receive a new agent's phone's reachability."""

    endpoint: str


_Work = AcdCommand | _Admit | _Hangup | _DestroyBridge | _Watch


def wait_bridge(call_id: str) -> str:
    return f"wait-{call_id}"


def talk_bridge(call_id: str) -> str:
    return f"talk-{call_id}"


class AcdService:
    def __init__(
        self,
        acd: Acd,
        ari: AriRest,
        application: str,
        agents: AgentStore,
        routing: RoutingStore,
        *,
        config: Config | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.acd, self.ari, self.application = acd, ari, application
        self.agents, self.routing = agents, routing
        self.config = config or Config()
        self._clock = clock
        self._work: asyncio.Queue[tuple[_Work, str]] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._legs: dict[str, str] = {}  # agent leg channel -> call
        self._leg_of: dict[str, str] = {}  # call -> agent leg channel
        self._callers: dict[str, str] = {}  # call -> caller number (shown on the agent's phone)
        self._count = itertools.count(1)

    # -- what happens (synchronous: the decision is made at once) ---------------------------

    def enter(self, enter: EnterQueue) -> None:
        """The IVR queued this caller."""
        self._callers[enter.call_id] = enter.caller
        self._work.put_nowait((_Admit(enter), "acd"))

    def leg_answered(self, channel_id: str, call_id: str, agent_id: str) -> None:
        if self._leg_of.get(call_id) != channel_id:  # a leg for a call that moved on
            self._work.put_nowait((_Hangup(channel_id), "acd"))
            return
        self._apply(self.acd.agent_answered(call_id, self._clock()))

    def channel_gone(self, channel_id: str) -> None:
        """A caller or an agent's leg hung up (or rang out)."""
        now = self._clock()
        call_id = self._legs.pop(channel_id, None)
        if call_id is not None:
            self._leg_of.pop(call_id, None)
            waiting = self.acd.calls.get(call_id)
            if waiting is not None and waiting.talking:
                # the agent hung up: the conversation is over for the caller too
                self._spawn_hangup(call_id)
                self._end(call_id, now)
            else:
                self._apply(self.acd.ring_failed(call_id, now))
            return
        if channel_id in self.acd.calls:
            leg = self._leg_of.pop(channel_id, None)
            talking = self.acd.calls[channel_id].talking
            self._end(channel_id, now)
            if leg is not None and talking:
                self._legs.pop(leg, None)
                self._spawn_hangup(leg)
        self._callers.pop(channel_id, None)

    def endpoint_changed(self, resource: str, online: bool) -> None:
        agent_id = agent_logic.agent_of(resource)
        if agent_id is None or agent_id not in self.acd.profiles:
            return
        self._apply(self.acd.agent_event(agent_id, agent_logic.Reachability(online), self._clock()))

    def agent_event(self, agent_id: str, event: AgentEvent, source: str) -> AgentStatus:
        """A change from the API or the phone; raises AgentStateError when not allowed."""
        self._apply(self.acd.agent_event(agent_id, event, self._clock()), source)
        return self.acd.statuses[agent_id]

    def profile_changed(self, profile: AgentProfile) -> None:
        """A new agent, or new skills: the next decision sees them."""
        if profile.agent_id not in self.acd.profiles:
            self._work.put_nowait((_Watch(profile.endpoint), "acd"))
        self.acd.profiles[profile.agent_id] = profile
        status = self.acd.statuses.setdefault(profile.agent_id, AgentStatus(profile.agent_id))
        if status.routable:  # offered again with the new skills
            self.acd.router.agent_gone(profile.agent_id)
            event = agent_logic.Reachability(True)
            self._apply(self.acd.agent_event(profile.agent_id, event, self._clock()))

    def status(self, agent_id: str) -> AgentStatus | None:
        return self.acd.statuses.get(agent_id)

    def profile_removed(self, agent_id: str) -> None:
        self.acd.router.agent_gone(agent_id)
        self.acd.profiles.pop(agent_id, None)
        self.acd.statuses.pop(agent_id, None)

    async def phones_reachable(self) -> None:
        """On every connect: watch each agent's phone, and see which Asterisk can reach now.

        Each agent's endpoint is watched on its own: watching all of PJSIP would send the
        application every caller's channel events a second time."""
        for profile in list(self.acd.profiles.values()):
            await self.ari.subscribe(self.application, f"endpoint:PJSIP/{profile.endpoint}")
        for endpoint in await self.ari.endpoints("PJSIP"):
            self.endpoint_changed(str(endpoint.get("resource")), endpoint.get("state") == "online")

    # -- carrying it out ------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out the ACD's commands one at a time, in the order they were decided."""
        while True:
            item, source = await self._work.get()
            try:
                await self._execute(item, source)
            except (AriError, AriUnreachable) as exc:
                log.warning("acd_command_failed", command=type(item).__name__, error=str(exc))
                if isinstance(item, RingAgent):  # the phone could not be rung at all
                    self._legs.pop(self._leg_of.pop(item.call_id, ""), None)
                    self._apply(self.acd.ring_failed(item.call_id, self._clock()))
            except Exception:
                log.exception("acd_command_crashed", command=type(item).__name__)

    async def _execute(self, item: _Work, source: str) -> None:
        match item:
            case _Admit(enter):
                await self._admit(enter)
            case _Hangup(channel_id):
                await _unless_gone(self.ari.hangup(channel_id))
            case _DestroyBridge(bridge_id):
                await self.ari.destroy_bridge(bridge_id)
            case _Watch(endpoint):
                await self.ari.subscribe(self.application, f"endpoint:PJSIP/{endpoint}")
            case RingAgent(call_id, agent_id, endpoint, timeout):
                leg = f"{call_id}-agent{next(self._count)}"
                self._legs[leg], self._leg_of[call_id] = call_id, leg
                await self.ari.originate(
                    leg,
                    f"PJSIP/{endpoint}",
                    self.application,
                    f"agent-leg,{call_id},{agent_id}",
                    timeout,
                    self._callers.get(call_id, ""),
                )
            case StopRinging(call_id, _):
                leg = self._leg_of.pop(call_id, None)
                if leg is not None:
                    self._legs.pop(leg, None)
                    await _unless_gone(self.ari.hangup(leg))
            case ConnectAgent(call_id, _):
                await self._connect(call_id)
            case StartAcdTimer(key, seconds):
                self._cancel(key)
                self._timers[key] = asyncio.get_running_loop().call_later(
                    seconds, self._timer_fired, key
                )
            case CancelAcdTimer(key):
                self._cancel(key)
            case AgentChanged(status, event, before):
                await self.agents.save_state(
                    state_row(status),
                    {
                        "agent_id": status.agent_id,
                        "at": self._clock(),
                        "event": event,
                        "from_state": before.value,
                        "to_state": status.state.value,
                        "reason": status.reason or status.pending_reason,
                        "source": source,
                    },
                )
                log.info("agent_state", agent_id=status.agent_id, state=status.state.value,
                         reason=status.reason, source=source)  # fmt: skip
            case Routed(assignment):
                await self.routing.add(
                    {
                        "call_id": assignment.call_id,
                        "at": self._clock(),
                        "agent_id": assignment.agent_id,
                        "queue": assignment.queue,
                        "step": assignment.step,
                        "requirement": assignment.requirement,
                        "strategy": assignment.strategy,
                        "free_agents": assignment.free_agents,
                        "qualified": assignment.qualified,
                        "waiting_calls": assignment.waiting_calls,
                        "candidates": [c.__dict__ for c in assignment.candidates],
                        "why": assignment.why,
                    }
                )
                log.info("call_routed", call_id=assignment.call_id, agent_id=assignment.agent_id,
                         why=assignment.why)  # fmt: skip
            case SendToEnding(call_id, node, why):
                await self._send_to_ending(call_id, node, why)

    async def _admit(self, enter: EnterQueue) -> None:
        bridge = wait_bridge(enter.call_id)
        queue = self.acd.queues[enter.queue]
        await self.ari.create_bridge(bridge, "holding")
        await self.ari.add_to_bridge(bridge, enter.call_id)
        await self.ari.bridge_music(bridge, queue.music)
        call = WaitingCall(enter.call_id, enter.queue, self._clock(), enter.priority, enter.skills)
        log.info("call_queued", call_id=enter.call_id, queue=enter.queue)
        self._apply(self.acd.call_waiting(call, self._clock()))

    async def _connect(self, call_id: str) -> None:
        leg = self._leg_of.get(call_id)
        if leg is None:
            return
        bridge = talk_bridge(call_id)
        await self.ari.create_bridge(bridge, "mixing")
        await _unless_gone(self.ari.remove_from_bridge(wait_bridge(call_id), call_id))
        await self.ari.destroy_bridge(wait_bridge(call_id))
        await self.ari.add_to_bridge(bridge, call_id)
        await self.ari.add_to_bridge(bridge, leg)
        log.info("call_connected", call_id=call_id, leg=leg)

    async def _send_to_ending(self, call_id: str, node: object, why: str) -> None:
        log.info("queue_ending", call_id=call_id, why=why, node=type(node).__name__)
        await _unless_gone(self.ari.remove_from_bridge(wait_bridge(call_id), call_id))
        await self.ari.destroy_bridge(wait_bridge(call_id))
        if isinstance(node, Voicemail):
            await self.ari.continue_in_dialplan(
                call_id, self.config.voicemail_context, node.mailbox
            )
        elif isinstance(node, Transfer):
            await self.ari.continue_in_dialplan(call_id, self.config.transfer_context, node.to)
        elif isinstance(node, Hangup):
            await _unless_gone(self.ari.hangup(call_id))

    # -- inside -----------------------------------------------------------------------------

    def _apply(self, commands: list[AcdCommand], source: str = "acd") -> None:
        for command in commands:
            self._work.put_nowait((command, source))

    def _end(self, call_id: str, now: datetime) -> None:
        self._apply(self.acd.caller_left(call_id, now))
        for bridge in (wait_bridge(call_id), talk_bridge(call_id)):
            self._work.put_nowait((_DestroyBridge(bridge), "acd"))

    def _spawn_hangup(self, channel_id: str) -> None:
        self._work.put_nowait((_Hangup(channel_id), "acd"))

    def _timer_fired(self, key: str) -> None:
        self._timers.pop(key, None)
        self._apply(self.acd.timer(key, self._clock()))

    def _cancel(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()


async def _unless_gone(request: Any) -> None:
    try:
        await request
    except AriError as exc:
        if exc.status not in (404, 422):
            raise
