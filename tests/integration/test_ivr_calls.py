"""IVR flows on real calls: SIPp callers press RFC 2833 keys, the service walks the flow."""

from __future__ import annotations

import asyncio
import shutil
import signal
import zoneinfo
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.conftest import FLOWS
from tests.integration.telephony import (
    Service,
    ari_observer,
    carrier_far_end,
    carrier_messages,
    free_port,
    place_call,
    serving,
    start_service,
)

pytestmark = pytest.mark.asterisk

MENU_FLOW = """
flow: menu-test
version: 1
numbers: ["102"]
start: main
nodes:
  main:
    kind: menu
    prompts: [sound:hello-world]
    options: {"1": account, "2": support}
    timeout: 2
    retries: 1
    invalid_prompts: [sound:invalid]
    timeout_prompts: [sound:please-try-again]
    on_failure: failed_bye
  support:
    kind: menu
    prompts: [sound:hello-world]
    options: {"3": bye, "9": main}
    timeout: 3
    retries: 0
    on_failure: failed_bye
  account:
    kind: collect
    prompts: [sound:hello-world]
    variable: account
    min_digits: 4
    max_digits: 8
    terminator: "#"
    timeout: 4
    inter_digit_timeout: 3
    next: balance
    on_failure: failed_bye
  balance:
    kind: lookup
    url: http://127.0.0.1:BACKEND_PORT/balance
    params: {account: "{account}"}
    results: {balance: balance}
    timeout: 1
    next: say
    on_error: sorry
  say:
    kind: say
    say: number
    value: "{balance}"
    next: bye
  sorry:
    kind: hangup
    prompts: [sound:sorry]
  bye:
    kind: hangup
    prompts: [sound:goodbye]
  failed_bye:
    kind: hangup
"""

HOURS_FLOW = """
flow: hours-test
version: 1
numbers: ["103"]
start: hours
schedules:
  always:
    timezone: Europe/Paris
    weekly:
      mon-sun: ["00:00-24:00"]
  always_but_today:
    timezone: Europe/Paris
    weekly:
      mon-sun: ["00:00-24:00"]
    holidays: [TODAY]
nodes:
  hours:
    kind: branch
    rules:
      - closed: always_but_today
        goto: holiday
    otherwise: open
  holiday:
    kind: hangup
    prompts: [sound:hello-world]
  open:
    kind: hangup
"""


HANDOFF_FLOWS = {
    "transfer.yaml": """
flow: transfer-test
version: 1
numbers: ["104"]
start: out
nodes:
  out:
    kind: transfer
    to: "5550199"
    prompts: [sound:hello-world]
""",
    "voicemail.yaml": """
flow: voicemail-test
version: 1
numbers: ["105"]
start: box
nodes:
  box:
    kind: voicemail
    mailbox: "800"
    prompts: [sound:hello-world]
""",
}


def backend() -> FastAPI:
    """A self-service backend: 2323 is too slow, 3434 fails, any other account answers."""
    app = FastAPI()

    @app.get("/balance")
    async def balance(account: str) -> Any:
        if account == "2323":
            await asyncio.sleep(3)
        if account == "3434":
            return Response(status_code=500)
        return {"balance": "42"}

    return app


@pytest.fixture
def flows_dir(tmp_path: Path) -> tuple[Path, int]:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    port = free_port()
    (folder / "menu.yaml").write_text(MENU_FLOW.replace("BACKEND_PORT", str(port)))
    for name, text in HANDOFF_FLOWS.items():
        (folder / name).write_text(text)
    return folder, port


@pytest.fixture
async def ivr_service(
    service_env: dict[str, str], flows_dir: tuple[Path, int]
) -> AsyncIterator[Service]:
    folder, port = flows_dir
    async with serving(backend(), port):
        running = await start_service({**service_env, "ARI_APP_FLOWS_DIR": str(folder)})
        try:
            yield running
        finally:
            await running.stop()


async def _call_row(service: Service, observer: Any) -> dict[str, Any]:
    started = await observer.wait_for("ChannelCreated", timeout=5)
    return await service.call(started["channel"]["id"], timeout=20)


def _path(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["node"], step["note"]) for step in row["ivr_path"]]


async def _ivr_call(
    service: Service,
    local_asterisk: LocalAsterisk,
    number: str,
    keys: list[tuple[float, str]],
    **options: Any,
) -> tuple[Any, dict[str, Any]]:
    async with ari_observer(service.env) as observer:
        result = await place_call(
            local_asterisk.settings.sip_port, number=number, keys=keys, **options
        )
        if result.returncode != 0:
            said = "\n".join(service.lines[-25:])
            raise AssertionError(f"the call failed; the service said:\n{said}")
        row = await _call_row(service, observer)
    return result, row


async def test_keys_lead_through_a_two_level_menu(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    # 2 during the first menu's prompt (barge-in), 3 after the second menu's prompt
    result, row = await _ivr_call(ivr_service, local_asterisk, "102", [(0.6, "2"), (2.0, "3")])
    assert result.returncode == 0, result.output
    assert _path(row) == [("main", ""), ("support", "pressed 2"), ("bye", "pressed 3")]
    assert row["ivr_outcome"] == "self_service"
    assert row["hangup_side"] == "service"


async def test_a_wrong_key_then_silence_end_at_the_failure_target(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    result, row = await _ivr_call(ivr_service, local_asterisk, "102", [(2.0, "7")])
    assert result.returncode == 0, result.output
    assert _path(row) == [
        ("main", ""),
        ("main", "invalid 7"),
        ("main", "timeout"),
        ("failed_bye", "after the last retry"),
    ]


async def test_collect_with_terminator_and_a_lookup_that_answers(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    keys = [(0.6, "1"), (2.0, "1"), (1.0, "2"), (1.0, "3"), (1.0, "4"), (1.0, "#")]
    result, row = await _ivr_call(ivr_service, local_asterisk, "102", keys)
    assert result.returncode == 0, result.output
    assert [node for node, _ in _path(row)] == ["main", "account", "balance", "say", "bye"]
    assert ("balance", "entered 1234") in _path(row)
    assert row["ivr_outcome"] == "self_service"


@pytest.mark.parametrize(
    ("account", "reason"), [("2323", "no answer within 1 s"), ("3434", "HTTP 500")]
)
async def test_a_slow_or_failing_lookup_takes_its_fallback(
    local_asterisk: LocalAsterisk, ivr_service: Service, account: str, reason: str
) -> None:
    keys = [(0.6, "1"), (2.0, account[0]), *[(1.0, digit) for digit in account[1:]], (1.0, "#")]
    result, row = await _ivr_call(ivr_service, local_asterisk, "102", keys)
    assert result.returncode == 0, result.output
    assert ("sorry", f"lookup failed: {reason}") in _path(row)


async def test_business_hours_branch_on_the_real_clock(
    local_asterisk: LocalAsterisk, ivr_service: Service, flows_dir: tuple[Path, int]
) -> None:
    folder, _ = flows_dir
    today = datetime.now(UTC).astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    (folder / "hours.yaml").write_text(HOURS_FLOW.replace("TODAY", today.date().isoformat()))
    async with ivr_service.client() as client:
        reloaded = (await client.post("/api/v1/ivr/reload")).json()
    assert reloaded["problems"] == []
    _, row = await _ivr_call(ivr_service, local_asterisk, "103", [])
    assert [node for node, _ in _path(row)] == ["hours", "holiday"]


async def test_a_caller_hanging_up_mid_prompt_leaves_nothing_behind(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    env = ivr_service.env
    auth = (env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
    result, row = await _ivr_call(ivr_service, local_asterisk, "102", [], hang_up_after=0.5)
    assert result.returncode == 0, result.output
    assert row["ivr_outcome"] == "caller_hung_up"
    assert row["hangup_side"] == "caller"
    async with httpx.AsyncClient(base_url=env["ARI_APP_ARI_URL"] + "/ari", auth=auth) as ari:
        assert (await ari.get("/channels")).json() == []
        assert (await ari.get("/bridges")).json() == []
        playback = f"{row['id']}-p1"
        assert (await ari.get(f"/playbacks/{playback}")).status_code == 404


async def test_a_reload_during_a_call_changes_only_the_next_call(
    local_asterisk: LocalAsterisk, ivr_service: Service, flows_dir: tuple[Path, int]
) -> None:
    folder, _ = flows_dir
    sip_port = local_asterisk.settings.sip_port
    async with ari_observer(ivr_service.env) as observer:
        live = asyncio.create_task(place_call(sip_port, number="101"))  # a 5.5 s prompt
        started = await observer.wait_for("PlaybackStarted")
        long_flow = (folder / "long.yaml").read_text()
        (folder / "long.yaml").write_text(
            long_flow.replace("version: 1", "version: 2").replace("demo-thanks", "hello-world")
        )
        async with ivr_service.client() as client:
            reloaded = (await client.post("/api/v1/ivr/reload")).json()
        assert "long v2 (long.yaml)" in reloaded["loaded"]
        first = await live
        live_row = await ivr_service.call(started["playback"]["target_uri"].split(":", 1)[1])
        second = await place_call(sip_port, number="101")
        starts = observer.of_type("ChannelCreated")
        next_row = await ivr_service.call(starts[-1]["channel"]["id"])
    assert first.returncode == 0, first.output
    assert second.returncode == 0, second.output
    assert live_row["flow_version"] == 1
    assert first.ear.audio_seconds() >= 3.0  # the old, long prompt played to its end
    assert next_row["flow_version"] == 2


async def test_a_broken_flow_file_keeps_the_version_in_force(
    local_asterisk: LocalAsterisk, ivr_service: Service, flows_dir: tuple[Path, int]
) -> None:
    folder, _ = flows_dir
    (folder / "hello.yaml").write_text("flow: hello\nversion: 2\nstart: nowhere\nnodes: {}\n")
    async with ivr_service.client() as client:
        reloaded = (await client.post("/api/v1/ivr/reload")).json()
        flows = (await client.get("/api/v1/ivr/flows")).json()
    assert "hello v1" in reloaded["kept"]
    assert any("start node 'nowhere' does not exist" in p for p in reloaded["problems"])
    assert {"name": "hello", "version": 1, "numbers": ["100"], "nodes": 2} in flows
    result = await place_call(local_asterisk.settings.sip_port)
    assert result.returncode == 0, result.output
    assert result.ear.audio_seconds() > 0.8


async def test_sighup_reloads_the_flows_without_a_restart(
    local_asterisk: LocalAsterisk, ivr_service: Service, flows_dir: tuple[Path, int]
) -> None:
    folder, _ = flows_dir
    hello = folder / "hello.yaml"
    hello.write_text(hello.read_text().replace("version: 1", "version: 2"))
    pid = ivr_service.process.pid
    ivr_service.process.send_signal(signal.SIGHUP)
    async with asyncio.timeout(10):
        while not any('"hello v2 (hello.yaml)"' in line for line in ivr_service.lines):
            await asyncio.sleep(0.05)
    _, row = await _ivr_call(ivr_service, local_asterisk, "100", [])
    assert row["flow_version"] == 2
    assert ivr_service.process.pid == pid
    assert ivr_service.process.returncode is None


async def test_a_transfer_reaches_the_outside_number_through_the_carrier(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    async with carrier_far_end(answer_for=1.5) as far_end:
        result, row = await _ivr_call(ivr_service, local_asterisk, "104", [])
    assert result.returncode == 0, result.output
    assert row["ivr_outcome"] == "transferred"
    assert [step["node"] for step in row["ivr_path"]] == ["out"]
    messages = carrier_messages(far_end)
    assert "INVITE sip:5550199@127.0.0.2:5060" in messages
    assert "From: <sip:5551234@" in messages  # the caller's number goes out with the call
    assert "BYE sip:" in messages  # the far end answered, talked, hung up


async def test_a_voicemail_keeps_the_callers_message(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    inbox = local_asterisk.instance_dir / "spool" / "voicemail" / "default" / "800" / "INBOX"
    shutil.rmtree(inbox, ignore_errors=True)
    # the prompt (1.2 s), the beep, then seven seconds of speech; the caller hangs up after
    result, row = await _ivr_call(
        ivr_service, local_asterisk, "105", [(2.5, "speech")], hang_up_after=8.0
    )
    assert result.returncode == 0, result.output
    assert row["ivr_outcome"] == "voicemail"
    async with asyncio.timeout(10):
        while not list(inbox.glob("msg0000.txt")):
            await asyncio.sleep(0.1)
    fields = dict(
        line.split("=", 1)
        for line in (inbox / "msg0000.txt").read_text().splitlines()
        if "=" in line
    )
    assert fields["callerid"] == "5551234"
    assert fields["origmailbox"] == "800"
    assert int(fields["duration"]) >= 4, fields  # the speech, not the silence after the beep
    assert (inbox / "msg0000.wav").stat().st_size > 4 * 8000


async def test_a_transfer_in_progress_outlives_a_service_restart(
    local_asterisk: LocalAsterisk, ivr_service: Service
) -> None:
    sip_port = local_asterisk.settings.sip_port
    async with carrier_far_end(answer_for=6.0), ari_observer(ivr_service.env) as observer:
        call = asyncio.create_task(place_call(sip_port, number="104"))
        caller_leg = await observer.wait_for("ChannelCreated")
        async with asyncio.timeout(10):  # the outgoing leg to the carrier, answered
            while not [
                event
                for event in observer.of_type("ChannelStateChange")
                if event["channel"]["id"] != caller_leg["channel"]["id"]
                and event["channel"]["state"] == "Up"
            ]:
                await asyncio.sleep(0.05)
        assert await ivr_service.stop() == 0
        again = await start_service(ivr_service.env)
        again.token = ivr_service.token  # the same database: its first token stands
        try:
            result = await call
            row = await again.call(caller_leg["channel"]["id"], timeout=20)
        finally:
            await again.stop()
    assert result.returncode == 0, result.output
    assert result.seconds >= 6.0  # the caller stayed with the far end until it hung up
    assert row["ivr_outcome"] == "transferred"
    assert [step["node"] for step in row["ivr_path"]] == ["out"]  # the restart kept the path
    assert row["hangup_cause"] == 16
    assert not any("CommandFailed" in line for line in again.lines)
