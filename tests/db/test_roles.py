"""Who may call what: every endpoint of the admin API against every role (allowed, or
403), against an expired and a revoked token (401), and the audit row each request
that may change something writes, refused ones included. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import TokenStore
from ari_app.adapters.tables import (
    ApiToken,
    AuditRecord,
    CallRecord,
    InteractionSegmentRecord,
)
from ari_app.adapters.user_store import UserStore
from ari_app.api.app import create_api
from ari_app.api.deps import ApiContext
from ari_app.domain.interaction import Record
from ari_app.domain.kpi import Interaction
from ari_app.services import tokens
from ari_app.services.flows import FlowRegistry
from tests.db.parts import PushedConfig, api_context

EVERYONE = {"admin", "ops", "supervisor", "agent", "reporting"}
ADMIN = {"admin"}
RECORDS = {"admin", "supervisor", "reporting"}  # calls, CDRs, KPIs, recordings' rows
HANDLING = {"admin", "supervisor", "agent"}  # a call's or an agent's own, in scope
CONFIG_READ = {"admin", "ops", "supervisor"}
CONFIG = {"admin", "ops"}
WATCH = {"admin", "supervisor"}

# Written out by hand, not read from the code: a route missing here fails the test.
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/openapi.json"): EVERYONE,
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/calls"): RECORDS,
    ("GET", "/api/v1/calls/{call_id}"): RECORDS,
    ("GET", "/api/v1/calls/{call_id}/routing"): RECORDS,
    ("POST", "/api/v1/calls/{call_id}/transfer"): HANDLING,
    ("POST", "/api/v1/calls/{call_id}/hold"): HANDLING,
    ("DELETE", "/api/v1/calls/{call_id}/hold"): HANDLING,
    ("POST", "/api/v1/calls/{call_id}/disposition"): HANDLING,
    ("POST", "/api/v1/calls/{call_id}/monitor"): WATCH,
    ("GET", "/api/v1/ivr/flows"): CONFIG_READ,
    ("POST", "/api/v1/ivr/reload"): CONFIG,
    ("GET", "/api/v1/agents"): WATCH,
    ("POST", "/api/v1/agents"): ADMIN,
    ("GET", "/api/v1/agents/{agent_id}"): HANDLING,
    ("PATCH", "/api/v1/agents/{agent_id}"): ADMIN,
    ("POST", "/api/v1/agents/{agent_id}/password"): ADMIN,
    ("DELETE", "/api/v1/agents/{agent_id}"): ADMIN,
    ("POST", "/api/v1/agents/{agent_id}/state"): HANDLING,
    ("GET", "/api/v1/queues"): CONFIG_READ,
    ("GET", "/api/v1/queues/waiting"): CONFIG_READ,
    ("POST", "/api/v1/queues/reload"): CONFIG,
    ("GET", "/api/v1/queues/{name}"): CONFIG_READ,
    ("PUT", "/api/v1/queues/{name}"): CONFIG,
    ("DELETE", "/api/v1/queues/{name}"): CONFIG,
    ("GET", "/api/v1/callbacks"): WATCH,
    ("DELETE", "/api/v1/callbacks/{callback_id}"): WATCH,
    ("GET", "/api/v1/recordings"): RECORDS,
    ("GET", "/api/v1/recordings/{recording_id}"): RECORDS,
    ("GET", "/api/v1/recordings/{recording_id}/file"): WATCH,
    ("POST", "/api/v1/recordings/{recording_id}/pause"): HANDLING,
    ("POST", "/api/v1/recordings/{recording_id}/resume"): HANDLING,
    ("POST", "/api/v1/supervisors"): ADMIN,
    ("GET", "/api/v1/supervisors"): WATCH,
    ("PATCH", "/api/v1/supervisors/{supervisor_id}"): ADMIN,
    ("DELETE", "/api/v1/supervisors/{supervisor_id}"): ADMIN,
    ("GET", "/api/v1/monitors"): WATCH,
    ("GET", "/api/v1/monitors/{session_id}"): WATCH,
    ("PATCH", "/api/v1/monitors/{session_id}"): WATCH,
    ("DELETE", "/api/v1/monitors/{session_id}"): WATCH,
    ("GET", "/api/v1/cdrs"): RECORDS,
    ("GET", "/api/v1/cel"): RECORDS,
    ("GET", "/api/v1/kpis"): RECORDS,
    ("GET", "/api/v1/interactions/{call_id}"): RECORDS,
    ("GET", "/api/v1/stats/queues"): RECORDS,
    ("GET", "/api/v1/stats/queues/{queue}"): RECORDS,
    ("GET", "/api/v1/stats/agents"): RECORDS,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/users/{user_id}"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    ("DELETE", "/api/v1/users/{user_id}"): ADMIN,
    ("GET", "/api/v1/users/{user_id}/tokens"): ADMIN,
    ("POST", "/api/v1/users/{user_id}/tokens"): ADMIN,
    ("DELETE", "/api/v1/users/{user_id}/tokens/{token_id}"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
    ("GET", "/api/v1/dialplan"): CONFIG,
    ("GET", "/api/v1/dialplan/{name}"): CONFIG,
    ("PUT", "/api/v1/dialplan/{name}"): CONFIG,
    ("GET", "/api/v1/ivr/flows/{name}/versions"): CONFIG_READ,
    ("POST", "/api/v1/ivr/flows/{name}/versions"): CONFIG,
    ("GET", "/api/v1/ivr/flows/{name}/versions/{version}"): CONFIG_READ,
    ("POST", "/api/v1/ivr/flows/{name}/versions/{version}/activate"): CONFIG,
    ("POST", "/api/v1/ivr/flows/{name}/rollback"): CONFIG,
    ("GET", "/api/v1/numbers"): CONFIG_READ,
    ("GET", "/api/v1/numbers/{key}"): CONFIG_READ,
    ("PUT", "/api/v1/numbers/{key}"): CONFIG,
    ("DELETE", "/api/v1/numbers/{key}"): CONFIG,
    ("GET", "/api/v1/teams"): CONFIG_READ,
    ("GET", "/api/v1/teams/{key}"): CONFIG_READ,
    ("PUT", "/api/v1/teams/{key}"): CONFIG,
    ("DELETE", "/api/v1/teams/{key}"): CONFIG,
    ("GET", "/api/v1/skills"): CONFIG_READ,
    ("GET", "/api/v1/skills/{key}"): CONFIG_READ,
    ("PUT", "/api/v1/skills/{key}"): CONFIG,
    ("DELETE", "/api/v1/skills/{key}"): CONFIG,
    ("GET", "/api/v1/config"): CONFIG,
    ("POST", "/api/v1/config/check"): CONFIG,
    ("POST", "/api/v1/config/apply"): CONFIG,
}
PUBLIC = {("GET", "/healthz")}
# Path values that name nothing: an allowed request is answered (404, 422, 409...) and
# changes nothing, so the matrix leaves the center as it found it.
NOBODY = {"token_id": "999999"}
ANNA = {"id": "anna", "name": "Anna Berg", "team": "billing", "skills": {"billing": 8}}


@dataclass
class Center:
    client: httpx.AsyncClient
    api: FastAPI
    engine: AsyncEngine
    tokens: dict[str, str]  # role: a token of a user with it

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def audit_rows(self) -> int:
        async with self.engine.connect() as connection:
            count = select(func.count()).select_from(AuditRecord)
            return int((await connection.execute(count)).scalar_one())


@pytest.fixture
async def center(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Center]:
    """The API with an agent (anna, team billing) and a user of each role: olga (ops),
    sam (supervisor of billing), anna (the agent), rita (reporting)."""
    admin = await tokens.first_admin_token(TokenStore(engine), UserStore(engine))
    assert admin is not None
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(PushedConfig()))
    (tmp_path / "flows").mkdir()
    api = create_api(api_context(engine, ari, tmp_path, FlowRegistry(tmp_path / "flows")))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        made = Center(client, api, engine, {"admin": admin})
        boss = made.as_(admin)
        assert (await client.post("/api/v1/agents", json=ANNA, headers=boss)).status_code == 201
        for user, role, teams in (
            ("olga", "ops", []),
            ("sam", "supervisor", ["billing"]),
            ("anna", "agent", []),
            ("rita", "reporting", []),
        ):
            body = {"id": user, "name": user.title(), "role": role, "teams": teams}
            created = await client.post("/api/v1/users", json=body, headers=boss)
            assert created.status_code == 201, created.text
            minted = await client.post(f"/api/v1/users/{user}/tokens", json={}, headers=boss)
            assert minted.status_code == 201, minted.text
            made.tokens[role] = minted.json()["token"]
        yield made


def _routes(api: FastAPI) -> set[tuple[str, str]]:
    """Every endpoint, as the OpenAPI schema documents them (and the schema itself)."""
    paths = api.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops} | {
        ("GET", "/openapi.json")
    }


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: NOBODY.get(m.group(1), "nobody"), path)


async def test_every_endpoint_answers_the_roles_it_serves_and_refuses_the_others(
    center: Center,
) -> None:
    assert _routes(center.api) == set(MATRIX) | PUBLIC  # every endpoint is in the matrix
    wrong = []
    for (method, path), allowed in MATRIX.items():
        for role, token in center.tokens.items():
            body = {} if method in ("POST", "PUT", "PATCH") else None
            reply = await center.client.request(
                method, _url(path), json=body, headers=center.as_(token)
            )
            refused = reply.status_code in (401, 403)
            if refused == (role in allowed) or reply.status_code >= 500:
                wrong.append(f"{role} {method} {path}: {reply.status_code} {reply.text[:120]}")
    assert wrong == []


async def test_an_expired_or_revoked_token_is_refused_everywhere(center: Center) -> None:
    boss = center.as_(center.tokens["admin"])
    minted = await center.client.post("/api/v1/users/olga/tokens", json={}, headers=boss)
    expiring = minted.json()
    async with center.engine.begin() as connection:
        await connection.execute(
            update(ApiToken)
            .where(ApiToken.id == expiring["id"])  # type: ignore[arg-type]
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    revoked = center.tokens["ops"]
    gone = await center.client.delete("/api/v1/users/olga/tokens/2", headers=boss)  # olga's first
    assert gone.status_code == 204, gone.text
    for token in (expiring["token"], revoked):
        for method, path in MATRIX:
            reply = await center.client.request(method, _url(path), headers=center.as_(token))
            assert reply.status_code == 401, (method, path, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"
            assert reply.headers["content-type"] == "application/problem+json"
    assert (await center.client.get("/healthz")).status_code == 200  # no token wanted


async def test_every_request_that_may_change_something_writes_one_audit_row(
    center: Center,
) -> None:
    for method, path in MATRIX:
        if method == "GET":
            continue
        for role, token in center.tokens.items():
            before = await center.audit_rows()
            body = {} if method in ("POST", "PUT", "PATCH") else None
            await center.client.request(method, _url(path), json=body, headers=center.as_(token))
            assert await center.audit_rows() == before + 1, (role, method, path)
    before = await center.audit_rows()
    await center.client.post("/api/v1/agents", json=ANNA)  # no token: nobody to name
    assert await center.audit_rows() == before


async def test_the_audit_names_who_changed_what_with_the_state_before_and_after(
    center: Center,
) -> None:
    boss = center.as_(center.tokens["admin"])
    sam = center.as_(center.tokens["supervisor"])
    changed = await center.client.patch(
        "/api/v1/agents/anna", json={"name": "Anna Lind"}, headers=boss
    )
    assert changed.status_code == 200, changed.text
    paused = await center.client.post(
        "/api/v1/agents/anna/state", json={"state": "logged_out"}, headers=sam
    )
    assert paused.status_code == 409, paused.text  # anna is logged out already: refused
    sneaky = await center.client.post(
        "/api/v1/users", json={"id": "eve", "password": "hunter2"}, headers=boss
    )
    assert sneaky.status_code == 422
    reply = await center.client.get("/api/v1/audit?limit=3", headers=boss)
    assert reply.status_code == 200, reply.text
    newest, refused, renamed = reply.json()
    assert (renamed["actor"], renamed["role"], renamed["outcome"]) == ("admin", "admin", 200)
    assert renamed["action"] == "PATCH /api/v1/agents/{agent_id}"
    assert renamed["target"] == "/api/v1/agents/anna"
    assert renamed["asked"] == {"name": "Anna Lind"}
    assert (renamed["before"]["name"], renamed["after"]["name"]) == ("Anna Berg", "Anna Lind")
    assert (refused["actor"], refused["outcome"]) == ("sam", 409)
    assert refused["before"] == refused["after"]
    assert "logged out" in refused["detail"] or "logged_out" in refused["detail"]
    assert newest["asked"] == {"id": "eve", "password": "(hidden)"}
    assert newest["outcome"] == 422
    only_sam = await center.client.get("/api/v1/audit?actor=sam", headers=boss)
    assert [row["id"] for row in only_sam.json()] == [refused["id"]]
    paged = await center.client.get("/api/v1/audit?limit=1&offset=1", headers=boss)
    assert [row["id"] for row in paged.json()] == [refused["id"]]


async def test_an_agent_and_a_supervisor_act_within_their_own_scope(center: Center) -> None:
    boss = center.as_(center.tokens["admin"])
    bob = {"id": "bob", "name": "Bob", "team": "sales", "skills": {"sales": 5}}
    assert (await center.client.post("/api/v1/agents", json=bob, headers=boss)).status_code == 201
    anna, sam = center.as_(center.tokens["agent"]), center.as_(center.tokens["supervisor"])

    async def state(who: dict[str, str], agent: str, to: str = "available") -> int:
        url = f"/api/v1/agents/{agent}/state"
        return (await center.client.post(url, json={"state": to}, headers=who)).status_code

    assert await state(anna, "anna") == 200  # herself
    assert await state(anna, "bob") == 403
    assert (await center.client.get("/api/v1/agents/bob", headers=anna)).status_code == 403
    assert await state(sam, "anna", "logged_out") == 200  # billing is sam's team
    assert await state(sam, "bob") == 403  # sales is not
    listed = await center.client.get("/api/v1/agents", headers=sam)
    assert [agent["id"] for agent in listed.json()] == ["anna"]
    me = await center.client.get("/api/v1/me", headers=sam)
    assert me.json() == {
        "actor": "sam",
        "role": "supervisor",
        "user_id": "sam",
        "teams": ["billing"],
    }
    # a supervisor made a supervisor of sales too sees bob at once, with the same token
    teams = {"teams": ["billing", "sales"]}
    assert (await center.client.patch("/api/v1/users/sam", json=teams, headers=boss)).is_success
    assert await state(sam, "bob") == 200


async def test_a_supervisor_hears_and_reads_the_recordings_and_calls_of_their_teams_only(
    center: Center,
) -> None:
    boss = center.as_(center.tokens["admin"])
    bob = {"id": "bob", "name": "Bob", "team": "sales", "skills": {"sales": 5}}
    assert (await center.client.post("/api/v1/agents", json=bob, headers=boss)).status_code == 201
    context: ApiContext = center.api.state.context
    recorder = context.acd.recorder
    assert recorder is not None
    recorder.folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    for name, agent, segments in (
        ("rec-anna", "anna", []),
        ("rec-bob", "bob", []),
        ("rec-moved", "bob", [{"agent_id": "bob"}, {"agent_id": "anna"}]),  # handed to anna
    ):
        row = {"id": name, "call_id": f"call-{name}", "agent_id": agent, "queue": "billing"}
        await recorder.store.add(
            {**row, "state": "stored", "started_at": now, "pauses": [], "segments": segments}
        )
        recorder.path(name).write_bytes(b"RIFF")
    sam = center.as_(center.tokens["supervisor"])
    listed = await center.client.get("/api/v1/recordings", headers=sam)
    assert sorted(row["id"] for row in listed.json()) == ["rec-anna"]
    asked = await center.client.get("/api/v1/recordings?agent_id=bob", headers=sam)
    assert asked.json() == []
    for name, allowed in (("rec-anna", 200), ("rec-bob", 403), ("rec-moved", 200)):
        for path in (f"/api/v1/recordings/{name}", f"/api/v1/recordings/{name}/file"):
            got = await center.client.get(path, headers=sam)
            assert got.status_code == allowed, (path, got.text)
    everything = await center.client.get("/api/v1/recordings", headers=boss)
    assert len(everything.json()) == 3

    # calls: those an agent of theirs had a part in (a segment of the interaction)
    calls = CallRecord.__table__  # type: ignore[attr-defined]
    segments = InteractionSegmentRecord.__table__  # type: ignore[attr-defined]
    made = {"call-talk": [], "call-other": [], "call-anna": ["anna"], "call-bob": ["bob"],
            "call-both": ["bob", "anna"], "call-ivr": []}  # fmt: skip
    async with center.engine.begin() as connection:
        for n, (call, agents) in enumerate(made.items()):
            started = now - timedelta(minutes=n)
            ended = None if call in ("call-talk", "call-other") else started
            row = {"id": call, "caller": "5551234", "dialled": "100", "phase": "ended"}
            await connection.execute(
                calls.insert().values(**row, started_at=started, ended_at=ended)
            )
            for k, agent in enumerate(agents):
                part = {"call_id": call, "n": k, "agent_id": agent, "answered_us": 0}
                await connection.execute(
                    segments.insert().values(**part, handle_seconds=1.0, wrap_up_seconds=0.0)
                )
    # anna talks on call-talk now: its interaction record is open, her part not yet written
    talking = Record(Interaction("call-talk", "5551234", now), open_segment=("anna", now, 0.0))
    context.interactions.records["call-talk"] = talking

    async def ids(query: str, who: dict[str, str]) -> tuple[list[str], int]:
        page = (await center.client.get(f"/api/v1/calls{query}", headers=who)).json()
        return [c["id"] for c in page["items"]], page["total"]

    assert await ids("", sam) == (["call-talk", "call-anna", "call-both"], 3)
    assert await ids("?live=true", sam) == (["call-talk"], 1)
    assert await ids("?live=true", boss) == (["call-talk", "call-other"], 2)
    assert (await ids("", boss))[1] == 6
    for call, allowed in (("call-anna", 200), ("call-bob", 403), ("call-both", 200),
                          ("call-ivr", 403), ("call-talk", 200), ("call-other", 403)):  # fmt: skip
        for path in (f"/api/v1/calls/{call}", f"/api/v1/calls/{call}/routing"):
            got = await center.client.get(path, headers=sam)
            assert got.status_code == allowed, (path, got.text)


async def _body(reply: httpx.Response) -> dict[str, Any]:
    assert reply.headers["content-type"] == "application/problem+json", reply.text
    body: dict[str, Any] = reply.json()
    assert body["status"] == reply.status_code
    assert body["instance"] == reply.request.url.path
    assert body["title"]
    assert body["detail"]
    return body


async def test_errors_are_problem_details_that_say_what_is_wrong(center: Center) -> None:
    boss = center.as_(center.tokens["admin"])
    missing = await _body(await center.client.get("/api/v1/users/nobody", headers=boss))
    assert (missing["title"], missing["detail"]) == ("Not Found", "no user 'nobody'")
    bad = await center.client.post(
        "/api/v1/users", json={"id": "Eve!", "name": "", "role": "boss"}, headers=boss
    )
    assert bad.status_code == 422
    fields = {error["field"] for error in (await _body(bad))["errors"]}
    assert fields == {"body.id", "body.name", "body.role"}
    huge = await center.client.put(
        "/api/v1/queues/sales", content=b"{" + b" " * 1_100_000 + b"}", headers=boss
    )
    assert huge.status_code == 413
    assert "1048576 bytes" in (await _body(huge))["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b" " * 100_000

    streamed = await center.client.put(  # no Content-Length: counted as it comes
        "/api/v1/queues/sales", content=chunks(), headers=boss
    )
    assert streamed.status_code == 413, streamed.text
    assert "1048576 bytes" in (await _body(streamed))["detail"]
    assert (await center.client.get("/api/v1/queues/sales", headers=boss)).status_code == 404
    forbidden = await center.client.get("/api/v1/users", headers=center.as_(center.tokens["ops"]))
    assert forbidden.status_code == 403
    assert "admin" in (await _body(forbidden))["detail"]


async def test_users_and_their_tokens_are_managed_by_admins(center: Center) -> None:
    boss = center.as_(center.tokens["admin"])
    olga, rita = center.as_(center.tokens["ops"]), center.as_(center.tokens["reporting"])
    assert (await center.client.get("/api/v1/queues", headers=olga)).status_code == 200
    moved = await center.client.patch(
        "/api/v1/users/olga", json={"role": "reporting"}, headers=boss
    )
    assert moved.status_code == 200, moved.text
    assert (await center.client.get("/api/v1/queues", headers=olga)).status_code == 403  # at once
    assert (await center.client.get("/api/v1/calls", headers=olga)).status_code == 200
    listed = await center.client.get("/api/v1/users/olga/tokens", headers=boss)
    [token] = listed.json()
    assert set(token) == {"id", "name", "created_at", "expires_at", "revoked_at"}  # no hash
    life = datetime.fromisoformat(token["expires_at"]) - datetime.fromisoformat(token["created_at"])
    assert abs(life - timedelta(days=90)) < timedelta(seconds=5)
    gone = await center.client.delete("/api/v1/users/rita", headers=boss)
    assert gone.status_code == 204
    assert (await center.client.get("/api/v1/calls", headers=rita)).status_code == 401
    refused = [
        ({"id": "zoe", "name": "Zoe", "role": "agent"}, 422, "no agent 'zoe'"),
        ({"id": "olga", "name": "Olga", "role": "ops"}, 409, "already exists"),
        ({"id": "tom", "name": "Tom", "role": "ops", "teams": ["billing"]}, 422, "supervisors"),
    ]
    users = (await center.client.get("/api/v1/users", headers=boss)).json()
    for body, code, said in refused:
        reply = await center.client.post("/api/v1/users", json=body, headers=boss)
        assert reply.status_code == code, reply.text
        assert said in reply.json()["detail"]
    assert (await center.client.get("/api/v1/users", headers=boss)).json() == users
    myself = await center.client.delete("/api/v1/users/admin", headers=boss)
    assert myself.status_code == 409
    week = await center.client.post(
        "/api/v1/users/olga/tokens", json={"name": "laptop", "days": 7}, headers=boss
    )
    assert week.status_code == 201, week.text
    laptop = center.as_(week.json()["token"])
    assert (await center.client.get("/api/v1/me", headers=laptop)).json()["actor"] == "olga"
    too_long = await center.client.post(
        "/api/v1/users/olga/tokens", json={"days": 400}, headers=boss
    )
    assert too_long.status_code == 422
