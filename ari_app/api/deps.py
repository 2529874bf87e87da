"""Dependencies of the API routes: the stores and the bearer-token check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ari_app.adapters.agent_store import RoutingStore
from ari_app.adapters.cdr_store import CdrStore
from ari_app.adapters.db import CallStore, TokenStore
from ari_app.adapters.tables import ApiToken
from ari_app.services import tokens
from ari_app.services.acd import AcdService
from ari_app.services.agents import AgentDirectory
from ari_app.services.flows import FlowRegistry
from ari_app.services.interactions import InteractionLog
from ari_app.services.kpis import KpiReports
from ari_app.services.live import LiveService
from ari_app.services.monitor import MonitorService
from ari_app.services.queues import QueueBook
from ari_app.services.supervisors import SupervisorDirectory


class HealthReport(Protocol):
    async def __call__(self) -> tuple[bool, dict[str, Any]]: ...


@dataclass(frozen=True)
class ApiContext:
    calls: CallStore
    tokens: TokenStore
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


def context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]


Context = Annotated[ApiContext, Depends(context)]
_bearer = HTTPBearer(auto_error=False)


async def caller_token(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = await tokens.check(ctx.tokens, credentials.credentials)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the token is unknown, expired or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


Authorized = Annotated[ApiToken, Depends(caller_token)]


def holding(*roles: str) -> Any:
    """A dependency: the caller's token, if its role is one of `roles` (else 403)."""

    async def check(token: Authorized) -> ApiToken:
        if token.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this is for {' and '.join(roles)} tokens"
            )
        return token

    return Depends(check)
