"""Agents' phones against the real Asterisk: made through the API, registered by SIPp."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import (
    STRANGER_SCENARIO,
    Service,
    phone_dials,
    register_phone,
    run_sipp,
)

pytestmark = pytest.mark.asterisk
ANNA = {"id": "anna", "name": "Anna Berg", "team": "billing", "skills": {"billing": 8}}


async def _endpoint_state(service: Service, user: str) -> Any:
    env = service.env
    auth = (env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
    async with httpx.AsyncClient(base_url=env["ARI_APP_ARI_URL"] + "/ari", auth=auth) as ari:
        reply = await ari.get(f"/endpoints/PJSIP/{user}")
    return reply.json().get("state") if reply.status_code == 200 else reply.status_code


async def test_a_new_agent_phone_registers_at_once_with_its_own_password_only(
    local_asterisk: LocalAsterisk, service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    asterisk_pid = local_asterisk.pid()
    async with service.client() as client:
        created = await client.post("/api/v1/agents", json=ANNA)
        assert created.status_code == 201, created.text
        sip = created.json()["sip"]
        code, output = await register_phone(sip_port, sip["user"], sip["password"])
        assert code == 0, output
        assert "agent-anna/sip:agent-anna@127.0.0.1" in local_asterisk.cli("pjsip show contacts")
        # the phone is qualified (OPTIONS); this one does not answer them, so it is unreachable
        assert await _endpoint_state(service, "agent-anna") in ("online", "offline")

        code, output = await register_phone(sip_port, sip["user"], sip["password"] + "x")
        assert code != 0
        assert "SIP/2.0 200" not in output

        renewed = (await client.post("/api/v1/agents/anna/password")).json()
        assert (await register_phone(sip_port, sip["user"], sip["password"]))[0] != 0
        code, output = await register_phone(sip_port, sip["user"], renewed["password"])
        assert code == 0, output

        assert (await client.delete("/api/v1/agents/anna")).status_code == 204
        assert (await register_phone(sip_port, sip["user"], renewed["password"]))[0] != 0
        assert await _endpoint_state(service, "agent-anna") == 404
    assert local_asterisk.pid() == asterisk_pid  # no restart, no reload


async def test_nobody_calls_in_without_being_the_carrier_or_an_authenticated_phone(
    local_asterisk: LocalAsterisk, service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with service.client() as client:
        await client.post("/api/v1/agents", json=ANNA)
    for user in ("agent-anna", "stranger", "carrier"):
        code, output = await run_sipp(
            STRANGER_SCENARIO, sip_port, "-s", "100", "-key", "user", user
        )
        assert code == 0, output  # challenged with 401, never answered
        assert "SIP/2.0 200" not in output


async def test_the_phones_are_pushed_again_after_asterisk_restarts(
    local_asterisk: LocalAsterisk, service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with service.client() as client:
        sip = (await client.post("/api/v1/agents", json=ANNA)).json()["sip"]
    local_asterisk.down()
    # the astdb copy would survive; wipe it to prove the service pushes the phones again
    for name in ("astdb.sqlite3",):
        (local_asterisk.instance_dir / "lib" / name).unlink(missing_ok=True)
    local_asterisk.up()
    await service.wait_healthy(timeout=30)
    for _ in range(50):
        code, output = await register_phone(sip_port, sip["user"], sip["password"])
        if code == 0:
            break
    assert code == 0, output


async def test_feature_codes_from_the_agents_phone_change_their_state(
    local_asterisk: LocalAsterisk, service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with service.client() as client:
        sip = (await client.post("/api/v1/agents", json=ANNA)).json()["sip"]

        async def dial(code: str) -> Any:
            result, output = await phone_dials(sip_port, sip["user"], sip["password"], code)
            assert result == 0, output
            return (await client.get("/api/v1/agents/anna")).json()

        assert (await dial("*11"))["state"] == "available"
        paused = await dial("*132")
        assert (paused["state"], paused["reason"]) == ("paused", "2")
        assert (await dial("*14"))["state"] == "available"
        assert (await dial("*13"))["reason"] == "break"
        assert (await dial("*12"))["state"] == "logged_out"
        assert (await dial("*12"))["state"] == "logged_out"  # refused: the error tone, no change
    events = [line for line in service.lines if '"agent_state"' in line]
    assert len(events) == 5
    assert all('"source": "phone"' in line for line in events)
