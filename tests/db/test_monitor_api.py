"""Supervisors and monitor sessions through the API (SQLite and PostgreSQL; ARI mocked).

What is proved on real audio is in tests/integration/test_monitoring.py; here: who may
make supervisors, what a supervisor's token may ask, and bad payloads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.db import TokenStore
from ari_app.services.phones import sip_digest
from ari_app.services.tokens import hash_token
from tests.db.parts import PushedConfig

SUE = {"id": "sue", "name": "Sue Lind", "team": "billing"}


async def test_a_supervisor_gets_a_phone_and_a_token_of_their_own(
    api: tuple[httpx.AsyncClient, PushedConfig],
) -> None:
    client, pushed = api
    reply = await client.post("/api/v1/supervisors", json=SUE)
    assert reply.status_code == 201, reply.text
    made = reply.json()
    assert made["endpoint"] == "supervisor-sue"
    auth = pushed.objects[("auth", "supervisor-sue")]
    assert auth["md5_cred"] == sip_digest("supervisor-sue", made["sip_password"])
    assert pushed.objects[("endpoint", "supervisor-sue")]["context"] == "ari-app-agents"
    mine = {"Authorization": f"Bearer {made['token']}"}
    listed = await client.get("/api/v1/supervisors", headers=mine)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == ["sue"]
    assert made["token"] not in listed.text
    assert made["sip_password"] not in listed.text
    # a supervisor may not make supervisors, nor monitor for someone else
    again = {**SUE, "id": "tom"}
    assert (await client.post("/api/v1/supervisors", json=again, headers=mine)).status_code == 403
    asked = await client.post(
        "/api/v1/calls/nope/monitor", json={"mode": "listen", "supervisor_id": "tom"}, headers=mine
    )
    assert asked.status_code == 403
    # a call that is not in a conversation cannot be monitored
    asked = await client.post("/api/v1/calls/nope/monitor", json={"mode": "listen"}, headers=mine)
    assert asked.status_code == 404
    assert (await client.post("/api/v1/supervisors", json=SUE)).status_code == 409
    # removed: the phone goes, and the token no longer opens anything
    assert (await client.delete("/api/v1/supervisors/sue")).status_code == 204
    assert ("auth", "supervisor-sue") not in pushed.objects
    assert (await client.get("/api/v1/supervisors", headers=mine)).status_code == 401


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/supervisors", {**SUE, "id": "Sue!"}),
        ("/api/v1/supervisors", {**SUE, "team": ""}),
        ("/api/v1/supervisors", {**SUE, "phone": "1001"}),
        ("/api/v1/calls/c1/monitor", {"mode": "shout", "supervisor_id": "sue"}),
        ("/api/v1/calls/c1/monitor", {"mode": "listen"}),  # an admin names the supervisor
        ("/api/v1/calls/c1/monitor", {"mode": "listen", "supervisor_id": "sue", "x": 1}),
    ],
)
async def test_bad_monitoring_payloads_are_refused_and_change_nothing(
    api: tuple[httpx.AsyncClient, PushedConfig], path: str, payload: dict[str, Any]
) -> None:
    client, pushed = api
    reply = await client.post(path, json=payload)
    assert reply.status_code == 422, reply.text
    assert pushed.objects == {}
    assert (await client.get("/api/v1/supervisors")).json() == []
    assert (await client.get("/api/v1/monitors")).json() == []


async def test_only_admins_and_supervisors_see_monitoring(
    api: tuple[httpx.AsyncClient, PushedConfig], engine: AsyncEngine
) -> None:
    client, _ = api
    tokens = TokenStore(engine)
    await tokens.add(name="an agent", role="agent", token_hash=hash_token("token-agent"))
    headers = {"Authorization": "Bearer token-agent"}
    for method, path in (
        ("GET", "/api/v1/monitors"),
        ("GET", "/api/v1/supervisors"),
        ("POST", "/api/v1/calls/c1/monitor"),
        ("PATCH", "/api/v1/monitors/mon-1"),
        ("DELETE", "/api/v1/monitors/mon-1"),
    ):
        reply = await client.request(method, path, json={"mode": "listen"}, headers=headers)
        assert reply.status_code == 403, (method, path)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"agent_id": "ben"}, 404),  # no such call
        ({"agent_id": "Ben!"}, 422),
        ({"agent_id": "ben", "to": "queue"}, 422),
        ({}, 422),
    ],
)
async def test_a_transfer_needs_a_conversation_and_a_well_formed_agent(
    api: tuple[httpx.AsyncClient, PushedConfig], payload: dict[str, Any], expected: int
) -> None:
    client, _ = api
    reply = await client.post("/api/v1/calls/nope/transfer", json=payload)
    assert reply.status_code == expected, reply.text
