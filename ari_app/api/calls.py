"""Call records; a call's transfer to another agent, and hold."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from ari_app.adapters.tables import CallPublic
from ari_app.api.agents import AgentId
from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding, team_agents
from ari_app.api.pages import Page
from ari_app.domain.acd import TransferRefused
from ari_app.domain.interaction import agents_of
from ari_app.domain.users import ADMIN, AGENT, REPORTING, SUPERVISOR, Principal, may_act_for_agent
from ari_app.services.acd import HoldRefused

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
Readers = Annotated[Principal, holding(ADMIN, SUPERVISOR, REPORTING)]
Handlers = Annotated[Principal, holding(ADMIN, SUPERVISOR, AGENT)]  # each with their scope


class CallPage(BaseModel):
    items: list[CallPublic]
    total: int
    limit: int
    offset: int


@router.get("")
async def list_calls(
    ctx: Context,
    who: Readers,
    page: Page,
    live: Annotated[bool, Query()] = False,
) -> CallPage:
    """Calls, newest first (`live=true`: those going on now); a supervisor's, those their
    teams' agents had or have a part in."""
    agents = await team_agents(ctx, who)
    talking = (
        [cid for cid, rec in ctx.interactions.records.items() if set(agents_of(rec)) & agents]
        if agents is not None
        else []
    )
    records, total = await ctx.calls.page(
        limit=page.limit, offset=page.offset, agents=agents, talking=talking, live=live
    )
    items = [CallPublic.model_validate(record, from_attributes=True) for record in records]
    return CallPage(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{call_id}")
async def get_call(ctx: Context, who: Readers, call_id: str) -> CallPublic:
    record = await ctx.calls.get(call_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_id!r}")
    await _sees(ctx, who, call_id)
    return CallPublic.model_validate(record, from_attributes=True)


async def _sees(ctx: ApiContext, who: Principal, *call_ids: str) -> None:
    """403 unless `who` may read the call (known by any of `call_ids`: a callback's and
    its call's): a supervisor, one their teams' agents had a part in or talk on now (its
    record still open); the other readers, any."""
    agents = await team_agents(ctx, who)
    if agents is None:
        return
    for call_id in call_ids:
        live = ctx.interactions.records.get(call_id)
        if live is not None and agents_of(live) & agents:
            return
        if await ctx.calls.answered_by(call_id, agents):
            return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, f"call {call_ids[0]!r} is not of this supervisor's teams"
    )


class Candidate(BaseModel):
    agent_id: str
    name: str
    score: int
    idle_seconds: float


class RoutingPublic(BaseModel):
    """Why the call went to this agent: the step, who was considered, and why this one."""

    at: datetime
    agent_id: str
    queue: str
    step: int
    requirement: str
    strategy: str
    free_agents: int
    qualified: int
    waiting_calls: int
    candidates: list[Candidate]
    why: str


@router.get("/{call_id}/routing")
async def call_routing(ctx: Context, who: Readers, call_id: str) -> list[RoutingPublic]:
    """Every time the ACD gave this call to an agent (a missed ring makes a second one).
    A callback request's id (`cb-<call>`) has its own decisions."""
    decisions = await ctx.routing.for_call(call_id)
    if not decisions and await ctx.calls.get(call_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_id!r}")
    await _sees(ctx, who, call_id, call_id.removeprefix("cb-"))
    return [RoutingPublic.model_validate(decision, from_attributes=True) for decision in decisions]


class TransferAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId


class TransferStarted(BaseModel):
    call_id: str
    agent_id: str  # whose phone rings now


def _handles(ctx: ApiContext, who: Principal, call_id: str) -> None:
    """403 unless `who` may handle the call: an admin any, a supervisor their teams'
    agents' conversations, an agent their own. A call in no conversation is left to the
    ACD, which says why it refuses."""
    talk = ctx.acd.conversation(call_id)
    if talk is not None and not may_act_for_agent(who, talk.agent_id, talk.team):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"call {call_id!r} is not one of this {who.role}'s calls"
        )


async def read_handling(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any] | None:
    """What the audit keeps of a call being handled: its agent and whether on hold."""
    held = ctx.acd.acd.calls.get(key["call_id"])
    if held is None:
        return None
    return {
        "agent_id": held.agent_id,
        "talking": held.talking,
        "on_hold": ctx.acd.on_hold(key["call_id"]),
    }


@router.post(
    "/{call_id}/transfer",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[audited(read_handling)],
)
async def transfer_call(
    ctx: Context, who: Handlers, call_id: str, body: TransferAsk
) -> TransferStarted:
    """Hand the call's conversation to another (available) agent: the agent talking now
    goes into wrap-up, the caller hears music until the new agent answers, and the
    recording goes on with a new segment. Not answered: the call waits again in its
    queue, at its place."""
    _handles(ctx, who, call_id)
    try:
        ctx.acd.transfer(call_id, body.agent_id, f"api {who.actor}")
    except TransferRefused as exc:
        code = 409 if call_id in ctx.acd.acd.calls else status.HTTP_404_NOT_FOUND
        raise HTTPException(code, str(exc)) from None
    return TransferStarted(call_id=call_id, agent_id=body.agent_id)


class HoldState(BaseModel):
    call_id: str
    on_hold: bool  # asked for: the change is made in order with the call's other work


async def _hold(ctx: ApiContext, who: Principal, call_id: str, on: bool) -> HoldState:
    _handles(ctx, who, call_id)
    try:
        ctx.acd.hold(call_id, on, f"api {who.actor}")
    except HoldRefused as exc:
        code = 409 if call_id in ctx.acd.acd.calls else status.HTTP_404_NOT_FOUND
        raise HTTPException(code, str(exc)) from None
    return HoldState(call_id=call_id, on_hold=on)


@router.post(
    "/{call_id}/hold", status_code=status.HTTP_202_ACCEPTED, dependencies=[audited(read_handling)]
)
async def hold_call(ctx: Context, who: Handlers, call_id: str) -> HoldState:
    """Put the caller on hold: they hear music, the agent and caller no longer hear each
    other, and the hold time counts in the interaction (AHT includes it)."""
    return await _hold(ctx, who, call_id, True)


@router.delete(
    "/{call_id}/hold", status_code=status.HTTP_202_ACCEPTED, dependencies=[audited(read_handling)]
)
async def resume_call(ctx: Context, who: Handlers, call_id: str) -> HoldState:
    """Take the caller off hold: caller and agent hear each other again."""
    return await _hold(ctx, who, call_id, False)
