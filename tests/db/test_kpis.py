"""Interaction records stored as they change, and the KPIs served from them on both
databases: the scripted hour of tests/unit/test_kpi.py gives the same figures through
the API as the definitions give in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.db import TokenStore, Writer
from ari_app.adapters.interaction_store import InteractionStore
from ari_app.adapters.tables import AgentEventRecord
from ari_app.services.interactions import InteractionLog
from ari_app.services.tokens import hash_token
from tests.db.parts import PushedConfig, drained
from tests.unit.test_kpi import ANNA, END, HOUR, SCRIPT, at

EVENTS = AgentEventRecord.__table__  # type: ignore[attr-defined]


async def _the_hour(engine: AsyncEngine) -> InteractionLog:
    writer = Writer(engine)
    log = InteractionLog(InteractionStore(engine), writer)
    for event in SCRIPT:
        log.record(event)
    await drained(writer)
    rows = [
        {
            "agent_id": "anna",
            "at": moment,
            "event": "e",
            "from_state": "",
            "to_state": state,
            "reason": "",
            "source": "acd",
        }
        for moment, state in ANNA
    ]
    async with engine.begin() as connection:
        await connection.execute(EVENTS.insert(), rows)
    return log


async def test_the_scripted_hour_through_the_api(
    engine: AsyncEngine, api: tuple[httpx.AsyncClient, PushedConfig]
) -> None:
    client, _ = api
    log = await _the_hour(engine)
    assert log.records == {}  # every call finished and wrapped up: none kept in memory
    params = {"from": HOUR.isoformat(), "to": END.isoformat(), "queue": "billing"}
    reply = await client.get("/api/v1/kpis", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    (billing,) = body["queues"]
    # the default targets: service level 20 s, short abandon 5 s, FCR window 24 h
    assert (billing["offered"], billing["handled"], billing["abandoned"]) == (5, 4, 1)
    assert (billing["short_abandoned"], billing["blocked"]) == (1, 1)
    assert billing["service_level"] == pytest.approx(60.0)
    assert billing["asa"] == pytest.approx(18.25)
    assert billing["aht"] == pytest.approx(185.0)
    assert billing["fcr"] == pytest.approx(75.0)
    anna = next(agent for agent in body["agents"] if agent["agent_id"] == "anna")
    assert anna["occupancy"] == pytest.approx(100 * 470 / 2700)
    assert body["ivr"]["containment"] == pytest.approx(100 / 3)

    # a supervisor of another team: the same queue figures, none of anna's
    await TokenStore(engine).add(name="s", role="supervisor", token_hash=hash_token("token-s"))
    theirs = {"Authorization": "Bearer token-s"}
    seen = (await client.get("/api/v1/kpis", params=params, headers=theirs)).json()
    assert (seen["queues"], seen["agents"]) == (body["queues"], [])
    asked = await client.get("/api/v1/kpis", params={**params, "agent": "anna"}, headers=theirs)
    assert asked.status_code == 403


async def test_half_hour_intervals_and_one_agent(
    engine: AsyncEngine, api: tuple[httpx.AsyncClient, PushedConfig]
) -> None:
    client, _ = api
    await _the_hour(engine)
    params = {"from": HOUR.isoformat(), "to": END.isoformat(), "agent": "anna", "interval": 30}
    body = (await client.get("/api/v1/kpis", params=params)).json()
    first, second = body["intervals"]
    assert [a["agent_id"] for a in body["agents"]] == ["anna"]
    assert first["queues"][0]["offered"] == 4
    assert second["agents"][0]["staffed_seconds"] == pytest.approx(900.0)


async def test_a_disposition_is_stored_and_changes_fcr(
    engine: AsyncEngine, api: tuple[httpx.AsyncClient, PushedConfig]
) -> None:
    client, _ = api
    await _the_hour(engine)
    # c1's caller called again, yet the agent says c1 settled the matter
    said = await client.post(
        "/api/v1/calls/c1/disposition", json={"code": "paid", "resolved": True}
    )
    assert said.status_code == 200, said.text
    record = (await client.get("/api/v1/interactions/c1")).json()
    for _ in range(50):  # the row is written behind the answer, as in the service
        if record["disposition"] == "paid":
            break
        await asyncio.sleep(0.1)
        record = (await client.get("/api/v1/interactions/c1")).json()
    assert (record["disposition"], record["resolved"]) == ("paid", True)
    assert [s["agent_id"] for s in record["segments"]] == ["anna"]
    # no call row was stored for this scripted hour: the call's own fields are empty
    assert (record["dialled"], record["hangup_side"], record["recordings"]) == (None, None, [])
    assert not {"open", "arrived_us", "wait_seconds", "repeat_after"} & set(record)
    missing = await client.post("/api/v1/calls/nope/disposition", json={"code": "x"})
    assert missing.status_code == 404
    bad = await client.post("/api/v1/calls/c1/disposition", json={"code": "no spaces"})
    assert bad.status_code == 422
    # a supervisor reads the records of calls their teams' agents had a part in only
    await TokenStore(engine).add(name="s", role="supervisor", token_hash=hash_token("token-s"))
    theirs = await client.get(
        "/api/v1/interactions/c1", headers={"Authorization": "Bearer token-s"}
    )
    assert theirs.status_code == 403


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}, "after from"),
        ({"from": "2026-11-25T09:00:00", "to": "2026-11-25T10:00:00"}, "time zone"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-11-25T00:00:00Z"}, "at most"),
        ({"from": "2026-11-25T09:00:00Z", "to": "2026-11-25T10:00:00Z", "interval": 20}, "15"),
    ],
)
async def test_a_report_that_cannot_be_made_says_why(
    api: tuple[httpx.AsyncClient, PushedConfig], params: dict[str, Any], reason: str
) -> None:
    client, _ = api
    reply = await client.get("/api/v1/kpis", params=params)
    assert reply.status_code == 422
    assert reason in reply.text


async def test_kpis_are_for_admins_and_supervisors(
    engine: AsyncEngine, api: tuple[httpx.AsyncClient, PushedConfig]
) -> None:
    client, _ = api
    params = {"from": at(0).isoformat(), "to": at(60).isoformat()}
    tokens = TokenStore(engine)
    for role, expected in (("supervisor", 200), ("agent", 403)):
        await tokens.add(name=role, role=role, token_hash=hash_token(f"token-{role}"))
        headers = {"Authorization": f"Bearer token-{role}"}
        assert (await client.get("/api/v1/kpis", params=params, headers=headers)).status_code == (
            expected
        )


async def test_an_agents_time_counts_from_the_state_they_were_in_when_the_window_opened(
    engine: AsyncEngine, api: tuple[httpx.AsyncClient, PushedConfig]
) -> None:
    client, _ = api
    rows = [
        {"agent_id": "zoe", "at": at(-120), "event": "e", "from_state": "", "to_state": "available",
         "reason": "", "source": "api"},
        {"agent_id": "zoe", "at": at(-30), "event": "e", "from_state": "", "to_state": "paused",
         "reason": "lunch", "source": "api"},
        {"agent_id": "zoe", "at": at(10), "event": "e", "from_state": "", "to_state": "available",
         "reason": "", "source": "api"},
    ]  # fmt: skip
    async with engine.begin() as connection:
        await connection.execute(EVENTS.insert(), rows)
    params = {"from": HOUR.isoformat(), "to": END.isoformat(), "agent": "zoe"}
    (zoe,) = (await client.get("/api/v1/kpis", params=params)).json()["agents"]
    # paused from 08:30 to 09:10, then available to 10:00: 50 minutes staffed, none busy
    assert zoe["staffed_seconds"] == pytest.approx(3000.0)
    assert zoe["occupancy"] == pytest.approx(0.0)
