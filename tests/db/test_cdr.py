"""CDR capture on both databases: each CDR stored once whichever path brings it, the
file read from its checkpoint, a bad line skipped and the rest kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.cdr_store import CdrStore
from ari_app.adapters.db import TokenStore, Writer
from ari_app.adapters.tables import InteractionSegmentRecord
from ari_app.services.cdr import CdrCapture
from ari_app.services.tokens import hash_token
from tests.db.parts import PushedConfig, drained

SEGMENTS = InteractionSegmentRecord.__table__  # type: ignore[attr-defined]


def _cdr_line(uniqueid: str, sequence: int, start: float = 1795640184.25) -> str:
    return json.dumps(
        {
            "uniqueid": uniqueid,
            "sequence": sequence,
            "linkedid": "1795640184.0",
            "clid": '"" <5551234>',
            "src": "5551234",
            "dst": "100",
            "dcontext": "from-carrier",
            "channel": f"PJSIP/carrier-{sequence:08x}",
            "dstchannel": "",
            "lastapp": "Stasis",
            "lastdata": "ari-app",
            "start": start,
            "answer": 0,
            "end": start + 3.5,
            "duration": 3,
            "billsec": 0,
            "disposition": "NO ANSWER",
            "amaflags": "DOCUMENTATION",
            "accountcode": "",
            "peeraccount": "",
            "userfield": "",
        }
    )


def _ami(uniqueid: str, sequence: int, start: float = 1795640184.25) -> dict[str, str]:
    line = json.loads(_cdr_line(uniqueid, sequence, start))
    return {
        "UniqueID": uniqueid,
        "Sequence": str(sequence),
        "LinkedID": line["linkedid"],
        "Channel": line["channel"],
        "Source": line["src"],
        "Destination": line["dst"],
        "DestinationContext": line["dcontext"],
        "CallerID": line["clid"],
        "LastApplication": line["lastapp"],
        "LastData": line["lastdata"],
        "StartEpoch": f"{start:.6f}",
        "AnswerEpoch": "0.000000",
        "EndEpoch": f"{start + 3.5:.6f}",
        "Duration": "3",
        "BillableSeconds": "0",
        "Disposition": "NO ANSWER",
        "AMAFlags": "DOCUMENTATION",
    }


def _capture(engine: AsyncEngine, tmp_path: Path) -> tuple[CdrCapture, Writer, Path]:
    writer = Writer(engine)
    path = tmp_path / "cdr.json"
    return CdrCapture(CdrStore(engine), writer, {"cdr": path}), writer, path


async def test_a_cdr_from_ami_and_from_the_file_is_stored_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    capture, writer, path = _capture(engine, tmp_path)
    capture.on_ami_cdr(_ami("1795640184.0", 0))
    await drained(writer)
    path.write_text(_cdr_line("1795640184.0", 0) + "\n" + _cdr_line("1795640184.1", 1) + "\n")
    assert await capture.catch_up("cdr") == 1  # only the leg AMI had not brought
    rows = await capture.store.cdrs(linkedid="1795640184.0")
    assert [(row["uniqueid"], row["sequence"], row["source"]) for row in rows] == [
        ("1795640184.0", 0, "ami"),
        ("1795640184.1", 1, "backstop"),
    ]
    assert rows[0]["answer"] is None
    assert (rows[0]["end"] - rows[0]["start"]).total_seconds() == 3.5
    assert await capture.catch_up("cdr") == 0  # nothing new: the checkpoint holds


async def test_the_file_is_followed_from_its_checkpoint_across_restarts(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    capture, _, path = _capture(engine, tmp_path)
    path.write_text(_cdr_line("a", 0) + "\n" + _cdr_line("b", 1)[:40])  # b half written
    assert await capture.catch_up("cdr") == 1
    with path.open("a") as handle:
        handle.write(_cdr_line("b", 1)[40:] + "\n" + _cdr_line("c", 2) + "\n")
    restarted, _, _ = _capture(engine, tmp_path)  # a new process: the checkpoint is in the db
    assert await restarted.catch_up("cdr") == 2
    assert [row["uniqueid"] for row in await restarted.store.cdrs()] == ["a", "b", "c"]


async def test_a_bad_line_is_logged_and_skipped_and_the_others_are_stored(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    capture, _, path = _capture(engine, tmp_path)
    path.write_text(_cdr_line("a", 0) + "\n{oops\n" + _cdr_line("c", 2) + "\n")
    assert await capture.catch_up("cdr") == 2
    assert capture.counts.bad == 1
    assert [row["uniqueid"] for row in await capture.store.cdrs()] == ["a", "c"]


async def test_a_missing_file_is_reported_and_read_once_it_appears(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    capture, _, path = _capture(engine, tmp_path)
    assert await capture.catch_up("cdr") == 0
    assert capture.counts.files == {"cdr": False}
    path.write_text(_cdr_line("a", 0) + "\n")
    assert await capture.catch_up("cdr") == 1
    assert capture.counts.files == {"cdr": True}


async def test_a_big_backlog_is_stored_whole(engine: AsyncEngine, tmp_path: Path) -> None:
    capture, _, path = _capture(engine, tmp_path)
    lines = [_cdr_line(f"1795640184.{n}", n, 1795640184.25 + n) for n in range(3000)]
    path.write_text("\n".join(lines) + "\n")  # more than one read and one statement
    assert await capture.catch_up("cdr") == 3000
    rows: list[dict[str, Any]] = await capture.store.cdrs(limit=5000)
    assert len(rows) == 3000


async def test_channel_events_are_read_from_their_file(engine: AsyncEngine, tmp_path: Path) -> None:
    path = tmp_path / "cel.json"
    events = [
        {"eventtype": "CHAN_START", "eventtime": 1795640163.378773},
        {"eventtype": "ANSWER", "eventtime": 1795640163.5},
        {"eventtype": "HANGUP", "eventtime": 1795640170.25, "eventextra": '{"hangupcause":16}'},
    ]
    base = {"uniqueid": "1795640163.0", "linkedid": "1795640163.0", "channame": "PJSIP/c-0"}
    path.write_text("".join(json.dumps({**base, **event}) + "\n" for event in events))
    capture = CdrCapture(CdrStore(engine), Writer(engine), {"cel": path, "cdr": None})
    assert await capture.catch_up("cel") == 3
    rows = await capture.store.cels(linkedid="1795640163.0")
    assert [row["event"] for row in rows] == ["CHAN_START", "ANSWER", "HANGUP"]
    assert rows[-1]["extra"] == {"hangupcause": 16}


async def test_cdrs_and_channel_events_are_served_by_call_to_admins_and_their_supervisors(
    engine: AsyncEngine, api: tuple[httpx.AsyncClient, PushedConfig], tmp_path: Path
) -> None:
    client, _ = api
    capture, _, path = _capture(engine, tmp_path)
    path.write_text(_cdr_line("1795640184.0", 0) + "\n" + _cdr_line("1795640999.0", 1) + "\n")
    await capture.catch_up("cdr")
    listed = (await client.get("/api/v1/cdrs", params={"call": "1795640184.0"})).json()
    assert [(row["uniqueid"], row["disposition"]) for row in listed] == [
        ("1795640184.0", "NO ANSWER"),
        ("1795640999.0", "NO ANSWER"),  # a second leg of the same call (same linkedid)
    ]
    assert (await client.get("/api/v1/cdrs", params={"call": "nope"})).json() == []
    assert (await client.get("/api/v1/cel", params={"call": "1795640184.0"})).json() == []
    assert (await client.get("/api/v1/cdrs", params={"limit": 0})).status_code == 422
    tokens = TokenStore(engine)
    for role, expected in (("supervisor", 200), ("agent", 403)):
        await tokens.add(name=role, role=role, token_hash=hash_token(f"token-{role}"))
        headers = {"Authorization": f"Bearer token-{role}"}
        assert (await client.get("/api/v1/cdrs", headers=headers)).status_code == expected
    assert (await client.get("/api/v1/cdrs", headers={"Authorization": ""})).status_code == 401

    # a supervisor reads the CDRs of the calls their teams' agents answered
    anna = {"id": "anna", "name": "Anna", "team": "billing"}
    assert (await client.post("/api/v1/agents", json=anna)).status_code == 201
    sam = {"id": "sam", "name": "Sam", "role": "supervisor", "teams": ["billing"]}
    assert (await client.post("/api/v1/users", json=sam)).status_code == 201
    token = (await client.post("/api/v1/users/sam/tokens", json={})).json()["token"]
    as_sam = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/cdrs", headers=as_sam)).json() == []
    cel = {"call": "1795640184.0"}
    assert (await client.get("/api/v1/cel", params=cel, headers=as_sam)).status_code == 403
    segment = {"call_id": "1795640184.0", "n": 0, "agent_id": "anna", "answered_us": 0}
    async with engine.begin() as connection:
        await connection.execute(
            SEGMENTS.insert().values(**segment, handle_seconds=1.0, wrap_up_seconds=0.0)
        )
    assert len((await client.get("/api/v1/cdrs", headers=as_sam)).json()) == 2
    assert (await client.get("/api/v1/cel", params=cel, headers=as_sam)).status_code == 200
