"""IVR flows in force, and their reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.pages import Page
from ari_app.domain.users import ADMIN, OPS, SUPERVISOR, Principal

router = APIRouter(prefix="/api/v1/ivr", tags=["ivr"])
Readers = Annotated[Principal, holding(ADMIN, OPS, SUPERVISOR)]
Editors = Annotated[Principal, holding(ADMIN, OPS)]


class FlowPublic(BaseModel):
    name: str
    version: int
    numbers: list[str]
    nodes: int


class ReloadPublic(BaseModel):
    loaded: list[str]
    kept: list[str]
    problems: list[str]
    prompts_checked: str


@router.get("/flows")
async def list_flows(ctx: Context, _: Readers, page: Page) -> list[FlowPublic]:
    """The flows new calls get now, by name."""
    return _flows(ctx)[page.offset : page.offset + page.limit]


def _flows(ctx: ApiContext) -> list[FlowPublic]:
    return [
        FlowPublic(name=f.name, version=f.version, numbers=list(f.numbers), nodes=len(f.nodes))
        for f in sorted(ctx.flows.flows.values(), key=lambda f: f.name)
    ]


async def read_flows(ctx: ApiContext, _: dict[str, Any]) -> list[FlowPublic]:
    """What the audit keeps of a reload: the flows in force."""
    return _flows(ctx)


@router.post("/reload", dependencies=[audited(read_flows)])
async def reload_flows(ctx: Context, _: Editors) -> ReloadPublic:
    """Read the flow files again; a file that fails its check keeps the version in force."""
    report = await ctx.flows.reload()
    return ReloadPublic(
        loaded=report.loaded,
        kept=report.kept,
        problems=report.problems,
        prompts_checked=report.prompts_checked,
    )
