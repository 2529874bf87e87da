"""IVR flows in force, and their reload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel

from ari_app.api.audit import audited
from ari_app.api.center import AppliedPublic, applied_public, refused
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.fields import text_body
from ari_app.api.pages import Page
from ari_app.domain.users import ADMIN, OPS, SUPERVISOR, Principal
from ari_app.services.center import CenterRefused
from ari_app.services.flow_versions import StoredVersion, VersionExists, VersionNotFound

router = APIRouter(prefix="/api/v1/ivr", tags=["ivr"])
Readers = Annotated[Principal, holding(ADMIN, OPS, SUPERVISOR)]
Editors = Annotated[Principal, holding(ADMIN, OPS)]


class FlowPublic(BaseModel):
    name: str
    version: int
    numbers: list[str]  # the service numbers whose callers get it (the table's and its own)
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
    flows = ctx.flows
    every = {*flows.assigned, *(n for flow in flows.flows.values() for n in flow.numbers)}
    answered = {n: flow.name for n in sorted(every) if (flow := flows.for_number(n)) is not None}
    return [
        FlowPublic(
            name=f.name,
            version=f.version,
            numbers=[n for n, name in answered.items() if name == f.name],
            nodes=len(f.nodes),
        )
        for f in sorted(flows.flows.values(), key=lambda f: f.name)
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


# -- versions: uploaded, activated, rolled back ------------------------------------------

FlowName = Annotated[str, Path(pattern=r"^[^\x00-\x1f\x7f/]{1,80}$")]
Version = Annotated[int, Path(ge=1, le=2_147_483_647)]
LARGEST_FLOW = 262_144  # bytes


class FlowVersionPublic(BaseModel):
    flow: str
    version: int
    sha256: str
    stored_at: datetime
    stored_by: str
    activated_at: datetime | None  # when it was last put in force
    in_force: bool


class FlowVersionText(FlowVersionPublic):
    text: str


def _version(stored: StoredVersion) -> FlowVersionPublic:
    return FlowVersionPublic(**stored.record.model_dump(exclude={"text"}), in_force=stored.in_force)


async def read_versions(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any]:
    """What the audit keeps: the flow's version in force and the versions stored."""
    flow = ctx.flows.flows.get(key["name"])
    stored = [v.record.version for v in await ctx.versions.list(key["name"])]
    return {"in_force": flow.version if flow else None, "stored": stored}


@router.get("/flows/{name}/versions")
async def list_versions(
    ctx: Context, _: Readers, name: FlowName, page: Page
) -> list[FlowVersionPublic]:
    """Every stored version of the flow, the highest first."""
    every = await ctx.versions.list(name)
    return [_version(v) for v in every[page.offset : page.offset + page.limit]]


@router.get("/flows/{name}/versions/{version}")
async def get_version(
    ctx: Context, _: Readers, name: FlowName, version: Version
) -> FlowVersionText:
    """One stored version, with its text."""
    try:
        record = await ctx.versions.get(name, version)
    except VersionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    in_force = ctx.flows.flows.get(name)
    stored = StoredVersion(record, in_force is not None and in_force.version == version)
    return FlowVersionText(**_version(stored).model_dump(), text=record.text)


@router.post(
    "/flows/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    dependencies=[audited(read_versions)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                kind: {"schema": {"type": "string", "maxLength": LARGEST_FLOW}}
                for kind in ("application/yaml", "text/plain")
            },
        }
    },
)
async def upload_version(
    ctx: Context, who: Editors, name: FlowName, request: Request
) -> FlowVersionPublic:
    """Store a new version of a flow (its YAML file's text), checked as a reload checks it
    (422 with every problem by line). What callers get does not change until it is
    activated."""
    text = await text_body(request, LARGEST_FLOW, "a flow")
    try:
        record = await ctx.versions.upload(name, text, who.actor)
    except CenterRefused as exc:
        raise refused(exc) from None
    except VersionExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _version(StoredVersion(record, in_force=False))


@router.post("/flows/{name}/versions/{version}/activate", dependencies=[audited(read_versions)])
async def activate_version(
    ctx: Context, who: Editors, name: FlowName, version: Version
) -> AppliedPublic:
    """Put a stored version in force: the next caller gets it; calls in progress keep
    theirs. Refused (422) if it no longer fits the center (a queue it names is gone)."""
    try:
        return applied_public(await ctx.versions.activate(name, version, who.actor))
    except VersionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except CenterRefused as exc:
        raise refused(exc) from None


@router.post("/flows/{name}/rollback", dependencies=[audited(read_versions)])
async def rollback_version(ctx: Context, who: Editors, name: FlowName) -> AppliedPublic:
    """Put back the version that was in force before the one in force now."""
    try:
        return applied_public(await ctx.versions.rollback(name, who.actor))
    except VersionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except CenterRefused as exc:
        raise refused(exc) from None
