"""Callers queued by the IVR reach skilled agents on real softphones (baresip)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.adapters.db import TokenStore, engine_for
from ari_app.domain.acd import leg_of
from ari_app.services.tokens import hash_token
from tests.integration.telephony import (
    AgentPhone,
    Observer,
    Service,
    agent_phone,
    ari_observer,
    carrier_far_end,
    carrier_messages,
    center_service,
    place_call,
    start_service,
    wait_for_agent,
    wav_loud_seconds,
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
    "announced.yaml": """
flow: to-announced
version: 1
numbers: ["108"]
start: queue
nodes:
  queue: {kind: queue, queue: announced}
""",
    "nobody.yaml": """
flow: to-nobody
version: 1
numbers: ["109"]
start: queue
nodes:
  queue: {kind: queue, queue: nobody}
""",
    "callback.yaml": """
flow: to-callback
version: 1
numbers: ["110"]
start: queue
nodes:
  queue: {kind: queue, queue: callback}
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
    recording: always
    ring_timeout: 5
    max_missed: 2
    steps:
      - {seconds: 30, min_level: 7}
      - {min_level: 3}
  announced:
    skills: {billing: 3}
    announce_every: 10
    max_wait: 24
    on_max_wait: {kind: voicemail, mailbox: "800", prompts: [sound:vm-nobodyavail]}
  nobody:
    skills: {expert: 5}
    when_no_agents: leave
    on_no_agents: {kind: transfer, to: "5550199", prompts: [sound:pls-hold-while-try]}
  callback:
    skills: {billing: 3}
    announce_every: null
    max_wait: 10
    on_max_wait: {kind: callback, prompts: [sound:queue-thankyou], attempts: 2, retry_after: 30}
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
    async with center_service(service_env, tmp_path, FLOWS, QUEUES) as running:
        yield running


def _states_of(service: Service, agent_id: str) -> list[str]:
    """The states the agent went through, from the service's log (a change of
    reachability alone, as a phone goes away at the end, leaves the state as it was)."""
    lines = [line for line in service.lines if '"agent_state"' in line and f'"{agent_id}"' in line]
    seen = [line.split('"state": "')[1].split('"')[0] for line in lines]
    return [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]


async def _agent(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    created = await client.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json()["sip"])


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
                await wait_for_agent(client, agent_id, reachable=True, state="available")
            async with ari_observer(acd_service.env) as observer:
                result = await place_call(sip_port, number="106", hang_up_after=6.0)
                created = await observer.wait_for("ChannelCreated")
            assert result.returncode == 0, "\n".join(acd_service.lines[-30:])
            call_id = created["channel"]["id"]
            await wait_for_agent(client, "anna", state="available")  # after 2 s of wrap-up
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
    order = _states_of(acd_service, "anna")
    assert order[-4:] == ["reserved", "on_call", "wrap_up", "available"], order


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
                await wait_for_agent(client, agent_id, reachable=True, state="available")
            async with ari_observer(acd_service.env) as observer:
                # Carl has the best level, so he rings first; he never answers
                first = await place_call(sip_port, number="106", hang_up_after=9.0)
                await wait_for_agent(client, "anna", state="available")
                assert (await client.get("/api/v1/agents/carl")).json()["missed"] == 1
                second = await place_call(sip_port, number="106", hang_up_after=9.0)
                calls = [e["channel"]["id"] for e in observer.of_type("ChannelCreated")]
            carl_now = await wait_for_agent(client, "carl", state="paused")
            routings = [
                (await client.get(f"/api/v1/calls/{call_id}/routing")).json()
                for call_id in calls
                if leg_of(call_id) is None
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
            await wait_for_agent(client, "ben", reachable=True, state="available")
            async with ari_observer(acd_service.env) as observer:
                result = await place_call(sip_port, number="107", hang_up_after=7.0)
                created = await observer.wait_for("ChannelCreated")
            routing = (await client.get(f"/api/v1/calls/{created['channel']['id']}/routing")).json()
    assert result.returncode == 0, result.output
    assert phone.said("Call established")
    (decision,) = routing
    assert (decision["agent_id"], decision["step"]) == ("ben", 1)
    assert decision["requirement"] == "billing >= 3"


def _callers(observer: Observer) -> list[str]:
    """The callers' channels in the order they came (agents' rings left out)."""
    created = [event["channel"]["id"] for event in observer.of_type("ChannelCreated")]
    return [channel_id for channel_id in created if leg_of(channel_id) is None]


async def _waiting(client: Any, count: int) -> list[dict[str, Any]]:
    waiting: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while len(waiting) != count:
            await asyncio.sleep(0.1)
            waiting = (await client.get("/api/v1/queues/waiting")).json()
    return waiting


async def test_calls_outlive_the_controller_talking_on_and_waiting_in_order(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    """The restart drill: the service is killed while one call talks and two wait."""
    sip_port = local_asterisk.settings.sip_port
    ben = {"id": "ben", "name": "Ben", "skills": {"billing": 9}, "wrap_up_seconds": 2}
    again: Service | None = None
    async with acd_service.client() as client:
        anna_sip, ben_sip = await _agent(client, ANNA), await _agent(client, ben)
    async with (
        agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
        agent_phone(sip_port, ben_sip["user"], ben_sip["password"]) as ben_phone,
        ari_observer(acd_service.env) as observer,
    ):
        async with acd_service.client() as client:
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            await wait_for_agent(client, "anna", reachable=True, state="available")
            talking = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=30))
            await wait_for_agent(client, "anna", state="on_call")
            first = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=50))
            await _waiting(client, 1)
            second = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=50))
            before = await _waiting(client, 2)
        await acd_service.stop(signal.SIGKILL)
        try:
            again = await start_service(acd_service.env)
            again.token = acd_service.token
            async with again.client() as client:
                # the two still wait, in the order they came, with the time they have waited
                after = await _waiting(client, 2)
                assert [w["call_id"] for w in after] == [w["call_id"] for w in before]
                assert [w["position"] for w in after] == [1, 2]
                assert after[0]["waited_seconds"] >= before[0]["waited_seconds"]
                talker, one, two = _callers(observer)
                assert [w["call_id"] for w in after] == [one, two]
                bridge = await _ari(acd_service.env, f"/bridges/talk-{talker}")
                assert len(bridge["channels"]) == 2  # the conversation went on
                assert (await client.get("/api/v1/agents/anna")).json()["state"] == "on_call"
                # routed after the restart: Ben takes the first in line, Anna the next
                await client.post("/api/v1/agents/ben/state", json={"state": "available"})
                results = await asyncio.gather(talking, first, second)
                routed = {
                    call_id: (await client.get(f"/api/v1/calls/{call_id}/routing")).json()
                    for call_id in (talker, one, two)
                }
                rows = [await again.call(call_id) for call_id in (talker, one, two)]
                await wait_for_agent(client, "anna", state="available")
                # the two conversations routed after the restart are recorded
                recorded = [
                    await _stored(client, (await _recordings_of(client, call_id))[0]["id"])
                    for call_id in (one, two)
                ]
        finally:
            if again is not None:
                await again.stop()
    for result in results:
        assert result.returncode == 0, result.output
    assert [[d["agent_id"] for d in routed[c]] for c in (talker, one, two)] == [
        ["anna"],
        ["ben"],
        ["anna"],
    ]
    assert [row["hangup_side"] for row in rows] == ["caller", "caller", "caller"]
    assert all(recording["duration"] > 5 for recording in recorded), recorded
    assert sum("Call established" in line for line in anna.lines) == 2
    assert ben_phone.said("Call established")
    assert again is not None
    states = [line for line in again.lines if '"agent_state"' in line and '"anna"' in line]
    seen = [s.split('"state": "')[1].split('"')[0] for s in states]
    order = [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]
    # on the call across the restart, then wrap-up, then the next caller in line
    assert order[:5] == ["on_call", "wrap_up", "available", "reserved", "on_call"]


async def _ari(env: dict[str, str], path: str) -> Any:
    """What Asterisk's ARI answers (to the test, not the service)."""
    auth = (env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
    async with httpx.AsyncClient(base_url=env["ARI_APP_ARI_URL"], auth=auth) as ari:
        reply = await ari.get(f"/ari{path}")
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_a_waiting_caller_hears_their_place_then_leaves_for_voicemail_at_the_longest_wait(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with ari_observer(acd_service.env) as observer:
        call = asyncio.create_task(place_call(sip_port, number="108", hang_up_after=30.0))
        created = await observer.wait_for("ChannelCreated")
        call_id = created["channel"]["id"]
        started = await observer.wait_for("PlaybackStarted", timeout=15)
        finished = await observer.wait_for(
            "PlaybackFinished", timeout=15, playback__id=started["playback"]["id"]
        )
        told = await observer.wait_for(
            "ChannelDialplan", timeout=15, channel__id=call_id, dialplan_app="Playback"
        )
        in_voicemail = await observer.wait_for(
            "ChannelDialplan", timeout=15, channel__id=call_id, dialplan_app="VoiceMail"
        )
        result = await call
    assert result.returncode == 0, result.output
    playback = started["playback"]
    assert playback["id"].startswith(f"announce-{call_id}-")
    assert playback["target_uri"] == f"channel:{call_id}"
    # first in line, nobody serving yet: the place is told, no expected wait
    assert playback["media_uri"] == "sound:queue-youarenext"
    assert finished["playback"]["state"] == "done"
    assert told["dialplan_app_data"] == "vm-nobodyavail"  # the ending's words, then the beep
    waited = (
        datetime.fromisoformat(told["timestamp"]) - datetime.fromisoformat(created["timestamp"])
    ).total_seconds()
    assert 24 <= waited < 27, waited
    # music around the two announcements, all the wait: Asterisk sends a caller no audio
    # while nothing plays to them, so the seconds of audio received cover the wait
    assert len(result.ear.packets) * 0.020 >= waited, (len(result.ear.packets), waited)
    assert in_voicemail["dialplan_app_data"] == "800@default,s"
    assert any('"queue_ending"' in line and "waited 24 s in announced" in line
               for line in acd_service.lines)  # fmt: skip
    row = await acd_service.call(call_id)
    assert row["hangup_side"] == "caller"


async def test_a_queue_nobody_is_logged_in_for_sends_the_caller_on_at_once(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with (
        carrier_far_end(answer_for=1.5) as far_end,
        ari_observer(acd_service.env) as observer,
    ):
        result = await place_call(sip_port, number="109")
        told = await observer.wait_for("ChannelDialplan", dialplan_app="Playback")
    assert result.returncode == 0, result.output
    assert told["dialplan_app_data"] == "pls-hold-while-try"
    messages = carrier_messages(far_end)
    assert "INVITE sip:5550199@127.0.0.2:5060" in messages
    assert any('"queue_ending"' in line and "no agent is logged in" in line
               for line in acd_service.lines)  # fmt: skip


async def test_a_caller_who_waited_too_long_is_called_back_when_an_agent_is_free(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client:
        async with ari_observer(acd_service.env) as observer:
            # nobody is there: after 10 s the caller hears the thank-you and is let go
            result = await place_call(sip_port, number="110", caller="5557001")
            (call_id,) = _callers(observer)
        assert result.returncode == 0, result.output
        (request,) = (await client.get("/api/v1/callbacks")).json()
        assert (request["id"], request["state"]) == (f"cb-{call_id}", "waiting")
        assert (request["number"], request["queue"], request["attempts"]) == (
            "5557001",
            "callback",
            0,
        )
        (waiting,) = (await client.get("/api/v1/queues/waiting")).json()
        assert (waiting["call_id"], waiting["callback"], waiting["position"]) == (
            request["id"],
            True,
            1,
        )
        anna_sip = await _agent(client, ANNA)
        async with (
            carrier_far_end(answer_for=4.0) as far_end,
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
        ):
            # Anna logs in: her phone rings for the callback; on her answer the caller is
            # dialled back through the carrier, and the two talk until the caller hangs up
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            done = await _callback(client, request["id"], "done")
            await wait_for_agent(client, "anna", state="available")
        routing = (await client.get(f"/api/v1/calls/{request['id']}/routing")).json()
        await asyncio.sleep(0.5)  # the records are written behind the calls
        asked = (await client.get(f"/api/v1/interactions/{call_id}")).json()
        called_back = (await client.get(f"/api/v1/interactions/{request['id']}")).json()
    messages = carrier_messages(far_end)
    assert "INVITE sip:5557001@127.0.0.2:5060" in messages, messages
    assert "BYE sip:" in messages
    assert anna.said("Call established")
    assert (done["attempts"], done["agent_id"]) == (1, "anna")
    assert [d["agent_id"] for d in routing] == ["anna"]
    # the caller's call waited and was sent on; the call back is an interaction of its
    # own, with anna's segment (dialling the caller, then four seconds of talk)
    assert (asked["queue"], asked["answered_at"], asked["segments"]) == ("callback", None, [])
    assert asked["left_at"] is not None
    assert (called_back["caller"], called_back["queue"]) == ("5557001", None)
    assert called_back["ended_at"] is not None
    (segment,) = called_back["segments"]
    talked = datetime.fromisoformat(segment["ended_at"]) - datetime.fromisoformat(
        segment["answered_at"]
    )
    assert segment["agent_id"] == "anna"
    assert 3.5 <= talked.total_seconds() <= 15, segment
    assert segment["wrap_up_seconds"] > 0
    assert await _leftovers(acd_service.env) == []
    order = _states_of(acd_service, "anna")
    assert order[-4:] == ["reserved", "on_call", "wrap_up", "available"], order


async def _callback_asked(
    client: Any, sip_port: int, caller: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A caller who waited too long and was let go with a callback request; and Anna, with
    a phone account, not logged in yet."""
    result = await place_call(sip_port, number="110", caller=caller)
    assert result.returncode == 0, result.output
    (request,) = (await client.get("/api/v1/callbacks")).json()
    return request, await _agent(client, ANNA)


async def _callback(client: Any, request_id: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        async with asyncio.timeout(40):
            while found.get("state") != state:
                await asyncio.sleep(0.2)
                rows = (await client.get("/api/v1/callbacks")).json()
                found = next(row for row in rows if row["id"] == request_id)
    except TimeoutError:
        raise AssertionError(f"callback {request_id} never {state}: {found}") from None
    return found


async def test_a_callback_nobody_answers_is_tried_again_later(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client:
        request, anna_sip = await _callback_asked(client, sip_port, "5557002")
        # no far end on the carrier address: the call back fails
        async with agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna:
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            scheduled = await _callback(client, request["id"], "scheduled")
            await wait_for_agent(client, "anna", state="available")
            (waiting,) = (await client.get("/api/v1/queues/waiting")).json()
    assert anna.said("Call established")
    assert (scheduled["attempts"], scheduled["agent_id"]) == (1, "anna")
    retry_at = datetime.fromisoformat(scheduled["retry_at"])
    updated = datetime.fromisoformat(scheduled["updated_at"])
    assert 29 <= (retry_at - updated).total_seconds() <= 31
    # still in line, not rung again before it is due
    assert (waiting["call_id"], waiting["position"], waiting["ringing"]) == (
        request["id"],
        None,
        None,
    )
    assert await _leftovers(acd_service.env) == []


async def _leftovers(env: dict[str, str]) -> list[str]:
    """Bridges and channels Asterisk still holds."""
    bridges, channels = await _ari(env, "/bridges"), await _ari(env, "/channels")
    return [b["id"] for b in bridges] + [c["id"] for c in channels]


async def test_a_callback_request_outlives_the_controller(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client:
        request, anna_sip = await _callback_asked(client, sip_port, "5557003")
    await acd_service.stop(signal.SIGKILL)
    again = await start_service(acd_service.env)
    again.token = acd_service.token
    try:
        async with (
            again.client() as client,
            carrier_far_end(answer_for=2.0) as far_end,
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]),
        ):
            (waiting,) = (await client.get("/api/v1/queues/waiting")).json()
            assert (waiting["call_id"], waiting["callback"]) == (request["id"], True)
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            done = await _callback(client, request["id"], "done")
    finally:
        await again.stop()
    assert done["agent_id"] == "anna"
    assert "INVITE sip:5557003@127.0.0.2:5060" in carrier_messages(far_end)


async def test_a_conversation_is_recorded_whole_and_served_only_to_those_allowed(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client:
        async with _anna_ready(client, sip_port), ari_observer(acd_service.env) as observer:
            # both sides speak: Anna's greeting, the caller's seven seconds of G.711 speech
            result = await place_call(
                sip_port, number="106", keys=[(0.5, "speech")], hang_up_after=8.0
            )
            (call_id,) = _callers(observer)
            talk = f"talk-{call_id}"
            opened = await observer.wait_for("BridgeCreated", bridge__id=talk)
            closed = await observer.wait_for("BridgeDestroyed", bridge__id=talk)
        assert result.returncode == 0, result.output
        recording = await _stored(client, (await _recordings_of(client, call_id))[0]["id"])
        whole = await client.get(f"/api/v1/recordings/{recording['id']}/file")
        part = await client.get(
            f"/api/v1/recordings/{recording['id']}/file", headers={"Range": "bytes=100-1099"}
        )
    path = Path(acd_service.env["ARI_APP_RECORDINGS_DIR"]) / f"{recording['id']}.wav"
    data = path.read_bytes()
    assert (recording["agent_id"], recording["queue"], recording["format"]) == (
        "anna",
        "billing",
        "wav",
    )
    assert recording["sha256"] == hashlib.sha256(data).hexdigest()
    assert recording["size"] == len(data)
    bridged = (
        datetime.fromisoformat(closed["timestamp"]) - datetime.fromisoformat(opened["timestamp"])
    ).total_seconds()
    assert abs(recording["duration"] - bridged) < 1.0, (recording["duration"], bridged)
    assert _rms(path) > 0.01  # not silence
    # both sides: Anna's greeting alone is under four seconds of sound
    assert wav_loud_seconds(path) > 5.0, wav_loud_seconds(path)
    assert whole.status_code == 200
    assert whole.content == data
    assert part.status_code == 206
    assert part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    # Asterisk's own copy is gone once ours is safe
    assert not list(
        (local_asterisk.instance_dir / "spool" / "recording").glob(f"{recording['id']}*")
    )
    # a token of another role is refused
    other = await _token(acd_service.env, "agent")
    async with httpx.AsyncClient(base_url=acd_service.api) as stranger:
        headers = {"Authorization": f"Bearer {other}"}
        refused = await stranger.get("/api/v1/recordings", headers=headers)
        refused_file = await stranger.get(
            f"/api/v1/recordings/{recording['id']}/file", headers=headers
        )
    assert (refused.status_code, refused_file.status_code) == (403, 403)
    assert await _leftovers(acd_service.env) == []


def _rms(path: Path) -> float:
    """The file's RMS amplitude (0 to 1), as sox measures it."""
    report = subprocess.run(
        ["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True
    ).stderr
    line = next(line for line in report.splitlines() if line.startswith("RMS     amplitude"))
    return float(line.split(":")[1])


async def _token(env: dict[str, str], role: str) -> str:
    """A bearer token of this role, written straight into the service's database."""
    token = secrets.token_urlsafe(24)
    engine = engine_for(env["ARI_APP_DATABASE_URL"])
    try:
        await TokenStore(engine).add(name=f"test {role}", role=role, token_hash=hash_token(token))
    finally:
        await engine.dispose()
    return token


async def test_a_paused_span_is_left_out_of_the_recording(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client, _anna_ready(client, sip_port):
        async with ari_observer(acd_service.env) as observer:
            call = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=12.0))
            caller = await observer.wait_for("ChannelCreated")
            talk = f"talk-{caller['channel']['id']}"
            opened = await observer.wait_for("BridgeCreated", timeout=20, bridge__id=talk)
            live: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                while not live:
                    await asyncio.sleep(0.1)
                    live = (await client.get("/api/v1/recordings?state=recording")).json()
            recording_id = live[0]["id"]
            await asyncio.sleep(1.0)
            paused = await client.post(f"/api/v1/recordings/{recording_id}/pause")
            again = await client.post(f"/api/v1/recordings/{recording_id}/pause")
            await asyncio.sleep(4.0)
            resumed = await client.post(f"/api/v1/recordings/{recording_id}/resume")
            result = await call
            closed = await observer.wait_for("BridgeDestroyed", bridge__id=opened["bridge"]["id"])
        recording = await _stored(client, recording_id)
    assert result.returncode == 0, result.output
    assert (paused.status_code, again.status_code, resumed.status_code) == (204, 409, 204)
    (span,) = recording["pauses"]
    left_out = (
        datetime.fromisoformat(span["to"]) - datetime.fromisoformat(span["from"])
    ).total_seconds()
    assert 3.5 <= left_out <= 5.0, span
    bridged = (
        datetime.fromisoformat(closed["timestamp"]) - datetime.fromisoformat(opened["timestamp"])
    ).total_seconds()
    # the paused seconds are cut from the file
    assert abs(recording["duration"] - (bridged - left_out)) < 1.0, (recording, bridged)
    assert await _leftovers(acd_service.env) == []


async def test_a_transfer_to_another_agent_is_one_recording_with_both_segments(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with acd_service.client() as client:
        ben_sip = await _agent(client, BEN)  # no billing skill: a person may still choose him
        async with (
            _anna_ready(client, sip_port),
            agent_phone(sip_port, ben_sip["user"], ben_sip["password"]),
            ari_observer(acd_service.env) as observer,
        ):
            await client.post("/api/v1/agents/ben/state", json={"state": "available"})
            await wait_for_agent(client, "ben", reachable=True, state="available")
            call = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=16.0))
            call_id = str((await observer.wait_for("ChannelCreated"))["channel"]["id"])
            talk = f"talk-{call_id}"
            opened = await observer.wait_for("BridgeCreated", timeout=20, bridge__id=talk)
            await wait_for_agent(client, "anna", state="on_call")
            await asyncio.sleep(3.0)
            wrong = await client.post(
                f"/api/v1/calls/{call_id}/transfer", json={"agent_id": "anna"}
            )
            moved = await client.post(f"/api/v1/calls/{call_id}/transfer", json={"agent_id": "ben"})
            await wait_for_agent(client, "ben", state="on_call")
            result = await call
            closed = await observer.wait_for("BridgeDestroyed", bridge__id=talk)
            (recording,) = await _recordings_of(client, call_id)
            recording = await _stored(client, recording["id"])
            await wait_for_agent(client, "ben", state="available")
            await wait_for_agent(client, "anna", state="available")
        assert await _leftovers(acd_service.env) == []
    assert result.returncode == 0, result.output
    assert (wrong.status_code, moved.status_code) == (409, 202), (wrong.text, moved.text)
    # one interaction, one file, each agent's part of it
    assert [s["agent_id"] for s in recording["segments"]] == ["anna", "ben"]
    handed = datetime.fromisoformat(recording["segments"][0]["to"])
    taken = datetime.fromisoformat(recording["segments"][1]["from"])
    assert timedelta(0) <= taken - handed < timedelta(seconds=10)
    bridged = (
        datetime.fromisoformat(closed["timestamp"]) - datetime.fromisoformat(opened["timestamp"])
    ).total_seconds()
    assert abs(recording["duration"] - bridged) < 1.0, (recording["duration"], bridged)


async def test_a_call_handed_over_when_the_controller_dies_waits_again_and_is_answered(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    """Killed while the transfer rings Ben (who does not answer): after the restart the
    caller, alone in the conversation's bridge, is put back in line, not hung up, and
    the next agent free (Anna again, after her wrap-up) takes the call in that bridge."""
    sip_port = local_asterisk.settings.sip_port
    again: Service | None = None
    async with acd_service.client() as client:
        ben_sip = await _agent(client, BEN)
        async with (
            _anna_ready(client, sip_port),
            agent_phone(sip_port, ben_sip["user"], ben_sip["password"], answers=False),
            ari_observer(acd_service.env) as observer,
        ):
            await client.post("/api/v1/agents/ben/state", json={"state": "available"})
            await wait_for_agent(client, "ben", reachable=True, state="available")
            call = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=25.0))
            call_id = str((await observer.wait_for("ChannelCreated"))["channel"]["id"])
            await wait_for_agent(client, "anna", state="on_call")
            moved = await client.post(f"/api/v1/calls/{call_id}/transfer", json={"agent_id": "ben"})
            await wait_for_agent(client, "ben", state="reserved")
            await acd_service.stop(signal.SIGKILL)
            try:
                again = await start_service(acd_service.env)
                again.token = acd_service.token
                async with again.client() as after:
                    await wait_for_agent(after, "anna", state="on_call")
                    talk = await _ari(acd_service.env, f"/bridges/talk-{call_id}")
                    result = await call
                    (recording,) = await _recordings_of(after, call_id)
                    recording = await _stored(after, recording["id"])
                    await wait_for_agent(after, "anna", state="available")
                    ben = (await after.get("/api/v1/agents/ben")).json()
            finally:
                if again is not None:
                    await again.stop()
        assert await _leftovers(acd_service.env) == []
    assert moved.status_code == 202, moved.text
    assert result.returncode == 0, result.output
    assert call_id in talk["channels"]
    assert len(talk["channels"]) == 2  # the caller and Anna, in the same bridge
    assert [s["agent_id"] for s in recording["segments"]] == ["anna", "anna"]
    assert ben["state"] == "available"  # the cut ring was not his miss
    assert any('"acd_resumed"' in line for line in again.lines)


async def _stored(client: Any, recording_id: str) -> dict[str, Any]:
    recording: dict[str, Any] = {}
    try:  # stopped with the conversation, fetched once Asterisk has stored it
        async with asyncio.timeout(30):
            while recording.get("state") != "stored":
                await asyncio.sleep(0.2)
                recording = (await client.get(f"/api/v1/recordings/{recording_id}")).json()
    except TimeoutError:
        raise AssertionError(f"recording never stored: {recording}") from None
    return recording


@contextlib.asynccontextmanager
async def _anna_ready(client: Any, sip_port: int) -> AsyncIterator[AgentPhone]:
    """Anna made, her softphone registered, logged in and offered calls."""
    anna_sip = await _agent(client, ANNA)
    async with agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as phone:
        await client.post("/api/v1/agents/anna/state", json={"state": "available"})
        await wait_for_agent(client, "anna", reachable=True, state="available")
        yield phone


async def _recordings_of(client: Any, call_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not found:
            found = (await client.get(f"/api/v1/recordings?call_id={call_id}")).json()
            await asyncio.sleep(0.1)
    return found


async def _ari_do(env: dict[str, str], method: str, path: str, **params: str) -> None:
    """A request to Asterisk's ARI from the test, as another application would make it."""
    auth = (env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
    async with httpx.AsyncClient(base_url=env["ARI_APP_ARI_URL"], auth=auth) as ari:
        reply = await ari.request(method, f"/ari{path}", params=params)
    assert reply.status_code in (200, 204), reply.text


async def test_a_caller_waiting_in_an_earlier_versions_room_is_answered_after_an_upgrade(
    local_asterisk: LocalAsterisk, acd_service: Service
) -> None:
    """Earlier versions seated a waiting caller in a holding bridge of their own
    (`wait-<call>`, with the queue's music); this one plays the music on the caller's
    channel. Killed while a caller waits, the room is made over as an earlier version
    left it: after the start the caller still waits, and when Anna is free she talks
    with them, the old room gone."""
    sip_port = local_asterisk.settings.sip_port
    env = acd_service.env
    again: Service | None = None
    async with acd_service.client() as client:
        anna_sip = await _agent(client, ANNA)
        async with (
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]),
            ari_observer(env) as observer,
        ):
            call = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=25.0))
            call_id = str((await observer.wait_for("ChannelCreated"))["channel"]["id"])
            before = await _waiting(client, 1)
            await acd_service.stop(signal.SIGKILL)
            room = f"wait-{call_id}"
            await _ari_do(env, "DELETE", f"/channels/{call_id}/moh")
            await _ari_do(env, "POST", f"/bridges/{room}", type="holding")
            await _ari_do(env, "POST", f"/bridges/{room}/addChannel", channel=call_id)
            await _ari_do(env, "POST", f"/bridges/{room}/moh", mohClass="default")
            try:
                again = await start_service(env)
                again.token = acd_service.token
                async with again.client() as after:
                    waiting = await _waiting(after, 1)
                    await after.post("/api/v1/agents/anna/state", json={"state": "available"})
                    await wait_for_agent(after, "anna", reachable=True, state="on_call")
                    talk = await _ari(env, f"/bridges/talk-{call_id}")
                    bridges = [b["id"] for b in await _ari(env, "/bridges")]
                    result = await call
                    await wait_for_agent(after, "anna", state="available")
            finally:
                if again is not None:
                    await again.stop()
        assert await _leftovers(env) == []
    assert result.returncode == 0, result.output
    assert [w["call_id"] for w in before] == [w["call_id"] for w in waiting] == [call_id]
    assert call_id in talk["channels"]
    assert len(talk["channels"]) == 2
    assert room not in bridges
