"""The KPIs of a scripted run of real calls, read back through the API: answered fast,
answered late, abandoned in the queue, abandoned in the IVR, served by the IVR."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import (
    AgentPhone,
    CallResult,
    Service,
    agent_phone,
    center_service,
    place_call,
    wait_for_agent,
)

pytestmark = pytest.mark.asterisk

FLOWS = {
    "sales.yaml": """
flow: to-sales
version: 1
numbers: ["130"]
start: queue
nodes:
  queue: {kind: queue, queue: sales}
""",
    "hours.yaml": """
flow: opening-hours
version: 1
numbers: ["131"]
start: hours
nodes:
  hours: {kind: play, prompts: [sound:hello-world], next: bye}
  bye: {kind: hangup}
""",
    "long.yaml": """
flow: long-news
version: 1
numbers: ["132"]
start: news
nodes:
  news: {kind: play, prompts: [sound:demo-thanks], next: bye}
  bye: {kind: hangup}
""",
}
QUEUES = """
queues:
  sales:
    skills: {sales: 3}
    service_level: {percent: 80, seconds: 5}
    ring_timeout: 10
    announce_every: null
    alerts: {longest_wait: 3}
"""
TONE = 1400.0  # what anna's phone sends, where a test listens for her
ANNA = {"id": "anna", "name": "Anna", "skills": {"sales": 9}, "wrap_up_seconds": 1}


@pytest.fixture
async def center(service_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Service]:
    async with _center(service_env, tmp_path) as running:
        yield running


def _center(
    service_env: dict[str, str], tmp_path: Path, **more: str
) -> contextlib.AbstractAsyncContextManager[Service]:
    # a caller who hangs up within 3 s of coming to the queue is a short abandon
    more = {"ARI_APP_SHORT_ABANDON_SECONDS": "3", **more}
    return center_service(service_env, tmp_path, FLOWS, QUEUES, **more)


async def test_a_run_of_real_calls_gives_the_expected_kpis(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    start = datetime.now(UTC)
    async with center.client() as client:
        created = await client.post("/api/v1/agents", json=ANNA)
        sip = created.json()["sip"]
        async with agent_phone(sip_port, sip["user"], sip["password"]):
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            await wait_for_agent(client, "anna", reachable=True, state="available")
            # 1. answered fast: anna is free, her phone answers at once
            fast = await place_call(sip_port, number="130", caller="5550201", hang_up_after=4)
            assert fast.returncode == 0, fast.output
            await wait_for_agent(client, "anna", state="available")  # wrap-up over
            # 2. abandoned in the queue: anna is on a break, the caller gives up after 6 s
            pause = {"state": "paused", "reason": "break"}
            await client.post("/api/v1/agents/anna/state", json=pause)
            gave_up = await place_call(sip_port, number="130", caller="5550202", hang_up_after=6)
            assert gave_up.returncode == 0, gave_up.output
            # 3. answered late: still on her break when the call comes; back 8 s later
            late = asyncio.create_task(
                place_call(sip_port, number="130", caller="5550203", hang_up_after=14)
            )
            await asyncio.sleep(8)
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            assert (await late).returncode == 0
            await wait_for_agent(client, "anna", state="available")
        # 4. served by the IVR; 5. abandoned in the IVR, during a 5.5 s prompt
        served = await place_call(sip_port, number="131", caller="5550204")
        left = await place_call(sip_port, number="132", caller="5550205", hang_up_after=1.5)
        assert served.returncode == left.returncode == 0
        end = datetime.now(UTC) + timedelta(seconds=1)
        await asyncio.sleep(0.5)  # the last rows are written behind the calls
        params = {"from": start.isoformat(), "to": end.isoformat()}
        reply = await client.get("/api/v1/kpis", params=params)
        calls = (await client.get("/api/v1/calls")).json()
    assert reply.status_code == 200, reply.text
    body = reply.json()
    (sales,) = body["queues"]
    assert (sales["offered"], sales["handled"], sales["abandoned"]) == (3, 2, 1)
    assert (sales["short_abandoned"], sales["blocked"]) == (0, 0)
    assert sales["service_level"] == pytest.approx(100 / 3)  # only the fast one within 5 s
    assert 6 <= sales["longest_wait"] <= 12  # the late one: anna came back after 8 s
    assert 0 < sales["asa"] < sales["longest_wait"]
    assert sales["aht"] > 2  # talk plus a second of wrap-up
    assert sales["fcr"] == pytest.approx(100.0)  # nobody called twice
    (anna,) = body["agents"]
    assert anna["handled"] == 2
    assert 0 < anna["occupancy"] < 100
    # every call reached a flow; the opening hours were the only one the IVR finished
    outcomes = sorted((c["caller"], c["ivr_outcome"]) for c in calls["items"])
    assert (body["ivr"]["entered"], body["ivr"]["contained"]) == (5, 1), outcomes
    assert body["ivr"]["containment"] == pytest.approx(20.0)


async def test_live_stats_and_a_queue_alert_arrive_on_mqtt(
    local_asterisk: LocalAsterisk, service_env: dict[str, str], tmp_path: Path
) -> None:
    sip_port = local_asterisk.settings.sip_port
    name = f"live{secrets.token_hex(4)}"  # a center of its own: no retained leftovers
    mqtt = {"ARI_APP_MQTT_URL": "mqtt://127.0.0.1:1883", "ARI_APP_CENTER": name}
    seen: list[tuple[str, dict[str, Any]]] = []
    async with (
        aiomqtt.Client("127.0.0.1", 1883) as broker,
        _center(service_env, tmp_path, **mqtt) as center,
        center.client() as client,
    ):
        await broker.subscribe(f"ari-app/{name}/#", qos=1)

        async def listen() -> None:
            async for message in broker.messages:
                seen.append((str(message.topic), json.loads(message.payload)))

        listening = asyncio.create_task(listen())
        sip = (await client.post("/api/v1/agents", json=ANNA)).json()["sip"]
        async with agent_phone(sip_port, sip["user"], sip["password"]):
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            await wait_for_agent(client, "anna", reachable=True, state="available")
            await client.post("/api/v1/agents/anna/state", json={"state": "paused", "reason": "x"})
            # the caller waits 6 s (alert at 3 s) until anna is back, then talks 3 s
            call = asyncio.create_task(
                place_call(sip_port, number="130", caller="5550301", hang_up_after=9)
            )
            await asyncio.sleep(6)
            live = (await client.get("/api/v1/stats/queues/sales")).json()
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            assert (await call).returncode == 0
            await wait_for_agent(client, "anna", state="available")
            await asyncio.sleep(1.5)  # a tick of the live figures
            agents = (await client.get("/api/v1/stats/agents")).json()
            listening.cancel()
            # retained: a newcomer gets the queue's figures and the agent's state at once
            got = await _retained(name)
            # a deleted agent leaves the figures, and the broker forgets their state
            assert (await client.delete("/api/v1/agents/anna")).status_code == 204
            assert (await client.get("/api/v1/stats/agents")).json() == []
            await asyncio.sleep(0.5)  # the clearing message on its way
            after = await _retained(name)
    assert live["waiting"] == 1
    assert 4 <= live["longest_wait"] <= 8
    assert live["agents"] == {"paused": 1}
    alerts = [body for topic, body in seen if topic == f"ari-app/{name}/alerts"]
    assert [(a["queue"], a["metric"], a["raised"]) for a in alerts] == [
        ("sales", "longest_wait", True),
        ("sales", "longest_wait", False),
    ]
    stats = [body for topic, body in seen if topic == f"ari-app/{name}/queues/sales/stats"]
    assert stats[-1]["waiting"] == 0
    assert stats[-1]["last_15_min"]["handled"] == 1
    states = [b["state"] for t, b in seen if t == f"ari-app/{name}/agents/anna/state"]
    changes = [state for n, state in enumerate(states) if n == 0 or states[n - 1] != state]
    assert changes[-4:] == ["reserved", "on_call", "wrap_up", "available"]
    assert [a["state"] for a in agents] == ["available"]
    assert set(got) == {f"ari-app/{name}/agents/anna/state", f"ari-app/{name}/queues/sales/stats"}
    assert got[f"ari-app/{name}/agents/anna/state"]["state"] == "available"
    assert got[f"ari-app/{name}/queues/sales/stats"]["waiting"] == 0
    assert set(after) == {f"ari-app/{name}/queues/sales/stats"}


async def _retained(center: str) -> dict[str, Any]:
    """The retained messages of a center's queues and agents, as a newcomer gets them."""
    got: dict[str, Any] = {}
    async with aiomqtt.Client("127.0.0.1", 1883) as late:
        await late.subscribe(f"ari-app/{center}/+/+/+", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):
                async for message in late.messages:
                    got[str(message.topic)] = json.loads(message.payload)
    return got


async def test_a_caller_on_hold_hears_music_not_the_agent_and_the_hold_counts(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    async with (
        center.client() as client,
        _talking_to_anna(client, local_asterisk, "5550401", 16) as (_, call, row),
    ):
        await asyncio.sleep(3)
        held = await client.post(f"/api/v1/calls/{row['id']}/hold")
        await asyncio.sleep(5)
        resumed = await client.delete(f"/api/v1/calls/{row['id']}/hold")
        result, record = await _over(client, call, row["id"])
        nobody = await client.post("/api/v1/calls/no-such-call/hold")
        not_talking = await client.post(f"/api/v1/calls/{row['id']}/hold")
    assert result.returncode == 0, result.output
    assert (held.status_code, resumed.status_code) == (202, 202), (held.text, resumed.text)
    assert (nobody.status_code, not_talking.status_code) == (404, 404)
    # the record joins the call's own fields
    assert (record["dialled"], record["caller"], record["queue"]) == ("130", "5550401", "sales")
    assert (record["ivr_outcome"], record["hangup_side"]) == ("queued", "caller"), record
    assert [step["node"] for step in record["ivr_path"]] == ["queue"]
    (segment,) = record["segments"]
    assert segment["agent_id"] == "anna"
    assert 4.0 <= segment["hold_seconds"] <= 6.0, segment
    # the caller heard anna's tone except while on hold, and music while on hold
    talked = (
        datetime.fromisoformat(segment["ended_at"]) - datetime.fromisoformat(segment["answered_at"])
    ).total_seconds()
    heard_anna = result.ear.tone_seconds(TONE)
    assert abs(heard_anna - (talked - segment["hold_seconds"])) < 2.0, (heard_anna, talked)
    heard_music = result.ear.audio_seconds() - heard_anna
    # music on hold has quiet passages under the loudness floor: most of the hold is heard
    assert heard_music >= 0.4 * segment["hold_seconds"], (heard_music, segment)


async def test_a_hold_pressed_on_the_agents_phone_counts(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    async with (
        center.client() as client,
        _talking_to_anna(client, local_asterisk, "5550402", 14) as (anna, call, row),
    ):
        await asyncio.sleep(3)
        await anna.command("hold")  # a re-INVITE: Asterisk plays the caller music
        await asyncio.sleep(4)
        await anna.command("resume")
        result, record = await _over(client, call, row["id"])
    assert result.returncode == 0, result.output
    (segment,) = record["segments"]
    assert 3.0 <= segment["hold_seconds"] <= 5.0, segment
    assert any('"call_hold"' in line and '"phone"' in line for line in center.lines)


@contextlib.asynccontextmanager
async def _talking_to_anna(
    client: Any, local_asterisk: LocalAsterisk, caller: str, hang_up_after: float
) -> AsyncIterator[tuple[AgentPhone, asyncio.Task[CallResult], dict[str, Any]]]:
    """Anna (her phone sends a tone) talking to a caller who hangs up after so long: her
    phone, the call, and its row."""
    sip_port = local_asterisk.settings.sip_port
    sip = (await client.post("/api/v1/agents", json=ANNA)).json()["sip"]
    async with agent_phone(sip_port, sip["user"], sip["password"], tone=TONE) as anna:
        await client.post("/api/v1/agents/anna/state", json={"state": "available"})
        await wait_for_agent(client, "anna", reachable=True, state="available")
        call = asyncio.create_task(
            place_call(sip_port, number="130", caller=caller, hang_up_after=hang_up_after)
        )
        try:
            await wait_for_agent(client, "anna", state="on_call")
        except AssertionError:
            if call.done():  # the caller's side tells why: SIPp's output
                raise AssertionError(f"the call ended first: {call.result()}") from None
            raise
        yield anna, call, await _call_of(client, caller)


async def _over(
    client: Any, call: asyncio.Task[CallResult], call_id: str
) -> tuple[CallResult, dict[str, Any]]:
    """The call's end, and its interaction record once anna has wrapped it up."""
    result = await call
    await wait_for_agent(client, "anna", state="available")
    await asyncio.sleep(0.5)  # the record is written behind the call
    return result, (await client.get(f"/api/v1/interactions/{call_id}")).json()


async def _call_of(client: Any, caller: str) -> dict[str, Any]:
    """The caller's call row, once it is written (behind the call)."""
    async with asyncio.timeout(10):
        while True:
            rows = (await client.get("/api/v1/calls")).json()["items"]
            found = [row for row in rows if row["caller"] == caller]
            if found:
                return found[0]
            await asyncio.sleep(0.1)
