"""The first call end to end: real Asterisk, a SIPp caller on the carrier trunk, the service."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import (
    Service,
    TcpProxy,
    ari_observer,
    free_port,
    place_call,
    read_env_file,
    run_to_exit,
    start_service,
)

pytestmark = pytest.mark.asterisk

LEASE = "ARI_APP_LEASE_ari_app"

HELLO_WORLD_SECONDS = 1.4  # the length of sound:hello-world, the default welcome


async def test_first_call_is_answered_prompted_and_recorded(
    local_asterisk: LocalAsterisk, service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with ari_observer(service.env) as observer:
        result = await place_call(sip_port, caller="5551234")
        assert result.returncode == 0, result.output
        finished = await observer.wait_for("PlaybackFinished")

    call_id = finished["playback"]["target_uri"].removeprefix("channel:")
    assert finished["playback"]["media_uri"] == "sound:hello-world"
    assert finished["playback"]["state"] == "done"
    # the caller heard the prompt: about its length of non-silent audio came back
    assert result.ear.audio_seconds() >= HELLO_WORLD_SECONDS * 0.6

    row = await service.call(call_id)
    assert row["caller"] == "5551234"
    assert row["dialled"] == "100"
    assert row["started_at"] <= row["answered_at"] <= row["ended_at"]
    assert row["hangup_cause"] == 16
    assert row["hangup_cause_text"] == "Normal Clearing"
    assert row["hangup_side"] == "service"
    assert row["phase"] == "ended"
    assert (row["flow"], row["flow_version"], row["ivr_outcome"]) == ("hello", 1, "self_service")
    assert [step["node"] for step in row["ivr_path"]] == ["hi", "bye"]
    # the log is JSON lines (not a terminal), and everything about the call names it
    logged = [json.loads(line) for line in service.lines if not line.startswith("ari-app: ")]
    about_call = [entry for entry in logged if entry.get("call_id") == call_id]
    steps = [(e["phase"], e["node"]) for e in about_call if e["event"] == "call_step"]
    assert steps == [("answering", None), ("ivr", "hi"), ("hanging_up", "bye"), ("ended", "bye")]


async def test_fallback_plays_an_apology_when_the_service_is_stopped(
    local_asterisk: LocalAsterisk,
) -> None:
    env = read_env_file(local_asterisk.env_file)
    async with ari_observer(env) as observer:
        result = await place_call(local_asterisk.settings.sip_port)
    assert result.returncode == 0, result.output
    # answered and spoken to: several seconds of real audio, not dead air
    assert result.ear.audio_seconds() >= 2.0
    assert not observer.of_type("PlaybackFinished")  # nothing came from ARI
    states = [event["channel"]["state"] for event in observer.of_type("ChannelStateChange")]
    assert "Up" in states
    log = local_asterisk.console_log.read_text()
    assert "ari_app is not connected" in log


async def test_service_survives_an_asterisk_restart_and_takes_the_next_call(
    local_asterisk: LocalAsterisk, service: Service
) -> None:
    local_asterisk.down()
    await asyncio.sleep(0.5)
    code, body = await service.healthz()
    assert code == 503
    assert body["ari"]["connected"] is False

    local_asterisk.up()
    healthy = await service.wait_healthy(timeout=20)
    assert healthy["ari"]["reconnects"] >= 1
    async with asyncio.timeout(15):  # AMI comes back on its own too
        while not (await service.healthz())[1]["ami"]["connected"]:
            await asyncio.sleep(0.2)

    result = await place_call(local_asterisk.settings.sip_port)
    assert result.returncode == 0, result.output
    assert result.ear.audio_seconds() >= HELLO_WORLD_SECONDS * 0.6
    assert service.process.returncode is None


async def _wait_until(
    check: Callable[[dict[str, Any]], bool], service: Service, timeout: float = 30.0
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                _, body = await service.healthz()
                if check(body):
                    return body
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"health stayed {body}\n" + "\n".join(service.lines[-15:])) from None


@contextlib.asynccontextmanager
async def _service_behind_proxies(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> AsyncIterator[tuple[Service, TcpProxy, TcpProxy]]:
    """The service reaching ARI and AMI through cables the test can cut or freeze."""
    s = local_asterisk.settings
    async with TcpProxy(s.http_port) as ari, TcpProxy(s.ami_port) as ami:
        env = {
            **service_env,
            "ARI_APP_ARI_URL": f"http://127.0.0.1:{ari.port}",
            "ARI_APP_AMI_PORT": str(ami.port),
        }
        running = await start_service(env)
        try:
            yield running, ari, ami
        finally:
            await running.stop()


def _both_connected(body: dict[str, Any]) -> bool:
    return bool(body["ari"]["connected"] and body["ami"]["connected"])


async def test_a_cut_websocket_is_noticed_and_reconnected_and_the_next_call_handled(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    async with _service_behind_proxies(local_asterisk, service_env) as (running, ari, ami):
        ari.cut()
        ami.cut()
        body = await _wait_until(
            lambda b: (
                _both_connected(b) and b["ari"]["reconnects"] >= 1 and b["ami"]["reconnects"] >= 1
            ),
            running,
        )
        result = await place_call(local_asterisk.settings.sip_port)
    assert body["status"] == "ok"
    assert result.returncode == 0, result.output
    assert result.ear.audio_seconds() >= HELLO_WORLD_SECONDS * 0.6


async def test_a_half_dead_link_to_asterisk_is_noticed_by_pings_and_replaced(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    async with _service_behind_proxies(local_asterisk, service_env) as (running, ari, ami):
        ari.freeze()  # connections stay open; nothing passes, as after a silent link loss
        ami.freeze()
        await _wait_until(
            lambda b: not b["ari"]["connected"] and not b["ami"]["connected"], running
        )
        ari.thaw()
        ami.thaw()
        body = await _wait_until(_both_connected, running)
        result = await place_call(local_asterisk.settings.sip_port)
    assert body["ari"]["reconnects"] >= 1
    assert body["ami"]["reconnects"] >= 1
    assert result.returncode == 0, result.output


async def test_a_call_in_progress_survives_a_restart_of_the_service(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    env = service_env
    first = await start_service(env)
    async with ari_observer(env) as observer:
        # 101 plays sound:demo-thanks, 5.5 s long
        call = asyncio.create_task(place_call(local_asterisk.settings.sip_port, number="101"))
        started = await observer.wait_for("PlaybackStarted")
        await first.stop(signal.SIGKILL)  # no goodbye: as if the process crashed

        second = await start_service(env)
        second.token = first.token  # the first admin token is shown on the first start only
        try:
            result = await call
            row = await second.call(started["playback"]["target_uri"].removeprefix("channel:"))
        finally:
            await second.stop()

    assert result.returncode == 0, result.output
    # the adopted call plays its node's prompt again from the start: more than the
    # prompt's own speech (about 3.6 s of its 5.5 s) reached the caller
    assert result.ear.audio_seconds() >= 3.6
    assert row["answered_at"] is not None
    assert row["hangup_side"] == "service"
    assert row["hangup_cause"] == 16


async def test_a_second_instance_refuses_to_take_the_application(
    local_asterisk: LocalAsterisk, service: Service, service_env: dict[str, str]
) -> None:
    code, lines = await run_to_exit({**service_env, "ARI_APP_API_PORT": "0"})
    assert code == 2
    assert any("ARI_APP_ARI_APPLICATION" in line and "held by another" in line for line in lines)
    result = await place_call(local_asterisk.settings.sip_port)
    assert result.returncode == 0, result.output
    assert service.process.returncode is None


async def test_a_foreign_connection_taking_the_application_stops_the_service_loudly(
    service: Service,
) -> None:
    env = service.env
    token = base64.b64encode(
        f"{env['ARI_APP_ARI_USER']}:{env['ARI_APP_ARI_PASSWORD']}".encode()
    ).decode()
    url = env["ARI_APP_ARI_URL"].replace("http://", "ws://") + "/ari/events?app=ari-app"
    async with connect(url, additional_headers={"Authorization": f"Basic {token}"}):
        code = await asyncio.wait_for(service.process.wait(), 10)
    assert code == 2
    assert any(
        "ApplicationReplaced" in line and "ARI_APP_ARI_APPLICATION" in line
        for line in service.lines
    )


async def test_call_events_are_published_on_mqtt(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    env = {**service_env, "ARI_APP_MQTT_URL": "mqtt://127.0.0.1:1883", "ARI_APP_CENTER": "mqtttest"}
    running = await start_service(env)
    try:
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            await client.subscribe("ari-app/mqtttest/calls/+/events", qos=1)
            result = await place_call(local_asterisk.settings.sip_port)
            names: list[str] = []
            async with asyncio.timeout(10):
                async for message in client.messages:
                    names.append(json.loads(message.payload)["event"])
                    if names[-1] == "call_ended":
                        break
    finally:
        await running.stop()
    assert result.returncode == 0, result.output
    assert names == ["call_arrived", "call_answered", "ivr_finished", "hanging_up", "call_ended"]


async def test_an_unreachable_broker_does_not_delay_calls(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    env = {**service_env, "ARI_APP_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}"}
    running = await start_service(env)
    try:
        result = await place_call(local_asterisk.settings.sip_port)
        code, body = await running.healthz()
    finally:
        await running.stop()
    assert result.returncode == 0, result.output
    assert result.ear.audio_seconds() >= HELLO_WORLD_SECONDS * 0.6
    assert code == 200
    assert body["mqtt"] == {"configured": True, "connected": False, "dropped": 0, "replaced": 0}


async def test_the_call_row_lands_in_postgresql_too(
    local_asterisk: LocalAsterisk, service_env: dict[str, str], postgres_url: str
) -> None:
    running = await start_service({**service_env, "ARI_APP_DATABASE_URL": postgres_url})
    try:
        async with ari_observer(running.env) as observer:
            result = await place_call(local_asterisk.settings.sip_port, caller="5550100")
            finished = await observer.wait_for("PlaybackFinished")
        row = await running.call(finished["playback"]["target_uri"].removeprefix("channel:"))
    finally:
        await running.stop()
    assert result.returncode == 0, result.output
    assert (row["caller"], row["dialled"], row["hangup_cause"]) == ("5550100", "100", 16)
    with psycopg.connect(postgres_url) as connection:
        stored = connection.execute(
            "SELECT caller, answered_at IS NOT NULL, ended_at IS NOT NULL FROM call"
        ).fetchall()
    assert stored == [("5550100", True, True)]


async def test_a_clean_stop_exits_0_and_gives_the_application_back(
    service_env: dict[str, str],
) -> None:
    running = await start_service(service_env)
    auth = (service_env["ARI_APP_ARI_USER"], service_env["ARI_APP_ARI_PASSWORD"])
    async with httpx.AsyncClient(base_url=service_env["ARI_APP_ARI_URL"], auth=auth) as ari:

        async def lease() -> str:
            reply = await ari.get("/ari/asterisk/variable", params={"variable": LEASE})
            return str(reply.json()["value"])

        held = await lease()
        code = await running.stop(signal.SIGTERM)
        released = await lease()
    assert str(running.process.pid) in held
    assert code == 0
    assert released == ""
    assert not any("Traceback" in line for line in running.lines)
