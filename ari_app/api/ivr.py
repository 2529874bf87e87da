"""IVR flows in force, and their reload."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ari_app.api.deps import Authorized, Context

router = APIRouter(prefix="/api/v1/ivr", tags=["ivr"])


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
async def list_flows(ctx: Context, _: Authorized) -> list[FlowPublic]:
    """The flows new calls get now."""
    return [
        FlowPublic(name=f.name, version=f.version, numbers=list(f.numbers), nodes=len(f.nodes))
        for f in ctx.flows.flows.values()
    ]


@router.post("/reload")
async def reload_flows(ctx: Context, _: Authorized) -> ReloadPublic:
    """Read the flow files again; a file that fails its check keeps the version in force."""
    report = await ctx.flows.reload()
    return ReloadPublic(
        loaded=report.loaded,
        kept=report.kept,
        problems=report.problems,
        prompts_checked=report.prompts_checked,
    )
