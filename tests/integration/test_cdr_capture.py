"""CDR capture against the real Asterisk: live over AMI, caught up from Asterisk's own
file after the service was down, every CDR once."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import Service, place_call, start_service

pytestmark = pytest.mark.asterisk


def _legs_in_file(path: Path, caller: str, since: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Asterisk's own record of a caller's calls made after byte `since` of its file:
    (uniqueid, sequence) -> the line."""
    if not path.exists():
        return {}
    text = path.read_bytes()[since:].decode()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {(line["uniqueid"], line["sequence"]): line for line in lines if line["src"] == caller}


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def _stored(
    service: Service, path: Path, caller: str, since: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The service's CDRs of the caller's calls, once they match Asterisk's file."""
    stored: list[dict[str, Any]] = []
    try:
        async with service.client() as client, asyncio.timeout(timeout):
            while True:
                legs = _legs_in_file(path, caller, since)
                calls = {line["linkedid"] for line in legs.values()}
                stored = []
                for call in sorted(calls):
                    reply = await client.get("/api/v1/cdrs", params={"call": call})
                    assert reply.status_code == 200, reply.text
                    stored += reply.json()
                if legs and {(row["uniqueid"], row["sequence"]) for row in stored} == set(legs):
                    return stored
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"CDRs of {caller}: stored {stored}") from None


async def test_every_cdr_is_stored_once_also_those_made_while_the_service_was_down(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    backstop = Path(service_env["ARI_APP_CDR_BACKSTOP"])
    sip_port = local_asterisk.settings.sip_port
    since = _size(backstop)  # what earlier tests' calls wrote
    service = await start_service(service_env)
    try:
        live = await place_call(sip_port, caller="5550101")
        assert live.returncode == 0, live.output
        (row,) = await _stored(service, backstop, "5550101", since)
        assert row["source"] == "ami"  # taken live
    finally:
        await service.stop(signal.SIGKILL)  # no clean stop: nothing is flushed on the way out

    for caller in ("5550102", "5550103"):  # the service is down: Asterisk apologises
        missed = await place_call(sip_port, caller=caller)
        assert missed.returncode == 0, missed.output

    token = service.token  # the first start's admin token: the database is the same
    service = await start_service(service_env)
    service.token = token
    try:
        for caller in ("5550101", "5550102", "5550103"):
            rows = await _stored(service, backstop, caller, since)
            line = _legs_in_file(backstop, caller, since)
            assert len(rows) == len(line) == 1  # one leg each, stored once
            (cdr,) = rows
            # the live call was the service's (Stasis on 100); the others got the dialplan's
            # apology (ari-app-fallback, s), and Asterisk's CDR says where each one ended
            where = ("100", "ami") if caller == "5550101" else ("s", "backstop")
            assert (cdr["dst"], cdr["source"]) == where
            assert (cdr["src"], cdr["disposition"]) == (caller, "ANSWERED")
            assert cdr["channel"].startswith("PJSIP/carrier-")
            assert cdr["answer"] is not None
            assert cdr["billsec"] == next(iter(line.values()))["billsec"]
        health = (await service.healthz())[1]
        assert health["cdr"]["files"] == {"cdr": True, "cel": True}
        assert health["cdr"]["bad"] == 0
        missed_call = next(iter(_legs_in_file(backstop, "5550102", since).values()))["linkedid"]
        names: list[str] = []
        async with service.client() as client, asyncio.timeout(10):
            while "CHAN_END" not in names:
                events = (await client.get("/api/v1/cel", params={"call": missed_call})).json()
                names = [event["event"] for event in events]
                await asyncio.sleep(0.2)
        assert names[0] == "CHAN_START"
        assert {"ANSWER", "HANGUP"} <= set(names)
    finally:
        await service.stop()
