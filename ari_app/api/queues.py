"""Queues: their definitions (the queues file, edited here), and the callers waiting."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Response, status
from pydantic import BaseModel

from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.pages import Page
from ari_app.domain.routing.config import QUEUE_NAME
from ari_app.domain.users import ADMIN, OPS, SUPERVISOR, Principal
from ari_app.services.queues import QueueRefused

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])

QueueName = Annotated[str, Path(pattern=f"^{QUEUE_NAME.pattern}$")]
Readers = Annotated[Principal, holding(ADMIN, OPS, SUPERVISOR)]
Editors = Annotated[Principal, holding(ADMIN, OPS)]


class QueuePublic(BaseModel):
    name: str
    definition: dict[str, Any]  # as in the queues file (see dialplan/queues.yaml)
    waiting: int  # callers waiting or ringing an agent now


class WaitingPublic(BaseModel):
    call_id: str
    queue: str
    step: int
    priority: int
    waiting_since: datetime
    waited_seconds: float
    position: int | None  # in its queue, from 1; null while an agent's phone rings for it
    overall: int | None  # among every waiting call, by priority then wait
    ringing: str | None  # the agent whose phone rings for it
    callback: bool  # a callback request: the caller hung up and keeps this place


def _refused(exc: QueueRefused) -> HTTPException:
    return HTTPException(
        422,
        {
            "message": "the queues would have problems; nothing was changed",
            "problems": exc.problems,
        },
    )


def _public(ctx: ApiContext, name: str, definition: dict[str, Any]) -> QueuePublic:
    waiting = sum(1 for view in ctx.acd.waiting() if view.queue == name)
    return QueuePublic(name=name, definition=definition, waiting=waiting)


@router.get("")
async def list_queues(ctx: Context, _: Readers, page: Page) -> list[QueuePublic]:
    """The queues, by name."""
    every = sorted(ctx.queues.definitions().items())[page.offset : page.offset + page.limit]
    return [_public(ctx, name, body) for name, body in every]


@router.get("/waiting")
async def waiting_calls(ctx: Context, _: Readers, page: Page) -> list[WaitingPublic]:
    """Every caller not yet talking to an agent: in order of their turn, then those ringing."""
    views = ctx.acd.waiting()[page.offset : page.offset + page.limit]
    return [WaitingPublic.model_validate(view, from_attributes=True) for view in views]


async def read_queues(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any]:
    """What the audit keeps: the queue's definition, or every queue's for a reload."""
    every = ctx.queues.definitions()
    return {key["name"]: every.get(key["name"])} if "name" in key else every


@router.post("/reload", status_code=status.HTTP_204_NO_CONTENT, dependencies=[audited(read_queues)])
async def reload_queues(ctx: Context, _: Editors) -> Response:
    """Read the queues file again after an edit by hand; a file with a problem changes nothing."""
    try:
        await ctx.queues.reload()
    except QueueRefused as exc:
        raise _refused(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}")
async def get_queue(ctx: Context, _: Readers, name: QueueName) -> QueuePublic:
    definition = ctx.queues.definitions().get(name)
    if definition is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no queue {name!r}")
    return _public(ctx, name, definition)


@router.put(
    "/{name}",
    dependencies=[audited(read_queues)],
    responses={201: {"model": QueuePublic, "description": "Created"}},
)
async def put_queue(
    ctx: Context,
    _: Editors,
    name: QueueName,
    definition: Annotated[dict[str, Any], Body()],
    response: Response,
) -> QueuePublic:
    """Create or replace a queue (its definition as in the queues file). The whole file is
    checked first; the next routing decision follows the new definition."""
    try:
        created = await ctx.queues.put(name, definition)
    except QueueRefused as exc:
        raise _refused(exc) from exc
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _public(ctx, name, ctx.queues.definitions()[name])


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[audited(read_queues)]
)
async def delete_queue(ctx: Context, _: Editors, name: QueueName) -> Response:
    """Remove a queue that no caller is in, no flow names and no queue overflows to."""
    try:
        await ctx.queues.delete(name)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no queue {name!r}") from None
    except QueueRefused as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"message": "the queue is in use", "problems": exc.problems}
        ) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
