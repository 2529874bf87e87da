"""CDRs and channel events as Asterisk recorded them, by call (its linkedid).

Admin, reporting and supervisor users only (a supervisor: the calls their teams'
agents answered): they hold callers' numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from ari_app.api.deps import Context, holding, team_agents
from ari_app.api.pages import Page
from ari_app.domain.users import ADMIN, REPORTING, SUPERVISOR, Principal

router = APIRouter(prefix="/api/v1", tags=["cdr"])

Allowed = Annotated[Principal, holding(ADMIN, SUPERVISOR, REPORTING)]
Call = Annotated[str | None, Query(max_length=64, description="the call's linkedid")]


class CdrPublic(BaseModel):
    uniqueid: str
    sequence: int
    linkedid: str
    channel: str
    dstchannel: str
    src: str
    dst: str
    dcontext: str
    clid: str
    lastapp: str
    lastdata: str
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billsec: int
    disposition: str
    amaflags: str
    accountcode: str
    peeraccount: str
    userfield: str
    source: str  # ami (live) or backstop (caught up from Asterisk's file)


class CelPublic(BaseModel):
    uniqueid: str
    event: str
    at: datetime
    linkedid: str
    channel: str
    caller: str
    caller_name: str
    exten: str
    context: str
    app: str
    appdata: str
    peer: str
    extra: Any


@router.get("/cdrs")
async def list_cdrs(ctx: Context, who: Allowed, page: Page, call: Call = None) -> list[CdrPublic]:
    """CDRs oldest first, one per leg; `call` keeps one call's. A supervisor's: of the
    calls their teams' agents answered."""
    agents = await team_agents(ctx, who)
    rows = await ctx.cdrs.cdrs(linkedid=call, limit=page.limit, offset=page.offset, agents=agents)
    return [CdrPublic.model_validate(row) for row in rows]


@router.get("/cel")
async def list_cel(
    ctx: Context, who: Allowed, page: Page, call: Annotated[str, Query(max_length=64)]
) -> list[CelPublic]:
    """One call's channel events, in order (a supervisor's: a call their teams' agents
    answered)."""
    agents = await team_agents(ctx, who)
    if agents is not None and not await ctx.calls.answered_by(call, agents):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"call {call!r} is not of this supervisor's teams"
        )
    rows = await ctx.cdrs.cels(linkedid=call, limit=page.limit, offset=page.offset)
    return [CelPublic.model_validate(row) for row in rows]
