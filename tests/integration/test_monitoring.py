"""Supervisors listen, whisper and barge on real calls, proved on the audio.

The caller is SIPp on the carrier trunk (what it receives is measured), the agent
is baresip (what it heard is its file), the supervisor sends a 1400 Hz tone: from
baresip when the API rings it, from SIPp when it dials a feature code and presses
keys. Each side's received audio is searched for that tone."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import (
    CallResult,
    Observer,
    Service,
    agent_phone,
    ari_observer,
    phone_dials,
    place_call,
    start_service,
    supervisor_dials,
    wait_for_agent,
    wav_loud_seconds,
    wav_tone_seconds,
)
from tests.integration.test_acd_calls import FLOWS, _ari, _leftovers

pytestmark = pytest.mark.asterisk

TONE = 1400.0
QUEUES = """
queues:
  billing:
    skills: {billing: 3}
"""
ANNA = {"id": "anna", "name": "Anna", "team": "billing", "skills": {"billing": 9},
        "wrap_up_seconds": 1}  # fmt: skip


@pytest.fixture
async def center(service_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Service]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "billing.yaml").write_text(FLOWS["billing.yaml"])
    (tmp_path / "queues.yaml").write_text(QUEUES)
    env = {
        **service_env,
        "ARI_APP_FLOWS_DIR": str(tmp_path / "flows"),
        "ARI_APP_QUEUES_FILE": str(tmp_path / "queues.yaml"),
    }
    running = await start_service(env)
    try:
        yield running
    finally:
        await running.stop()


async def _made(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post(path, json=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def _staff(client: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Sue (supervisor of Anna's team), Tom (of another team), and Anna's phone account."""
    sue = await _made(
        client, "/api/v1/supervisors", {"id": "sue", "name": "Sue", "team": "billing"}
    )
    tom = await _made(client, "/api/v1/supervisors", {"id": "tom", "name": "Tom", "team": "sales"})
    return sue, tom, (await _made(client, "/api/v1/agents", ANNA))["sip"]


async def _talking(observer: Observer) -> str:
    """The caller's channel, once caller and agent are in their conversation."""
    caller = str((await observer.wait_for("ChannelCreated"))["channel"]["id"])
    await observer.wait_for("BridgeCreated", timeout=30, bridge__id=f"talk-{caller}")
    return caller


async def _session(client: Any, session_id: str, **fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        async with asyncio.timeout(20):
            while not all(found.get(k) == v for k, v in fields.items()):
                await asyncio.sleep(0.1)
                found = (await client.get(f"/api/v1/monitors/{session_id}")).json()
    except TimeoutError:
        raise AssertionError(f"session {session_id} never had {fields}: {found}") from None
    return found


async def _technology(env: dict[str, str], call_id: str) -> str:
    """How Asterisk carries the conversation's audio now (softmix when it mixes)."""
    return str((await _ari(env, f"/bridges/talk-{call_id}"))["technology"])


def _modes(session: dict[str, Any]) -> list[tuple[str, float]]:
    """Each mode of the session with how long it lasted."""
    spans = []
    for span in session["modes"]:
        began, ended = datetime.fromisoformat(span["from"]), datetime.fromisoformat(span["to"])
        spans.append((span["mode"], (ended - began).total_seconds()))
    return spans


def _seconds_in(modes: list[tuple[str, float]], *kinds: str) -> float:
    return sum(seconds for mode, seconds in modes if mode in kinds)


async def test_a_supervisor_listens_whispers_and_barges_in_one_session_by_the_api(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with center.client() as client:
        sue, tom, anna_sip = await _staff(client)
        as_sue = httpx.AsyncClient(
            base_url=center.api, headers={"Authorization": f"Bearer {sue['token']}"}
        )
        as_tom = httpx.AsyncClient(
            base_url=center.api, headers={"Authorization": f"Bearer {tom['token']}"}
        )
        async with (
            as_sue, as_tom,
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
            agent_phone(sip_port, "supervisor-sue", sue["sip_password"], tone=1400) as sue_phone,
            ari_observer(center.env) as observer,
        ):  # fmt: skip
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            await wait_for_agent(client, "anna", reachable=True, state="available")
            # the caller speaks from 5 s to 12 s after the answer (while Sue only listens: a
            # voice mixed in would hide the tone), and hangs up at 27 s
            call = asyncio.create_task(
                place_call(sip_port, number="106", keys=[(5.0, "speech")], hang_up_after=22.0)
            )
            call_id = await _talking(observer)
            # a supervisor of another team is refused, and that is audited too
            refused = await as_tom.post(f"/api/v1/calls/{call_id}/monitor", json={"mode": "listen"})
            asked = await as_sue.post(f"/api/v1/calls/{call_id}/monitor", json={"mode": "listen"})
            assert asked.status_code == 201, asked.text
            session_id = asked.json()["id"]
            await _session(as_sue, session_id, state="active")
            # the agent was told: the tone played on the agent's leg only
            told = await observer.wait_for("PlaybackFinished", playback__id=f"{session_id}-tone")
            await asyncio.sleep(11.0)
            steps, technology = [], [await _technology(center.env, call_id)]
            for mode, hold in (("whisper", 4.0), ("barge", 4.0), ("listen", 3.0)):
                steps.append(
                    await as_sue.patch(f"/api/v1/monitors/{session_id}", json={"mode": mode})
                )
                await asyncio.sleep(hold)
                technology.append(await _technology(center.env, call_id))
            result = await call
            ended = await _session(as_sue, session_id, state="ended")
            await wait_for_agent(client, "anna", state="available")
            agent_heard = wav_tone_seconds(anna.heard, TONE)
            supervisor_heard = wav_loud_seconds(sue_phone.heard)
            others = (await as_tom.get("/api/v1/monitors")).json()
            audit = (await client.get(f"/api/v1/monitors?call_id={call_id}")).json()
        assert await _leftovers(center.env) == []
    assert result.returncode == 0, result.output
    assert refused.status_code == 403, refused.text
    assert told["playback"]["target_uri"].startswith(f"channel:{call_id}-agent-anna-")
    assert [step.status_code for step in steps] == [200, 200, 200]
    modes = _modes(ended)
    assert [mode for mode, _ in modes] == ["listen", "whisper", "barge", "listen"]
    assert ended["end_reason"] == "the conversation ended"
    assert ended["requested_by"] == "sue"  # the user who asked
    # the tone reached the agent while whispering and barging, never while listening
    expected_agent = _seconds_in(modes, "whisper", "barge")
    assert abs(agent_heard - expected_agent) < 1.5, (agent_heard, modes)
    # and the caller only while barging
    caller_heard = result.ear.tone_seconds(TONE)
    assert abs(caller_heard - _seconds_in(modes, "barge")) < 1.5, (caller_heard, modes)
    # the supervisor heard the caller speak (in every mode)
    assert supervisor_heard > 3.0, supervisor_heard
    # the conversation's bridge mixed (its cost) only while three took part or Sue whispered
    assert technology[1:3] == ["softmix", "softmix"], technology
    assert "softmix" not in (technology[0], technology[3]), technology
    # every attempt is a row: the refusal (Tom, another team) and Sue's session
    rows = {(row["supervisor_id"], row["state"]) for row in audit}
    assert rows == {("tom", "refused"), ("sue", "ended")}
    assert others == [next(row for row in audit if row["supervisor_id"] == "tom")]


async def test_a_supervisor_switches_modes_with_keys_after_dialling_a_feature_code(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with center.client() as client:
        sue, tom, anna_sip = await _staff(client)
        async with (
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
            ari_observer(center.env) as observer,
        ):
            await client.post("/api/v1/agents/anna/state", json={"state": "available"})
            await wait_for_agent(client, "anna", reachable=True, state="available")
            call = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=40.0))
            call_id = await _talking(observer)
            await asyncio.sleep(3.0)
            # Tom is not of Anna's team: his phone hears the error tone and is hung up
            tom_code, tom_trace = await phone_dials(
                sip_port, "supervisor-tom", tom["sip_password"], "*31anna"
            )
            # Sue: *31 (listen), then 5 (whisper), 6 (barge), 4 (listen), then she hangs up
            steps = [("tone", 4.0), ("key", "5"), ("tone", 4.0), ("key", "6"), ("tone", 4.0),
                     ("key", "4"), ("tone", 3.0)]  # fmt: skip
            sue_code, sue_trace = await supervisor_dials(
                sip_port, "supervisor-sue", sue["sip_password"], "*31anna", steps
            )
            (session,) = (await client.get("/api/v1/monitors?supervisor_id=sue")).json()
            ended = await _session(client, session["id"], state="ended")
            # the conversation goes on after the supervisor left
            assert await _ari(center.env, f"/channels/{call_id}")
            result = await call
            await wait_for_agent(client, "anna", state="available")
            agent_heard = wav_tone_seconds(anna.heard, TONE)
            audit = (await client.get(f"/api/v1/monitors?call_id={call_id}")).json()
        assert await _leftovers(center.env) == []
    assert tom_code == 0, tom_trace
    assert sue_code == 0, sue_trace
    assert result.returncode == 0, result.output
    modes = _modes(ended)
    assert [mode for mode, _ in modes] == ["listen", "whisper", "barge", "listen"]
    assert (ended["source"], ended["end_reason"]) == ("phone", "the supervisor hung up")
    expected_agent = _seconds_in(modes, "whisper", "barge")
    assert abs(agent_heard - expected_agent) < 1.5, (agent_heard, modes)
    caller_heard = result.ear.tone_seconds(TONE)
    assert abs(caller_heard - _seconds_in(modes, "barge")) < 1.5, (caller_heard, modes)
    assert {(row["supervisor_id"], row["state"]) for row in audit} == {
        ("tom", "refused"),
        ("sue", "ended"),
    }


async def _whispering(
    center: Service, observer: Observer, sip_port: int, sue: dict[str, Any], hang_up_after: float
) -> tuple[asyncio.Task[CallResult], str, str]:
    """Anna available, a caller talking with her, Sue's session whispering: the call,
    its id and the session's."""
    async with center.client() as client:
        await client.post("/api/v1/agents/anna/state", json={"state": "available"})
        await wait_for_agent(client, "anna", reachable=True, state="available")
    call = asyncio.create_task(place_call(sip_port, number="106", hang_up_after=hang_up_after))
    call_id = await _talking(observer)
    headers = {"Authorization": f"Bearer {sue['token']}"}
    async with httpx.AsyncClient(base_url=center.api, headers=headers) as as_sue:
        asked = await as_sue.post(f"/api/v1/calls/{call_id}/monitor", json={"mode": "whisper"})
        session_id = str(asked.json()["id"])
        await _session(as_sue, session_id, state="active")
    return call, call_id, session_id


async def test_a_monitor_session_outlives_the_controller(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with center.client() as client:
        sue, _, anna_sip = await _staff(client)
    headers = {"Authorization": f"Bearer {sue['token']}"}
    again: Service | None = None
    try:
        async with (
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]) as anna,
            agent_phone(sip_port, "supervisor-sue", sue["sip_password"], tone=1400),
            ari_observer(center.env) as observer,
        ):
            call, _, session_id = await _whispering(center, observer, sip_port, sue, 30.0)
            await asyncio.sleep(3.0)
            await center.stop(signal.SIGKILL)
            again = await start_service(center.env)
            async with httpx.AsyncClient(base_url=again.api, headers=headers) as as_sue:
                # taken back: the same session switches, nothing rings again
                barge = await as_sue.patch(f"/api/v1/monitors/{session_id}", json={"mode": "barge"})
                await asyncio.sleep(4.0)
                listen = await as_sue.patch(
                    f"/api/v1/monitors/{session_id}", json={"mode": "listen"}
                )
                result = await call
                ended = await _session(as_sue, session_id, state="ended")
            agent_heard = wav_tone_seconds(anna.heard, TONE)
        assert await _leftovers(center.env) == []
    finally:
        if again is not None:
            await again.stop()
    assert result.returncode == 0, result.output
    assert (barge.status_code, listen.status_code) == (200, 200), (barge.text, listen.text)
    modes = _modes(ended)
    assert [mode for mode, _ in modes] == ["whisper", "barge", "listen"]
    assert ended["end_reason"] == "the conversation ended"
    assert any('"monitor_resumed"' in line for line in again.lines)
    # the whisper went on through the restart, then the barge reached both sides
    expected_agent = _seconds_in(modes, "whisper", "barge")
    assert abs(agent_heard - expected_agent) < 1.5, (agent_heard, modes)
    caller_heard = result.ear.tone_seconds(TONE)
    assert abs(caller_heard - _seconds_in(modes, "barge")) < 1.5, (caller_heard, modes)


async def _hang_up(env: dict[str, str], name_prefix: str) -> None:
    """Hang up, through Asterisk's ARI, the channel whose name begins so."""
    auth = (env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
    async with httpx.AsyncClient(base_url=env["ARI_APP_ARI_URL"], auth=auth) as ari:
        channels = (await ari.get("/ari/channels")).json()
        (found,) = [c["id"] for c in channels if c["name"].startswith(name_prefix)]
        reply = await ari.delete(f"/ari/channels/{found}")
    assert reply.status_code == 204, reply.text


async def _mixes(env: dict[str, str], call_id: str, wanted: bool) -> list[str]:
    """The conversation bridge's technologies seen until it mixes (or not) as wanted."""
    seen = [await _technology(env, call_id)]
    for _ in range(50):
        if (seen[-1] == "softmix") == wanted:
            break
        await asyncio.sleep(0.1)
        seen.append(await _technology(env, call_id))
    return seen


async def test_a_whisper_the_restart_cut_leaves_the_conversation_passing_audio_straight(
    local_asterisk: LocalAsterisk, center: Service
) -> None:
    """The supervisor hangs up while the service is down: their session ends at the
    restart, and the silent music that kept the conversation mixing for the whisper goes
    with it (nothing in Asterisk says it plays: the restart has to stop it)."""
    sip_port = local_asterisk.settings.sip_port
    async with center.client() as client:
        sue, _, anna_sip = await _staff(client)
    headers = {"Authorization": f"Bearer {sue['token']}"}
    again: Service | None = None
    try:
        async with (
            agent_phone(sip_port, anna_sip["user"], anna_sip["password"]),
            agent_phone(sip_port, "supervisor-sue", sue["sip_password"], tone=1400),
            ari_observer(center.env) as observer,
        ):
            call, call_id, session_id = await _whispering(center, observer, sip_port, sue, 20.0)
            whispering = await _mixes(center.env, call_id, True)
            await center.stop(signal.SIGKILL)
            await _hang_up(center.env, "PJSIP/supervisor-sue-")
            await asyncio.sleep(1.0)
            still = await _technology(center.env, call_id)  # nobody has stopped the music
            again = await start_service(center.env)
            async with httpx.AsyncClient(base_url=again.api, headers=headers) as as_sue:
                ended = await _session(as_sue, session_id, state="ended")
            after = await _mixes(center.env, call_id, False)
            result = await call
        assert await _leftovers(center.env) == []
    finally:
        if again is not None:
            await again.stop()
    assert result.returncode == 0, result.output
    assert ended["end_reason"] == "the service restarted"
    assert (whispering[-1], still) == ("softmix", "softmix"), (whispering, still)
    assert after[-1] != "softmix", after
