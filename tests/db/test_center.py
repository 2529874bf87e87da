"""The center as code and as resources: numbers, teams, skills, flow versions, and the
whole document checked, applied all or nothing, exported; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import TokenStore
from ari_app.adapters.user_store import UserStore
from ari_app.api.app import create_api
from ari_app.api.deps import ApiContext
from ari_app.services import tokens
from ari_app.services.flows import FlowRegistry
from tests.db.parts import DEMO_QUEUES as DEMO_QUEUES_FILE
from tests.db.parts import PushedConfig, api_context

MENU = """\
flow: menu
version: 1
numbers: ["120"]
start: hi
nodes:
  hi:
    kind: play
    prompts: [sound:hello-world]
    next: billing
  billing:
    kind: queue
    queue: billing
"""
DEMO_QUEUES = yaml.safe_load(DEMO_QUEUES_FILE.read_text())["queues"]
# every table is compared whole but the audit: a refusal is a row too
CHANGING = ("audit",)

# a document that changes every kind
WHOLE: dict[str, Any] = {
    "teams": {"billing": {"name": "Billing desk"}, "sales": {"name": "Sales"}},
    "skills": {
        "billing": {"description": "invoices and payments"},
        "english": {},
        "operator": {},
        "sales": {},
    },
    "queues": {**DEMO_QUEUES, "sales": {"skills": {"sales": 1}}},
    "agents": {
        "anna": {"name": "Anna Berg", "team": "billing", "skills": {"billing": 8, "english": 5}},
        "bob": {
            "name": "Bob Stone",
            "team": "sales",
            "skills": {"sales": 5},
            "wrap_up_seconds": 10,
        },
    },
    "numbers": {"150": {"flow": "menu", "label": "billing line"}},
    "flows": {
        "menu": {
            "flow": "menu",
            "version": 2,
            "numbers": ["120"],
            "start": "hi",
            "nodes": {
                "hi": {"kind": "play", "prompts": ["sound:hello-world"], "next": "sales"},
                "sales": {"kind": "queue", "queue": "sales"},
            },
        }
    },
}


@dataclass
class Center:
    client: httpx.AsyncClient
    context: ApiContext
    engine: AsyncEngine
    folder: Path
    pushed: PushedConfig
    app: FastAPI
    token: str

    async def snapshot(self) -> dict[str, Any]:
        """Every row of the database, the text of the center's files, the phones pushed
        and what the running service has in force."""
        found: dict[str, Any] = {}
        async with self.engine.connect() as connection:
            for table in SQLModel.metadata.sorted_tables:
                if table.name in CHANGING:
                    continue
                rows = (await connection.execute(select(table))).all()
                found[table.name] = sorted(repr(tuple(row)) for row in rows)
        for path in [*sorted(self.folder.glob("flows/*")), self.folder / "queues.yaml"]:
            found[str(path)] = path.read_text()
        found["phones"] = dict(self.pushed.objects)
        found["flows in force"] = {n: f.version for n, f in self.context.flows.flows.items()}
        found["numbers"] = dict(self.context.flows.assigned)
        found["queues in force"] = sorted(self.context.acd.acd.queues)
        return found


@pytest.fixture
async def center(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Center]:
    """The API (admin token) over the demo queues and one flow, `menu` v1 on 200."""
    admin = await tokens.first_admin_token(TokenStore(engine), UserStore(engine))
    pushed = PushedConfig()
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(pushed))
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "menu.yaml").write_text(MENU)
    flows = FlowRegistry(tmp_path / "flows")
    assert (await flows.reload()).problems == []
    context = api_context(engine, ari, tmp_path, flows)
    context.agents.keeper = context.acd  # as the service has it: the ACD takes new agents
    app = create_api(context)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=headers
    ) as client:
        yield Center(client, context, engine, tmp_path, pushed, app, str(admin))


async def _apply(center: Center, document: Any) -> httpx.Response:
    return await center.client.post("/api/v1/config/apply", json=document)


async def test_a_whole_document_applies_and_applying_it_again_changes_nothing(
    center: Center,
) -> None:
    first = await _apply(center, WHOLE)
    assert first.status_code == 200, first.text
    diff = first.json()["diff"]
    assert {"+ agent anna", "+ team sales", "+ number 150"} <= set(diff)
    assert "~ flow menu: nodes, version" in diff
    assert sorted(first.json()["passwords"]) == ["anna", "bob"]  # shown once
    assert ("endpoint", "agent-anna") in center.pushed.objects
    flows = center.context.flows
    assert flows.flows["menu"].version == 2
    assert flows.for_number("150") is flows.flows["menu"]  # the numbers' table routes
    assert center.context.acd.acd.profiles["bob"].wrap_up_seconds == 10
    after = await center.snapshot()

    again = await _apply(center, WHOLE)
    assert again.status_code == 200, again.text
    assert again.json()["changes"] == []
    assert await center.snapshot() == after


async def test_an_export_applied_changes_nothing_and_exports_the_same(center: Center) -> None:
    assert (await _apply(center, WHOLE)).status_code == 200
    exported = (await center.client.get("/api/v1/config")).json()
    assert sorted(exported) == ["agents", "flows", "numbers", "queues", "skills", "teams"]
    assert "sip_digest" not in str(exported)
    before = await center.snapshot()

    applied = await _apply(center, exported)
    assert applied.status_code == 200, applied.text
    assert applied.json()["changes"] == []
    assert await center.snapshot() == before
    assert (await center.client.get("/api/v1/config")).json() == exported


async def test_an_export_of_a_center_made_through_the_api_applies_to_the_same_center(
    center: Center,
) -> None:
    """Teams and skills that agents use count even when nobody declared them."""
    agent = {"id": "cleo", "name": "Cleo", "team": "nights", "skills": {"billing": 3}}
    assert (await center.client.post("/api/v1/agents", json=agent)).status_code == 201
    exported = (await center.client.get("/api/v1/config")).json()
    assert exported["teams"]["nights"] == {"name": "nights"}
    before = await center.snapshot()
    assert (await _apply(center, exported)).json()["changes"] == []
    assert await center.snapshot() == before


BROKEN: list[tuple[str, Any, str]] = [
    ("not a mapping", ["teams"], "valid dictionary"),
    ("an unknown section", {"phones": {}}, "unknown field 'phones'"),
    (
        "an agent's team that is not there",
        {"agents": {"anna": {"name": "Anna", "team": "nowhere"}}},
        "agents.anna.team: no team 'nowhere'",
    ),
    (
        "a skill level out of range",
        {**WHOLE, "agents": {"anna": {"name": "A", "skills": {"billing": 11}}}},
        "agents.anna.skills.billing: skill levels are whole numbers from 1 to 10",
    ),
    (
        "a queue asking for a skill nobody declared",
        {**WHOLE, "skills": {"billing": {}, "english": {}, "sales": {}}},
        "queues.operator.skills.operator: no skill 'operator'",
    ),
    (
        "a queue with a strategy that is not one",
        {"queues": {"billing": {"skills": {"billing": 1}, "strategy": "random-ish"}}},
        "queues.billing.strategy",
    ),
    (
        "a number to a flow that is not there",
        {"numbers": {"150": {"flow": "nothing"}}},
        "numbers.150.flow: no flow 'nothing'",
    ),
    (
        "a number the dialplan does not send to the service",
        {"numbers": {"999": {"flow": "menu"}}},
        "numbers.999: the dialplan does not send this number to the service (from-carrier)",
    ),
    (
        "a number another flow lists",
        {
            **WHOLE,
            "numbers": {"120": {"flow": "other"}},
            "flows": {
                **WHOLE["flows"],
                "other": {
                    "flow": "other",
                    "version": 1,
                    "start": "bye",
                    "nodes": {"bye": {"kind": "hangup"}},
                },
            },
        },
        "numbers.120: flow 'menu' lists this number",
    ),
    (
        "a flow sending callers to a queue the document removes",
        {"queues": {"sales": {"skills": {"sales": 1}}}},
        "flows.menu.nodes.billing.queue: no queue 'billing'",
    ),
    (
        "a flow changed under the same version",
        {"flows": {"menu": {**WHOLE["flows"]["menu"], "version": 1}}},
        "flows.menu.version: the flow changed but is still version 1",
    ),
    (
        "a flow that fails its own check",
        {"flows": {"menu": {**WHOLE["flows"]["menu"], "start": "nowhere"}}},
        "flows.menu",
    ),
    (
        "a team held by a supervisor user",
        {"teams": {}, "agents": {}},
        "teams.billing: team 'billing' is held by user sam",
    ),
]


@pytest.mark.parametrize(("name", "document", "said"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_a_broken_document_is_refused_with_its_problem_and_changes_nothing(
    center: Center, name: str, document: Any, said: str
) -> None:
    assert (await _apply(center, {"teams": {"billing": {"name": "Billing"}}})).status_code == 200
    sam = {"id": "sam", "name": "Sam", "role": "supervisor", "teams": ["billing"]}
    assert (await center.client.post("/api/v1/users", json=sam)).status_code == 201
    before = await center.snapshot()

    checked = await center.client.post("/api/v1/config/check", json=document)
    refused = await _apply(center, document)

    for reply in (checked, refused):
        assert reply.status_code == 422, reply.text
        assert said in reply.text
    assert await center.snapshot() == before


async def test_a_failure_after_the_files_are_written_puts_everything_back(
    center: Center, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow and queues files are written, the rows too (not committed): the flows'
    reload fails, and the files, the rows and what runs are as before."""
    before = await center.snapshot()
    flows = center.context.flows
    real = flows.reload_now

    def failing(*args: Any) -> Any:
        monkeypatch.setattr(flows, "reload_now", real)
        raise OSError("disk gone")

    monkeypatch.setattr(flows, "reload_now", failing)
    document = {**WHOLE, "queues": {**center.context.queues.definitions(), "sales": {
        "skills": {"sales": 2}}}}  # fmt: skip
    with pytest.raises(OSError, match="disk gone"):
        await center.context.center.apply(document, "test")
    assert await center.snapshot() == before


async def test_asterisk_refusing_a_new_phone_changes_nothing(center: Center) -> None:
    before = await center.snapshot()
    center.pushed.down = True
    reply = await _apply(center, WHOLE)
    assert reply.status_code == 502, reply.text
    center.pushed.down = False
    assert await center.snapshot() == before


async def test_an_agent_on_shift_cannot_be_removed(center: Center) -> None:
    assert (await _apply(center, WHOLE)).status_code == 200
    login = await center.client.post("/api/v1/agents/anna/state", json={"state": "available"})
    assert login.status_code == 200, login.text
    before = await center.snapshot()
    reply = await _apply(center, {"agents": {"bob": WHOLE["agents"]["bob"]}})
    assert reply.status_code == 422
    assert reply.json()["problems"] == [
        "agents.anna: agent 'anna' is available: log them out first"
    ]
    assert await center.snapshot() == before


async def test_ops_apply_queues_and_flows_but_not_agents(center: Center) -> None:
    olga = {"id": "olga", "name": "Olga", "role": "ops"}
    assert (await center.client.post("/api/v1/users", json=olga)).status_code == 201
    token = (await center.client.post("/api/v1/users/olga/tokens", json={})).json()["token"]
    as_olga = {"Authorization": f"Bearer {token}"}
    agents_too = await center.client.post("/api/v1/config/apply", json=WHOLE, headers=as_olga)
    assert agents_too.status_code == 403
    no_agents = {k: v for k, v in WHOLE.items() if k != "agents"}
    done = await center.client.post("/api/v1/config/apply", json=no_agents, headers=as_olga)
    assert done.status_code == 200, done.text
    rows = (await center.client.get("/api/v1/audit", params={"actor": "olga"})).json()
    assert [row["outcome"] for row in rows] == [200, 403]  # newest first
    assert "~ flow menu: nodes, version" in rows[0]["after"]["diff"]


# -- one item at a time ------------------------------------------------------------------


async def test_a_number_sends_its_callers_to_a_flow_and_goes_away(center: Center) -> None:
    flows = center.context.flows
    put = await center.client.put("/api/v1/numbers/155", json={"flow": "menu", "label": "new"})
    assert put.status_code == 201, put.text
    assert flows.for_number("155") is flows.flows["menu"]
    listed = (await center.client.get("/api/v1/ivr/flows")).json()
    assert listed == [{"name": "menu", "version": 1, "numbers": ["120", "155"], "nodes": 2}]
    assert (
        await center.client.put("/api/v1/numbers/155", json={"flow": "menu"})
    ).status_code == 200
    listed = (await center.client.get("/api/v1/numbers")).json()
    assert listed == [{"number": "155", "flow": "menu", "label": ""}]
    nowhere = await center.client.put("/api/v1/numbers/156", json={"flow": "nothing"})
    assert nowhere.status_code == 422
    assert nowhere.json()["problems"] == ["numbers.156.flow: no flow 'nothing'"]
    assert (await center.client.delete("/api/v1/numbers/155")).status_code == 204
    assert flows.for_number("155") is None
    assert (await center.client.get("/api/v1/numbers/155")).status_code == 404


async def test_a_team_or_skill_in_use_cannot_go(center: Center) -> None:
    assert (await _apply(center, WHOLE)).status_code == 200
    team = await center.client.put("/api/v1/teams/nights", json={"name": "Night shift"})
    assert team.status_code == 201, team.text
    assert team.json() == {"id": "nights", "name": "Night shift", "agents": 0}
    billing = (await center.client.get("/api/v1/teams/billing")).json()
    assert billing == {"id": "billing", "name": "Billing desk", "agents": 1}
    busy = await center.client.delete("/api/v1/teams/billing")
    assert busy.status_code == 409
    assert busy.json()["problems"] == ["agents.anna.team: no team 'billing'"]
    assert (await center.client.delete("/api/v1/teams/nights")).status_code == 204
    skill = (await center.client.get("/api/v1/skills/billing")).json()
    assert skill == {
        "id": "billing",
        "description": "invoices and payments",
        "agents": 1,
        "queues": ["billing", "billing_tier2"],
    }
    assert (await center.client.delete("/api/v1/skills/billing")).status_code == 409


# -- flow versions -----------------------------------------------------------------------

MENU_V2 = MENU.replace("version: 1", "version: 2").replace("sound:hello-world", "sound:beep")


async def test_a_flow_version_is_uploaded_activated_and_rolled_back(center: Center) -> None:
    flows = center.context.flows
    client = center.client
    headers = {"Content-Type": "application/yaml"}
    url = "/api/v1/ivr/flows/menu"
    stored = await client.post(f"{url}/versions", content=MENU_V2, headers=headers)
    assert stored.status_code == 201, stored.text
    assert flows.flows["menu"].version == 1  # stored, not in force
    again = await client.post(f"{url}/versions", content=MENU_V2, headers=headers)
    assert again.status_code == 409
    other = MENU_V2.replace("sound:beep", "sound:beep2")
    taken = await client.post(f"{url}/versions", content=other, headers=headers)
    assert taken.status_code == 422
    assert "version 2 is taken by other content" in taken.json()["problems"][0]
    broken = await client.post(
        f"{url}/versions", content=MENU_V2.replace("version: 2", "version: 3").replace(
            "next: billing", "next: nowhere"), headers=headers)  # fmt: skip
    assert broken.status_code == 422
    assert broken.json()["problems"][0].startswith("menu:9: ")  # the line of `next`

    activated = await client.post(f"{url}/versions/2/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["diff"] == ["~ flow menu: nodes, version"]
    assert flows.flows["menu"].version == 2
    assert (center.folder / "flows" / "menu.yaml").read_text() == MENU_V2
    listed = (await client.get(f"{url}/versions")).json()
    assert [(v["version"], v["in_force"]) for v in listed] == [(2, True), (1, False)]

    back = await client.post(f"{url}/rollback")
    assert back.status_code == 200, back.text
    assert flows.flows["menu"].version == 1
    assert (center.folder / "flows" / "menu.yaml").read_text() == MENU
    assert (await client.get(f"{url}/versions/1")).json()["text"] == MENU
    forth = await client.post(f"{url}/rollback")  # back to the one before: 2
    assert forth.status_code == 200
    assert flows.flows["menu"].version == 2
    assert (await client.post("/api/v1/ivr/flows/nothing/rollback")).status_code == 404


# -- the command line, against the service running -----------------------------------------


@contextlib.asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[str]:
    """The API on a free loopback port, in this event loop; its URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _cli(url: str, token: str, *argv: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "ARI_APP_TOKEN": token,
        "ARI_APP_ARI_PASSWORD": "unused",
        "ARI_APP_AMI_PASSWORD": "unused",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_app", "config", *argv, "--url", url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_line_checks_applies_and_exports_the_center(
    center: Center, tmp_path: Path
) -> None:
    whole = tmp_path / "center.yaml"
    whole.write_text(yaml.safe_dump(WHOLE, sort_keys=False))
    broken = tmp_path / "broken.yaml"
    broken.write_text(whole.read_text().replace("team: sales", "team: nowhere"))
    line = broken.read_text().splitlines().index("    team: nowhere") + 1
    async with _serving(center.app) as url:
        before = await center.snapshot()
        code, out, err = await _cli(url, center.token, "apply", str(broken))
        assert code == 1, err
        assert out.splitlines() == [f"{broken}:{line}: agents.bob.team: no team 'nowhere'"]
        assert "nothing was changed" in err
        assert await center.snapshot() == before

        code, out, err = await _cli(url, center.token, "check", str(broken), "--offline")
        assert (code, out.splitlines()) == (
            1,
            [f"{broken}:{line}: agents.bob.team: no team 'nowhere'"],
        )
        code, out, err = await _cli(url, "", "check", str(whole), "--offline")  # no token
        assert (code, err.strip()) == (0, "fine: 15 item(s), checked alone")

        code, out, err = await _cli(url, center.token, "check", str(whole))
        assert code == 0, err
        assert "+ agent anna" in out.splitlines()
        assert "would change: 10 item(s)" in err
        assert await center.snapshot() == before

        code, out, err = await _cli(url, center.token, "apply", str(whole))
        assert code == 0, err
        assert "~ flow menu: nodes, version" in out.splitlines()
        assert len([x for x in out.splitlines() if x.startswith("agent anna: SIP password")]) == 1
        after = await center.snapshot()
        code, out, err = await _cli(url, center.token, "apply", str(whole))
        assert (code, out, err.strip()) == (0, "", "nothing to change")

        exported = tmp_path / "exported.yaml"
        code, _, err = await _cli(url, center.token, "export", "-o", str(exported))
        assert code == 0, err
        code, out, err = await _cli(url, center.token, "apply", str(exported))
        assert (code, out, err.strip()) == (0, "", "nothing to change")
        assert await center.snapshot() == after
        code, _, err = await _cli(url, "not-a-token", "export")
        assert code == 1
        assert "401" in err


async def test_a_dialplan_that_no_longer_reaches_a_number_of_the_table_is_refused(
    center: Center,
) -> None:
    assert (
        await center.client.put("/api/v1/numbers/155", json={"flow": "menu"})
    ).status_code == 201
    desk = center.context.dialplan
    assert desk is not None
    sources = desk.sources()
    assert (await desk.check(sources)).problems == []
    narrowed = sources["ari_app.conf"].replace("exten => _1XX,", "exten => _10X,")
    problems = (await desk.check({**sources, "ari_app.conf": narrowed})).problems
    assert any("number 155 (flow menu) is not reached from from-carrier" in p for p in problems)


async def test_the_demo_center_exported_as_json_applies_to_itself(center: Center) -> None:
    """Dates, schedules, lists and every node kind of the demo flow survive JSON."""
    demo = DEMO_QUEUES_FILE.parent / "flows" / "demo.yaml"
    shutil.copyfile(demo, center.folder / "flows" / "demo.yaml")
    assert (await center.context.flows.reload()).problems == []
    exported = (await center.client.get("/api/v1/config")).json()
    assert exported["flows"]["demo"]["schedules"]["office"]["holidays"][0] == "2026-12-25"
    before = await center.snapshot()
    applied = await _apply(center, exported)
    assert applied.status_code == 200, applied.text
    assert applied.json()["changes"] == []
    assert await center.snapshot() == before


async def test_a_new_flow_never_takes_the_file_of_another(center: Center) -> None:
    """A new flow's file never replaces a file already in the flows folder, even one that
    holds no flow (a file ops left there, refused at every reload)."""
    (center.folder / "flows" / "other.yaml").write_text("not: a flow\n")  # refused, kept
    document = {"flows": {**(await center.client.get("/api/v1/config")).json()["flows"],
                          "other": {"flow": "other", "version": 1, "start": "bye",
                                    "nodes": {"bye": {"kind": "hangup"}}}}}  # fmt: skip
    applied = await _apply(center, document)
    assert applied.status_code == 200, applied.text
    assert (center.folder / "flows" / "other.yaml").read_text() == "not: a flow\n"
    assert "flow: other" in (center.folder / "flows" / "other-2.yaml").read_text()
    assert center.context.flows.flows["other"].version == 1


async def test_two_uploads_of_one_version_at_once_store_one_and_refuse_the_other(
    center: Center,
) -> None:
    headers = {"Content-Type": "application/yaml"}
    url = "/api/v1/ivr/flows/menu/versions"
    texts = [MENU_V2, MENU_V2.replace("sound:beep", "sound:beep2")]
    replies = await asyncio.gather(
        *(center.client.post(url, content=text, headers=headers) for text in texts)
    )
    assert sorted(reply.status_code for reply in replies) == [201, 422]
    stored = (await center.client.get(f"{url}/2")).json()["text"]
    assert stored == texts[[reply.status_code for reply in replies].index(201)]
