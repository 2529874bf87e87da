"""The service parts the API routes need, built on a test database (ARI behind a mock)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.agent_store import AgentStore, CallbackStore, RoutingStore
from ari_app.adapters.ari import AriRest
from ari_app.adapters.cdr_store import CdrStore
from ari_app.adapters.center_store import CenterStore
from ari_app.adapters.db import CallStore, TokenStore, Writer
from ari_app.adapters.interaction_store import InteractionStore
from ari_app.adapters.kpi_store import KpiStore
from ari_app.adapters.monitor_store import MonitorStore, SupervisorStore
from ari_app.adapters.recording_store import RecordingStore
from ari_app.adapters.user_store import AuditStore, UserStore
from ari_app.api.app import create_api
from ari_app.api.deps import ApiContext, HealthReport
from ari_app.domain.acd import Acd
from ari_app.domain.kpi import Targets
from ari_app.services import tokens
from ari_app.services.acd import AcdService
from ari_app.services.agents import AgentDirectory
from ari_app.services.center import CenterDesk
from ari_app.services.dialplan import DialplanDesk
from ari_app.services.flow_versions import FlowVersions
from ari_app.services.flows import FlowRegistry
from ari_app.services.interactions import InteractionLog
from ari_app.services.kpis import KpiReports
from ari_app.services.live import LiveService
from ari_app.services.monitor import MonitorService
from ari_app.services.queues import QueueBook, read_queues
from ari_app.services.recordings import RecordingService
from ari_app.services.supervisors import SupervisorDirectory
from ari_app.services.users import UserDirectory

DEMO_QUEUES = Path(__file__).resolve().parents[2] / "dialplan" / "queues.yaml"


def queue_parts(
    engine: AsyncEngine, ari: AriRest, folder: Path, flows: FlowRegistry
) -> tuple[AcdService, QueueBook]:
    """The ACD and the queue book over a copy of the demo queues file in `folder`."""
    path = folder / "queues.yaml"
    shutil.copyfile(DEMO_QUEUES, path)
    queues, problems = read_queues(path)
    assert queues is not None, problems
    stores = AgentStore(engine), RoutingStore(engine), CallbackStore(engine)
    acd = AcdService(Acd(dict(queues)), ari, "ari-app", *stores)
    acd.recorder = RecordingService(
        ari, RecordingStore(engine), folder / "recordings", spawn=_refuse_spawn
    )
    book = QueueBook(path, queues, acd.set_queues, (acd.queue_in_use, flows.queue_in_use))
    return acd, book


def monitor_parts(
    engine: AsyncEngine, ari: AriRest, token_store: TokenStore, acd: AcdService
) -> tuple[SupervisorDirectory, MonitorService]:
    supervisors = SupervisorDirectory(SupervisorStore(engine), token_store, ari, UserStore(engine))
    monitor = MonitorService(ari, "ari-app", MonitorStore(engine), supervisors, acd, _refuse_spawn)
    return supervisors, monitor


def _refuse_spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    """The API routes start no background work; one that tries fails the test."""
    coroutine.close()
    raise AssertionError("a background task was started")


async def _healthy() -> tuple[bool, dict[str, object]]:
    return True, {}


def api_context(
    engine: AsyncEngine,
    ari: AriRest,
    folder: Path,
    flows: FlowRegistry,
    writer: Writer | None = None,
    health: HealthReport = _healthy,
) -> ApiContext:
    """The API's parts over the test database, as the service builds them."""
    token_store = TokenStore(engine)
    acd, queues = queue_parts(engine, ari, folder, flows)
    dialplan = folder / "dialplan"  # a copy of ours; no Asterisk to deploy it into
    dialplan.mkdir(exist_ok=True)
    for path in DEMO_QUEUES.parent.glob("*.conf"):
        shutil.copyfile(path, dialplan / path.name)
    supervisors, monitor = monitor_parts(engine, ari, token_store, acd)
    agents = AgentDirectory(AgentStore(engine), ari)
    desk = DialplanDesk(dialplan, "ari-app", folder / "flows", assigned=lambda: flows.assigned)
    center = CenterDesk(
        CenterStore(engine),
        agents,
        flows,
        queues,
        queue_busy=acd.queue_in_use,
        reached=desk.reaches,
    )
    return ApiContext(
        calls=CallStore(engine),
        users=UserDirectory(UserStore(engine), token_store, AgentStore(engine), supervisors),
        audit=AuditStore(engine),
        health=health,
        flows=flows,
        agents=agents,
        routing=RoutingStore(engine),
        acd=acd,
        queues=queues,
        supervisors=supervisors,
        monitor=monitor,
        **records(engine, acd, writer),
        center=center,
        versions=FlowVersions(center.store, center),
        dialplan=desk,
    )


@contextlib.asynccontextmanager
async def api_client(
    engine: AsyncEngine, ari: AriRest, folder: Path, flows: FlowRegistry
) -> AsyncIterator[tuple[httpx.AsyncClient, AcdService]]:
    """The admin API over the test database, with the admin token; and its ACD."""
    token = await tokens.first_admin_token(TokenStore(engine), UserStore(engine))
    writer = Writer(engine)
    context = api_context(engine, ari, folder, flows, writer)
    acd = context.acd
    transport = httpx.ASGITransport(app=create_api(context))
    headers = {"Authorization": f"Bearer {token}"}
    writing = asyncio.create_task(writer.run())  # the interactions' rows, as in the service
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as c:
            yield c, acd
    finally:
        writing.cancel()


class PushedConfig:
    """What Asterisk was told through ARI push configuration; `down` makes it refuse."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, str]] = {}
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused")
        parts = request.url.path.split("/")  # /ari/asterisk/config/dynamic/res_pjsip/TYPE/ID
        key = (parts[-2], parts[-1])
        if request.method == "PUT":
            fields = json.loads(request.content)["fields"]
            self.objects[key] = {f["attribute"]: f["value"] for f in fields}
            return httpx.Response(200, json=[])
        if request.method == "DELETE":
            return httpx.Response(204 if self.objects.pop(key, None) else 404)
        return httpx.Response(404)


def records(engine: AsyncEngine, acd: AcdService, writer: Writer | None = None) -> dict[str, Any]:
    """The API's record keepers over the test database: CDRs, interactions, KPIs, live."""
    store = InteractionStore(engine)
    log = InteractionLog(store, writer or Writer(engine))
    log.live = LiveService(acd.acd, None)
    acd.interactions = log
    return {
        "cdrs": CdrStore(engine),
        "interactions": log,
        "kpis": KpiReports(KpiStore(engine), Targets),
        "live": log.live,
    }


# property tests through a real database: no deadline (a statement may wait on the
# server), no shrinking (each example costs round trips), fixtures shared by examples
THROUGH_THE_DATABASE = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def drained(writer: Writer, timeout: float = 10.0) -> None:
    """Run the writer until what was submitted so far is written."""
    task = asyncio.create_task(writer.run())
    try:
        await writer.drain(timeout=timeout)
    finally:
        task.cancel()


def same_figures(got: object, expected: object, where: str) -> None:
    """Report bodies equal, floats to a part in a billion (sums in another order)."""
    if isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict), where
        assert got.keys() == expected.keys(), where
        for name, value in expected.items():
            same_figures(got[name], value, f"{where}.{name}")
    elif isinstance(expected, list):
        assert isinstance(got, list), where
        assert len(got) == len(expected), (where, got, expected)
        for n, (one, other) in enumerate(zip(got, expected, strict=True)):
            same_figures(one, other, f"{where}[{n}]")
    else:
        assert got == expected, where
