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
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from ari_app.adapters.agent_store import OPEN_CALLBACK, AgentStore, CallbackStore, RoutingStore
from ari_app.adapters.ari import AriError, AriRest, AriUnreachable, unless_gone
from ari_app.adapters.db import Writer
from ari_app.adapters.tables import CallbackRecord
from ari_app.domain import agents as agent_logic
from ari_app.domain.acd import (
    Acd,
    AcdCommand,
    AgentChanged,
    Announce,
    CallbackChanged,
    CancelAcdTimer,
    ConnectAgent,
    DialCustomer,
    HandOver,
    RingAgent,
    Routed,
    SendToEnding,
    StartAcdTimer,
    StopRinging,
    WaitingView,
    agent_leg,
    customer_leg,
    customer_of,
    is_callback,
    leg_of,
)
from ari_app.domain.agents import AgentEvent, AgentProfile, AgentState, AgentStatus
from ari_app.domain.call import Config
from ari_app.domain.commands import EnterQueue
from ari_app.domain.ivr.flow import Hangup, Transfer, Voicemail
from ari_app.domain.routing.config import Callback, QueueConfig
from ari_app.domain.routing.router import WaitingCall
from ari_app.services.agents import state_row
from ari_app.services.interactions import InteractionLog
from ari_app.services.lanes import Lanes
from ari_app.services.monitor import Conversation
from ari_app.services.recordings import RecordingService

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Admit:
    """A caller handed over by the IVR: into the waiting room, then to the ACD's decision."""

    enter: EnterQueue


@dataclass(frozen=True)
class _Seat:
    """A queued caller into their waiting room, with the queue's music."""

    call: WaitingCall


@dataclass(frozen=True)
class _Hangup:
    channel_id: str


@dataclass(frozen=True)
class _DestroyBridge:
    bridge_id: str


@dataclass(frozen=True)
class _StopRecordings:
    """The conversation is over: its recordings end before its bridge goes."""

    call_id: str


@dataclass(frozen=True)
class _Watch:
    """Receive a new agent's phone's reachability."""

    endpoint: str


@dataclass(frozen=True)
class _JoinCustomer:
    """A called-back customer answered: into the agent's conversation."""

    call_id: str
    channel_id: str


@dataclass(frozen=True)
class _Hold:
    call_id: str
    on: bool


@dataclass(frozen=True)
class _Music:
    """An announcement ended: the waiting caller's music, which it stopped, goes on."""

    call_id: str


@dataclass(frozen=True)
class _Mix:
    """Make the conversation's bridge mix, or stop, as its holders now want."""

    call_id: str


class HoldRefused(Exception):
    """The call is not in a conversation with an agent."""


@dataclass(frozen=True)
class _Store:
    """Store a callback request's row."""

    row: dict[str, Any]


_Work = (
    AcdCommand
    | _Admit
    | _Seat
    | _Hangup
    | _StopRecordings
    | _DestroyBridge
    | _Watch
    | _JoinCustomer
    | _Store
    | _Hold
    | _Mix
    | _Music
)


QUEUE_VARIABLE = "ARI_APP_QUEUE"  # on the caller's channel: the queue, as it was entered
PROMPTS_VARIABLE = "ARI_APP_PROMPTS"  # what the dialplan says before a queue's ending
HANDED_VARIABLE = "ARI_APP_HANDED_OVER"  # on the caller's channel: waits for the next agent
CALLBACK_OVER = ("done", "failed", "cancelled")  # a call back's interaction ends
HOLD_VARIABLE = "ARI_APP_ON_HOLD"  # on the caller's channel: the agent put them on hold


def ending_prompts(node: object) -> str:
    """A queue ending's prompts as Playback takes them (`a&b`): sounds only."""
    prompts = getattr(node, "prompts", ()) or ()
    return "&".join(p.removeprefix("sound:") for p in prompts if p.startswith("sound:"))


def queue_mark(call: WaitingCall) -> str:
    """What a caller's channel keeps of its wait, to resume it after a restart."""
    return json.dumps(
        {
            "queue": call.queue,
            "since": call.waiting_since.isoformat(),
            "priority": call.priority,
            "skills": dict(call.skills),
            "language": call.language,
            "caller": call.caller,
        },
        separators=(",", ":"),
    )


def read_queue_mark(call_id: str, text: str) -> WaitingCall | None:
    try:
        mark = json.loads(text)
        return WaitingCall(
            call_id,
            str(mark["queue"]),
            datetime.fromisoformat(mark["since"]),
            int(mark["priority"]),
            {str(skill): int(level) for skill, level in mark["skills"].items()},
            language=str(mark.get("language", "en")),
            caller=str(mark.get("caller", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _requested(row: CallbackRecord) -> WaitingCall:
    """A callback request as the routing core holds it: a call with no channel."""
    return WaitingCall(
        row.id,
        row.queue,
        row.waiting_since,
        row.priority,
        dict(row.skills),
        language=row.language,
        caller=row.number,
    )


def wait_bridge(call_id: str) -> str:
    return f"wait-{call_id}"


def talk_bridge(call_id: str) -> str:
    return f"talk-{call_id}"


CENTER_LANE = ""  # work that belongs to no call


def lane_of(item: _Work) -> str:
    """The call whose lane carries this work out (in order with the call's other work)."""
    match item:
        case _Admit(enter):
            return enter.call_id
        case _Seat(call):
            return call.call_id
        case _DestroyBridge(bridge_id):
            if bridge_id.startswith(("wait-", "talk-")):
                return bridge_id.split("-", 1)[1]
            return CENTER_LANE
        case _Hangup(channel_id):
            return channel_id
        case CallbackChanged():
            return item.call.call_id
        case AgentChanged() | Routed() | StartAcdTimer() | CancelAcdTimer() | _Watch() | _Store():
            return CENTER_LANE
    return str(getattr(item, "call_id", CENTER_LANE))


# A conversation's bridge is Asterisk's smart `mixing` bridge: with two parties it passes
# the audio between them (RTP to RTP where it can), the cheapest there is; a third (a
# barging supervisor, a recording) makes it mix. A whisper rides on the audio the agent
# receives, which a two-party bridge sends only while the caller's phone sends: while
# someone whispers, the bridge gets a silent music channel as its third party and mixes,
# so the agent receives a steady stream (`keep_mixing`).
TALK_BRIDGE = "mixing"
SILENT_MUSIC = "ari-app-silence"  # a music class of silence (asterisk_conf/musiconhold.conf)


class AcdService:
    def __init__(
        self,
        acd: Acd,
        ari: AriRest,
        application: str,
        agents: AgentStore,
        routing: RoutingStore,
        callbacks: CallbackStore,
        *,
        config: Config | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.acd, self.ari, self.application = acd, ari, application
        self.agents, self.routing, self.callbacks = agents, routing, callbacks
        self.config = config or Config()
        self._clock = clock
        self._work: asyncio.Queue[tuple[_Work, str]] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._legs: dict[str, str] = {}  # agent leg channel -> call
        self._leg_of: dict[str, str] = {}  # call -> agent leg channel
        self._customers: dict[str, str] = {}  # call back channel -> callback
        self._customer_of: dict[str, str] = {}  # callback -> call back channel
        self._customer_up: set[str] = set()  # callbacks whose customer answered
        self._announcing: dict[str, str] = {}  # call -> the playback of its announcement
        self._handed: set[str] = set()  # calls handed over: the caller waits in talk-<call>
        self._on_hold: set[str] = set()  # calls whose caller the service put on hold
        self._mixing: dict[str, set[str]] = {}  # call -> who needs its bridge to mix
        self._silent_music: set[str] = set()  # calls whose bridge has the silent music
        self._music_unsure: set[str] = set()  # conversations taken back: music unknown
        self._rooms: set[str] = set()  # calls waiting in a wait-<call> bridge (earlier versions)
        self.recorder: RecordingService | None = None
        self.writer: Writer | None = None  # agents' states and routing decisions go through it
        self.interactions: InteractionLog | None = None
        self.agent_hung_up: Callable[[str], None] | None = None  # told before the caller goes
        self._announcements = 0

    # -- what happens (synchronous: the decision is made at once) ---------------------------

    def enter(self, enter: EnterQueue) -> None:
        """The IVR queued this caller."""
        self._work.put_nowait((_Admit(enter), "acd"))

    def leg_answered(self, channel_id: str, call_id: str, agent_id: str) -> None:
        if self._leg_of.get(call_id) != channel_id:  # a leg for a call that moved on
            self._work.put_nowait((_Hangup(channel_id), "acd"))
            return
        self._apply(self.acd.agent_answered(call_id, self._clock()))

    def customer_answered(self, channel_id: str, call_id: str) -> None:
        """The customer of a callback picked up: into the agent's conversation."""
        if self._customer_of.get(call_id) != channel_id:  # a call back that moved on
            self._work.put_nowait((_Hangup(channel_id), "acd"))
            return
        self._customer_up.add(call_id)
        self._work.put_nowait((_JoinCustomer(call_id, channel_id), "acd"))
        self._apply(self.acd.customer_answered(call_id, self._clock()))

    def channel_gone(self, channel_id: str) -> None:
        """A caller, an agent's leg or a called-back customer hung up (or rang out)."""
        now = self._clock()
        callback = self._customers.pop(channel_id, None)
        if callback is not None:
            self._customer_of.pop(callback, None)
            leg = self._leg_of.pop(callback, None)
            if leg is not None:  # the agent's side goes too
                self._legs.pop(leg, None)
                self._spawn_hangup(leg)
            self._callback_over(callback, now)
            return
        call_id = self._legs.pop(channel_id, None)
        if call_id is not None:
            self._leg_of.pop(call_id, None)
            waiting = self.acd.calls.get(call_id)
            customer = self._customer_of.pop(call_id, None)
            if customer is not None:  # a callback's agent hung up: the customer's side goes
                self._customers.pop(customer, None)
                self._spawn_hangup(customer)
            if waiting is not None and waiting.talking and is_callback(call_id):
                self._callback_over(call_id, now)
            elif waiting is not None and waiting.talking:
                # the agent hung up: the conversation is over for the caller too
                if self.agent_hung_up is not None:
                    self.agent_hung_up(call_id)
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
        self._announcing.pop(channel_id, None)

    def _callback_dialled(self, call_id: str | None, before: AgentState, after: AgentState) -> None:
        """An agent answered a callback's ring: the customer is called now, and the call
        back is an interaction of its own (its caller the customer; no queue)."""
        if (
            self.interactions is not None
            and call_id is not None
            and is_callback(call_id)
            and before is AgentState.RESERVED
            and after is AgentState.ON_CALL
        ):
            held = self.acd.calls.get(call_id)
            number = held.call.caller if held else ""
            self.interactions.callback_dialled(call_id, number, self._clock())

    def _callback_over(self, call_id: str, now: datetime) -> None:
        """One side of a callback is gone: a conversation ends; a call back that was never
        answered (or that the agent gave up on) is tried again later."""
        if call_id in self._customer_up:
            self._customer_up.discard(call_id)
            self._end(call_id, now)
        else:
            self._apply(self.acd.customer_unreached(call_id, now))
            self._work.put_nowait((_DestroyBridge(talk_bridge(call_id)), "acd"))

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

    def hold(self, call_id: str, on: bool, source: str) -> None:
        """Put the caller on hold (they hear music; neither side hears the other) or take
        them off it; raises HoldRefused when the call is in no conversation."""
        if self.conversation(call_id) is None:
            raise HoldRefused(f"call {call_id!r} is not in a conversation with an agent")
        self._work.put_nowait((_Hold(call_id, on), source))

    def keep_mixing(self, call_id: str, holder: str, on: bool) -> None:
        """`holder` (a whispering supervisor's session) needs the conversation's bridge to
        mix, or no longer does. While anyone does, the bridge has a silent music channel
        as a third party; carried out in the call's lane, in order with its other work."""
        holders = self._mixing.setdefault(call_id, set())
        if on:
            holders.add(holder)
        else:
            holders.discard(holder)
        if not holders:
            del self._mixing[call_id]
        self._work.put_nowait((_Mix(call_id), "acd"))

    def announced(self, call_id: str, playback_id: str) -> None:
        """A playback ended on a caller's channel: if it was the announcement of a caller
        still waiting, their music goes on."""
        if self._announcing.get(call_id) == playback_id:
            del self._announcing[call_id]
            self._work.put_nowait((_Music(call_id), "acd"))

    def settle_mixing(self) -> None:
        """After a restart, once the supervisors' sessions are taken back: a conversation
        taken back mixes only if a whisper taken back holds it (see `resume`)."""
        for call_id in self._music_unsure:
            self._work.put_nowait((_Mix(call_id), "acd"))
        self._music_unsure.clear()

    def on_hold(self, call_id: str) -> bool:
        return call_id in self._on_hold

    def phone_hold(self, channel_id: str, on: bool) -> None:
        """The agent's phone put the caller on hold, or took them off it (Asterisk plays
        the caller music itself): the hold time counts."""
        call_id = self._legs.get(channel_id)
        if call_id is not None:
            self._hold_changed(call_id, on, "phone")

    def _hold_changed(self, call_id: str, on: bool, source: str) -> None:
        if self.interactions is not None:
            self.interactions.hold_changed(call_id, on, self._clock())
        log.info("call_hold" if on else "call_unhold", call_id=call_id, source=source)

    async def _set_hold(self, call_id: str, on: bool, source: str = "api") -> None:
        leg = self._leg_of.get(call_id)
        if leg is None or (call_id in self._on_hold) == on:
            return  # the conversation ended, or it is so already
        caller = self._customer_of.get(call_id, call_id)
        if on:
            self._on_hold.add(call_id)
            await self.ari.mute(caller, "in")
            await self.ari.mute(leg, "in")
            await self.ari.hold(caller)
        else:
            self._on_hold.discard(call_id)
            await unless_gone(self.ari.unhold(caller))
            await unless_gone(self.ari.unmute(caller, "in"))
            await unless_gone(self.ari.unmute(leg, "in"))
        await unless_gone(self.ari.set_channel_var(caller, HOLD_VARIABLE, "1" if on else ""))
        self._hold_changed(call_id, on, source)

    def transfer(self, call_id: str, agent_id: str, source: str) -> None:
        """Hand the call's conversation to another agent; raises TransferRefused."""
        self._apply(self.acd.transfer(call_id, agent_id, self._clock()), source)
        log.info("call_transferred", call_id=call_id, agent_id=agent_id, source=source)

    def cancel_callback(self, call_id: str) -> None:
        """Take an open callback out of the line; raises KeyError or CallbackBusy."""
        self._apply(self.acd.cancel_callback(call_id, self._clock()))

    def waiting(self) -> list[WaitingView]:
        return self.acd.waiting(self._clock())

    def set_queues(self, queues: dict[str, QueueConfig]) -> None:
        """New queues (from the API or a reload): the next decision follows them."""
        self.config = replace(self.config, queues=frozenset(queues))
        self._apply(self.acd.set_queues(queues, self._clock()))

    def queue_in_use(self, name: str) -> list[str]:
        """Why the queue cannot be removed now: callers in it."""
        held = [c for c in self.acd.calls.values() if c.call.queue == name]
        placed = [c for c in self.acd.router.calls.values() if c.queue == name]
        count = len({c.call.call_id for c in held} | {c.call_id for c in placed})
        return [f"{count} call(s) are in queue '{name}'"] if count else []

    def conversation(self, call_id: str) -> Conversation | None:
        """The call's conversation with its agent now, if it has one."""
        held = self.acd.calls.get(call_id)
        leg = self._leg_of.get(call_id)
        if held is None or not held.talking or held.agent_id is None or leg is None:
            return None
        profile = self.acd.profiles.get(held.agent_id)
        team = profile.team if profile else ""
        return Conversation(call_id, held.agent_id, team, leg, talk_bridge(call_id))

    def conversation_of(self, agent_id: str) -> Conversation | None:
        """The agent's conversation now, if they are in one."""
        for call_id, held in self.acd.calls.items():
            if held.agent_id == agent_id and held.talking:
                return self.conversation(call_id)
        return None

    def status(self, agent_id: str) -> AgentStatus | None:
        return self.acd.statuses.get(agent_id)

    def profile_removed(self, agent_id: str) -> None:
        self.acd.router.agent_gone(agent_id)
        self.acd.profiles.pop(agent_id, None)
        self.acd.statuses.pop(agent_id, None)
        if self.interactions is not None:
            self.interactions.agent_removed(agent_id)

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
        """Carry out the ACD's commands: each call's in the order they were decided, and
        side by side with other calls' (one call's round trips never delay another's ring).
        Work of no call (agents' states, the routing log, timers) has a lane of its own."""
        async with asyncio.TaskGroup() as group:
            lanes: Lanes[tuple[_Work, str]] = Lanes(group.create_task, self._carry_out)
            while True:
                item, source = await self._work.get()
                lanes.put(lane_of(item), (item, source))

    async def _carry_out(self, work: tuple[_Work, str]) -> None:
        item, source = work
        try:
            await self._execute(item, source)
        except (AriError, AriUnreachable) as exc:
            log.warning(
                "acd_command_failed",
                command=type(item).__name__,
                call_id=getattr(item, "call_id", None),
                error=str(exc),
            )
            if isinstance(item, RingAgent):  # the phone could not be rung at all
                self._legs.pop(self._leg_of.pop(item.call_id, ""), None)
                self._apply(self.acd.ring_failed(item.call_id, self._clock()))

    async def _execute(self, item: _Work, source: str) -> None:
        match item:
            case _Admit(enter):
                await self._admit(enter)
            case _Seat(call):
                await self._seat(call)
            case _Hangup(channel_id):
                await unless_gone(self.ari.hangup(channel_id))
            case _StopRecordings(call_id):
                if self.recorder is not None:
                    await self.recorder.conversation_over(call_id)
            case _DestroyBridge(bridge_id):
                await self.ari.destroy_bridge(bridge_id)
            case _Hold(call_id, on):
                await self._set_hold(call_id, on)
            case _Watch(endpoint):
                await self.ari.subscribe(self.application, f"endpoint:PJSIP/{endpoint}")
                # a phone registered before the watch began sends no change: read it. Only
                # "online" is taken (a new agent starts unreachable): the read goes over
                # HTTP, and a stale "offline" must not undo a change the websocket brought
                found = await self.ari.endpoint("PJSIP", endpoint)
                if found.get("state") == "online":
                    self.endpoint_changed(str(found.get("resource")), True)
            case RingAgent(call_id, agent_id, endpoint, timeout):
                leg = agent_leg(call_id, agent_id)
                self._legs[leg], self._leg_of[call_id] = call_id, leg
                await self.ari.originate(
                    leg,
                    f"PJSIP/{endpoint}",
                    self.application,
                    f"agent-leg,{call_id},{agent_id}",
                    timeout,
                    self._caller(call_id),
                )
            case StopRinging(call_id, _):
                leg = self._leg_of.pop(call_id, None)
                if leg is not None:
                    self._legs.pop(leg, None)
                    await unless_gone(self.ari.hangup(leg))
            case ConnectAgent(call_id, agent_id) if call_id in self._handed:
                await self._take_over(call_id, agent_id)
            case ConnectAgent(call_id, agent_id):
                await self._connect(call_id, agent_id)
            case HandOver(call_id, agent_id):
                await self._hand_over(call_id, agent_id)
            case StartAcdTimer(key, seconds):
                self._cancel(key)
                self._timers[key] = asyncio.get_running_loop().call_later(
                    seconds, self._timer_fired, key
                )
            case CancelAcdTimer(key):
                self._cancel(key)
            case AgentChanged(status, event, before):
                if self.interactions is not None:
                    self._callback_dialled(status.call_id, before, status.state)
                    self.interactions.agent_changed(
                        status.agent_id,
                        before.value,
                        status.state.value,
                        status.call_id,
                        self._clock(),
                        status.reason or status.pending_reason,
                    )
                change = {
                    "agent_id": status.agent_id,
                    "at": self._clock(),
                    "event": event,
                    "from_state": before.value,
                    "to_state": status.state.value,
                    "reason": status.reason or status.pending_reason,
                    "source": source,
                }
                await self._persist(
                    "agent_state",
                    self.agents.write_state,
                    {"state": state_row(status), "event": change},
                )
                log.info("agent_state", agent_id=status.agent_id, state=status.state.value,
                         reason=status.reason, source=source, trigger=event)  # fmt: skip
            case Routed(assignment):
                await self._persist(
                    "routing_decision",
                    self.routing.write,
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
                    },
                )
                log.info("call_routed", call_id=assignment.call_id, agent_id=assignment.agent_id,
                         why=assignment.why)  # fmt: skip
            case DialCustomer(call_id, number, _, timeout):
                await self._dial_customer(call_id, number, timeout)
            case _JoinCustomer(call_id, channel_id):
                await unless_gone(self.ari.stop_playback(f"ringback-{call_id}"))
                await self.ari.add_to_bridge(talk_bridge(call_id), channel_id)
                log.info("callback_connected", call_id=call_id, channel=channel_id)
                await self._record(call_id)
            case CallbackChanged():
                if self.interactions is not None and item.state in CALLBACK_OVER:
                    self.interactions.callback_over(item.call.call_id, self._clock())
                await self.callbacks.save(self._callback_row(item))
                log.info("callback", call_id=item.call.call_id, state=item.state,
                         attempts=item.attempts)  # fmt: skip
            case _Store(row):
                await self.callbacks.save(row)
            case _Mix(call_id):
                await self._mix(call_id)
            case _Music(call_id):
                await self._music_again(call_id)
            case Announce(call_id, media):
                self._announcements += 1
                playback = f"announce-{call_id}-{self._announcements}"
                self._announcing[call_id] = playback
                # played to the caller's channel: the bridge's music pauses underneath
                waiting = self.acd.calls.get(call_id)
                language = waiting.call.language if waiting else "en"
                await self.ari.play(call_id, playback, media, language)
            case SendToEnding(call_id, node, why):
                if self.interactions is not None:
                    self.interactions.sent_on(call_id, why, self._clock())
                await self._send_to_ending(call_id, node, why)

    async def _persist(
        self,
        what: str,
        write: Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]],
        row: dict[str, Any],
    ) -> None:
        """Through the ordered writer when there is one: a database round trip never holds
        up the ACD's next command."""
        if self.writer is None:
            async with self.agents.engine.begin() as connection:
                await write(connection, row)
        else:
            self.writer.submit(what, write, row)

    async def _admit(self, enter: EnterQueue) -> None:
        call = WaitingCall(
            enter.call_id,
            enter.queue,
            self._clock(),
            enter.priority,
            enter.skills,
            language=enter.language,
            caller=enter.caller,
        )
        # marked first: a restart before the caller is seated still finds and seats them
        await self.ari.set_channel_var(enter.call_id, QUEUE_VARIABLE, queue_mark(call))
        log.info("call_queued", call_id=enter.call_id, queue=enter.queue)
        if self.interactions is not None:
            self.interactions.queued(enter.call_id, enter.queue, call.waiting_since)
        # the decision first, then the waiting room: a free agent's phone rings a round
        # trip sooner, and the call's lane keeps its work in this order
        self._apply(self.acd.call_waiting(call, self._clock()))
        self._work.put_nowait((_Seat(call), "acd"))

    async def _seat(self, call: WaitingCall) -> None:
        """The waiting room: the queue's music on the caller's own channel. No bridge:
        one request, where a bridge of its own took three and two more to leave, and
        nothing for Asterisk to mix. An announcement stops the music; it is started
        again when the announcement ends (`announced`)."""
        await self.ari.channel_music(call.call_id, self._music_of(call.queue))

    def _music_of(self, queue_name: str) -> str:
        queue = self.acd.queues.get(queue_name)
        return queue.music if queue else "default"

    async def _unseat(self, call_id: str) -> None:
        """Out of the waiting room, for a conversation or the queue's ending."""
        if call_id in self._rooms:  # a bridge of its own (seated by an earlier version)
            self._rooms.discard(call_id)
            await unless_gone(self.ari.remove_from_bridge(wait_bridge(call_id), call_id))
            await self.ari.destroy_bridge(wait_bridge(call_id))
        else:
            await unless_gone(self.ari.stop_channel_music(call_id))

    async def _music_again(self, call_id: str) -> None:
        held = self.acd.calls.get(call_id)
        if held is None or held.talking or call_id in self._handed or call_id in self._rooms:
            return  # in a conversation now, or its music is a bridge's (not stopped)
        await unless_gone(self.ari.channel_music(call_id, self._music_of(held.call.queue)))

    # -- a restart --------------------------------------------------------------------------

    async def resume(self) -> None:
        """On every connect: take back the queued calls Asterisk still holds.

        Conversations are bridges in Asterisk, which outlive this process, and a waiting
        caller's channel (in this application, in no bridge, music playing) keeps the
        queue it entered and when; callback requests are in the database. A caller still
        waiting waits on at their place; a conversation goes on with its agent; a ring or a
        call back the restart cut is hung up and the call waits again; a bridge one side
        has left is cleared. What ended while the service was away is ended here too."""
        channels = {str(c["id"]): c for c in await self.ari.channels()}
        for channel_id in [*self._legs, *self._customers]:
            if channel_id not in channels:
                self.channel_gone(channel_id)
        for call_id in list(self.acd.calls):
            if call_id not in channels and not is_callback(call_id):
                self.channel_gone(call_id)
        requests = {row.id: row for row in await self.callbacks.list(OPEN_CALLBACK)}
        waiting: list[WaitingCall] = []
        talking: dict[str, tuple[WaitingCall, str]] = {}
        seated: set[str] = set()
        for bridge in await self.ari.bridges():
            kind, _, call_id = str(bridge["id"]).partition("-")
            members = [str(c) for c in bridge.get("channels") or ()]
            if kind not in ("wait", "talk"):
                continue
            seated.update(members)
            if call_id in self.acd.calls:
                continue
            legs = [(c, who[1]) for c in members if (who := leg_of(c)) is not None]
            customers = [c for c in members if customer_of(c) == call_id]
            if call_id in requests:
                call: WaitingCall | None = _requested(requests[call_id])
                joined = bool(customers)
            else:
                call = await self._marked(call_id) if call_id in members else None
                joined = call is not None
            if kind == "wait" and call is not None:  # seated by an earlier version
                waiting.append(call)
                self._rooms.add(call_id)
            elif (
                kind == "talk"
                and call is not None
                and not legs
                and not customers
                and (await self.ari.channel_var(call_id, HANDED_VARIABLE) == "1")
            ):  # handed over to the next agent, whose ring the restart cut: it waits again
                waiting.append(call)
                self._handed.add(call_id)
            elif kind == "talk" and call is not None and joined and legs:
                leg, agent_id = legs[0]
                talking[call_id] = (call, agent_id)
                # its events (a recording's end among them) come to this application again
                await unless_gone(self.ari.subscribe(self.application, f"bridge:{bridge['id']}"))
                self._legs[leg], self._leg_of[call_id] = call_id, leg
                caller = customers[0] if customers else call_id
                if await self.ari.channel_var(caller, HOLD_VARIABLE) == "1":
                    self._on_hold.add(call_id)
                if customers:
                    self._customers[customers[0]], self._customer_of[call_id] = (
                        call_id,
                        customers[0],
                    )
                    self._customer_up.add(call_id)
            else:  # one side left (or a call back was still ringing) while the service was away
                for channel_id in members:
                    self._spawn_hangup(channel_id)
                if kind == "talk":
                    self._work.put_nowait((_StopRecordings(call_id), "acd"))
                self._work.put_nowait((_DestroyBridge(str(bridge["id"])), "acd"))
        for channel_id, channel in channels.items():
            if leg_of(channel_id) is not None or customer_of(channel_id) is not None:
                if channel_id not in self._legs and channel_id not in self._customers:
                    self._spawn_hangup(channel_id)  # a ring or a call back the restart cut
                continue
            if channel_id in seated or channel_id in self.acd.calls:
                continue
            in_stasis = (channel.get("dialplan") or {}).get("app_name") == "Stasis"
            marked = await self._marked(channel_id) if in_stasis else None
            if marked is not None:  # waiting: its music started again (an announcement the
                # restart cut, or a stop between the mark and the music, left it silent)
                await self._seat(marked)
                waiting.append(marked)
        callbacks: dict[str, tuple[Callback, int, datetime | None]] = {}
        for request_id, row in requests.items():
            if request_id in self.acd.calls:
                continue
            ending = Callback(attempts=row.max_attempts, retry_after=row.retry_after)
            callbacks[request_id] = (ending, row.attempts, row.retry_at)
            if request_id in talking:
                continue
            if row.state == "talking":  # the conversation ended while the service was away
                self._work.put_nowait((_Store({"id": request_id, "state": "done"}), "acd"))
                del callbacks[request_id]
                continue
            waiting.append(_requested(row))
        # a whisper the restart cut may have left its silent music in the bridge (Asterisk
        # does not say): `settle_mixing` stops it unless a whisper taken back still wants it
        self._silent_music.update(talking)
        self._music_unsure.update(talking)
        if waiting or talking:
            log.info("acd_resumed", waiting=len(waiting), talking=len(talking))
        self._apply(self.acd.resume(waiting, talking, self._clock(), callbacks))

    async def _marked(self, call_id: str) -> WaitingCall | None:
        return read_queue_mark(call_id, await self.ari.channel_var(call_id, QUEUE_VARIABLE))

    async def _connect(self, call_id: str, agent_id: str) -> None:
        leg = self._leg_of.get(call_id)
        if leg is None:
            return
        await self._stop_announcement(call_id)
        bridge = talk_bridge(call_id)
        await self.ari.create_bridge(bridge, TALK_BRIDGE)
        await self._unseat(call_id)
        await self.ari.add_to_bridge(bridge, call_id)
        await self.ari.add_to_bridge(bridge, leg)
        log.info("call_connected", call_id=call_id, leg=leg)
        await self._record(call_id, agent_id)

    async def _hand_over(self, call_id: str, agent_id: str) -> None:
        """The agent leaves the conversation for the next one: their phone is hung up (it
        no longer ends the call), the caller hears music in the same bridge, and the
        recording goes on, its agent's segment closed."""
        await self._set_hold(call_id, False, "transfer")  # the next agent must hear them
        leg = self._leg_of.pop(call_id, None)
        if leg is not None:
            self._legs.pop(leg, None)
        self._handed.add(call_id)
        await unless_gone(self.ari.set_channel_var(call_id, HANDED_VARIABLE, "1"))
        held = self.acd.calls.get(call_id)
        queue = self.acd.queues.get(held.call.queue) if held else None
        bridge = talk_bridge(call_id)
        self._silent_music.discard(call_id)  # the queue's music takes its place
        await unless_gone(self.ari.bridge_music(bridge, queue.music if queue else "default"))
        if leg is not None:
            await unless_gone(self.ari.hangup(leg))
        if self.recorder is not None:
            await self.recorder.handed_over(call_id)
        log.info("call_handed_over", call_id=call_id, agent_id=agent_id)

    async def _take_over(self, call_id: str, agent_id: str) -> None:
        """The next agent answered a handed-over call: into the same conversation."""
        leg = self._leg_of.get(call_id)
        if leg is None:
            return
        self._handed.discard(call_id)
        await unless_gone(self.ari.set_channel_var(call_id, HANDED_VARIABLE, ""))
        await self._stop_announcement(call_id)
        bridge = talk_bridge(call_id)
        await unless_gone(self.ari.stop_bridge_music(bridge))
        await self.ari.add_to_bridge(bridge, leg)
        await self._mix(call_id)  # someone may need it to mix still
        log.info("call_connected", call_id=call_id, leg=leg, handed_over=True)
        if self.recorder is None or not await self.recorder.joined(call_id, agent_id):
            await self._record(call_id, agent_id)  # not recorded so far: this agent's say

    async def _send_to_ending(self, call_id: str, node: object, why: str) -> None:
        log.info("queue_ending", call_id=call_id, why=why, node=type(node).__name__)
        if call_id in self._handed:  # it waited in its conversation's bridge: that goes
            self._handed.discard(call_id)
            if self.recorder is not None:
                await self.recorder.conversation_over(call_id)
            await self.ari.destroy_bridge(talk_bridge(call_id))
        else:
            await self._unseat(call_id)
        await self._stop_announcement(call_id)
        await unless_gone(self.ari.set_channel_var(call_id, QUEUE_VARIABLE, ""))
        said = ending_prompts(node)
        if said:  # the dialplan says them first, then goes on
            await unless_gone(self.ari.set_channel_var(call_id, PROMPTS_VARIABLE, said))
        if isinstance(node, Voicemail):
            await self.ari.continue_in_dialplan(
                call_id, self.config.voicemail_context, node.mailbox
            )
        elif isinstance(node, Transfer):
            await self.ari.continue_in_dialplan(call_id, self.config.transfer_context, node.to)
        elif isinstance(node, Hangup | Callback) and said:
            await self.ari.continue_in_dialplan(call_id, self.config.goodbye_context, "s")
        elif isinstance(node, Hangup | Callback):
            await unless_gone(self.ari.hangup(call_id))

    async def _dial_customer(self, call_id: str, number: str, timeout: float) -> None:
        """The agent took a callback: the agent waits in the conversation's bridge with a
        ringing tone while the customer is called through the dialplan's way out."""
        leg = self._leg_of.get(call_id)
        if leg is None:
            return
        bridge = talk_bridge(call_id)
        await self.ari.create_bridge(bridge, TALK_BRIDGE)
        await self.ari.add_to_bridge(bridge, leg)
        await unless_gone(self.ari.play_on_bridge(bridge, f"ringback-{call_id}", "tone:ring"))
        customer = customer_leg(call_id)
        self._customers[customer], self._customer_of[call_id] = call_id, customer
        await self.ari.originate(
            customer,
            f"Local/{number}@{self.config.transfer_context}",
            self.application,
            f"callback-leg,{call_id}",
            timeout,
            "",
        )
        log.info("callback_dialled", call_id=call_id, leg=leg, customer=customer)

    def _caller(self, call_id: str) -> str:
        held = self.acd.calls.get(call_id)
        return held.call.caller if held is not None else ""

    def _callback_row(self, change: CallbackChanged) -> dict[str, Any]:
        call, now = change.call, self._clock()
        row: dict[str, Any] = {
            "id": call.call_id,
            "state": change.state,
            "attempts": change.attempts,
            "agent_id": change.agent_id,
            "retry_at": change.retry_at,
            "updated_at": now,
        }
        if change.ending is not None:  # a new request: everything about it
            row |= {
                "call_id": call.call_id.removeprefix("cb-"),
                "number": call.caller,
                "queue": call.queue,
                "priority": call.priority,
                "skills": dict(call.skills),
                "language": call.language,
                "waiting_since": call.waiting_since,
                "max_attempts": change.ending.attempts,
                "retry_after": change.ending.retry_after,
            }
        return row

    async def _record(self, call_id: str, agent_id: str | None = None) -> None:
        """Record the conversation now in its bridge, if the queue's policy says so.

        `agent_id` is the agent who answered: by the time this runs a transfer may
        already have offered the call to the next one."""
        held = self.acd.calls.get(call_id)
        agent_id = agent_id or (held.agent_id if held else None)
        if self.recorder is None or held is None or agent_id is None:
            return
        queue = self.acd.queues.get(held.call.queue)
        profile = self.acd.profiles.get(agent_id)
        agent_policy = profile.recording if profile else "queue"
        if queue is None or not self.recorder.wanted(queue.recording, agent_policy):
            return
        try:
            await self.recorder.start(call_id, talk_bridge(call_id), agent_id, queue.name)
        except (AriError, AriUnreachable) as exc:  # the call goes on; the row says failed
            log.error("recording_not_started", call_id=call_id, error=str(exc))

    async def _mix(self, call_id: str) -> None:
        if call_id in self._handed:  # the queue's music plays there for the caller: it mixes
            return
        wanted, playing = call_id in self._mixing, call_id in self._silent_music
        if wanted and not playing:
            self._silent_music.add(call_id)
            await unless_gone(self.ari.bridge_music(talk_bridge(call_id), SILENT_MUSIC))
        elif playing and not wanted:
            self._silent_music.discard(call_id)
            await unless_gone(self.ari.stop_bridge_music(talk_bridge(call_id)), (404, 409))

    async def _stop_announcement(self, call_id: str) -> None:
        playback = self._announcing.pop(call_id, None)
        if playback is not None:
            await unless_gone(self.ari.stop_playback(playback))

    # -- inside -----------------------------------------------------------------------------

    def _apply(self, commands: list[AcdCommand], source: str = "acd") -> None:
        for command in commands:
            self._work.put_nowait((command, source))

    def _end(self, call_id: str, now: datetime) -> None:
        self._handed.discard(call_id)
        self._on_hold.discard(call_id)
        self._mixing.pop(call_id, None)
        self._silent_music.discard(call_id)
        self._music_unsure.discard(call_id)
        self._apply(self.acd.caller_left(call_id, now))
        self._work.put_nowait((_StopRecordings(call_id), "acd"))
        if call_id in self._rooms:
            self._rooms.discard(call_id)
            self._work.put_nowait((_DestroyBridge(wait_bridge(call_id)), "acd"))
        self._work.put_nowait((_DestroyBridge(talk_bridge(call_id)), "acd"))

    def _spawn_hangup(self, channel_id: str) -> None:
        self._work.put_nowait((_Hangup(channel_id), "acd"))

    def _timer_fired(self, key: str) -> None:
        self._timers.pop(key, None)
        self._apply(self.acd.timer(key, self._clock()))

    def _cancel(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
