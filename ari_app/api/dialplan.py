"""The dialplan ops edit, through the API: read a file, or replace it and deploy the
whole dialplan (checked first; taken back if Asterisk does not load it as written)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from ari_app.adapters.dialplan_deploy import DeployFailed
from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.fields import text_body
from ari_app.api.pages import Page
from ari_app.domain.users import ADMIN, OPS, Principal
from ari_app.services.dialplan import FILE_NAME, DialplanRefused

router = APIRouter(prefix="/api/v1/dialplan", tags=["dialplan"])
Editors = Annotated[Principal, holding(ADMIN, OPS)]
FileName = Annotated[str, Path(pattern=f"^{FILE_NAME.pattern}$")]
LARGEST_FILE = 262_144  # bytes


class DialplanFile(BaseModel):
    name: str
    bytes: int


class Deployed(BaseModel):
    file: str
    contexts: int  # loaded and verified in Asterisk (checked only, for a dry run)
    diff: str  # unified, against the file before


def _desk(ctx: ApiContext) -> Any:
    if ctx.dialplan is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the dialplan is not set up")
    return ctx.dialplan


async def read_file(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any] | None:
    """What the audit keeps of a dialplan file: its text."""
    text = _desk(ctx).sources().get(key["name"])
    return None if text is None else {"file": key["name"], "text": text}


@router.get("")
async def list_files(ctx: Context, _: Editors, page: Page) -> list[DialplanFile]:
    """The dialplan's files, by name."""
    every = sorted(_desk(ctx).sources().items())[page.offset : page.offset + page.limit]
    return [DialplanFile(name=name, bytes=len(text.encode())) for name, text in every]


@router.get("/{name}", response_class=PlainTextResponse)
async def get_file(ctx: Context, _: Editors, name: FileName) -> str:
    text = _desk(ctx).sources().get(name)
    if text is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dialplan file {name!r}")
    return text


@router.put(
    "/{name}",
    dependencies=[audited(read_file)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string", "maxLength": LARGEST_FILE}}},
        }
    },
)
async def put_file(
    ctx: Context,
    _: Editors,
    name: FileName,
    request: Request,
    dry_run: Annotated[bool, Query()] = False,
) -> Deployed:
    """Replace (or add) a file and deploy the whole dialplan: checked (422 with every
    problem as file:line, nothing changed), installed, reloaded and verified through
    AMI; 502 if Asterisk did not load it as written, and the dialplan before is back.
    Calls in progress go on. `dry_run=true` checks it (against the connected Asterisk's
    applications) and answers the diff, and installs nothing."""
    text = await text_body(request, LARGEST_FILE, "a dialplan file")
    desk = _desk(ctx)
    try:
        checked, diff = await (desk.preview if dry_run else desk.put)(name, text)
    except DialplanRefused as exc:
        problem = {"message": "the dialplan would have problems; nothing was changed"}
        raise HTTPException(422, {**problem, "problems": exc.problems}) from None
    except DeployFailed as exc:
        back = "the dialplan before is back" if exc.restored else "the dialplan before is NOT back"
        detail = {
            "message": f"Asterisk did not load it as written; {back}",
            "problems": exc.problems,
        }
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail) from None
    request.state.audit_after = {"diff": diff}
    return Deployed(file=name, contexts=len(checked.plan.contexts), diff=diff)
