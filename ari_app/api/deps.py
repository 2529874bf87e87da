"""Dependencies of the API routes: the stores, who asks (their bearer token) and whether
their role may."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ari_app.adapters.agent_store import RoutingStore
from ari_app.adapters.cdr_store import CdrStore
from ari_app.adapters.db import CallStore
from ari_app.adapters.user_store import AuditStore
from ari_app.domain.users import SUPERVISOR, Principal
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
from ari_app.services.queues import QueueBook
from ari_app.services.supervisors import SupervisorDirectory
from ari_app.services.users import UserDirectory


class HealthReport(Protocol):
    async def __call__(self) -> tuple[bool, dict[str, Any]]: ...


@dataclass(frozen=True)
class ApiContext:
    calls: CallStore
    users: UserDirectory
    audit: AuditStore
    health: HealthReport
    flows: FlowRegistry
    agents: AgentDirectory
    routing: RoutingStore
    acd: AcdService
    queues: QueueBook
    supervisors: SupervisorDirectory
    monitor: MonitorService
    cdrs: CdrStore
    interactions: InteractionLog
    kpis: KpiReports
    live: LiveService
    center: CenterDesk
    versions: FlowVersions
    dialplan: DialplanDesk | None = None


def context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]


Context = Annotated[ApiContext, Depends(context)]
_bearer = HTTPBearer(auto_error=False)


async def caller(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = await ctx.users.principal(credentials.credentials)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the token is unknown, expired or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


Authorized = Annotated[Principal, Depends(caller)]


def holding(*roles: str) -> Any:
    """A dependency: who asks, if their role is one of `roles` (else 403)."""

    async def check(who: Authorized) -> Principal:
        if who.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this is for {', '.join(roles)} users")
        return who

    return Depends(check)


async def team_agents(ctx: ApiContext, who: Principal) -> set[str] | None:
    """The agents whose records a supervisor sees (their teams'); None: every agent's."""
    if who.role != SUPERVISOR:
        return None
    return {r.id for r in await ctx.agents.store.all() if r.team and r.team in who.teams}
