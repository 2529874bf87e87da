"""Supervisors: a team they may monitor, a phone that rings for it, a token to ask with.

A supervisor's phone is `supervisor-<id>`, pushed into Asterisk like an
agent's (services.phones). Creating one returns the SIP password and an API
token (role supervisor, bound to them), each shown once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import TokenStore
from ari_app.adapters.monitor_store import SupervisorExists, SupervisorStore
from ari_app.adapters.tables import SupervisorRecord
from ari_app.adapters.user_store import UserStore
from ari_app.domain.monitor import endpoint_of
from ari_app.services import tokens
from ari_app.services.phones import push_phone, remove_phone, sip_digest

log = structlog.get_logger(__name__)


class SupervisorNotFound(Exception):
    pass


class SupervisorDirectory:
    def __init__(
        self,
        store: SupervisorStore,
        tokens: TokenStore,
        ari: AriRest,
        users: UserStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.tokens, self.ari, self._clock = store, tokens, ari, clock
        self.users = users

    async def create(self, supervisor_id: str, name: str, team: str) -> tuple[str, str]:
        """Add a supervisor and their phone; (SIP password, API token), shown once."""
        password = secrets.token_urlsafe(18)
        endpoint = endpoint_of(supervisor_id)
        digest = sip_digest(endpoint, password)
        if await self.store.get(supervisor_id) is not None:
            raise SupervisorExists(supervisor_id)
        await push_phone(self.ari, endpoint, name, supervisor_id, digest)
        now = self._clock()
        row = {"id": supervisor_id, "name": name, "team": team, "sip_digest": digest}
        try:
            await self.store.add({**row, "created_at": now, "updated_at": now})
        except Exception:
            await remove_phone(self.ari, endpoint)  # nothing half-made stays behind
            raise
        token = await tokens.mint(self.tokens, f"supervisor {supervisor_id}", "supervisor",
                                  supervisor_id)  # fmt: skip
        log.info("supervisor_created", supervisor_id=supervisor_id, team=team)
        return password, token

    async def get(self, supervisor_id: str) -> SupervisorRecord:
        found = await self.store.get(supervisor_id)
        if found is None:
            raise SupervisorNotFound(supervisor_id)
        return found

    async def teams(self, supervisor_id: str) -> frozenset[str]:
        """The teams a supervisor watches: their phone's, and those their user holds."""
        record, user = await self.store.get(supervisor_id), await self.users.get(supervisor_id)
        teams = set(user.teams) if user else set()
        if record is not None and record.team:
            teams.add(record.team)
        return frozenset(teams)

    async def all(self) -> list[SupervisorRecord]:
        return await self.store.find(limit=10_000)

    async def update(self, supervisor_id: str, name: str | None, team: str | None) -> None:
        record = await self.get(supervisor_id)
        changes = {k: v for k, v in (("name", name), ("team", team)) if v is not None}
        if "name" in changes:  # the phone's caller id shows the name
            await push_phone(self.ari, endpoint_of(supervisor_id), changes["name"],
                             supervisor_id, record.sip_digest)  # fmt: skip
        await self.store.update(supervisor_id, **changes, updated_at=self._clock())
        log.info("supervisor_changed", supervisor_id=supervisor_id, **changes)

    async def delete(self, supervisor_id: str) -> None:
        await self.get(supervisor_id)
        await remove_phone(self.ari, endpoint_of(supervisor_id))
        if await self.users.get(supervisor_id) is None:  # a user's tokens stay theirs
            await self.tokens.revoke_subject(supervisor_id)
        await self.store.delete(supervisor_id)
        log.info("supervisor_deleted", supervisor_id=supervisor_id)

    async def provision_all(self) -> int:
        """Push every supervisor's phone into Asterisk (on every connect)."""
        records = await self.all()
        for record in records:
            await push_phone(self.ari, endpoint_of(record.id), record.name, record.id,
                             record.sip_digest)  # fmt: skip
        return len(records)
