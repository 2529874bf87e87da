"""The two contact centers the load benchmark compares, doing the same call on one Asterisk.

A, the baseline: Asterisk alone. The dialplan answers, plays the menu prompt, reads one
digit and puts the caller in an app_queue queue (`ari-app-bench` in queues.conf) whose
members are the agents' phones.

B, ari_app: the service runs as its own process; its IVR flow answers, plays the same
prompt as a menu node and hands the caller to a skill queue whose agents are the same
phones, created and logged in through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ari_app.adapters.ami import AmiClient
from tests.integration.telephony import Service, center_service

PROMPT = "vm-enter-num-to-call"  # about two seconds; the caller presses 1 during it
# what the service logs when a command of a call failed: that call is a failed call
TROUBLES = ("acd_command_failed", "command_refused", "command_unsent")
BASELINE_NUMBER = "299"  # not a service number (_1XX): the carrier's own context has it
SERVICE_NUMBER = "198"
BASELINE_QUEUE = "ari-app-bench"
BASELINE_CONTEXT = "from-carrier"
BASELINE_DIALPLAN = [
    ("Answer", ""),
    ("Read", f"choice,{PROMPT},1,,1,5"),
    ("GotoIf", '$["${choice}" = "1"]?5'),
    ("Hangup", ""),
    ("Queue", f"{BASELINE_QUEUE},,,,"),
    ("Hangup", ""),
]

SERVICE_FLOW = f"""
flow: bench
version: 1
numbers: ["{SERVICE_NUMBER}"]
start: menu
nodes:
  menu:
    kind: menu
    prompts: [sound:{PROMPT}]
    options: {{"1": queue}}
  queue: {{kind: queue, queue: bench}}
"""
SERVICE_QUEUES = """
queues:
  bench:
    skills: {bench: 1}
    strategy: longest_idle
    announce_every: null
"""


@dataclass
class Center:
    """What the benchmark needs of a center: its number and the processes to measure."""

    key: str
    title: str
    number: str
    service: Service | None = None
    agents: list[str] = field(default_factory=list)  # their phones' SIP users

    @property
    def service_pid(self) -> int | None:
        return self.service.process.pid if self.service is not None else None

    def log_length(self) -> int:
        return len(self.service.lines) if self.service is not None else 0

    def troubles(self, since: int) -> list[str]:
        """The service's reports, logged since then, of a call it could not carry out."""
        if self.service is None:
            return []
        return [line for line in self.service.lines[since:] if any(t in line for t in TROUBLES)]

    async def event_loop(self) -> dict[str, Any] | None:
        """The service's event-loop lag counts (B only)."""
        if self.service is None:
            return None
        _, body = await self.service.healthz()
        return dict(body["event_loop"])

    async def all_available(self, timeout: float = 60.0) -> None:
        """B: wait until every agent is logged in, reachable and available again, and the
        service has written the run's records (the next run starts on a quiet service)."""
        if self.service is None:
            return
        waiting: list[dict[str, Any]] = []
        try:
            async with self.service.client() as client, asyncio.timeout(timeout):
                while True:
                    rows = (await client.get("/api/v1/agents")).json()
                    waiting = [
                        row
                        for row in rows
                        if row["state"] != "available" or row["reachable"] is not True
                    ]
                    if not waiting:
                        _, health = await self.service.healthz()
                        if not health["database"]["backlog"]:
                            return
                        waiting = [{"records still to write": health["database"]["backlog"]}]
                    await asyncio.sleep(0.5)
        except TimeoutError:
            raise RuntimeError(f"agents not available in {timeout:g} s: {waiting[:3]}") from None


def agent_ids(count: int) -> list[str]:
    return [f"bench-{index:03d}" for index in range(1, count + 1)]


@contextlib.asynccontextmanager
async def service_center(env: dict[str, str], folder: Path, agents: int) -> AsyncIterator[Center]:
    """B: the service with the benchmark's flow and queue, and `agents` agents logged in
    (their phones still need a contact: `Center.agents` names them)."""
    async with center_service(
        {"ARI_APP_LOG_LEVEL": "warning", **env},
        folder,
        {"bench.yaml": SERVICE_FLOW},
        SERVICE_QUEUES,
    ) as service:
        center = Center("B", "ari_app", SERVICE_NUMBER, service)
        async with service.client() as client:
            client.timeout = httpx.Timeout(30.0)
            for agent_id in agent_ids(agents):
                body = {"id": agent_id, "name": agent_id, "skills": {"bench": 5}}
                created = await client.post("/api/v1/agents", json={**body, "wrap_up_seconds": 0})
                if created.status_code != 201:
                    raise RuntimeError(f"agent {agent_id} not created: {created.text}")
                center.agents.append(created.json()["sip"]["user"])
                state = {"state": "available"}
                reply = await client.post(f"/api/v1/agents/{agent_id}/state", json=state)
                if reply.status_code >= 300:
                    raise RuntimeError(f"agent {agent_id} not logged in: {reply.text}")
        try:
            yield center
        finally:  # their phones go from Asterisk too
            (folder / "service.log").write_text("\n".join(service.lines))
            async with service.client() as client:
                # the service may still be busy with the run's records: patience
                client.timeout = httpx.Timeout(60.0)
                for agent_id in agent_ids(agents):
                    await client.delete(f"/api/v1/agents/{agent_id}")


@contextlib.asynccontextmanager
async def baseline_center(env: dict[str, str], members: list[str]) -> AsyncIterator[Center]:
    """A: the baseline's extension in the carrier's context and the agents' phones as members
    of the app_queue queue, through AMI; both taken away afterwards."""
    ami = AmiClient(
        env["ARI_APP_AMI_HOST"],
        int(env["ARI_APP_AMI_PORT"]),
        env["ARI_APP_AMI_USER"],
        env["ARI_APP_AMI_PASSWORD"],
        events="off",  # actions only: the baseline carries no extra event consumer
    )
    runner = asyncio.create_task(ami.run())
    try:
        await asyncio.wait_for(ami.connected.wait(), 15)

        async def act(**fields: str) -> None:
            reply = await ami.send_action(fields)
            if not reply.success:
                raise RuntimeError(f"AMI {fields['Action']}: {reply.get('Message')}")

        for priority, (application, data) in enumerate(BASELINE_DIALPLAN, start=1):
            await act(
                Action="DialplanExtensionAdd",
                Context=BASELINE_CONTEXT,
                Extension=BASELINE_NUMBER,
                Priority=str(priority),
                Application=application,
                ApplicationData=data,
                Replace="yes",
            )
        for member in members:
            await act(Action="QueueAdd", Queue=BASELINE_QUEUE, Interface=f"PJSIP/{member}")
        try:
            yield Center("A", "dialplan + app_queue", BASELINE_NUMBER)
        finally:
            for member in members:
                await act(Action="QueueRemove", Queue=BASELINE_QUEUE, Interface=f"PJSIP/{member}")
            await act(
                Action="DialplanExtensionRemove",
                Context=BASELINE_CONTEXT,
                Extension=BASELINE_NUMBER,
            )
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await ami.aclose()
