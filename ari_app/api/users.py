"""Users, their roles and their tokens (admins only), and who the caller is (anyone)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ari_app.adapters.tables import ApiToken, UserRecord
from ari_app.adapters.user_store import UserExists
from ari_app.api.audit import audited
from ari_app.api.deps import ApiContext, Authorized, Context, holding
from ari_app.api.fields import Label, Name, Team
from ari_app.api.pages import Page
from ari_app.domain.users import (
    ADMIN,
    LONGEST_TOKEN_LIFE,
    TOKEN_DAYS,
    USER_ID,
    Principal,
    RoleName,
    UserRefused,
)
from ari_app.services.users import UserNotFound

router = APIRouter(prefix="/api/v1", tags=["users"])
Admin = Annotated[Principal, holding(ADMIN)]
UserId = Annotated[str, Path(pattern=f"^{USER_ID.pattern}$")]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(pattern=f"^{USER_ID.pattern}$")]
    name: Name
    role: RoleName
    teams: Annotated[list[Team], Field(max_length=50)] = []  # a supervisor's


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    role: RoleName | None = None
    teams: Annotated[list[Team], Field(max_length=50)] | None = None


class UserPublic(BaseModel):
    id: str
    name: str
    role: str
    teams: list[str]
    created_at: datetime
    updated_at: datetime


class TokenAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label = ""
    days: Annotated[float, Field(gt=0, le=LONGEST_TOKEN_LIFE.days)] = TOKEN_DAYS


class TokenPublic(BaseModel):
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenMinted(TokenPublic):
    token: str  # shown once


class Me(BaseModel):
    actor: str
    role: str
    user_id: str | None
    teams: list[str]


def _user(record: UserRecord) -> UserPublic:
    return UserPublic.model_validate(record.model_dump())


def _token(row: ApiToken) -> TokenPublic:
    return TokenPublic.model_validate(row.model_dump())


def _not_found(user_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")


async def read_user(ctx: ApiContext, key: dict[str, Any]) -> dict[str, Any] | None:
    return await ctx.users.describe(key.get("user_id") or key["id"])


@router.get("/me")
async def me(who: Authorized) -> Me:
    """Who the token speaks for: their role and, for a supervisor, their teams."""
    return Me(actor=who.actor, role=who.role, user_id=who.subject, teams=sorted(who.teams))


@router.get("/users")
async def list_users(
    ctx: Context, _: Admin, page: Page, role: str | None = None
) -> list[UserPublic]:
    return [_user(r) for r in await ctx.users.find(page.limit, page.offset, role=role)]


@router.post("/users", status_code=status.HTTP_201_CREATED, dependencies=[audited(read_user)])
async def create_user(ctx: Context, _: Admin, body: UserCreate) -> UserPublic:
    """Add a user; an `agent` user is the agent of the same id, which must exist. Mint
    them a token with POST /users/{id}/tokens."""
    try:
        return _user(await ctx.users.create(body.id, body.name, body.role, body.teams))
    except UserRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except UserExists:
        raise HTTPException(status.HTTP_409_CONFLICT, f"user {body.id!r} already exists") from None


@router.get("/users/{user_id}")
async def get_user(ctx: Context, _: Admin, user_id: UserId) -> UserPublic:
    try:
        return _user(await ctx.users.get(user_id))
    except UserNotFound:
        raise _not_found(user_id) from None


@router.patch("/users/{user_id}", dependencies=[audited(read_user)])
async def change_user(ctx: Context, _: Admin, user_id: UserId, body: UserChange) -> UserPublic:
    """Change a user's name, role or teams; their tokens speak with the new role at once."""
    try:
        return _user(await ctx.users.update(user_id, body.name, body.role, body.teams))
    except UserNotFound:
        raise _not_found(user_id) from None
    except UserRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.delete(
    "/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[audited(read_user)]
)
async def delete_user(ctx: Context, who: Admin, user_id: UserId) -> None:
    """Remove a user; every token of theirs is revoked."""
    if user_id == who.subject:
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin does not remove themself")
    try:
        await ctx.users.delete(user_id)
    except UserNotFound:
        raise _not_found(user_id) from None


@router.get("/users/{user_id}/tokens")
async def list_tokens(ctx: Context, _: Admin, user_id: UserId) -> list[TokenPublic]:
    try:
        return [_token(t) for t in await ctx.users.tokens_of(user_id)]
    except UserNotFound:
        raise _not_found(user_id) from None


@router.post(
    "/users/{user_id}/tokens",
    status_code=status.HTTP_201_CREATED,
    dependencies=[audited(read_user)],
)
async def mint_token(ctx: Context, _: Admin, user_id: UserId, body: TokenAsk) -> TokenMinted:
    """A new bearer token for the user, living `days` (90 unless asked); shown once,
    stored only as its SHA-256."""
    try:
        row, token = await ctx.users.mint(user_id, body.name, body.days)
    except UserNotFound:
        raise _not_found(user_id) from None
    except UserRefused as exc:  # a life too short to count
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return TokenMinted(**_token(row).model_dump(), token=token)


@router.delete(
    "/users/{user_id}/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited(read_user)],
)
async def revoke_token(
    ctx: Context, _: Admin, user_id: UserId, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> None:
    """Revoke one of the user's tokens: it is refused (401) from now on."""
    try:
        revoked = await ctx.users.revoke(user_id, token_id)
    except UserNotFound:
        raise _not_found(user_id) from None
    if not revoked:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"user {user_id!r} has no live token {token_id}"
        )
