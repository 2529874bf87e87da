"""Carry out the call logic: feed it events, run its commands through ARI, the database and MQTT.

Each call has its own command queue and worker, so the commands of one call
run in order while a slow REST call on one call never holds up another.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable, unless_gone
from ari_app.adapters.backend import Backends, LookupError_
from ari_app.adapters.db import CallStore, Writer
from ari_app.adapters.tables import CallRecord
from ari_app.domain import call as call_logic
from ari_app.domain.acd import acd_channel
from ari_app.domain.call import Call, Config, Phase
from ari_app.domain.commands import (
    AnswerChannel,
    Command,
    ContinueInDialplan,
    EnterQueue,
    HangupChannel,
    LookUp,
    PlayPrompt,
    PublishCallEvent,
    RememberStep,
    SaveCall,
    StartTimer,
    StopPlayback,
    WatchChannel,
)
from ari_app.domain.events import (
    CallAdopted,
    CallArrived,
    CallEvent,
    ChannelGone,
    CommandFailed,
    IvrTimerFired,
    LookupReturned,
)
from ari_app.domain.ivr import engine
from ari_app.domain.monitor import session_channel
from ari_app.services.flows import FlowRegistry
from ari_app.services.lanes import Lanes
from ari_app.services.stasis import timestamp

log = structlog.get_logger(__name__)

STEP_VARIABLE = "ARI_APP_STEP"
LOST_CAUSE_TEXT = "unknown: the call ended while the service was disconnected"
Spawn = Callable[[Any], "asyncio.Task[None]"]
Publish = Callable[[str, dict[str, Any]], None]


def call_row(call: Call) -> dict[str, Any]:
    """The database row of a call, with its IVR path and outcome."""
    session = call.ivr
    outcome = session.outcome if session else None
    return {
        "id": call.call_id,
        "caller": call.caller,
        "dialled": call.dialled,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "hangup_cause": call.hangup_cause,
        "hangup_cause_text": call.hangup_cause_text,
        "hangup_side": call.hangup_side.value if call.hangup_side else None,
        "phase": call.phase.value,
        "flow": call.flow.name if call.flow else None,
        "flow_version": call.flow.version if call.flow else None,
        "ivr_outcome": outcome.kind if outcome else None,
        "ivr_path": [
            {"node": step.node, "at": step.at.isoformat(), "note": step.note}
            for step in session.path
        ]
        if session
        else None,
    }


def call_from_row(record: CallRecord) -> Call:
    return Call(
        call_id=record.id,
        caller=record.caller,
        dialled=record.dialled,
        started_at=record.started_at,
        phase=Phase(record.phase),
        answered_at=record.answered_at,
        ivr=ivr_history(record),
    )


def ivr_history(record: CallRecord) -> engine.Session | None:
    """The IVR path and outcome a stored row holds, as a finished session, so that a call
    adopted after a restart keeps what it did before (its row is written again in full)."""
    if not record.ivr_path or not record.flow:
        return None
    path = []
    for item in record.ivr_path:
        try:
            at = datetime.fromisoformat(str(item["at"]))
        except (KeyError, ValueError):
            continue
        path.append(engine.Step(str(item.get("node", "")), at, str(item.get("note", ""))))
    if not path:
        return None
    last = path[-1].node
    outcome = engine.Outcome(record.ivr_outcome, last) if record.ivr_outcome else None
    return engine.Session(
        record.flow,
        record.flow_version or 0,
        record.caller,
        last,
        "",
        engine.Waiting.DONE,
        path=tuple(path),
        outcome=outcome,
    )


def read_step(value: str | None) -> tuple[str | None, dict[str, Any]]:
    """ARI_APP_STEP holds JSON: the step and, in the IVR, where the caller was."""
    if not value:
        return None, {}
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return str(value), {}
    if not isinstance(data, dict):
        return None, {}
    return data.pop("step", None), data


class CallService:
    def __init__(
        self,
        *,
        ari: AriRest,
        application: str,
        store: CallStore,
        writer: Writer,
        flows: FlowRegistry,
        backends: Backends,
        spawn: Spawn,
        config: Config | None = None,
        publish: Publish | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ari, self.store, self.writer, self.flows = ari, store, writer, flows
        self.application, self.backends = application, backends
        self.config = config or Config()
        self._spawn, self._publish, self._clock = spawn, publish, clock
        self.calls: dict[str, Call] = {}
        self.monitor_channels: set[str] = set()  # set before each reconcile
        self._lanes: Lanes[Command] = Lanes(spawn, self._carry_out)  # one per call
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._lookups: dict[str, asyncio.Task[None]] = {}
        self.enter_queue: Callable[[EnterQueue], None] | None = None  # the ACD, when it runs
        self.saved: Callable[[dict[str, Any]], None] | None = None  # told of every call row

    # -- events in ----------------------------------------------------------------

    def handle(self, event: CallEvent, now: datetime | None = None) -> None:
        """Apply one event to its call and queue the commands that follow."""
        if isinstance(event, CallArrived) and event.flow is None:
            event = replace(event, flow=self.flows.for_number(event.dialled))
        current = self.calls.get(event.call_id)
        new, commands = call_logic.step(current, event, now or self._clock(), self.config)
        if new is None:
            return
        if new.phase is Phase.ENDED:
            self.calls.pop(new.call_id, None)
            self._cancel_timer(new.call_id)
            self._cancel_lookup(new.call_id)
        else:
            self.calls[new.call_id] = new
        if current is None or new.phase is not current.phase or new.ivr is not current.ivr:
            log.info(
                "call_step",
                call_id=new.call_id,
                phase=new.phase.value,
                node=new.ivr.node if new.ivr else None,
                trigger=type(event).__name__,
            )
        for command in commands:
            self._enqueue(command)

    def _enqueue(self, command: Command) -> None:
        call_id = command.call.call_id if isinstance(command, SaveCall) else command.call_id
        self._lanes.put(call_id, command)

    async def _carry_out(self, command: Command) -> None:
        call_id = command.call.call_id if isinstance(command, SaveCall) else command.call_id
        try:
            await self._execute(command)
        except AriError as exc:
            log.warning("command_refused", call_id=call_id, command=type(command).__name__,
                        error=str(exc))  # fmt: skip
            self.handle(CommandFailed(call_id, type(command).__name__, str(exc)))
        except AriUnreachable as exc:
            # the reconnect that follows rebuilds this call from Asterisk
            log.warning("command_unsent", call_id=call_id, command=type(command).__name__,
                        error=str(exc))  # fmt: skip

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
            case PlayPrompt(call_id, playback_id, media, language):
                await self.ari.play(call_id, playback_id, media, language)
            case StopPlayback(_, playback_id):
                await unless_gone(self.ari.stop_playback(playback_id), (404,))
            case StartTimer(call_id, seq, seconds):
                self._cancel_timer(call_id)
                self._timers[call_id] = asyncio.get_running_loop().call_later(
                    seconds, self._timer_fired, call_id, seq
                )
            case LookUp(call_id):
                # beside the call's worker, so that a hang-up meanwhile is carried out at once
                self._cancel_lookup(call_id)
                self._lookups[call_id] = self._spawn(self._look_up(command))
            case EnterQueue():
                if self.enter_queue is None:
                    raise RuntimeError("a call was queued but the ACD is not running")
                self.enter_queue(command)
            case ContinueInDialplan(call_id, context, extension):
                await self.ari.continue_in_dialplan(call_id, context, extension)
            case RememberStep(call_id, step, ivr):
                value = json.dumps({"step": step, **ivr}, separators=(",", ":"))
                await self.ari.set_channel_var(call_id, STEP_VARIABLE, value)
            case HangupChannel(call_id, reason):
                await unless_gone(self.ari.hangup(call_id, reason), (404,))
            case SaveCall(call):
                row = call_row(call)
                self.writer.submit("call", self.store.write, row, call.call_id)
                if self.saved is not None:
                    self.saved(row)
            case PublishCallEvent(call_id, name, data):
                if self._publish is not None:
                    payload = {"event": name, "call_id": call_id, "at": self._clock().isoformat()}
                    self._publish(call_id, {**payload, **data})

    async def _look_up(self, command: LookUp) -> None:
        call_id, url = command.call_id, command.url
        try:
            answer = await self.backends.ask(command.method, url, command.params, command.timeout)
        except LookupError_ as exc:
            log.warning("lookup_failed", call_id=call_id, url=url, reason=str(exc))
            returned = LookupReturned(call_id, command.seq, None, str(exc))
        else:
            returned = LookupReturned(call_id, command.seq, answer)
        if self._lookups.get(call_id) is asyncio.current_task():
            del self._lookups[call_id]
        self.handle(returned)

    def _cancel_lookup(self, call_id: str) -> None:
        task = self._lookups.pop(call_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _timer_fired(self, call_id: str, seq: int) -> None:
        self._timers.pop(call_id, None)
        try:
            self.handle(IvrTimerFired(call_id, seq))
        except Exception:
            log.exception("timer_failed", call_id=call_id)

    def _cancel_timer(self, call_id: str) -> None:
        timer = self._timers.pop(call_id, None)
        if timer is not None:
            timer.cancel()

    # -- rebuilding after a (re)connect ----------------------------------------

    async def reconcile(self) -> None:
        """Rebuild the picture of live calls from Asterisk and the database.

        Calls Asterisk still holds for the application are adopted where they
        are (answered or not, in the IVR or on their way out); calls it no
        longer holds ended while the service was away and are closed in the
        database.
        """
        self._lanes.clear()
        for call_id in list(self._timers):
            self._cancel_timer(call_id)
        for call_id in list(self._lookups):
            self._cancel_lookup(call_id)
        # the ACD's rings to agents' phones are not calls, nor a monitor session's
        # channels (`monitor_channels`): their services take them back themselves
        channel_ids = (await self.ari.application(self.application))["channel_ids"]
        live = {
            channel_id
            for channel_id in channel_ids
            if not acd_channel(channel_id)
            and not session_channel(channel_id)
            and channel_id not in self.monitor_channels
        }
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
                )
                self.handle(adopted, now)

    async def _adoption(self, call_id: str, known: Call | None) -> CallAdopted | None:
        try:
            channel = await self.ari.channel(call_id)
        except AriError as exc:
            if exc.status == 404:
                return None
            raise
        step, position = read_step((channel.get("channelvars") or {}).get(STEP_VARIABLE))
        dialled = known.dialled if known else (channel.get("dialplan") or {}).get("exten", "")
        return CallAdopted(
            call_id=call_id,
            caller=known.caller if known else (channel.get("caller") or {}).get("number", ""),
            dialled=dialled,
            started_at=(known.started_at if known else None)
            or timestamp(channel.get("creationtime"))
            or self._clock(),
            channel_up=channel.get("state") == "Up",
            step=step,
            answered_at=known.answered_at if known else None,
            # a call keeps the flow version it started with while this process lives
            flow=(known.flow if known and known.flow else None) or self.flows.for_number(dialled),
            ivr=position,
            # the application still lists a channel it handed to the dialplan (it stays
            # subscribed to see its end); one in Stasis runs the Stasis application
            in_dialplan=(channel.get("dialplan") or {}).get("app_name", "Stasis") != "Stasis",
            history=known.ivr if known else None,
        )
