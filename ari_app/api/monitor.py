"""Supervisors and monitoring: who may listen in, the sessions, and their audit rows.

Supervisors are made by admins. A monitor session is asked by a supervisor
(their own phone rings) or by an admin (naming the supervisor whose phone
rings); a supervisor may only monitor agents of their team. Supervisors see
and change their own sessions; admins see all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from ari_app.adapters.ari import AriError, AriUnreachable
from ari_app.adapters.monitor_store import SupervisorExists
from ari_app.adapters.tables import MonitorRecord, SupervisorRecord
from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.fields import Name, Team
from ari_app.api.pages import Page
from ari_app.domain.monitor import SUPERVISOR_ID, Mode, MonitorRefused, endpoint_of
from ari_app.domain.users import ADMIN, SUPERVISOR, Principal
from ari_app.services.monitor import CallNotMonitored, MonitorBusy, SessionNotFound
from ari_app.services.phones import REALM, AsteriskRefused
from ari_app.services.supervisors import SupervisorNotFound

router = APIRouter(tags=["monitoring"])

SupervisorId = Annotated[str, StringConstraints(pattern=f"^{SUPERVISOR_ID.pattern}$")]
Admin = Annotated[Principal, holding(ADMIN)]
Monitoring = Annotated[Principal, holding(ADMIN, SUPERVISOR)]


class SupervisorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: SupervisorId
    name: Name
    team: Team


class SupervisorChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    team: Team | None = None


class SupervisorPublic(BaseModel):
    id: str
    name: str
    team: str
    endpoint: str  # the SIP user of their phone


class SupervisorCreated(SupervisorPublic):
    sip_password: str  # shown once
    sip_realm: str
    token: str  # their API token (role supervisor), shown once


class MonitorAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode
    supervisor_id: SupervisorId | None = None  # an admin names whose phone rings


class MonitorChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode


class MonitorPublic(BaseModel):
    id: str
    call_id: str
    agent_id: str | None
    supervisor_id: str
    requested_by: str
    source: str  # api, phone
    state: str  # ringing, active, ended, refused
    mode: str | None  # the mode now (or asked for, while ringing)
    modes: list[dict[str, Any]]  # every mode with its times
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


def _supervisor(record: SupervisorRecord) -> SupervisorPublic:
    return SupervisorPublic(
        id=record.id, name=record.name, team=record.team, endpoint=endpoint_of(record.id)
    )


def _public(ctx: ApiContext, record: MonitorRecord) -> MonitorPublic:
    live = ctx.monitor.session(record.id)
    mode = live.mode.value if live else (record.modes[-1]["mode"] if record.modes else None)
    return MonitorPublic(**record.model_dump(exclude={"supervisor_channel"}), mode=mode)


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


# -- supervisors ---------------------------------------------------------------------------


async def read_supervisor(ctx: ApiContext, key: dict[str, Any]) -> SupervisorPublic:
    """What the audit keeps of a supervisor: their name, team and phone."""
    try:
        return _supervisor(await ctx.supervisors.get(key.get("supervisor_id") or key["id"]))
    except SupervisorNotFound:
        raise _not_found("supervisor") from None


async def read_session(ctx: ApiContext, key: dict[str, Any]) -> MonitorPublic:
    """What the audit keeps of a monitor session: the session."""
    record = await ctx.monitor.store.get(key["session_id"])
    if record is None:
        raise _not_found("session")
    return _public(ctx, record)


@router.post(
    "/api/v1/supervisors",
    status_code=status.HTTP_201_CREATED,
    dependencies=[audited(read_supervisor)],
)
async def create_supervisor(ctx: Context, _: Admin, body: SupervisorCreate) -> SupervisorCreated:
    """Add a supervisor: their phone registers at once; its password and their API token
    are in this answer only."""
    try:
        password, token = await ctx.supervisors.create(body.id, body.name, body.team)
    except SupervisorExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"supervisor '{body.id}' already exists"
        ) from None
    except AsteriskRefused as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Asterisk: {exc}") from None
    public = _supervisor(await ctx.supervisors.get(body.id))
    return SupervisorCreated(
        **public.model_dump(), sip_password=password, sip_realm=REALM, token=token
    )


@router.get("/api/v1/supervisors")
async def list_supervisors(ctx: Context, _: Monitoring, page: Page) -> list[SupervisorPublic]:
    found = await ctx.supervisors.store.find(page.limit, page.offset)
    return [_supervisor(record) for record in found]


@router.patch("/api/v1/supervisors/{supervisor_id}", dependencies=[audited(read_supervisor)])
async def change_supervisor(
    ctx: Context, _: Admin, supervisor_id: str, body: SupervisorChange
) -> SupervisorPublic:
    try:
        await ctx.supervisors.update(supervisor_id, body.name, body.team)
        return _supervisor(await ctx.supervisors.get(supervisor_id))
    except SupervisorNotFound:
        raise _not_found(f"supervisor '{supervisor_id}'") from None
    except AsteriskRefused as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Asterisk: {exc}") from None


@router.delete(
    "/api/v1/supervisors/{supervisor_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited(read_supervisor)],
)
async def delete_supervisor(ctx: Context, _: Admin, supervisor_id: str) -> None:
    """Remove a supervisor: their phone and their tokens go too."""
    try:
        await ctx.supervisors.delete(supervisor_id)
    except SupervisorNotFound:
        raise _not_found(f"supervisor '{supervisor_id}'") from None
    except AsteriskRefused as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Asterisk: {exc}") from None


# -- monitor sessions ------------------------------------------------------------------------


@router.post(
    "/api/v1/calls/{call_id}/monitor",
    status_code=status.HTTP_201_CREATED,
    dependencies=[audited()],  # the session's own row is its record
)
async def monitor_call(
    ctx: Context, token: Monitoring, call_id: str, body: MonitorAsk
) -> MonitorPublic:
    """Ring the supervisor's phone; on answer they listen, whisper or barge."""
    if token.role == SUPERVISOR:
        if body.supervisor_id not in (None, token.subject) or token.subject is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a supervisor monitors for themself")
        supervisor_id = token.subject
    elif body.supervisor_id is None:
        raise HTTPException(422, "name the supervisor whose phone rings")
    else:
        supervisor_id = body.supervisor_id
    try:
        record = await ctx.monitor.start(call_id, body.mode, supervisor_id, token.role, token.actor)
    except CallNotMonitored as exc:
        code = status.HTTP_409_CONFLICT if ctx.acd.acd.calls.get(call_id) else 404
        raise HTTPException(code, str(exc)) from None
    except SupervisorNotFound:
        raise _not_found(f"supervisor '{supervisor_id}'") from None
    except MonitorRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except MonitorBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (AriError, AriUnreachable) as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Asterisk: {exc}") from None
    return _public(ctx, record)


@router.get("/api/v1/monitors")
async def list_monitors(
    ctx: Context,
    token: Monitoring,
    page: Page,
    call_id: str | None = None,
    agent_id: str | None = None,
    supervisor_id: str | None = None,
    state: str | None = None,
) -> list[MonitorPublic]:
    """The sessions (the audit), newest first; a supervisor sees their own."""
    if token.role == SUPERVISOR:
        supervisor_id = token.subject or "-"
    found = await ctx.monitor.store.find(
        limit=page.limit, offset=page.offset, call_id=call_id, agent_id=agent_id,
        supervisor_id=supervisor_id, state=state,
    )  # fmt: skip
    return [_public(ctx, record) for record in found]


async def _own(ctx: ApiContext, token: Principal, session_id: str) -> MonitorRecord:
    record = await ctx.monitor.store.get(session_id)
    if record is None or (token.role == SUPERVISOR and record.supervisor_id != token.subject):
        raise _not_found(f"monitor session '{session_id}'")
    return record


@router.get("/api/v1/monitors/{session_id}")
async def get_monitor(ctx: Context, token: Monitoring, session_id: str) -> MonitorPublic:
    return _public(ctx, await _own(ctx, token, session_id))


@router.patch("/api/v1/monitors/{session_id}", dependencies=[audited(read_session)])
async def change_monitor(
    ctx: Context, token: Monitoring, session_id: str, body: MonitorChange
) -> MonitorPublic:
    """Switch the mode in the same session: the phone is not rung again."""
    await _own(ctx, token, session_id)
    try:
        return _public(ctx, await ctx.monitor.change(session_id, body.mode, "api"))
    except SessionNotFound:
        raise HTTPException(status.HTTP_409_CONFLICT, "the session has ended") from None
    except (AriError, AriUnreachable, TimeoutError) as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Asterisk: {exc!r}") from None


@router.delete("/api/v1/monitors/{session_id}", dependencies=[audited(read_session)])
async def end_monitor(ctx: Context, token: Monitoring, session_id: str) -> MonitorPublic:
    """End the session: the supervisor's phone is hung up, the conversation goes on."""
    await _own(ctx, token, session_id)
    try:
        return _public(ctx, await ctx.monitor.stop(session_id, f"ended by {token.actor}"))
    except SessionNotFound:
        raise HTTPException(status.HTTP_409_CONFLICT, "the session has ended") from None
