"""The admin API's users: made, changed and removed, their tokens minted and revoked,
and who a bearer token speaks for."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from ari_app.adapters.agent_store import AgentStore
from ari_app.adapters.db import TokenStore
from ari_app.adapters.tables import ApiToken, UserRecord
from ari_app.adapters.user_store import UserStore
from ari_app.domain.users import (
    AGENT,
    SUPERVISOR,
    Principal,
    UserRefused,
    check_user,
    token_expiry,
)
from ari_app.services import tokens
from ari_app.services.supervisors import SupervisorDirectory

log = structlog.get_logger(__name__)


class UserNotFound(Exception):
    pass


class UserDirectory:
    def __init__(
        self,
        users: UserStore,
        token_store: TokenStore,
        agents: AgentStore,
        supervisors: SupervisorDirectory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.users, self.tokens, self.agents = users, token_store, agents
        self.supervisors, self._clock = supervisors, clock

    async def create(self, user_id: str, name: str, role: str, teams: list[str]) -> UserRecord:
        """Raises UserRefused (bad id, role or teams; an agent user with no such agent)
        or UserExists."""
        tidy = check_user(user_id, role, teams)
        await self._check_agent(user_id, role)
        now = self._clock()
        row = {"id": user_id, "name": name, "role": role, "teams": tidy}
        await self.users.add({**row, "created_at": now, "updated_at": now})
        log.info("user_created", user_id=user_id, role=role, teams=tidy)
        return await self.get(user_id)

    async def get(self, user_id: str) -> UserRecord:
        found = await self.users.get(user_id)
        if found is None:
            raise UserNotFound(user_id)
        return found

    async def find(self, limit: int, offset: int = 0, role: str | None = None) -> list[UserRecord]:
        return await self.users.find(limit, offset, role=role)

    async def update(
        self,
        user_id: str,
        name: str | None = None,
        role: str | None = None,
        teams: list[str] | None = None,
    ) -> UserRecord:
        """A user who leaves the supervisor role leaves their teams, unless others are
        given. Their tokens keep working with the new role."""
        user = await self.get(user_id)
        role = role or user.role
        if teams is None:
            teams = user.teams if role == SUPERVISOR else []
        tidy = check_user(user_id, role, teams)
        await self._check_agent(user_id, role)
        changes: dict[str, Any] = {"role": role, "teams": tidy}
        if name is not None:
            changes["name"] = name
        await self.users.update(user_id, **changes, updated_at=self._clock())
        log.info("user_changed", user_id=user_id, **changes)
        return await self.get(user_id)

    async def delete(self, user_id: str) -> int:
        """Remove a user; their tokens are revoked. How many tokens were."""
        await self.get(user_id)
        revoked = await self.tokens.revoke_subject(user_id)
        await self.users.delete(user_id)
        log.info("user_deleted", user_id=user_id, tokens_revoked=revoked)
        return revoked

    async def mint(self, user_id: str, label: str, days: float) -> tuple[ApiToken, str]:
        """A new token for the user, living `days`: its row, and the token (shown once)."""
        user = await self.get(user_id)
        expires_at = token_expiry(self._clock(), days)
        token = secrets.token_urlsafe(32)
        token_id = await self.tokens.add(
            name=(label or user_id)[:80], role=user.role, token_hash=tokens.hash_token(token),
            subject=user_id, expires_at=expires_at,
        )  # fmt: skip
        log.info("token_minted", user_id=user_id, token_id=token_id, expires_at=expires_at)
        minted = next(t for t in await self.tokens.of_subject(user_id) if t.id == token_id)
        return minted, token

    async def tokens_of(self, user_id: str) -> list[ApiToken]:
        await self.get(user_id)
        return await self.tokens.of_subject(user_id)

    async def revoke(self, user_id: str, token_id: int | None = None) -> int:
        """Revoke the user's live tokens, or one of them; how many were revoked."""
        await self.get(user_id)
        revoked = await self.tokens.revoke_subject(user_id, token_id)
        log.info("tokens_revoked", user_id=user_id, token_id=token_id, revoked=revoked)
        return revoked

    async def describe(self, user_id: str) -> dict[str, Any] | None:
        """What the audit keeps of a user: the user and their tokens (never the hashes)."""
        user = await self.users.get(user_id)
        if user is None:
            return None
        shown = {"id", "name", "created_at", "expires_at", "revoked_at"}
        tokens = [
            t.model_dump(mode="json", include=shown) for t in await self.tokens.of_subject(user_id)
        ]
        return {**user.model_dump(mode="json"), "tokens": tokens}

    async def principal(self, token: str) -> Principal | None:
        """Who the token speaks for, if it is known, live and not revoked. A user's role
        is read afresh, so a changed role counts at once."""
        found = await tokens.check(self.tokens, token)
        if found is None or found.id is None:
            return None
        user = await self.users.get(found.subject) if found.subject else None
        role = user.role if user else found.role
        teams: frozenset[str] = frozenset()
        if role == SUPERVISOR and found.subject:
            teams = await self.supervisors.teams(found.subject)
        return Principal(found.name, role, found.subject, teams, found.id)

    async def _check_agent(self, user_id: str, role: str) -> None:
        if role == AGENT and await self.agents.get(user_id) is None:
            raise UserRefused(f"an agent user is the agent of the same id: no agent {user_id!r}")
