"""Callback requests: callers who hung up and kept their place in line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel

from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.pages import Page
from ari_app.domain.acd import CallbackBusy
from ari_app.domain.users import ADMIN, SUPERVISOR, Principal

router = APIRouter(prefix="/api/v1/callbacks", tags=["callbacks"])
Watchers = Annotated[Principal, holding(ADMIN, SUPERVISOR)]

State = Literal["waiting", "scheduled", "talking", "done", "failed", "cancelled"]


class CallbackPublic(BaseModel):
    id: str
    call_id: str  # the call that asked
    number: str
    queue: str
    priority: int
    waiting_since: datetime  # when the caller first queued: the place they keep
    state: State
    attempts: int  # calls back so far
    max_attempts: int
    retry_at: datetime | None
    agent_id: str | None  # the agent who took it last
    updated_at: datetime


@router.get("")
async def list_callbacks(
    ctx: Context,
    _: Watchers,
    page: Page,
    state: Annotated[list[State] | None, Query(max_length=6)] = None,
) -> list[CallbackPublic]:
    """Callback requests, oldest place first; `?state=waiting&state=scheduled` filters."""
    states = tuple(state) if state else None
    rows = await ctx.acd.callbacks.list(states, limit=page.limit, offset=page.offset)
    return [CallbackPublic.model_validate(row, from_attributes=True) for row in rows]


async def read_callback(ctx: ApiContext, key: dict[str, Any]) -> CallbackPublic | None:
    """What the audit keeps of a callback request: its row."""
    for row in await ctx.acd.callbacks.list(None, key["callback_id"]):
        return CallbackPublic.model_validate(row, from_attributes=True)
    return None


@router.delete(
    "/{callback_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited(read_callback)],
)
async def cancel_callback(ctx: Context, _: Watchers, callback_id: str) -> Response:
    """Take a waiting or scheduled callback out of the line (the caller no longer wants
    it); an agent's phone ringing for it stops. 409 once an agent has taken it."""
    try:
        ctx.acd.cancel_callback(callback_id)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no open callback {callback_id!r}"
        ) from None
    except CallbackBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
