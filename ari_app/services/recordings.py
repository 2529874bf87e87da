"""Recording conversations: started on the bridge, fetched from Asterisk when done.

A conversation the policy says to record is recorded on its mixing bridge (ARI
bridge recording: both sides, mixed), under a name of our own (`rec-<random>`),
so nothing a caller sends can steer where a file goes. When the conversation
ends, the recording is stopped before its bridge goes, and its file is fetched
through ARI into the recordings folder (beside it first, then renamed into
place), measured (size, duration, sha256), the row completed, and Asterisk's
copy deleted. The fetch does not wait on Asterisk's RecordingFinished event
(an event for a bridge being torn down can be lost): it asks Asterisk until the
file is there. Pauses (for card numbers) leave their span out of the file and
are stored with their times.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import wave
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable
from ari_app.adapters.recording_store import RecordingStore
from ari_app.adapters.tables import RecordingRecord
from ari_app.domain.recording import RecordingPolicy, records

log = structlog.get_logger(__name__)

FORMAT = "wav"
SETTLE_SECONDS = 30.0  # how long a stopped recording may take to be stored by Asterisk
FETCH_TRIES = 3
LIVE = ("recording", "paused")  # a recording's states until it is stored or failed


class RecordingRefused(Exception):
    """A pause or resume that the recording's state does not allow."""


class RecordingService:
    def __init__(
        self,
        ari: AriRest,
        store: RecordingStore,
        folder: Path,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        draw: Callable[[], float] = lambda: random.uniform(0, 100),
    ) -> None:
        self.ari, self.store, self.folder = ari, store, folder
        self._spawn, self._clock, self._draw = spawn, clock, draw
        self._live: dict[str, str] = {}  # recording -> state (recording, paused)
        # recording -> its call, from the moment its row is written until it is stored or
        # failed: a call with none (most calls) needs no database query at its end
        self._call_of: dict[str, str] = {}
        self._paused_at: dict[str, datetime] = {}
        self._fetching: set[str] = set()

    def wanted(self, policy: RecordingPolicy, agent_policy: str) -> bool:
        return records(policy, agent_policy, self._draw())

    async def start(self, call_id: str, bridge_id: str, agent_id: str, queue: str) -> str:
        """Record the conversation in this bridge; the recording's id."""
        name = f"rec-{secrets.token_hex(12)}"
        self._call_of[name] = call_id
        await self.store.add(
            {
                "id": name,
                "call_id": call_id,
                "agent_id": agent_id,
                "queue": queue,
                "state": "recording",
                "format": FORMAT,
                "started_at": self._clock(),
                "pauses": [],
                "segments": [_segment(agent_id, self._clock())],
            }
        )
        try:
            await self.ari.record_bridge(bridge_id, name, FORMAT)
        except (AriError, AriUnreachable) as exc:
            await self.store.update(name, state="failed", error=str(exc)[:200])
            self._call_of.pop(name, None)
            raise
        self._live[name] = "recording"
        log.info("recording_started", recording=name, call_id=call_id, bridge=bridge_id)
        return name

    async def pause(self, name: str, paused: bool) -> None:
        """Pause (leave out of the file) or resume; raises RecordingRefused."""
        state = self._live.get(name)
        if state is None:
            raise RecordingRefused(f"{name} is not being recorded")
        if (state == "paused") == paused:
            raise RecordingRefused(f"{name} is already {'paused' if paused else 'recording'}")
        await self.ari.pause_recording(name, paused)
        now = self._clock()
        if paused:
            self._paused_at[name] = now
            self._live[name] = "paused"
            await self.store.update(name, state="paused")
            return
        self._live[name] = "recording"
        await self._close_pause(name, now, "recording")

    async def handed_over(self, call_id: str) -> None:
        """The call's agent left the conversation (a transfer): their segment ends."""
        now = self._clock()
        for record in await self._live_of(call_id):
            await self.store.update(record.id, segments=_closed(record.segments, now))

    async def joined(self, call_id: str, agent_id: str) -> bool:
        """The next agent joined the conversation: the same recording goes on, a segment
        of theirs begins. False if the call has no live recording."""
        live = await self._live_of(call_id)
        now = self._clock()
        for record in live:
            segments = [*_closed(record.segments, now), _segment(agent_id, now)]
            await self.store.update(record.id, segments=segments)
        return bool(live)

    async def _live_of(self, call_id: str) -> list[RecordingRecord]:
        if call_id not in self._call_of.values():
            return []
        return await self.store.find(limit=100, call_id=call_id, state=LIVE)

    async def conversation_over(self, call_id: str) -> None:
        """The call's conversation ended: stop its recordings now, while the bridge is
        still there, and fetch them once Asterisk has stored them (in the background)."""
        for record in await self._live_of(call_id):
            try:
                await self.ari.stop_recording(record.id)
            except AriError as exc:
                if exc.status != 404:  # 404: it already ended on its own
                    log.warning("recording_not_stopped", recording=record.id, error=str(exc))
            except AriUnreachable as exc:  # the check on the next connect finds it
                log.warning("recording_not_stopped", recording=record.id, error=str(exc))
                continue
            self._spawn(self.settle(record.id))

    async def settle(self, name: str, within: float = SETTLE_SECONDS) -> None:
        """Wait for Asterisk to have stored a stopped recording, then fetch it. One that
        Asterisk never stores is failed; one that cannot be reached is left to the check
        on the next connect (the row stays live, Asterisk keeps its copy)."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + within, 0.1
        while True:
            try:
                found = await self.ari.recording_state(name)
            except (AriError, AriUnreachable) as exc:
                log.warning("recording_not_checked", recording=name, error=str(exc))
                found = "live"
            if found == "stored":
                await self.finished(name)
                return
            if loop.time() >= deadline:
                if found is None:
                    await self.failed(name, "Asterisk never stored it")
                else:
                    log.error("recording_not_settled", recording=name, state=found)
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def resume(self) -> list[str]:
        """On every connect: recordings the database has as live are looked up in Asterisk.
        One still recording is followed again; one that finished while the service was
        away is fetched now (its event was missed); one Asterisk no longer has is failed.
        Returns the names fetched."""
        fetched = []
        just_now = self._clock() - timedelta(seconds=10)
        for record in await self.store.find(limit=10_000, state=LIVE):
            self._call_of[record.id] = record.call_id
            found = await self.ari.recording_state(record.id)
            if found == "live":
                self._live.setdefault(record.id, record.state)
            elif found == "stored":
                await self.finished(record.id)
                fetched.append(record.id)
            elif record.id not in self._live and record.started_at < just_now:
                # (one started a moment ago may not have reached Asterisk yet)
                await self.failed(record.id, "Asterisk no longer has it")
        return fetched

    async def finished(self, name: str) -> None:
        """Asterisk stored the recording (its bridge ended): fetch, measure, complete.
        Once only: the event and the check after a reconnect may both ask."""
        record = await self.store.get(name)
        if record is None or record.state in ("stored", "failed") or name in self._fetching:
            return
        self._fetching.add(name)
        try:
            await self._fetch(name)
        finally:
            self._fetching.discard(name)

    async def _fetch(self, name: str) -> None:
        if name in self._paused_at:
            await self._close_pause(name, self._clock(), "recording")
        self._live.pop(name, None)
        self.folder.mkdir(parents=True, exist_ok=True)
        path, partial = self.path(name), self.folder / f".{name}.{FORMAT}.part"
        for attempt in range(1, FETCH_TRIES + 1):
            try:
                await self.ari.download_recording(name, partial)
                size, digest, duration = await asyncio.to_thread(_measure, partial)
                partial.replace(path)
                break
            except AriUnreachable as exc:
                partial.unlink(missing_ok=True)
                if attempt < FETCH_TRIES:
                    await asyncio.sleep(attempt)
                    continue
                # Asterisk keeps its copy; the check on the next connect fetches it
                log.error("recording_not_fetched", recording=name, error=str(exc), retry=True)
                return
            except (AriError, OSError, wave.Error) as exc:
                partial.unlink(missing_ok=True)
                log.error("recording_not_fetched", recording=name, error=str(exc))
                await self.store.update(name, state="failed", error=str(exc)[:200])
                self._call_of.pop(name, None)
                return
        record = await self.store.get(name)
        now = self._clock()
        await self.store.update(
            name,
            state="stored",
            ended_at=now,
            size=size,
            sha256=digest,
            duration=duration,
            segments=_closed(record.segments if record else [], now),
        )
        self._call_of.pop(name, None)
        try:  # Asterisk's copy: ours is safe now
            await self.ari.delete_recording(name)
        except (AriError, AriUnreachable) as exc:
            log.warning("recording_left_in_asterisk", recording=name, error=str(exc))
        log.info("recording_stored", recording=name, seconds=duration, size=size)

    async def failed(self, name: str, cause: str) -> None:
        self._live.pop(name, None)
        self._paused_at.pop(name, None)
        await self.store.update(name, state="failed", ended_at=self._clock(), error=cause[:200])
        self._call_of.pop(name, None)
        log.error("recording_failed", recording=name, cause=cause)

    async def prune(self, keep_days: int) -> list[str]:
        """Delete recordings (file, then row) older than `keep_days`; the ids deleted."""
        cutoff = self._clock() - timedelta(days=keep_days)
        deleted = []
        for record in await self.store.ended_before(cutoff):
            try:
                self.path(record.id).unlink(missing_ok=True)
            except OSError as exc:  # the row stays, so the file is not forgotten
                log.error("recording_not_deleted", recording=record.id, error=str(exc))
                continue
            await self.store.delete(record.id)
            deleted.append(record.id)
            log.info("recording_deleted", recording=record.id, call_id=record.call_id,
                     started_at=record.started_at.isoformat(), keep_days=keep_days)  # fmt: skip
        return deleted

    async def keep_pruning(self, keep_days: int, every: float = 3600.0) -> None:
        """The retention task: prune now, then every `every` seconds."""
        while True:
            try:
                await self.prune(keep_days)
            except SQLAlchemyError as exc:
                log.warning("recordings_not_pruned", error=str(exc))
            await asyncio.sleep(every)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.{FORMAT}"

    async def _close_pause(self, name: str, now: datetime, state: str) -> None:
        since = self._paused_at.pop(name)
        record = await self.store.get(name)
        pauses: list[dict[str, Any]] = list(record.pauses) if record else []
        pauses.append({"from": since.isoformat(), "to": now.isoformat()})
        await self.store.update(name, state=state, pauses=pauses)


def _measure(path: Path) -> tuple[int, str, float]:
    """Size in bytes, sha256, and seconds of audio of a WAV file."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    with wave.open(str(path), "rb") as audio:
        duration = audio.getnframes() / float(audio.getframerate())
    return path.stat().st_size, digest.hexdigest(), round(duration, 3)


def _segment(agent_id: str, now: datetime) -> dict[str, Any]:
    return {"agent_id": agent_id, "from": now.isoformat(), "to": None}


def _closed(segments: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The segments with the open one (the agent talking now) ended at `now`."""
    return [s if s.get("to") else {**s, "to": now.isoformat()} for s in segments]
