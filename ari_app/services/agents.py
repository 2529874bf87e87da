"""The agents directory: profiles in the database, their phones pushed into Asterisk.

Each agent's phone is `agent-<id>` (see services.phones: pushed through ARI, no
reload). The database is the source of truth: every (re)connect pushes every
agent again. The SIP password is generated, shown once, and kept only as the
digest PJSIP checks.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from ari_app.adapters.agent_store import AgentStore
from ari_app.adapters.ari import AriRest
from ari_app.adapters.tables import AgentRecord, AgentStateRecord
from ari_app.domain import agents as agent_logic
from ari_app.domain.agents import AgentEvent, AgentProfile, AgentState, AgentStatus
from ari_app.services.phones import push_phone, remove_phone, sip_digest

log = structlog.get_logger(__name__)


class AgentNotFound(Exception):
    pass


class StateKeeper(Protocol):
    """Who owns the agents' live state: the ACD, once it runs (it persists the changes)."""

    def agent_event(self, agent_id: str, event: AgentEvent, source: str) -> AgentStatus: ...

    def profile_changed(self, profile: AgentProfile) -> None: ...

    def profile_removed(self, agent_id: str) -> None: ...

    def status(self, agent_id: str) -> AgentStatus | None: ...


def profile_of(record: AgentRecord) -> AgentProfile:
    return AgentProfile(
        record.id,
        record.name,
        record.team,
        dict(record.skills),
        record.wrap_up_seconds,
        record.recording,
    )


def status_of(agent_id: str, row: AgentStateRecord | None) -> AgentStatus:
    if row is None:
        return AgentStatus(agent_id)
    return AgentStatus(
        agent_id,
        AgentState(row.state),
        row.since,
        row.reason,
        row.call_id,
        row.missed,
        AgentState(row.pending) if row.pending else None,
        row.pending_reason,
        row.wrap_up_until,
    )


@dataclass(frozen=True)
class AgentView:
    record: AgentRecord
    status: AgentStatus


class AgentDirectory:
    def __init__(
        self,
        store: AgentStore,
        ari: AriRest,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.ari, self._clock = store, ari, clock
        self.keeper: StateKeeper | None = None

    # -- profiles -------------------------------------------------------------------------

    async def create(self, profile: AgentProfile) -> str:
        """Add an agent and their phone; returns the phone's SIP password (shown once)."""
        if await self.store.get(profile.agent_id) is not None:
            raise agent_logic.AgentStateError(f"agent '{profile.agent_id}' already exists")
        password = secrets.token_urlsafe(18)
        digest = sip_digest(profile.endpoint, password)
        await self._push(profile, digest)
        now = self._clock()
        record = AgentRecord(
            id=profile.agent_id,
            name=profile.name,
            team=profile.team,
            skills=dict(profile.skills),
            wrap_up_seconds=profile.wrap_up_seconds,
            recording=profile.recording,
            sip_digest=digest,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.store.add(record)
        except Exception:
            await self._remove_phone(profile.endpoint)  # nothing half-made stays behind
            raise
        if self.keeper is not None:
            self.keeper.profile_changed(profile)
        log.info("agent_created", agent_id=profile.agent_id)
        return password

    async def update(self, agent_id: str, **changes: Any) -> AgentRecord:
        """Change a profile (name, team, skills, wrap-up); the next routing decision sees it."""
        record = await self._record(agent_id)
        updated = record.model_copy(update=changes)
        if "name" in changes:  # the caller id of the phone shows the name
            await self._push(profile_of(updated), record.sip_digest)
        await self.store.update(agent_id, **changes, updated_at=self._clock())
        if self.keeper is not None:
            self.keeper.profile_changed(profile_of(updated))
        return updated

    async def new_password(self, agent_id: str) -> str:
        record = await self._record(agent_id)
        password = secrets.token_urlsafe(18)
        digest = sip_digest(profile_of(record).endpoint, password)
        await self._push(profile_of(record), digest)
        await self.store.update(agent_id, sip_digest=digest, updated_at=self._clock())
        return password

    async def delete(self, agent_id: str) -> None:
        record = await self._record(agent_id)
        await self._remove_phone(profile_of(record).endpoint)
        await self.store.delete(agent_id)
        if self.keeper is not None:
            self.keeper.profile_removed(agent_id)
        log.info("agent_deleted", agent_id=agent_id)

    async def views(self) -> list[AgentView]:
        states = await self.store.states()
        return [
            AgentView(record, self._status(record.id, states)) for record in await self.store.all()
        ]

    async def view(self, agent_id: str) -> AgentView:
        record = await self._record(agent_id)
        return AgentView(record, self._status(agent_id, await self.store.states()))

    def _status(self, agent_id: str, stored: Mapping[str, AgentStateRecord]) -> AgentStatus:
        """The live state when the ACD runs (it is written behind), else the stored one."""
        live = self.keeper.status(agent_id) if self.keeper is not None else None
        return live or status_of(agent_id, stored.get(agent_id))

    async def provision_all(self) -> int:
        """Push every agent's phone into Asterisk (on every connect)."""
        records = await self.store.all()
        for record in records:
            await self._push(profile_of(record), record.sip_digest)
        log.info("agents_provisioned", agents=len(records))
        return len(records)

    # -- state ----------------------------------------------------------------------------

    async def change_state(self, agent_id: str, event: AgentEvent, source: str) -> AgentStatus:
        """Apply one event to an agent and persist it with its audit row."""
        view = await self.view(agent_id)
        if self.keeper is not None:
            return self.keeper.agent_event(agent_id, event, source)
        now = self._clock()
        status = agent_logic.step(view.status, event, now, profile_of(view.record))
        await self.store.save_state(
            state_row(status),
            {
                "agent_id": agent_id,
                "at": now,
                "event": type(event).__name__,
                "from_state": view.status.state.value,
                "to_state": status.state.value,
                "reason": status.reason or status.pending_reason,
                "source": source,
            },
        )
        log.info(
            "agent_state",
            agent_id=agent_id,
            state=status.state.value,
            reason=status.reason,
            pending=status.pending.value if status.pending else None,
            source=source,
        )
        return status

    # -- inside ---------------------------------------------------------------------------

    async def _record(self, agent_id: str) -> AgentRecord:
        record = await self.store.get(agent_id)
        if record is None:
            raise AgentNotFound(agent_id)
        return record

    async def _push(self, profile: AgentProfile, digest: str) -> None:
        await push_phone(self.ari, profile.endpoint, profile.name, profile.agent_id, digest)

    async def _remove_phone(self, endpoint: str) -> None:
        await remove_phone(self.ari, endpoint)


def state_row(status: AgentStatus) -> dict[str, Any]:
    return {
        "agent_id": status.agent_id,
        "state": status.state.value,
        "since": status.since,
        "reason": status.reason,
        "call_id": status.call_id,
        "missed": status.missed,
        "pending": status.pending.value if status.pending else None,
        "pending_reason": status.pending_reason,
        "wrap_up_until": status.wrap_up_until,
    }
