"""Agents through the admin API, on SQLite and PostgreSQL, with ARI behind a mock transport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.agent_store import AgentStore, CallbackStore, RoutingStore
from ari_app.adapters.ari import AriRest
from ari_app.domain.acd import Acd
from ari_app.domain.agents import AgentProfile
from ari_app.services.acd import AcdService
from ari_app.services.agents import AgentDirectory
from ari_app.services.phones import sip_digest
from tests.db.parts import PushedConfig

ANNA = {"id": "anna", "name": "Anna Berg", "team": "billing", "skills": {"billing": 8}}


async def test_a_new_agent_gets_a_phone_in_asterisk_and_a_password_shown_once(
    api: tuple[httpx.AsyncClient, PushedConfig],
) -> None:
    client, pushed = api
    reply = await client.post("/api/v1/agents", json=ANNA)
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["state"] == "logged_out"
    sip = created["sip"]
    assert (sip["user"], sip["realm"]) == ("agent-anna", "ari-app")
    assert pushed.objects[("auth", "agent-anna")]["md5_cred"] == sip_digest(
        "agent-anna", sip["password"]
    )
    assert "password" not in pushed.objects[("auth", "agent-anna")]  # never in clear
    endpoint = pushed.objects[("endpoint", "agent-anna")]
    assert (endpoint["auth"], endpoint["aors"], endpoint["context"]) == (
        "agent-anna",
        "agent-anna",
        "ari-app-agents",
    )
    listed = (await client.get("/api/v1/agents")).json()
    assert [agent["id"] for agent in listed] == ["anna"]
    assert "sip" not in listed[0]
    assert sip["password"] not in json.dumps(listed)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**ANNA, "id": "Anna!"}, "id"),
        ({**ANNA, "skills": {"billing": 11}}, "skills"),
        ({**ANNA, "skills": {"Bad Skill": 3}}, "skills"),
        ({**ANNA, "wrap_up_seconds": -1}, "wrap_up_seconds"),
        ({**ANNA, "name": ""}, "name"),
        ({**ANNA, "extension": "1001"}, "extension"),
    ],
)
async def test_a_bad_agent_payload_is_refused_and_changes_nothing(
    api: tuple[httpx.AsyncClient, PushedConfig], payload: dict[str, Any], field: str
) -> None:
    client, pushed = api
    reply = await client.post("/api/v1/agents", json=payload)
    assert reply.status_code == 422
    assert field in json.dumps(reply.json()["detail"])
    assert pushed.objects == {}
    assert (await client.get("/api/v1/agents")).json() == []


async def test_an_agent_is_not_made_twice_nor_when_asterisk_is_down(
    api: tuple[httpx.AsyncClient, PushedConfig],
) -> None:
    client, pushed = api
    assert (await client.post("/api/v1/agents", json=ANNA)).status_code == 201
    first = dict(pushed.objects)
    again = await client.post("/api/v1/agents", json={**ANNA, "name": "Other"})
    assert again.status_code == 409
    assert pushed.objects == first
    pushed.down = True
    down = await client.post("/api/v1/agents", json={**ANNA, "id": "ben"})
    assert down.status_code == 503
    assert "nothing was changed" in down.json()["detail"]
    pushed.down = False
    assert [agent["id"] for agent in (await client.get("/api/v1/agents")).json()] == ["anna"]


async def test_state_changes_follow_the_state_machine_and_are_audited(
    api: tuple[httpx.AsyncClient, PushedConfig], engine: AsyncEngine
) -> None:
    client, _ = api
    await client.post("/api/v1/agents", json=ANNA)
    url = "/api/v1/agents/anna/state"
    assert (await client.post(url, json={"state": "available"})).json()["state"] == "available"
    paused = (await client.post(url, json={"state": "paused", "reason": "lunch"})).json()
    assert (paused["state"], paused["reason"]) == ("paused", "lunch")
    no_reason = await client.post(url, json={"state": "paused"})
    assert no_reason.status_code == 422
    assert (await client.post(url, json={"state": "available"})).json()["state"] == "available"
    assert (await client.post(url, json={"state": "logged_out"})).json()["state"] == "logged_out"
    unpause = await client.post(url, json={"state": "paused", "reason": "x"})
    assert unpause.status_code == 409  # a logged-out agent cannot pause
    events = await AgentStore(engine).events("anna")
    assert [(e.from_state, e.to_state, e.reason, e.source) for e in reversed(events)] == [
        ("logged_out", "available", "", "api"),
        ("available", "paused", "lunch", "api"),
        ("paused", "available", "", "api"),
        ("available", "logged_out", "", "api"),
    ]


async def test_skills_change_and_the_agent_can_be_removed_with_their_phone(
    api: tuple[httpx.AsyncClient, PushedConfig],
) -> None:
    client, pushed = api
    await client.post("/api/v1/agents", json=ANNA)
    changed = await client.patch("/api/v1/agents/anna", json={"skills": {"billing": 9, "sales": 2}})
    assert changed.json()["skills"] == {"billing": 9, "sales": 2}
    assert changed.json()["recording"] == "queue"  # follows the queue unless told
    never = await client.patch("/api/v1/agents/anna", json={"recording": "never"})
    assert never.json()["recording"] == "never"
    bad = await client.patch("/api/v1/agents/anna", json={"recording": "sometimes"})
    assert bad.status_code == 422
    assert (await client.get("/api/v1/agents/anna")).json()["recording"] == "never"
    assert (await client.patch("/api/v1/agents/anna", json={})).status_code == 422
    assert (await client.patch("/api/v1/agents/nobody", json={"team": "x"})).status_code == 404
    renewed = (await client.post("/api/v1/agents/anna/password")).json()
    assert pushed.objects[("auth", "agent-anna")]["md5_cred"] == sip_digest(
        "agent-anna", renewed["password"]
    )
    assert (await client.delete("/api/v1/agents/anna")).status_code == 204
    assert pushed.objects == {}
    assert (await client.get("/api/v1/agents/anna")).status_code == 404


async def test_a_phone_asterisk_reaches_before_its_agent_is_watched_counts_as_reachable(
    engine: AsyncEngine,
) -> None:
    """A phone already registered when the service starts watching its endpoint (a new
    agent whose phone was quicker, or still registered from before) sends no change:
    the watch reads the endpoint's state, and the agent is reachable."""
    pushed = PushedConfig()

    def asterisk(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/subscription"):
            return httpx.Response(200, json={"name": "ari-app"})
        if request.url.path == "/ari/endpoints/PJSIP/agent-anna":
            found = {"technology": "PJSIP", "resource": "agent-anna", "state": "online"}
            return httpx.Response(200, json={**found, "channel_ids": []})
        return pushed(request)

    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(asterisk))
    stores = AgentStore(engine), RoutingStore(engine), CallbackStore(engine)
    acd = AcdService(Acd({}), ari, "ari-app", *stores)
    directory = AgentDirectory(AgentStore(engine), ari)
    directory.keeper = acd
    running = asyncio.create_task(acd.run())
    try:
        await directory.create(AgentProfile("anna", "Anna Berg", "billing", {"billing": 8}))
        async with asyncio.timeout(5):
            while not acd.acd.statuses["anna"].reachable:
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
    assert ("endpoint", "agent-anna") in pushed.objects  # the phone Asterisk reaches
