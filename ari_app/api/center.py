"""The center's catalogue (service numbers, teams, skills) and the center as one document
(`/api/v1/config`: export, check, apply). Every change, one item or the whole document,
is checked against the center in force and made all or nothing (services.center)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Context, holding
from ari_app.api.fields import Label, Name
from ari_app.api.pages import Page
from ari_app.domain.agents import SKILL_NAME
from ari_app.domain.center import SERVICE_NUMBER, TEAM, Kind
from ari_app.domain.users import ADMIN, OPS, SUPERVISOR, Principal
from ari_app.services.center import Applied, CenterRefused, KindBarred, located
from ari_app.services.phones import AsteriskRefused

router = APIRouter(prefix="/api/v1", tags=["center"])
Readers = Annotated[Principal, holding(ADMIN, OPS, SUPERVISOR)]
Editors = Annotated[Principal, holding(ADMIN, OPS)]
Number = Annotated[str, Path(pattern=f"^{SERVICE_NUMBER.pattern}$")]
TeamId = Annotated[str, Path(pattern=f"^{TEAM.pattern}$")]
SkillId = Annotated[str, Path(pattern=f"^{SKILL_NAME.pattern}$")]
FlowName = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")
]
Description = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class NumberPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: FlowName
    label: Label = ""


class NumberPublic(NumberPut):
    number: str


class TeamPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class TeamPublic(TeamPut):
    id: str
    agents: int  # agents whose profile names the team


class SkillPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Description = ""


class SkillPublic(SkillPut):
    id: str
    agents: int  # agents who hold it
    queues: list[str]  # queues that ask for it


class ChangePublic(BaseModel):
    kind: str
    key: str
    action: str  # add, change, remove
    before: Any
    after: Any


class AppliedPublic(BaseModel):
    changes: list[ChangePublic]
    diff: list[str]  # one line each: + added, ~ changed (and which fields), - removed
    passwords: dict[str, str] = {}  # new agents' SIP passwords, shown this once
    prompts_checked: str = ""


def refused(exc: CenterRefused) -> HTTPException:
    return HTTPException(
        422,
        {
            "message": "the center would have problems; nothing was changed",
            "problems": exc.problems,
        },
    )


def unreachable(exc: AsteriskRefused) -> HTTPException:
    return HTTPException(
        status.HTTP_502_BAD_GATEWAY,
        f"Asterisk refused an agent's phone ({exc}); nothing was changed",
    )


def applied_public(applied: Applied) -> AppliedPublic:
    return AppliedPublic(
        changes=[
            ChangePublic(kind=c.kind, key=c.key, action=c.action, before=c.before, after=c.after)
            for c in applied.changes
        ],
        diff=applied.diff(),
        passwords=applied.passwords,
        prompts_checked=applied.prompts_checked,
    )


async def _one(
    ctx: ApiContext, kind: Kind, key: str, body: dict[str, Any] | None, who: Principal
) -> Applied:
    """Apply the center with one item of one kind put (or removed, for None)."""
    items = dict((await ctx.center.center()).of(kind))
    if body is None:
        if key not in items:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {kind[:-1]} {key!r}")
        del items[key]
    else:
        items[key] = body
    try:
        return await ctx.center.apply({kind: items}, who.actor)
    except CenterRefused as exc:
        code = status.HTTP_409_CONFLICT if body is None else 422
        raise HTTPException(
            code, {"message": f"the {kind[:-1]} cannot be changed so", "problems": exc.problems}
        ) from None


def _reader(kind: Kind) -> Any:
    async def read(ctx: ApiContext, key: dict[str, Any]) -> Any:
        """What the audit keeps: the item the path names."""
        return (await ctx.center.center()).of(kind).get(key.get("key", ""))

    return read


Item = TypeVar("Item", TeamPublic, SkillPublic)


def _one_of(items: list[Item], key: str, what: str) -> Item:
    found = [item for item in items if item.id == key]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {key!r}")
    return found[0]


def _put_status(applied: Applied, response: Response) -> None:
    if any(change.action == "add" for change in applied.changes):
        response.status_code = status.HTTP_201_CREATED


# -- service numbers ---------------------------------------------------------------------


@router.get("/numbers", tags=["numbers"])
async def list_numbers(ctx: Context, _: Readers, page: Page) -> list[NumberPublic]:
    """The service numbers, each with the flow its callers get."""
    every = sorted((await ctx.center.center()).numbers.items())
    return [
        NumberPublic(number=n, **row) for n, row in every[page.offset : page.offset + page.limit]
    ]


@router.get("/numbers/{key}", tags=["numbers"])
async def get_number(ctx: Context, _: Readers, key: Number) -> NumberPublic:
    row = (await ctx.center.center()).numbers.get(key)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no number {key!r}")
    return NumberPublic(number=key, **row)


@router.put(
    "/numbers/{key}",
    tags=["numbers"],
    dependencies=[audited(_reader("numbers"))],
    responses={201: {"model": NumberPublic, "description": "Created"}},
)
async def put_number(
    ctx: Context, who: Editors, key: Number, body: NumberPut, response: Response
) -> NumberPublic:
    """Send the number's callers to a flow in force; the next call gets it."""
    _put_status(await _one(ctx, "numbers", key, body.model_dump(), who), response)
    return NumberPublic(number=key, **body.model_dump())


@router.delete(
    "/numbers/{key}", tags=["numbers"], status_code=204, dependencies=[audited(_reader("numbers"))]
)
async def delete_number(ctx: Context, who: Editors, key: Number) -> Response:
    await _one(ctx, "numbers", key, None, who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- teams -------------------------------------------------------------------------------


async def _teams(ctx: ApiContext) -> list[TeamPublic]:
    center = await ctx.center.center()
    count = {key: 0 for key in center.teams}
    for agent in center.agents.values():
        if agent["team"]:
            count[agent["team"]] = count.get(agent["team"], 0) + 1
    return [
        TeamPublic(id=key, agents=count[key], **row) for key, row in sorted(center.teams.items())
    ]


@router.get("/teams", tags=["teams"])
async def list_teams(ctx: Context, _: Readers, page: Page) -> list[TeamPublic]:
    """The teams: those declared, and those agents name."""
    return (await _teams(ctx))[page.offset : page.offset + page.limit]


@router.get("/teams/{key}", tags=["teams"])
async def get_team(ctx: Context, _: Readers, key: TeamId) -> TeamPublic:
    return _one_of(await _teams(ctx), key, "team")


@router.put(
    "/teams/{key}",
    tags=["teams"],
    dependencies=[audited(_reader("teams"))],
    responses={201: {"model": TeamPublic, "description": "Created"}},
)
async def put_team(
    ctx: Context, who: Editors, key: TeamId, body: TeamPut, response: Response
) -> TeamPublic:
    _put_status(await _one(ctx, "teams", key, body.model_dump(), who), response)
    return await get_team(ctx, who, key)


@router.delete(
    "/teams/{key}", tags=["teams"], status_code=204, dependencies=[audited(_reader("teams"))]
)
async def delete_team(ctx: Context, who: Editors, key: TeamId) -> Response:
    """Remove a team no agent, user or supervisor phone names."""
    await _one(ctx, "teams", key, None, who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- skills ------------------------------------------------------------------------------


async def _skills(ctx: ApiContext) -> list[SkillPublic]:
    center = await ctx.center.center()
    queues = ctx.queues.queues
    return [
        SkillPublic(
            id=key,
            agents=sum(1 for agent in center.agents.values() if key in agent["skills"]),
            queues=sorted(name for name, queue in queues.items() if key in queue.rules.skills),
            **row,
        )
        for key, row in sorted(center.skills.items())
    ]


@router.get("/skills", tags=["skills"])
async def list_skills(ctx: Context, _: Readers, page: Page) -> list[SkillPublic]:
    """The skills: those declared, and those agents hold or queues and flows ask for."""
    return (await _skills(ctx))[page.offset : page.offset + page.limit]


@router.get("/skills/{key}", tags=["skills"])
async def get_skill(ctx: Context, _: Readers, key: SkillId) -> SkillPublic:
    return _one_of(await _skills(ctx), key, "skill")


@router.put(
    "/skills/{key}",
    tags=["skills"],
    dependencies=[audited(_reader("skills"))],
    responses={201: {"model": SkillPublic, "description": "Created"}},
)
async def put_skill(
    ctx: Context, who: Editors, key: SkillId, body: SkillPut, response: Response
) -> SkillPublic:
    _put_status(await _one(ctx, "skills", key, body.model_dump(), who), response)
    return await get_skill(ctx, who, key)


@router.delete(
    "/skills/{key}", tags=["skills"], status_code=204, dependencies=[audited(_reader("skills"))]
)
async def delete_skill(ctx: Context, who: Editors, key: SkillId) -> Response:
    """Remove a skill no agent holds and no queue or flow asks for."""
    await _one(ctx, "skills", key, None, who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- the whole center --------------------------------------------------------------------

Document = Annotated[
    dict[str, Any], Body(description="teams, skills, agents, queues, flows, numbers: each optional")
]


async def read_nothing(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any]:
    """The audit's before and after of a whole document: its row keeps the diff instead."""
    return {}


@router.get("/config", tags=["config"])
async def export_config(ctx: Context, _: Editors) -> dict[str, Any]:
    """The whole center as one document; applying it changes nothing."""
    return await ctx.center.export()


@router.post("/config/check", tags=["config"], dependencies=[audited(read_nothing)])
async def check_config(ctx: Context, _: Editors, document: Document) -> AppliedPublic:
    """What applying the document would change (422 with every problem); nothing changes."""
    found = await ctx.center.check(document)
    if found.problems:
        raise refused(CenterRefused([located(p) for p in found.problems]))
    return applied_public(Applied(list(found.changes)))


@router.post("/config/apply", tags=["config"], dependencies=[audited(read_nothing)])
async def apply_config(
    ctx: Context, who: Editors, document: Document, request: Request
) -> AppliedPublic:
    """Check the document against the center in force, then make every change in one
    transaction, or none (422 with every problem). A section given is the whole of its
    kind; one left out is left alone. Changing agents is for admins."""
    barred: tuple[Kind, ...] = () if who.role == ADMIN else ("agents",)
    try:
        applied = await ctx.center.apply(document, who.actor, barred=barred)
    except CenterRefused as exc:
        raise refused(exc) from None
    except KindBarred as exc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{', '.join(exc.kinds)} are changed by admin users"
        ) from None
    except AsteriskRefused as exc:
        raise unreachable(exc) from None
    request.state.audit_after = {"diff": applied.diff()}
    return applied_public(applied)
