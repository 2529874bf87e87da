"""Callers queued by the IVR reach skilled agents on real softphones (baresip)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import (
    Service,
    agent_phone,
    ari_observer,
    place_call,
    start_service,
)

pytestmark = pytest.mark.asterisk

QUEUE_FLOW = """
flow: acd-test
version: 1
numbers: ["106"]
start: to_billing
nodes:
  to_billing:
    kind: queue
    queue: billing
    priority: 1
"""

QUEUES = """
queues:
  billing:
    skills: {billing: 3}
    ring_timeout: 8
    max_missed: 2
    steps:
      - {seconds: 30, min_level: 7}
      - {min_level: 3}
"""

ANNA = {"id": "anna", "name": "Anna", "skills": {"billing": 9}, "wrap_up_seconds": 2}
BEN = {"id": "ben", "name": "Ben", "skills": {"internet": 9}, "wrap_up_seconds": 2}


@pytest.fixture
async def acd_service(service_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Service]:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "queue.yaml").write_text(QUEUE_FLOW)
    (tmp_path / "queues.yaml").write_text(QUEUES)
    env = {
        **service_env,
        "ARI_APP_FLOWS_DIR": str(folder),
        "ARI_APP_QUEUES_FILE": str(tmp_path / "queues.yaml"),
    }
    running = await start_service(env)
    try:
        yield running
    finally:
        await running.stop()


async def _agent(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    created = await client.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json()["sip"])


async def _wait_for(client: Any, agent_id: str, **fields: Any) -> dict[str, Any]:
    agent: dict[str, Any] = {}
    try:
        async with asyncio.timeout(20):
            while True:
                agent = (await client.get(f"/api/v1/agents/{agent_id}")).json()
                if all(agent.get(key) == value for key, value in fields.items()):
                    return agent
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{agent_id} never had {fields}: {agent}") from None


async def test_a_queued_caller_talks_to_the_skilled_agent_who_then_wraps_up(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client:
        anna_sip, ben_sip = await _agent(client, ANNA), await _agent(client, BEN)
        async with (
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
            agent_phone(sip_port, ben_sip["user"], ben_sip["password"]) as ben,
        ):
            for agent_id in ("anna", "ben"):
                await client.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
                await _wait_for(client, agent_id, reachable=True, state="available")
            async with ari_observer(acd_service.env) as observer:
                result = await place_call(sip_port, number="106", hang_up_after=6.0)
                created = await observer.wait_for("ChannelCreated")
            assert result.returncode == 0, "\n".join(acd_service.lines[-30:])
            call_id = created["channel"]["id"]
            await _wait_for(client, "anna", state="available")  # after 2 s of wrap-up
            row = await acd_service.call(call_id)
            routing = (await client.get(f"/api/v1/calls/{call_id}/routing")).json()
    assert anna.said("Call established")
    assert not ben.said("Incoming call")
    assert not ben.said("answering")
    assert row["ivr_outcome"] == "queued"
    assert row["hangup_side"] == "caller"
    (decision,) = routing
    assert (decision["agent_id"], decision["queue"], decision["step"]) == ("anna", "billing", 0)
    assert decision["requirement"] == "billing >= 7"
    assert "Anna was the only free agent with billing >= 7" in decision["why"]
    assert result.ear.audio_seconds() > 1.0  # music, then the agent's voice
    states = [line for line in acd_service.lines if '"agent_state"' in line and '"anna"' in line]
    order = [s.split('"state": "')[1].split('"')[0] for s in states]
    assert order[-4:] == ["reserved", "on_call", "wrap_up", "available"]
