"""Carry out the call logic: feed it events, run its commands through ARI, the database and MQTT.

Each call has its own command queue and worker, so the commands of one call
run in order while a slow REST call on one call never holds up another.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable
from ari_app.adapters.db import CallStore, Writer
from ari_app.adapters.tables import CallRecord
from ari_app.domain import call as call_logic
from ari_app.domain.call import Call, Config, Phase
from ari_app.domain.commands import (
    AnswerChannel,
    Command,
    HangupChannel,
    PlayPrompt,
    PublishCallEvent,
    RememberStep,
    SaveCall,
    WatchChannel,
)
from ari_app.domain.events import CallAdopted, CallEvent, ChannelGone, CommandFailed
from ari_app.services.stasis import timestamp

log = structlog.get_logger(__name__)

STEP_VARIABLE = "ARI_APP_STEP"
LOST_CAUSE_TEXT = "unknown: the call ended while the service was disconnected"
Spawn = Callable[[Any], "asyncio.Task[None]"]
Publish = Callable[[str, dict[str, Any]], None]


def call_row(call: Call) -> dict[str, Any]:
    """The database row of a call."""
    row = dataclasses.asdict(call)
    row["id"] = row.pop("call_id")
    row["phase"] = call.phase.value
    row["hangup_side"] = call.hangup_side.value if call.hangup_side else None
    return row


def call_from_row(record: CallRecord) -> Call:
    return Call(
        call_id=record.id,
        caller=record.caller,
        dialled=record.dialled,
        started_at=record.started_at,
        phase=Phase(record.phase),
        answered_at=record.answered_at,
    )


class CallService:
    def __init__(
        self,
        *,
        ari: AriRest,
        application: str,
        store: CallStore,
        writer: Writer,
        config: Config,
        spawn: Spawn,
        publish: Publish | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ari, self.store, self.writer, self.config = ari, store, writer, config
        self.application = application
        self._spawn, self._publish, self._clock = spawn, publish, clock
        self.calls: dict[str, Call] = {}
        self._queues: dict[str, asyncio.Queue[Command]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    # -- events in ----------------------------------------------------------------

    def handle(self, event: CallEvent, now: datetime | None = None) -> None:
        """Apply one event to its call and queue the commands that follow."""
        current = self.calls.get(event.call_id)
        new, commands = call_logic.step(current, event, now or self._clock(), self.config)
        if new is None:
            return
        if new.phase is Phase.ENDED:
            self.calls.pop(new.call_id, None)
        else:
            self.calls[new.call_id] = new
        if current is None or new.phase is not current.phase:
            log.info(
                "call_phase",
                call_id=new.call_id,
                phase=new.phase.value,
                trigger=type(event).__name__,
            )
        for command in commands:
            self._enqueue(command)

    def _enqueue(self, command: Command) -> None:
        call_id = command.call.call_id if isinstance(command, SaveCall) else command.call_id
        queue = self._queues.setdefault(call_id, asyncio.Queue())
        queue.put_nowait(command)
        if call_id not in self._workers:
            self._workers[call_id] = self._spawn(self._work(call_id, queue))

    async def _work(self, call_id: str, queue: asyncio.Queue[Command]) -> None:
        bound = log.bind(call_id=call_id)
        me = asyncio.current_task()
        try:
            while not queue.empty():
                command = queue.get_nowait()
                try:
                    await self._execute(command)
                except AriError as exc:
                    bound.warning("command_refused", command=type(command).__name__, error=str(exc))
                    self.handle(CommandFailed(call_id, type(command).__name__, str(exc)))
                except AriUnreachable as exc:
                    # the reconnect that follows rebuilds this call from Asterisk
                    bound.warning("command_unsent", command=type(command).__name__, error=str(exc))
                except Exception:
                    bound.exception("command_crashed", command=type(command).__name__)
        finally:
            # a reconcile may have replaced this worker and queue: leave the new ones alone
            if self._workers.get(call_id) is me:
                del self._workers[call_id]
                if not queue.empty():  # commands queued while this worker was finishing
                    self._workers[call_id] = self._spawn(self._work(call_id, queue))
                elif self._queues.get(call_id) is queue:
                    del self._queues[call_id]

    async def _execute(self, command: Command) -> None:
        match command:
            case AnswerChannel(call_id):
                await self.ari.answer(call_id)
            case WatchChannel(call_id):
                try:
                    await self.ari.subscribe(self.application, f"channel:{call_id}")
                except AriError as exc:
                    if exc.status not in (404, 422):
                        raise
                    # gone before we could watch it: its ChannelDestroyed is lost
                    self.handle(ChannelGone(call_id, None, "gone before it could be watched"))
            case PlayPrompt(call_id, playback_id, media):
                await self.ari.play(call_id, playback_id, media)
            case RememberStep(call_id, step):
                await self.ari.set_channel_var(call_id, STEP_VARIABLE, step)
            case HangupChannel(call_id, reason):
                try:
                    await self.ari.hangup(call_id, reason)
                except AriError as exc:
                    if exc.status != 404:  # already gone is what we wanted
                        raise
            case SaveCall(call):
                self.writer.submit("call", self.store.save, call_row(call))
            case PublishCallEvent(call_id, name, data):
                if self._publish is not None:
                    self._publish(
                        call_id,
                        {
                            "event": name,
                            "call_id": call_id,
                            "at": self._clock().isoformat(),
                            **data,
                        },
                    )

    # -- rebuilding after a (re)connect ----------------------------------------

    async def reconcile(self) -> None:
        """Rebuild the picture of live calls from Asterisk and the database.

        Calls Asterisk still holds for the application are adopted where they
        are (answered or not, prompt playing or done); calls it no longer holds
        ended while the service was away and are closed in the database.
        """
        for task in list(self._workers.values()):
            task.cancel()
        self._workers.clear()
        self._queues.clear()
        live = set((await self.ari.application(self.application))["channel_ids"])
        known = dict(self.calls)
        for record in await self.store.unfinished():
            known.setdefault(record.id, call_from_row(record))
        now = self._clock()
        for call_id, call in known.items():
            if call_id not in live:
                self.calls[call_id] = call
                self.handle(ChannelGone(call_id, None, LOST_CAUSE_TEXT), now)
        for call_id in sorted(live):
            adopted = await self._adoption(call_id, known.get(call_id))
            if adopted is not None:
                self.calls.pop(call_id, None)
                log.info(
                    "call_adopted",
                    call_id=call_id,
                    channel_up=adopted.channel_up,
                    step=adopted.step,
                    playback_active=adopted.playback_active,
                )
                self.handle(adopted, now)

    async def _adoption(self, call_id: str, known: Call | None) -> CallAdopted | None:
        try:
            channel = await self.ari.channel(call_id)
        except AriError as exc:
            if exc.status == 404:
                return None
            raise
        step = (channel.get("channelvars") or {}).get(STEP_VARIABLE) or None
        playing = False
        if step == call_logic.STEP_WELCOME:
            playing = await self.ari.playback_exists(call_logic.welcome_playback_id(call_id))
        return CallAdopted(
            call_id=call_id,
            caller=known.caller if known else (channel.get("caller") or {}).get("number", ""),
            dialled=known.dialled if known else (channel.get("dialplan") or {}).get("exten", ""),
            started_at=(known.started_at if known else None)
            or timestamp(channel.get("creationtime"))
            or self._clock(),
            channel_up=channel.get("state") == "Up",
            step=step,
            playback_active=playing,
            answered_at=known.answered_at if known else None,
        )
