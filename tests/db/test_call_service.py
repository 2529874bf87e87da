"""The call service's rebuild after a (re)connect, with ARI behind httpx's mock transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.adapters.backend import Backends
from ari_app.adapters.db import CallStore, Writer, engine_for, migrate
from ari_app.domain.call import Call, Phase
from ari_app.services.calls import LOST_CAUSE_TEXT, CallService, call_row
from ari_app.services.flows import FlowRegistry

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeAri:
    """Channels Asterisk holds for the application, and the requests the service made."""

    def __init__(self, channels: dict[str, dict[str, Any]], playbacks: set[str]) -> None:
        self.channels, self.playbacks = channels, playbacks
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/ari")
        self.requests.append((request.method, path))
        if path == "/applications/ari-app" and request.method == "GET":
            return httpx.Response(200, json={"name": "ari-app", "channel_ids": list(self.channels)})
        if path.startswith("/channels/") and request.method == "GET":
            found = self.channels.get(path.split("/")[2])
            return httpx.Response(200, json=found) if found else httpx.Response(404, json={})
        if path.startswith("/playbacks/"):
            known = path.split("/")[2] in self.playbacks
            return httpx.Response(200, json={}) if known else httpx.Response(404, json={})
        return httpx.Response(204)


def _channel(channel_id: str, state: str, step: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": channel_id,
        "state": state,
        "caller": {"number": "5551234"},
        "dialplan": {"exten": "100"},
        "creationtime": "2026-11-24T09:00:00.000+0000",
        "channelvars": {"ARI_APP_STEP": json.dumps(step)} if step else {},
    }


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite:///{tmp_path}/calls.db"
    migrate(url)
    engine = engine_for(url)
    yield engine
    await engine.dispose()


FLOW = """
flow: t
version: 2
numbers: ["100"]
start: m
nodes:
  m:
    kind: menu
    prompts: [sound:menu]
    options: {"1": bye}
  bye:
    kind: hangup
    prompts: [sound:goodbye]
"""


async def _service(
    engine: AsyncEngine, ari: FakeAri, tmp_path: Path
) -> tuple[CallService, Writer, set[Any]]:
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        return task

    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "t.yaml").write_text(FLOW)
    flows = FlowRegistry(tmp_path / "flows")
    await flows.reload()
    rest = AriRest("http://asterisk", "ari-app", "x", transport=httpx.MockTransport(ari))
    writer = Writer(engine)
    service = CallService(
        ari=rest,
        application="ari-app",
        store=CallStore(engine),
        writer=writer,
        flows=flows,
        backends=Backends(),
        spawn=spawn,
    )
    return service, writer, tasks


async def _settle(writer: Writer, tasks: set[Any]) -> None:
    runner = asyncio.create_task(writer.run())
    for _ in range(3):
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)
    await writer.drain(timeout=5)
    runner.cancel()


async def test_a_restarted_service_adopts_each_live_call_where_it_is_and_closes_the_lost(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    store = CallStore(engine)
    # left unfinished in the database by the previous process; Asterisk no longer has it
    await store.save(call_row(Call("gone", "5550000", "100", T0, Phase.IVR, answered_at=T0)))
    ari = FakeAri(
        channels={
            "ringing": _channel("ringing", "Ring", None),
            "menu": _channel(
                "menu",
                "Up",
                {
                    "step": "ivr",
                    "node": "m",
                    "language": "en",
                    "variables": {},
                    "playback": "menu-p3",
                },
            ),
            "leaving": _channel("leaving", "Up", {"step": "leaving"}),
        },
        playbacks=set(),
    )
    service, writer, tasks = await _service(engine, ari, tmp_path)
    await service.reconcile()
    await _settle(writer, tasks)

    assert ("POST", "/channels/ringing/answer") in ari.requests
    assert ("DELETE", "/playbacks/menu-p3") in ari.requests  # the old prompt stops
    assert ("POST", "/channels/menu/play/menu-p4") in ari.requests  # the menu starts again
    assert ("DELETE", "/channels/leaving") in ari.requests
    assert {call_id: call.phase for call_id, call in service.calls.items()} == {
        "ringing": Phase.ANSWERING,
        "menu": Phase.IVR,
        "leaving": Phase.HANGING_UP,
    }
    lost = await store.get("gone")
    assert lost is not None
    assert lost.ended_at is not None
    assert lost.hangup_cause_text == LOST_CAUSE_TEXT
    assert lost.hangup_side is None
    subscriptions = [r for r in ari.requests if r == ("POST", "/applications/ari-app/subscription")]
    assert len(subscriptions) == 3


async def test_the_step_is_on_the_channel_before_the_prompt_starts(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    ari = FakeAri(channels={"c": _channel("c", "Up", None)}, playbacks=set())
    service, writer, tasks = await _service(engine, ari, tmp_path)
    await service.reconcile()
    await _settle(writer, tasks)
    remember = ari.requests.index(("POST", "/channels/c/variable"))
    play = ari.requests.index(("POST", "/channels/c/play/c-p1"))
    assert remember < play
    record = await CallStore(engine).get("c")
    assert record is not None
    assert (record.flow, record.flow_version, record.phase) == ("t", 2, "ivr")
    assert record.ivr_path is not None
    assert [step["node"] for step in record.ivr_path] == ["m"]


LOOKUP_FLOW = """
flow: slow
version: 1
numbers: ["101"]
start: ask
nodes:
  ask:
    kind: lookup
    url: http://backend/balance
    timeout: 30
    next: bye
    on_error: bye
  bye:
    kind: hangup
"""


async def test_a_hang_up_during_a_slow_lookup_ends_the_call_at_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    from ari_app.domain.events import CallArrived, ChannelAnswered, ChannelGone

    asked, cancelled = asyncio.Event(), asyncio.Event()

    async def backend(request: httpx.Request) -> httpx.Response:
        asked.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return httpx.Response(200, json={})

    ari = FakeAri(channels={}, playbacks=set())
    service, writer, tasks = await _service(engine, ari, tmp_path)
    (tmp_path / "flows" / "slow.yaml").write_text(LOOKUP_FLOW)
    await service.flows.reload()
    service.backends = Backends(transport=httpx.MockTransport(backend))
    service.handle(CallArrived("c1", "5551234", "101", T0), T0)
    service.handle(ChannelAnswered("c1"), T0)
    async with asyncio.timeout(5):
        await asked.wait()
        service.handle(ChannelGone("c1", 16, "Normal Clearing"), T0)
        await cancelled.wait()
        await _settle(writer, tasks)
    row = await CallStore(engine).get("c1")
    assert row is not None
    assert row.ivr_outcome == "caller_hung_up"
    assert row.ended_at is not None
    assert not service.calls
