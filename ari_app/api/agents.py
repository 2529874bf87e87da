"""Agents: their profiles and phones, and their state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.fields import Name
from ari_app.api.fields import NoTeam as Team
from ari_app.api.pages import Page
from ari_app.domain import agents as agent_logic
from ari_app.domain.agents import AgentProfile, AgentState
from ari_app.domain.users import ADMIN, AGENT, SUPERVISOR, Principal, may_act_for_agent
from ari_app.services.agents import AgentNotFound, AgentView
from ari_app.services.phones import REALM, AsteriskRefused

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
Admin = Annotated[Principal, holding(ADMIN)]
Watchers = Annotated[Principal, holding(ADMIN, SUPERVISOR)]
Anyone = Annotated[Principal, holding(ADMIN, SUPERVISOR, AGENT)]  # each with their scope

AgentId = Annotated[str, StringConstraints(pattern=f"^{agent_logic.AGENT_ID.pattern}$")]
SkillName = Annotated[str, StringConstraints(pattern=f"^{agent_logic.SKILL_NAME.pattern}$")]
Reason = Annotated[str, StringConstraints(pattern=f"^{agent_logic.REASON.pattern}$")]
Level = Annotated[int, Field(ge=1, le=10)]
Skills = Annotated[dict[SkillName, Level], Field(max_length=50)]
WrapUp = Annotated[int, Field(ge=0, le=3600)]
Recording = Literal["queue", "always", "never"]  # the agent's recording policy


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: AgentId
    name: Name
    team: Team = ""
    skills: Skills = {}
    wrap_up_seconds: WrapUp = 30
    recording: Recording = "queue"


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: Name | SkipJsonSchema[None] = None
    team: Team | SkipJsonSchema[None] = None
    skills: Skills | SkipJsonSchema[None] = None
    wrap_up_seconds: WrapUp | SkipJsonSchema[None] = None
    recording: Recording | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _something(self) -> AgentUpdate:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one of name, team, skills, wrap_up_seconds, recording")
        return self


class AgentPublic(BaseModel):
    id: str
    name: str
    team: str
    skills: dict[str, int]
    wrap_up_seconds: int
    recording: str
    sip_user: str
    state: AgentState
    since: datetime | None
    reason: str
    pending: AgentState | None
    pending_reason: str
    missed: int
    call_id: str | None
    reachable: bool  # the phone answers Asterisk (registered and qualified)


class SipAccount(BaseModel):
    """What the agent's phone needs; the password is shown here once and never again."""

    user: str
    password: str
    realm: str


class AgentCreated(AgentPublic):
    sip: SipAccount


class Working(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["available", "logged_out"]


class Pausing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["paused"]
    reason: Reason  # a pause has one, and only a pause


StateChange = Annotated[Working | Pausing, Field(discriminator="state")]


def _public(view: AgentView) -> AgentPublic:
    record, state = view.record, view.status
    return AgentPublic(
        id=record.id,
        name=record.name,
        team=record.team,
        skills=dict(record.skills),
        wrap_up_seconds=record.wrap_up_seconds,
        recording=record.recording,
        sip_user=f"agent-{record.id}",
        state=state.state,
        since=state.since,
        reason=state.reason,
        pending=state.pending,
        pending_reason=state.pending_reason,
        missed=state.missed,
        call_id=state.call_id,
        reachable=state.reachable,
    )


@asynccontextmanager
async def _answering() -> AsyncIterator[None]:
    """The services' refusals as HTTP answers; each means nothing was changed."""
    try:
        yield
    except AgentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent '{exc}'") from exc
    except AsteriskRefused as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"Asterisk did not take the change, so nothing was changed: {exc}",
        ) from exc
    except agent_logic.AgentStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


async def read_agent(ctx: ApiContext, key: dict[str, object]) -> AgentPublic:
    """What the audit keeps of an agent: their profile and state."""
    async with _answering():
        return _public(await ctx.agents.view(str(key.get("agent_id") or key["id"])))


async def _theirs(ctx: ApiContext, who: Principal, agent_id: str) -> AgentView:
    """The agent, if `who` may see and change them (else 403; 404 for no such agent)."""
    async with _answering():
        view = await ctx.agents.view(agent_id)
    if not may_act_for_agent(who, agent_id, view.record.team):
        whose = "themself" if who.role == AGENT else "their teams' agents"
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {who.role} may act for {whose} only")
    return view


@router.get("")
async def list_agents(ctx: Context, who: Watchers, page: Page) -> list[AgentPublic]:
    """Every agent (for a supervisor, their teams' agents), by id."""
    views = [
        v for v in await ctx.agents.views() if may_act_for_agent(who, v.record.id, v.record.team)
    ]
    views.sort(key=lambda v: v.record.id)
    return [_public(v) for v in views[page.offset : page.offset + page.limit]]


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[audited(read_agent)])
async def create_agent(ctx: Context, _: Admin, body: AgentCreate) -> AgentCreated:
    """Add an agent; their phone can register at once with the SIP account returned."""
    profile = AgentProfile(
        body.id, body.name, body.team, body.skills, body.wrap_up_seconds, body.recording
    )
    async with _answering():
        password = await ctx.agents.create(profile)
        view = await ctx.agents.view(body.id)
    sip = SipAccount(user=profile.endpoint, password=password, realm=REALM)
    return AgentCreated(**_public(view).model_dump(), sip=sip)


@router.get("/{agent_id}")
async def get_agent(ctx: Context, who: Anyone, agent_id: str) -> AgentPublic:
    """An agent's profile and state: admins any, supervisors their teams', an agent
    their own."""
    return _public(await _theirs(ctx, who, agent_id))


@router.patch("/{agent_id}", dependencies=[audited(read_agent)])
async def update_agent(ctx: Context, _: Admin, agent_id: str, body: AgentUpdate) -> AgentPublic:
    async with _answering():
        await ctx.agents.update(agent_id, **body.model_dump(exclude_none=True))
        return _public(await ctx.agents.view(agent_id))


@router.post("/{agent_id}/password", dependencies=[audited(read_agent)])
async def new_password(ctx: Context, _: Admin, agent_id: str) -> SipAccount:
    """A new SIP password for the agent's phone (the old one stops working)."""
    async with _answering():
        password = await ctx.agents.new_password(agent_id)
    return SipAccount(user=f"agent-{agent_id}", password=password, realm=REALM)


@router.delete(
    "/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[audited(read_agent)]
)
async def delete_agent(ctx: Context, _: Admin, agent_id: str) -> None:
    async with _answering():
        await ctx.agents.delete(agent_id)


@router.post("/{agent_id}/state", dependencies=[audited(read_agent)])
async def set_state(ctx: Context, who: Anyone, agent_id: str, body: StateChange) -> AgentPublic:
    """Log an agent in or out, pause (with a reason) or make available again. `available`
    logs in, unpauses, or ends a wrap-up early, whichever the agent's state calls for.
    Admins for any agent, supervisors for their teams' agents, an agent for themself."""
    view = await _theirs(ctx, who, agent_id)
    async with _answering():
        current = view.status.state
        event: agent_logic.AgentEvent
        if isinstance(body, Pausing):
            event = agent_logic.Pause(body.reason)
        elif body.state == "logged_out":
            event = agent_logic.LogOut()
        elif current is AgentState.LOGGED_OUT:
            event = agent_logic.LogIn()
        elif current is AgentState.WRAP_UP:
            event = agent_logic.WrapUpEnded()
        else:
            event = agent_logic.Unpause()
        await ctx.agents.change_state(agent_id, event, "api")
        return _public(await ctx.agents.view(agent_id))
