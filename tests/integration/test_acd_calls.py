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

FLOWS = {
    "billing.yaml": """
flow: to-billing
version: 1
numbers: ["106"]
start: queue
nodes:
  queue: {kind: queue, queue: billing, priority: 1}
""",
    "escalating.yaml": """
flow: to-escalating
version: 1
numbers: ["107"]
start: queue
nodes:
  queue: {kind: queue, queue: escalating}
""",
}

QUEUES = """
queues:
  billing:
    skills: {billing: 3}
    ring_timeout: 5
    max_missed: 2
    steps:
      - {seconds: 30, min_level: 7}
      - {min_level: 3}
  escalating:
    skills: {billing: 3}
    steps:
      - {seconds: 3, min_level: 7}
      - {min_level: 3}
"""

ANNA = {"id": "anna", "name": "Anna", "skills": {"billing": 9}, "wrap_up_seconds": 2}
BEN = {"id": "ben", "name": "Ben", "skills": {"internet": 9}, "wrap_up_seconds": 2}


@pytest.fixture
async def acd_service(service_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Service]:
    folder = tmp_path / "flows"
    folder.mkdir()
    for name, text in FLOWS.items():
        (folder / name).write_text(text)
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


async def test_a_ring_no_answer_goes_to_the_next_agent_and_two_pause_the_missing_one(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    carl = {"id": "carl", "name": "Carl", "skills": {"billing": 10}, "wrap_up_seconds": 1}
    async with acd_service.client() as client:
        carl_sip, anna_sip = await _agent(client, carl), await _agent(client, ANNA)
        async with (
            agent_phone(sip_port, carl_sip["user"], carl_sip["password"], answers=False),
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
        ):
            for agent_id in ("carl", "anna"):
                await client.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
                await _wait_for(client, agent_id, reachable=True, state="available")
            async with ari_observer(acd_service.env) as observer:
                # Carl has the best level, so he rings first; he never answers
                first = await place_call(sip_port, number="106", hang_up_after=9.0)
                await _wait_for(client, "anna", state="available")
                assert (await client.get("/api/v1/agents/carl")).json()["missed"] == 1
                second = await place_call(sip_port, number="106", hang_up_after=9.0)
                calls = [e["channel"]["id"] for e in observer.of_type("ChannelCreated")]
            carl_now = await _wait_for(client, "carl", state="paused")
            routings = [
                (await client.get(f"/api/v1/calls/{call_id}/routing")).json()
                for call_id in calls
                if not call_id.endswith(tuple(f"-agent{n}" for n in range(1, 20)))
            ]
    assert first.returncode == 0, first.output
    assert second.returncode == 0, second.output
    assert carl_now["reason"] == "missed"
    assert carl_now["missed"] == 2
    assert sum("Call established" in line for line in anna.lines) == 2
    assert [[d["agent_id"] for d in routing] for routing in routings] == [
        ["carl", "anna"],
        ["carl", "anna"],
    ]


async def test_escalation_reaches_a_lower_level_at_the_steps_timeout(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    ben = {"id": "ben", "name": "Ben", "skills": {"billing": 5}, "wrap_up_seconds": 1}
    async with acd_service.client() as client:
        ben_sip = await _agent(client, ben)
        async with agent_phone(sip_port, ben_sip["user"], ben_sip["password"]) as phone:
            await client.post("/api/v1/agents/ben/state", json={"state": "available"})
            await _wait_for(client, "ben", reachable=True, state="available")
            async with ari_observer(acd_service.env) as observer:
                result = await place_call(sip_port, number="107", hang_up_after=7.0)
                created = await observer.wait_for("ChannelCreated")
            routing = (await client.get(f"/api/v1/calls/{created['channel']['id']}/routing")).json()
    assert result.returncode == 0, result.output
    assert phone.said("Call established")
    (decision,) = routing
    assert (decision["agent_id"], decision["step"]) == ("ben", 1)
    assert decision["requirement"] == "billing >= 3"
