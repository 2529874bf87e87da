"""Recordings: listed, filtered, downloaded (with HTTP ranges), paused and resumed.

They hold what callers said: admins may hear them all, supervisors those of their
teams' agents; reporting users see their rows only; an agent may pause and resume
the recording of their own call (while a card number is read out)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse
from pydantic import BaseModel

from ari_app.adapters.ari import AriError, AriUnreachable
from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding, team_agents
from ari_app.api.pages import Page
from ari_app.domain.users import ADMIN, AGENT, REPORTING, SUPERVISOR, Principal
from ari_app.services.recordings import RecordingRefused, RecordingService

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])

Readers = Annotated[Principal, holding(ADMIN, SUPERVISOR, REPORTING)]
Listeners = Annotated[Principal, holding(ADMIN, SUPERVISOR)]
Pausers = Annotated[Principal, holding(ADMIN, SUPERVISOR, AGENT)]  # an agent: their own call


class RecordingPublic(BaseModel):
    id: str
    call_id: str
    agent_id: str | None
    queue: str | None
    state: str  # recording, paused, stored, failed
    format: str
    started_at: datetime
    ended_at: datetime | None
    duration: float | None  # seconds of audio in the file
    size: int | None
    sha256: str | None
    pauses: list[dict[str, Any]]  # the spans left out of the file
    segments: list[dict[str, Any]]  # each agent's part of the conversation: agent, from, to
    error: str | None


def _service(ctx: ApiContext) -> RecordingService:
    if ctx.acd.recorder is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "recording is not set up")
    return ctx.acd.recorder


def _theirs(row: Any, agents: set[str] | None) -> bool:
    if agents is None:
        return True
    involved = {row.agent_id} | {segment.get("agent_id") for segment in row.segments or []}
    return bool(involved & agents)


async def _scoped(ctx: ApiContext, who: Principal, recording_id: str) -> RecordingPublic:
    row = await read_recording(ctx, {"recording_id": recording_id})
    if not _theirs(row, await team_agents(ctx, who)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"recording {recording_id!r} is not of this supervisor's teams",
        )
    return row


@router.get("")
async def list_recordings(
    ctx: Context,
    who: Readers,
    page: Page,
    call_id: str | None = None,
    agent_id: str | None = None,
    queue: str | None = None,
    state: str | None = None,
) -> list[RecordingPublic]:
    """Newest first, filtered by call, agent, queue or state; a supervisor's, of the
    agents of their teams."""
    agents = await team_agents(ctx, who)
    among: str | tuple[str, ...] | None = agent_id
    if agents is not None:
        among = tuple(sorted(agents & {agent_id} if agent_id else agents))
    found = await _service(ctx).store.find(
        page.limit, page.offset, call_id=call_id, agent_id=among, queue=queue, state=state
    )
    return [RecordingPublic.model_validate(row, from_attributes=True) for row in found]


@router.get("/{recording_id}")
async def get_recording(ctx: Context, who: Readers, recording_id: str) -> RecordingPublic:
    return await _scoped(ctx, who, recording_id)


async def read_recording(ctx: ApiContext, key: dict[str, Any]) -> RecordingPublic:
    row = await _service(ctx).store.get(key["recording_id"])
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording {key['recording_id']!r}")
    return RecordingPublic.model_validate(row, from_attributes=True)


@router.get("/{recording_id}/file", response_model=None)
async def recording_file(ctx: Context, who: Listeners, recording_id: str) -> FileResponse:
    """The audio (WAV); `Range: bytes=A-B` gets part of it (206)."""
    await _scoped(ctx, who, recording_id)
    service = _service(ctx)
    row = await service.store.get(recording_id)
    if row is None or row.state != "stored":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no stored recording {recording_id!r}")
    return FileResponse(
        service.path(row.id), media_type="audio/wav", filename=f"{row.id}.{row.format}"
    )


@router.post(
    "/{recording_id}/pause",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited(read_recording)],
)
async def pause_recording(ctx: Context, who: Pausers, recording_id: str) -> None:
    """Leave what is said from now on out of the file (a card number), until resumed."""
    await _pause(ctx, who, recording_id, True)


@router.post(
    "/{recording_id}/resume",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited(read_recording)],
)
async def resume_recording(ctx: Context, who: Pausers, recording_id: str) -> None:
    await _pause(ctx, who, recording_id, False)


async def _pause(ctx: ApiContext, who: Principal, recording_id: str, paused: bool) -> None:
    await _scoped(ctx, who, recording_id)
    if who.role == AGENT:
        row = await read_recording(ctx, {"recording_id": recording_id})
        if row.agent_id != who.subject:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "an agent pauses the recording of their own call only"
            )
    try:
        await _service(ctx).pause(recording_id, paused)
    except RecordingRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except (AriError, AriUnreachable) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
