"""Supervisor monitoring on ARI: ring the supervisor, wire the mode, switch it, end it.

A session is `mon-<random>`. Asked through the API, the supervisor's phone
(`supervisor-<id>`) is rung as channel `<session>-supervisor`; asked with a
feature code from that phone, the phone's own channel is the supervisor's side
and nothing rings. Once it is up the session gets its own mixing bridge
(`<session>-bridge`) where the supervisor meets a snoop channel on the agent's
leg (`<session>-snoop-<n>`) for listen and whisper; a barge moves the
supervisor into the conversation's bridge instead. A mode change makes the new
snoop before the old one goes, so the supervisor hears no gap and is never
rung again. Every session is one audit row: who asked, the supervisor, the
agent, the call, each mode with its times, and how it ended; a refusal is a row
too. Any side hanging up ends the session and clears its snoop and bridge.

Sessions outlive the service like the calls do: after a restart, one that
Asterisk still holds whole is taken back from its row, its channels and its
bridges; the others are ended (their row says so) and cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable, unless_gone
from ari_app.adapters.monitor_store import MonitorStore
from ari_app.adapters.tables import MonitorRecord
from ari_app.domain.monitor import (
    DIGITS,
    SESSION_PREFIX,
    Mode,
    MonitorRefused,
    check_permitted,
    closed,
    endpoint_of,
    snoop_for,
    switched,
)
from ari_app.services.stasis import MONITOR_LEG, SNOOP
from ari_app.services.supervisors import SupervisorDirectory

log = structlog.get_logger(__name__)

RING_SECONDS = 30
SNOOP_READY_SECONDS = 5.0
RESUME_WAIT_SECONDS = 15.0
LIVE = ("ringing", "active")


class CallNotMonitored(Exception):
    """There is no conversation on this call to monitor (404 or 409)."""


class MonitorBusy(Exception):
    """The supervisor is in another session already."""


class SessionNotFound(Exception):
    pass


@dataclass(frozen=True)
class Conversation:
    call_id: str
    agent_id: str
    team: str
    agent_leg: str
    bridge: str


class Conversations(Protocol):
    """The ACD: which conversation a call is in now."""

    def conversation(self, call_id: str) -> Conversation | None: ...

    def conversation_of(self, agent_id: str) -> Conversation | None: ...

    def keep_mixing(self, call_id: str, holder: str, on: bool) -> None:
        """The conversation's bridge must mix (a steady stream to the agent) while a
        supervisor whispers; see `AcdService.keep_mixing`."""


@dataclass
class Session:
    id: str
    conversation: Conversation
    supervisor_id: str
    mode: Mode
    channel: str
    answered: bool = False
    snoop: str | None = None
    snoops: int = 0
    in_conversation: bool = False  # barging: in the conversation's bridge
    in_bridge: bool = False  # listening or whispering: in the session's bridge
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"{self.id}-bridge"


class MonitorService:
    def __init__(
        self,
        ari: AriRest,
        application: str,
        store: MonitorStore,
        supervisors: SupervisorDirectory,
        conversations: Conversations,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        *,
        tone: str = "beep",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ari, self.application, self.store = ari, application, store
        self.supervisors, self.conversations = supervisors, conversations
        self._spawn, self.tone, self._clock = spawn, tone, clock
        self._sessions: dict[str, Session] = {}
        # set once the sessions a restart cut have been taken back: until then, a
        # session not held here may still be one of them
        self._resumed = asyncio.Event()

    async def _held(self, session_id: str) -> Session:
        """A live session held here; one the database has as live is waited for until
        the first connect has taken back what a restart cut."""
        if session_id not in self._sessions and not self._resumed.is_set():
            record = await self.store.get(session_id)
            if record is not None and record.state in LIVE:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._resumed.wait(), RESUME_WAIT_SECONDS)
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        return session

    # -- asked for ---------------------------------------------------------------------

    async def start(
        self,
        call_id: str,
        mode: Mode,
        supervisor_id: str,
        role: str,
        requested_by: str,
        *,
        channel: str | None = None,
    ) -> MonitorRecord:
        """Start a session on the call's conversation: ring the supervisor (or, with
        `channel`, use the phone that asked). Raises CallNotMonitored,
        SupervisorNotFound, MonitorRefused (after writing its audit row), MonitorBusy."""
        conversation = self.conversations.conversation(call_id)
        if conversation is None:
            raise CallNotMonitored(f"call {call_id} is not in a conversation with an agent")
        supervisor = await self.supervisors.get(supervisor_id)
        session_id = f"{SESSION_PREFIX}{secrets.token_hex(8)}"
        now = self._clock()
        row: dict[str, Any] = {
            "id": session_id,
            "call_id": call_id,
            "agent_id": conversation.agent_id,
            "supervisor_id": supervisor_id,
            "requested_by": requested_by[:80],
            "source": "phone" if channel else "api",
            "state": "ringing",
            "modes": [],
            "started_at": now,
        }
        try:
            check_permitted(role, await self.supervisors.teams(supervisor.id), conversation.team)
        except MonitorRefused as exc:
            await self.store.add({**row, "state": "refused", "ended_at": now,
                                  "end_reason": str(exc)[:200]})  # fmt: skip
            log.warning("monitor_refused", call_id=call_id, supervisor_id=supervisor_id,
                        requested_by=requested_by, why=str(exc))  # fmt: skip
            raise
        if any(s.supervisor_id == supervisor_id for s in self._sessions.values()):
            raise MonitorBusy(f"supervisor {supervisor_id} is monitoring another call")
        session = Session(
            session_id, conversation, supervisor_id, mode, channel or f"{session_id}-supervisor"
        )
        self._sessions[session_id] = session
        await self.store.add({**row, "supervisor_channel": session.channel})
        log.info("monitor_requested", session=session_id, call_id=call_id, mode=mode.value,
                 supervisor_id=supervisor_id, agent_id=conversation.agent_id)  # fmt: skip
        try:
            if channel is None:
                await self.ari.originate(
                    session.channel,
                    f"PJSIP/{endpoint_of(supervisor_id)}",
                    self.application,
                    f"{MONITOR_LEG},{session_id}",
                    RING_SECONDS,
                    f'"Monitor {conversation.agent_id}" <{conversation.agent_id}>',
                )
            else:
                # without it Asterisk stops sending the channel's events at StasisEnd, and
                # the supervisor hanging up (ChannelDestroyed) would not end the session
                await self.ari.subscribe(self.application, f"channel:{channel}")
                await self.ari.answer(channel)
                self._spawn(self._answered(session))
        except (AriError, AriUnreachable) as exc:
            await self._end(session, f"the supervisor's phone could not be reached: {exc}")
            raise
        found = await self.store.get(session_id)
        assert found is not None
        return found

    async def change(self, session_id: str, mode: Mode, source: str) -> MonitorRecord:
        """Switch a live session's mode; a ringing one takes it when answered."""
        session = await self._held(session_id)
        async with session.lock:
            if session.mode is mode and session.answered:
                return await self._row(session_id)
            if not session.answered:
                session.mode = mode
                return await self._row(session_id)
            await self._wire(session, mode)
            session.mode = mode
            record = await self._row(session_id)
            modes = switched(record.modes, mode, self._clock())
            await self.store.update(session_id, modes=modes)
        log.info("monitor_mode", session=session_id, mode=mode.value, source=source)
        return await self._row(session_id)

    async def stop(self, session_id: str, reason: str) -> MonitorRecord:
        session = await self._held(session_id)
        await self._end(session, reason)
        return await self._row(session_id)

    def session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    # -- what Asterisk tells ----------------------------------------------------------

    def leg_answered(self, channel_id: str, session_id: str) -> None:
        """The supervisor picked up the ring."""
        session = self._sessions.get(session_id)
        if session is None or session.channel != channel_id:  # a session that ended
            self._spawn(unless_gone(self.ari.hangup(channel_id)))
            return
        self._spawn(self._answered(session))

    def snoop_started(self, channel_id: str, session_id: str) -> None:
        session = self._sessions.get(session_id)
        waiting = session.waiting.pop(channel_id, None) if session else None
        if waiting is None:  # a snoop nobody waits for any more
            self._spawn(unless_gone(self.ari.hangup(channel_id)))
        elif not waiting.done():
            waiting.set_result(None)

    def digit(self, channel_id: str, digit: str) -> bool:
        """A key on a supervisor's phone; True if it belonged to a session."""
        for session in self._sessions.values():
            if session.channel == channel_id:
                mode = DIGITS.get(digit)
                if mode is not None and session.answered:
                    self._spawn(self._change_quietly(session.id, mode))
                return True
        return False

    def channel_gone(self, channel_id: str) -> None:
        for session in list(self._sessions.values()):
            if channel_id == session.channel:
                why = "the supervisor hung up" if session.answered else "no answer"
                self._spawn(self._end(session, why))
            elif channel_id in (session.conversation.agent_leg, session.conversation.call_id):
                self._spawn(self._end(session, "the conversation ended"))

    async def channels(self) -> set[str]:
        """The supervisors' channels of the sessions held here or live in the database
        (a phone that dialled a feature code keeps Asterisk's id): not callers. The
        channels the sessions made are known by their names (`session_channel`)."""
        found = {c for s in self._sessions.values() for c in (s.channel, s.snoop) if c}
        for record in await self.store.find(limit=10_000, state=LIVE):
            if record.supervisor_channel:
                found.add(record.supervisor_channel)
        return found

    async def resume(self) -> None:
        """On every connect: take back what a restart (or a lost link) cut.

        A session the database has as active whose supervisor is still on the line,
        whose conversation goes on and whose wiring Asterisk still holds (the snoop in the
        session's bridge, or the supervisor in the conversation's bridge for a barge) is
        taken back as it was: its mode can be switched and its end is seen. Any other
        live session is ended (`the service restarted`), its channels and bridge cleared.
        A session this process holds whose side hung up while the link was down ends."""
        channels = {str(c["id"]) for c in await self.ari.channels()}
        bridges = {str(b["id"]): [str(c) for c in b.get("channels") or ()]
                   for b in await self.ari.bridges()}  # fmt: skip
        for session in list(self._sessions.values()):
            if session.channel not in channels:
                await self._end(session, "the supervisor hung up")
            elif session.conversation.agent_leg not in channels:
                await self._end(session, "the conversation ended")
        for record in await self.store.find(limit=10_000, state=LIVE):
            if record.id in self._sessions:
                continue
            session = self._taken_back(record, channels, bridges)
            ours = {c for c in channels if c.startswith(f"{record.id}-")}
            if session is not None:
                self._sessions[record.id] = session
                await unless_gone(
                    self.ari.subscribe(self.application, f"channel:{session.channel}")
                )
                for stray in ours - {session.channel, session.snoop}:
                    await unless_gone(self.ari.hangup(stray))
                log.info("monitor_resumed", session=record.id, mode=session.mode.value)
                continue
            for channel_id in {*ours, record.supervisor_channel} & channels:
                await unless_gone(self.ari.hangup(channel_id))
            if f"{record.id}-bridge" in bridges:
                await unless_gone(self.ari.destroy_bridge(f"{record.id}-bridge"))
            now = self._clock()
            await self.store.update(record.id, state="ended", ended_at=now,
                                    modes=closed(record.modes, now),
                                    end_reason="the service restarted")  # fmt: skip
            log.warning("monitor_ended_by_restart", session=record.id)
        self._resumed.set()

    def _taken_back(
        self, record: MonitorRecord, channels: set[str], bridges: dict[str, list[str]]
    ) -> Session | None:
        """The session as Asterisk still holds it, if it is whole."""
        conversation = self.conversations.conversation(record.call_id)
        channel = record.supervisor_channel
        if (
            record.state != "active"
            or not record.modes
            or channel not in channels
            or conversation is None
            or conversation.agent_id != record.agent_id
        ):
            return None
        mode = Mode(record.modes[-1]["mode"])
        session = Session(record.id, conversation, record.supervisor_id, mode, channel,
                          answered=True)  # fmt: skip
        if mode is Mode.BARGE:
            session.in_conversation = channel in bridges.get(conversation.bridge, [])
            return session if session.in_conversation else None
        members = bridges.get(session.bridge, [])
        snoops = [c for c in members if c.startswith(f"{record.id}-snoop-")]
        if channel not in members or not snoops:
            return None
        session.snoop = max(snoops, key=lambda c: int(c.rsplit("-", 1)[1]))
        session.snoops = int(session.snoop.rsplit("-", 1)[1])
        session.in_bridge = True
        if mode is Mode.WHISPER:  # its bridge mixes still: the ACD holds that again
            self.conversations.keep_mixing(record.call_id, record.id, True)
        return session

    # -- inside ------------------------------------------------------------------------

    async def _answered(self, session: Session) -> None:
        async with session.lock:
            if session.id not in self._sessions:
                return
            try:
                await self.ari.subscribe(self.application, f"channel:{session.channel}")
                await self.ari.create_bridge(session.bridge, "mixing")
                await self._wire(session, session.mode)
            except (AriError, AriUnreachable, TimeoutError, SessionNotFound) as exc:
                log.error("monitor_not_wired", session=session.id, error=str(exc))
                self._spawn(self._end(session, f"monitoring could not be set up: {exc}"))
                return
            session.answered = True
            now = self._clock()
            await self.store.update(session.id, state="active", answered_at=now,
                                    modes=switched([], session.mode, now))  # fmt: skip
        log.info("monitor_started", session=session.id, mode=session.mode.value)
        if self.tone:  # the agent is told that someone listens in
            try:
                await self.ari.play(session.conversation.agent_leg, f"{session.id}-tone",
                                    (f"sound:{self.tone}",))  # fmt: skip
            except (AriError, AriUnreachable) as exc:
                log.warning("monitor_tone_not_played", session=session.id, error=str(exc))

    async def _wire(self, session: Session, mode: Mode) -> None:
        """Connect the supervisor for `mode` (the lock is held)."""
        snoop = snoop_for(mode)
        old = session.snoop
        whispers = snoop is not None and snoop.whisper != "none"
        self.conversations.keep_mixing(session.conversation.call_id, session.id, whispers)
        if snoop is None:  # barge: into the conversation itself
            if session.in_bridge:
                await self.ari.remove_from_bridge(session.bridge, session.channel)
                session.in_bridge = False
            await self.ari.add_to_bridge(session.conversation.bridge, session.channel)
            session.in_conversation, session.snoop = True, None
        else:
            session.snoops += 1
            new = f"{session.id}-snoop-{session.snoops}"
            ready = asyncio.get_running_loop().create_future()
            session.waiting[new] = ready
            await self.ari.snoop(
                session.conversation.agent_leg, new, self.application,
                f"{SNOOP},{session.id}", snoop.spy, snoop.whisper,
            )  # fmt: skip
            try:
                await asyncio.wait_for(ready, SNOOP_READY_SECONDS)
            finally:
                session.waiting.pop(new, None)
            if session.in_conversation:
                await self.ari.remove_from_bridge(session.conversation.bridge, session.channel)
                session.in_conversation = False
            await self.ari.add_to_bridge(session.bridge, new)
            if not session.in_bridge:
                await self.ari.add_to_bridge(session.bridge, session.channel)
                session.in_bridge = True
            session.snoop = new
        if old is not None:
            await unless_gone(self.ari.hangup(old))

    async def _change_quietly(self, session_id: str, mode: Mode) -> None:
        try:
            await self.change(session_id, mode, "phone")
        except (SessionNotFound, AriError, AriUnreachable, TimeoutError) as exc:
            log.warning("monitor_mode_not_changed", session=session_id, error=str(exc))

    async def _end(self, session: Session, reason: str) -> None:
        if self._sessions.pop(session.id, None) is None:
            return  # ended already
        for waiting in session.waiting.values():
            if not waiting.done():
                waiting.set_exception(SessionNotFound(session.id))
        async with session.lock:
            for channel_id in (session.channel, session.snoop):
                if channel_id is not None:
                    await _quietly(self.ari.hangup(channel_id))
            await _quietly(self.ari.destroy_bridge(session.bridge))
            self.conversations.keep_mixing(session.conversation.call_id, session.id, False)
        record = await self._row(session.id)
        now = self._clock()
        modes = closed(record.modes, now)
        await self.store.update(
            session.id, state="ended", ended_at=now, modes=modes, end_reason=reason[:200]
        )
        log.info("monitor_ended", session=session.id, reason=reason)

    async def _row(self, session_id: str) -> MonitorRecord:
        found = await self.store.get(session_id)
        if found is None:
            raise SessionNotFound(session_id)
        return found


async def _quietly(request: Coroutine[Any, Any, None]) -> None:
    """Clearing up: what is gone already, or cannot be reached now, is left."""
    try:
        await unless_gone(request)
    except (AriError, AriUnreachable) as exc:
        log.warning("monitor_not_cleared", error=str(exc))
