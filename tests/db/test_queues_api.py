"""Queues through the admin API: read, edited in the queues file, applied to the next decision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.domain import agents as agent_logic
from ari_app.domain.acd import CallbackChanged, RingAgent, Waiting
from ari_app.domain.agents import AgentProfile
from ari_app.domain.routing.config import Callback
from ari_app.domain.routing.router import WaitingCall
from ari_app.services.acd import AcdService
from ari_app.services.flows import FlowRegistry
from tests.db.parts import api_client

FLOW = """
flow: to-billing
version: 1
numbers: ["106"]
start: queue
nodes:
  queue: {kind: queue, queue: billing}
"""


@pytest.fixture
async def center(
    engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, AcdService, Path]]:
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(_refuse))
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "billing.yaml").write_text(FLOW)
    flows = FlowRegistry(tmp_path / "flows")
    await flows.reload()
    async with api_client(engine, ari, tmp_path, flows) as (client, acd):
        yield client, acd, tmp_path / "queues.yaml"


def _refuse(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _ben_is_free(acd: AcdService) -> None:
    """Ben (billing 5) logged in with a reachable phone, straight into the pure ACD."""
    acd.acd.profiles["ben"] = AgentProfile("ben", "Ben", "billing", {"billing": 5})
    for event in (agent_logic.Reachability(True), agent_logic.LogIn()):
        acd.acd.agent_event("ben", event, T0)


async def test_queues_are_listed_as_the_file_defines_them(
    center: tuple[httpx.AsyncClient, AcdService, Path],
) -> None:
    client, _, _ = center
    listed = {queue["name"]: queue for queue in (await client.get("/api/v1/queues")).json()}
    assert set(listed) == {"billing", "billing_tier2", "support", "operator"}
    billing = listed["billing"]["definition"]
    assert billing["skills"] == {"billing": 3}
    assert billing["steps"][2] == {"overflow": "billing_tier2"}
    assert (await client.get("/api/v1/queues/nope")).status_code == 404
    assert (await client.get("/api/v1/queues/Bad Name")).status_code == 422


async def test_an_edit_is_written_with_the_files_comments_and_routes_the_next_call(
    center: tuple[httpx.AsyncClient, AcdService, Path],
) -> None:
    client, acd, path = center
    _ben_is_free(acd)
    # Ben's level (5) is below the expert step (7): the call waits
    acd.acd.call_waiting(WaitingCall("c1", "billing", T0), T0)
    waiting = (await client.get("/api/v1/queues/waiting")).json()
    assert [(w["call_id"], w["queue"], w["position"], w["ringing"]) for w in waiting] == [
        ("c1", "billing", 1, None)
    ]
    easier = {"skills": {"billing": 3}, "steps": [{"min_level": 4}], "ring_timeout": 12}
    reply = await client.put("/api/v1/queues/billing", json=easier)
    assert reply.status_code == 200, reply.text
    assert reply.json()["definition"] == easier
    text = path.read_text()
    assert "# The demo center's queues" in text  # comments elsewhere are kept
    assert "# the IVR node adds internet or telephony" in text
    assert acd.acd.queues["billing"].ring_timeout == 12
    # the next decision follows the new steps: Ben's phone is to ring for c1
    (ring,) = [item for item, _ in _queued(acd) if isinstance(item, RingAgent)]
    assert (ring.call_id, ring.agent_id, ring.timeout) == ("c1", "ben", 12)
    (waiting,) = (await client.get("/api/v1/queues/waiting")).json()
    assert (waiting["position"], waiting["ringing"]) == (None, "ben")


async def test_a_new_queue_is_created_and_a_bad_one_changes_nothing(
    center: tuple[httpx.AsyncClient, AcdService, Path],
) -> None:
    client, acd, path = center
    created = await client.put("/api/v1/queues/sales", json={"skills": {"sales": 2}})
    assert created.status_code == 201, created.text
    assert "sales" in acd.acd.queues
    before = path.read_text()
    bad: list[tuple[str, Any, str]] = [
        ("sales", {"skills": {"sales": 11}}, "queues.sales.skills.sales"),
        ("sales", {"steps": [{"overflow": "nowhere"}]}, "nowhere"),
        ("sales", {"colour": "red"}, "colour"),
        ("sales", {"max_wait": 30, "on_max_wait": {"kind": "dance"}}, "on_max_wait"),
    ]
    for name, body, named in bad:
        reply = await client.put(f"/api/v1/queues/{name}", json=body)
        assert reply.status_code == 422, (body, reply.text)
        assert named in " ".join(reply.json()["problems"]), reply.text
    assert (await client.put("/api/v1/queues/sales", json=[1, 2])).status_code == 422
    assert path.read_text() == before
    assert acd.acd.queues["sales"].rules.skills == {"sales": 2}


async def test_a_queue_in_use_cannot_be_removed(
    center: tuple[httpx.AsyncClient, AcdService, Path],
) -> None:
    client, acd, path = center
    named = await client.delete("/api/v1/queues/billing")  # the flow sends callers there
    assert named.status_code == 409
    assert "to-billing" in named.json()["problems"][0]
    overflowed_to = await client.delete("/api/v1/queues/billing_tier2")
    assert overflowed_to.status_code == 409
    assert "billing_tier2" in overflowed_to.json()["problems"][0]
    acd.acd.call_waiting(WaitingCall("c1", "support", T0), T0)
    assert (await client.delete("/api/v1/queues/support")).status_code == 409
    acd.acd.caller_left("c1", T0 + timedelta(seconds=5))
    assert (await client.delete("/api/v1/queues/support")).status_code == 204
    assert "support:" not in path.read_text()
    assert "support" not in acd.acd.queues
    assert (await client.delete("/api/v1/queues/support")).status_code == 404


def _queued(acd: AcdService) -> list[tuple[Any, str]]:
    found = []
    while not acd._work.empty():
        found.append(acd._work.get_nowait())
    return found


async def test_callback_requests_are_stored_as_they_move_and_listed_by_state(
    center: tuple[httpx.AsyncClient, AcdService, Path],
) -> None:
    client, acd, _ = center
    call = WaitingCall("cb-c1", "billing", T0, 1, {"billing": 3}, caller="5557001")
    ending = Callback(attempts=2, retry_after=60)
    await acd.callbacks.save(acd._callback_row(CallbackChanged(call, "waiting", 0, ending=ending)))
    later = T0 + timedelta(seconds=90)
    change = CallbackChanged(call, "scheduled", 1, "ben", later)
    await acd.callbacks.save(acd._callback_row(change))
    other = WaitingCall("cb-c2", "support", T0 + timedelta(seconds=5), caller="5557002")
    await acd.callbacks.save(acd._callback_row(CallbackChanged(other, "waiting", 0, ending=ending)))
    await acd.callbacks.save(acd._callback_row(CallbackChanged(other, "done", 1, "anna")))
    listed = (await client.get("/api/v1/callbacks")).json()
    assert [row["id"] for row in listed] == ["cb-c1", "cb-c2"]  # oldest place first
    first = listed[0]
    assert (first["call_id"], first["number"], first["state"], first["attempts"]) == (
        "c1",
        "5557001",
        "scheduled",
        1,
    )
    assert datetime.fromisoformat(first["retry_at"]) == later
    assert datetime.fromisoformat(first["waiting_since"]) == T0
    assert (first["max_attempts"], first["agent_id"]) == (2, "ben")
    done = (await client.get("/api/v1/callbacks?state=done")).json()
    assert [row["id"] for row in done] == ["cb-c2"]
    assert (await client.get("/api/v1/callbacks?state=lost")).status_code == 422


async def test_a_waiting_callback_is_cancelled_through_the_api(
    center: tuple[httpx.AsyncClient, AcdService, Path],
) -> None:
    client, acd, _ = center
    ending = Callback(attempts=2)
    kept = WaitingCall("cb-c9", "billing", T0, caller="5557009")
    acd.acd.calls["cb-c9"] = Waiting(kept, callback=ending)  # as a queue ending leaves it
    acd.acd.router.queue_call(kept, T0)
    await acd.callbacks.save(acd._callback_row(CallbackChanged(kept, "waiting", 0, ending=ending)))
    assert (await client.delete("/api/v1/callbacks/cb-c9")).status_code == 204
    for item, _source in _queued(acd):  # stored as the service's worker would
        if isinstance(item, CallbackChanged):
            await acd.callbacks.save(acd._callback_row(item))
    (row,) = (await client.get("/api/v1/callbacks?state=cancelled")).json()
    assert row["id"] == "cb-c9"
    assert (await client.get("/api/v1/queues/waiting")).json() == []
    assert (await client.delete("/api/v1/callbacks/cb-c9")).status_code == 404
