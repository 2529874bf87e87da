"""KPIs over a window, per queue, agent and interval; one call's interaction record;
the agent's disposition of a call. The definitions are in ari_app/domain/kpi.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from ari_app.adapters.interaction_store import record_row, row_sums_columns
from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding, team_agents
from ari_app.domain.interaction import agents_of
from ari_app.domain.users import ADMIN, AGENT, REPORTING, SUPERVISOR, Principal, may_act_for_agent
from ari_app.services.kpis import ReportAsk, ReportRefused

router = APIRouter(prefix="/api/v1", tags=["kpi"])

Readers = Annotated[Principal, holding(ADMIN, SUPERVISOR, REPORTING)]
Disposers = Annotated[Principal, holding(ADMIN, SUPERVISOR, AGENT)]  # each with their scope
Name = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


class Disposition(BaseModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    resolved: bool | None = None  # the matter is settled (or not): overrides the FCR test


@router.get("/kpis")
async def kpis(
    ctx: Context,
    who: Readers,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    queue: Name = None,
    agent: Name = None,
    interval: Annotated[int | None, Query()] = None,
) -> dict[str, Any]:
    """Calls offered, handled, abandoned, service level, ASA, waits, AHT, wrap-up, FCR,
    blocked rate per queue; handled, AHT and occupancy per agent (a supervisor's: their
    teams' agents); IVR containment."""
    agents = await team_agents(ctx, who)
    if agents is not None and agent is not None and agent not in agents:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"agent {agent!r} is not of this supervisor's teams"
        )
    try:
        body = await ctx.kpis.report(ReportAsk(start, end, queue, agent, interval))
    except ReportRefused as exc:
        raise HTTPException(422, str(exc)) from None
    if agents is not None:
        for part in (body, *body.get("intervals", [])):
            part["agents"] = [row for row in part["agents"] if row["agent_id"] in agents]
    return body


@router.get("/interactions/{call_id}")
async def interaction(ctx: Context, who: Readers, call_id: str) -> dict[str, Any]:
    """One customer call's interaction record (a supervisor's: one their teams' agents
    had a part in): the number dialled, the caller, the IVR
    path and outcome, the queue, wait and answer or abandon, each agent's segment with
    talk, hold and wrap-up, the disposition, the recordings, the hang-up side and
    cause."""
    record = ctx.interactions.records.get(call_id) or await ctx.interactions.store.get(call_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no interaction {call_id!r}")
    agents = await team_agents(ctx, who)
    if agents is not None and not set(agents_of(record)) & agents:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"call {call_id!r} is not of this supervisor's teams"
        )
    row = {key: value for key, value in record_row(record).items() if key not in _INTERNAL}
    call = await ctx.calls.get(call_id)  # a call back has no call row
    for name in _FROM_THE_CALL:
        row[name] = getattr(call, name) if call is not None else None
    recorder = ctx.acd.recorder
    found = await recorder.store.find(100, 0, call_id=call_id) if recorder else []
    row["recordings"] = [recording.id for recording in found]
    return row


# kept for the KPI queries and the service's own bookkeeping, not part of the record
_INTERNAL = frozenset({"updated_at", "open", *row_sums_columns()})
_FROM_THE_CALL = ("dialled", "flow", "ivr_path", "ivr_outcome", "hangup_side", "hangup_cause",
                  "hangup_cause_text")  # fmt: skip


async def read_disposition(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any] | None:
    """What the audit keeps of a disposition: the code and its time."""
    record = await ctx.interactions.get(key["call_id"])
    if record is None:
        return None
    return {"disposition": record.disposition, "resolved": record.interaction.resolved}


@router.post("/calls/{call_id}/disposition", dependencies=[audited(read_disposition)])
async def dispose(
    ctx: Context, who: Disposers, call_id: str, disposition: Disposition
) -> dict[str, Any]:
    """The agent's disposition code for a call, live or finished: an agent for their own
    calls, a supervisor for their teams' agents' calls, an admin for any."""
    found = await ctx.interactions.get(call_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no interaction {call_id!r}")
    profiles = ctx.acd.acd.profiles
    if who.role != ADMIN and not any(
        may_act_for_agent(who, agent, profiles[agent].team if agent in profiles else "")
        for agent in agents_of(found)
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"call {call_id!r} is not one of this {who.role}'s calls"
        )
    record = await ctx.interactions.dispose(call_id, disposition.code, disposition.resolved)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no interaction {call_id!r}")
    return {"call_id": call_id, "disposition": record.disposition, "resolved": disposition.resolved}


@router.get("/stats/queues")
async def live_queues(ctx: Context, _: Readers) -> list[dict[str, Any]]:
    """Each queue now: waiting, longest wait, agents by state, the last 15 min and today."""
    return ctx.live.queues()


@router.get("/stats/queues/{queue}")
async def live_queue(ctx: Context, _: Readers, queue: str) -> dict[str, Any]:
    if queue not in ctx.acd.acd.queues:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no queue {queue!r}")
    return ctx.live.queue(queue)


@router.get("/stats/agents")
async def live_agents(ctx: Context, who: Readers) -> list[dict[str, Any]]:
    """Each agent now (a supervisor's: their teams'): state, since when, pause reason."""
    agents = await team_agents(ctx, who)
    return [row for row in ctx.live.agents() if agents is None or row["agent_id"] in agents]
