"""The audit trail: every request that may change something writes one row (who, what
was asked, the state before and after, the outcome, when), refused ones included;
admins read them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from ari_app.api.deps import ApiContext, Authorized, Context, holding
from ari_app.api.pages import Page
from ari_app.domain.users import ADMIN, Principal

log = structlog.get_logger(__name__)

Reader = Callable[[ApiContext, dict[str, Any]], Awaitable[Any]]
SECRET_WORDS = ("password", "secret", "token")
LARGEST_ASKED = 16_384  # bytes of a request body kept as it was; larger ones by size


def audited(read: Reader | None = None) -> Any:
    """A route's audit dependency. `read` gives the state the request may change, from
    the path's parameters (and the body's `id`, for what a request creates); None where
    the request's own record is elsewhere (a monitor session)."""

    async def trail(request: Request, ctx: Context, who: Authorized) -> AsyncIterator[None]:
        asked = await _asked(request)
        key: dict[str, Any] = dict(request.path_params)
        if isinstance(asked, dict) and isinstance(asked.get("id"), str):
            key.setdefault("id", asked["id"])
        before = await _state(read, ctx, key)
        route = request.scope.get("route")
        row = {
            "actor": who.actor[:80],
            "role": who.role,
            "action": f"{request.method} {getattr(route, 'path', request.url.path)}"[:120],
            "target": request.url.path[:300],
            "asked": asked,
            "before": before,
        }
        try:
            yield
        except Exception as exc:
            await _write(ctx, row, _outcome(exc), _detail(exc), await _state(read, ctx, key))
            raise
        after = await _state(read, ctx, key)
        extra = getattr(request.state, "audit_after", None)  # what the route adds (a diff)
        if isinstance(after, dict) and isinstance(extra, dict):
            after = {**after, **extra}
        await _write(ctx, row, getattr(route, "status_code", None) or 200, None, after)

    return Depends(trail, scope="function")


async def _asked(request: Request) -> Any:
    body = await request.body()
    if not body:
        return None
    if len(body) > LARGEST_ASKED:
        return {"bytes": len(body)}
    try:
        return _redacted(json.loads(body))
    except ValueError:
        return {"bytes": len(body)}


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "(hidden)" if any(w in str(key).lower() for w in SECRET_WORDS) else _redacted(v)
            for key, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


async def _state(read: Reader | None, ctx: ApiContext, key: dict[str, Any]) -> Any:
    if read is None:
        return None
    try:
        return jsonable_encoder(await read(ctx, key))
    except (HTTPException, KeyError, LookupError):
        return None  # not there (yet, or any more)


def _outcome(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 422 if isinstance(exc, RequestValidationError) else 500


def _detail(exc: Exception) -> str:
    if isinstance(exc, HTTPException):
        text = (
            exc.detail if isinstance(exc.detail, str) else json.dumps(jsonable_encoder(exc.detail))
        )
    elif isinstance(exc, RequestValidationError):
        text = "; ".join(str(error.get("msg", "")) for error in exc.errors())
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:300]


async def _write(
    ctx: ApiContext, row: dict[str, Any], outcome: int, detail: str | None, after: Any
) -> None:
    row = {**row, "outcome": outcome, "detail": detail, "after": after, "at": datetime.now(UTC)}
    try:
        await ctx.audit.add(row)
    except Exception:
        # the change is made; its audit row stays in the log, whole
        log.exception("audit_unwritten", **{k: v for k, v in row.items() if k != "at"})


router = APIRouter(prefix="/api/v1", tags=["audit"])
Admin = Annotated[Principal, holding(ADMIN)]


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    outcome: int
    detail: str | None
    asked: Any
    before: Any
    after: Any


@router.get("/audit")
async def read_audit(
    ctx: Context,
    _: Admin,
    page: Page,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditPublic]:
    """The audit rows, newest first: what each user changed or tried to."""
    found = await ctx.audit.find(page.limit, page.offset, actor=actor, since=since, until=until)
    return [AuditPublic.model_validate(record.model_dump()) for record in found]
