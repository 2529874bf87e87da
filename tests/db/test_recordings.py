"""Recordings in the database and on disk: listing, roles, retention (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import TokenStore
from ari_app.adapters.recording_store import RecordingStore
from ari_app.services.acd import AcdService
from ari_app.services.flows import FlowRegistry
from ari_app.services.recordings import RecordingService
from ari_app.services.tokens import hash_token
from tests.db.parts import api_client

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def center(
    engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, RecordingService]]:
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(_refuse))
    (tmp_path / "flows").mkdir()
    async with api_client(engine, ari, tmp_path, FlowRegistry(tmp_path / "flows")) as (c, acd):
        recorder = _recorder(acd)
        yield c, recorder


def _no_spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    coroutine.close()
    raise AssertionError("no background task is expected here")


def _refuse(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def _recorder(acd: AcdService) -> RecordingService:
    assert acd.recorder is not None
    acd.recorder._clock = lambda: NOW
    return acd.recorder


async def _stored(recorder: RecordingService, name: str, age_days: float, **fields: str) -> Path:
    """A stored recording of that age, with its file."""
    await recorder.store.add(
        {
            "id": name,
            "call_id": fields.get("call_id", f"call-{name}"),
            "agent_id": fields.get("agent_id", "anna"),
            "queue": "billing",
            "state": "stored",
            "format": "wav",
            "started_at": NOW - timedelta(days=age_days),
            "pauses": [],
        }
    )
    recorder.folder.mkdir(parents=True, exist_ok=True)
    path = recorder.path(name)
    path.write_bytes(b"RIFF" + name.encode())
    return path


async def test_retention_deletes_what_is_old_and_nothing_else(
    center: tuple[httpx.AsyncClient, RecordingService],
) -> None:
    client, recorder = center
    old = await _stored(recorder, "rec-old", 31)
    older = await _stored(recorder, "rec-older", 400)
    young = await _stored(recorder, "rec-young", 29)
    other = recorder.folder / "notes.txt"  # not a recording: never touched
    other.write_text("keep")
    deleted = await recorder.prune(keep_days=30)
    assert sorted(deleted) == ["rec-old", "rec-older"]
    assert not old.exists()
    assert not older.exists()
    assert young.exists()
    assert other.exists()
    listed = (await client.get("/api/v1/recordings")).json()
    assert [row["id"] for row in listed] == ["rec-young"]
    assert await recorder.prune(keep_days=30) == []


async def test_recordings_are_filtered_and_only_for_admins_and_their_teams_supervisors(
    center: tuple[httpx.AsyncClient, RecordingService], engine: AsyncEngine
) -> None:
    client, recorder = center
    await _stored(recorder, "rec-a", 1, agent_id="anna", call_id="c1")
    await _stored(recorder, "rec-b", 2, agent_id="ben", call_id="c2")
    by_agent = (await client.get("/api/v1/recordings?agent_id=ben")).json()
    assert [row["id"] for row in by_agent] == ["rec-b"]
    by_call = (await client.get("/api/v1/recordings?call_id=c1")).json()
    assert [row["id"] for row in by_call] == ["rec-a"]
    assert (await client.get("/api/v1/recordings/rec-nope")).status_code == 404
    # pausing a recording that is not live is refused
    assert (await client.post("/api/v1/recordings/rec-a/pause")).status_code == 409
    tokens = TokenStore(engine)
    # a supervisor of no team sees no agent's recordings (test_roles: of their teams)
    for role, expected, heard in (("supervisor", 200, 403), ("agent", 403, 403),
                                  ("viewer", 403, 403)):  # fmt: skip
        await tokens.add(name=role, role=role, token_hash=hash_token(f"token-{role}"))
        headers = {"Authorization": f"Bearer token-{role}"}
        listed = await client.get("/api/v1/recordings", headers=headers)
        assert listed.status_code == expected, role
        assert listed.status_code != 200 or listed.json() == []
        got = await client.get("/api/v1/recordings/rec-a/file", headers=headers)
        assert got.status_code == heard, role


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x01\x00" * int(8000 * seconds))
    return out.getvalue()


class FakeRecordings:
    """ARI's recordings: `rec-live` still recording, `rec-done` stored, the rest gone."""

    def __init__(self) -> None:
        self.file = _wav(2.5)
        self.downloads = 0
        self.deleted: list[str] = []
        self.stopped: list[str] = []
        self.storing = 0  # how many checks a stopped recording stays live before it is stored
        self.failing = 0  # how many downloads break off before one gets through

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path.removeprefix("/ari"), request.method
        if method == "POST" and path.endswith("/stop"):
            name = path.split("/")[-2]
            if name in ("rec-live", "rec-slow"):
                self.stopped.append(name)
                return httpx.Response(204)
            return httpx.Response(404, json={"message": "Recording not found"})
        if "rec-slow" in self.stopped and path.startswith("/recordings/live/rec-slow"):
            if self.storing > 0:
                self.storing -= 1
                return httpx.Response(200, json={"name": "rec-slow", "state": "recording"})
            return httpx.Response(404, json={"message": "not found"})
        if method == "DELETE" and path.startswith("/recordings/stored/"):
            self.deleted.append(path.rsplit("/", 1)[1])
            return httpx.Response(204)
        if "rec-slow" in self.stopped and path.startswith("/recordings/stored/rec-slow"):
            path = path.replace("rec-slow", "rec-done")
        if method == "GET" and path == "/recordings/stored/rec-done/file" and self.failing:
            self.failing -= 1
            raise httpx.ReadTimeout("the download stalled", request=request)
        if method == "GET" and path == "/recordings/live/rec-live":
            return httpx.Response(200, json={"name": "rec-live", "state": "recording"})
        if method == "GET" and path == "/recordings/stored/rec-done":
            return httpx.Response(200, json={"name": "rec-done", "format": "wav"})
        if method == "GET" and path == "/recordings/stored/rec-done/file":
            self.downloads += 1
            return httpx.Response(200, content=self.file)
        if method == "DELETE" and path.startswith("/recordings/stored/"):
            self.deleted.append(path.rsplit("/", 1)[1])
            return httpx.Response(204)
        return httpx.Response(404, json={"message": "not found"})


async def test_after_a_reconnect_live_recordings_are_followed_and_missed_ends_fetched(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    asterisk = FakeRecordings()
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(asterisk))
    recorder = RecordingService(
        ari, RecordingStore(engine), tmp_path / "recordings", spawn=_no_spawn
    )
    recorder._clock = lambda: NOW
    for name in ("rec-live", "rec-done", "rec-gone"):
        await recorder.store.add(
            {
                "id": name,
                "call_id": f"call-{name}",
                "state": "recording",
                "format": "wav",
                "started_at": NOW - timedelta(minutes=5),
                "pauses": [],
            }
        )
    assert await recorder.resume() == ["rec-done"]
    done = await recorder.store.get("rec-done")
    assert done is not None
    assert (done.state, done.duration, done.size) == ("stored", 2.5, len(asterisk.file))
    assert done.sha256 == hashlib.sha256(asterisk.file).hexdigest()
    assert recorder.path("rec-done").read_bytes() == asterisk.file
    assert asterisk.deleted == ["rec-done"]
    gone = await recorder.store.get("rec-gone")
    assert gone is not None
    assert (gone.state, gone.error) == ("failed", "Asterisk no longer has it")
    live = await recorder.store.get("rec-live")
    assert live is not None
    assert live.state == "recording"
    # the event that was missed arrives late after all: nothing is fetched twice
    await recorder.finished("rec-done")
    assert asterisk.downloads == 1
    await ari.aclose()


async def _recording(recorder: RecordingService, name: str, call_id: str) -> None:
    """A live recording of the call, as `start` leaves it (without a bridge to record)."""
    recorder._call_of[name] = call_id
    await recorder.store.add(
        {
            "id": name,
            "call_id": call_id,
            "state": "recording",
            "format": "wav",
            "started_at": NOW - timedelta(minutes=1),
            "pauses": [],
        }
    )


async def test_an_ended_conversation_s_recording_is_stopped_and_fetched_without_the_event(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    asterisk = FakeRecordings()
    asterisk.storing, asterisk.failing = 3, 1  # Asterisk is slow to store, a download breaks
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(asterisk))
    spawned: list[Coroutine[Any, Any, None]] = []
    recorder = RecordingService(ari, RecordingStore(engine), tmp_path / "rec", spawn=spawned.append)
    await _recording(recorder, "rec-slow", "call-1")
    await _recording(recorder, "rec-other", "call-2")  # another call's: left alone
    await recorder.conversation_over("call-1")
    assert asterisk.stopped == ["rec-slow"]
    assert len(spawned) == 1
    await spawned.pop()
    done = await recorder.store.get("rec-slow")
    assert done is not None
    assert (done.state, done.duration, done.size) == ("stored", 2.5, len(asterisk.file))
    assert recorder.path("rec-slow").read_bytes() == asterisk.file
    assert asterisk.downloads == 1
    assert asterisk.deleted == ["rec-slow"]
    other = await recorder.store.get("rec-other")
    assert other is not None
    assert other.state == "recording"
    await ari.aclose()


async def test_a_recording_that_cannot_be_fetched_stays_for_the_next_check_or_fails_if_gone(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    asterisk = FakeRecordings()
    asterisk.failing = 10  # Asterisk cannot be read: the row stays, so does Asterisk's copy
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(asterisk))
    spawned: list[Coroutine[Any, Any, None]] = []
    recorder = RecordingService(ari, RecordingStore(engine), tmp_path / "rec", spawn=spawned.append)
    await _recording(recorder, "rec-done", "call-1")
    await _recording(recorder, "rec-gone", "call-2")
    await recorder.settle("rec-done")
    kept = await recorder.store.get("rec-done")
    assert kept is not None
    assert kept.state == "recording"
    assert asterisk.deleted == []
    assert not list((tmp_path / "rec").iterdir())  # no partial file is left behind
    asterisk.failing = 0
    assert await recorder.resume() == ["rec-done"]
    stored = await recorder.store.get("rec-done")
    assert stored is not None
    assert stored.state == "stored"
    # one Asterisk never stores (and no longer has) is failed when the wait is over
    await recorder.settle("rec-gone", within=0.3)
    gone = await recorder.store.get("rec-gone")
    assert gone is not None
    assert (gone.state, gone.error) == ("failed", "Asterisk never stored it")
    await ari.aclose()


async def test_a_transfer_keeps_one_recording_with_each_agent_s_segment(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    asterisk = FakeRecordings()
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(asterisk))
    spawned: list[Coroutine[Any, Any, None]] = []
    recorder = RecordingService(ari, RecordingStore(engine), tmp_path / "rec", spawn=spawned.append)
    times = iter(NOW + timedelta(seconds=s) for s in (0, 0, 30, 40, 90, 90, 90))
    recorder._clock = lambda: next(times)
    asterisk_calls = []

    async def record(bridge_id: str, name: str, file_format: str) -> None:
        asterisk_calls.append((bridge_id, name))

    recorder.ari.record_bridge = record  # type: ignore[method-assign]
    name = await recorder.start("call-1", "talk-call-1", "anna", "billing")
    await recorder.handed_over("call-1")
    assert await recorder.joined("call-1", "ben")
    assert not await recorder.joined("call-2", "ben")  # no recording: nothing to join
    record_row = await recorder.store.get(name)
    assert record_row is not None
    assert [(s["agent_id"], s["to"] is None) for s in record_row.segments] == [
        ("anna", False),
        ("ben", True),
    ]
    assert record_row.segments[0]["to"] == (NOW + timedelta(seconds=30)).isoformat()
    assert record_row.segments[1]["from"] == (NOW + timedelta(seconds=40)).isoformat()
    assert len(asterisk_calls) == 1  # one recording for the whole interaction
    await ari.aclose()
