"""The center as code: read whole, checked against what is in force, applied all or nothing.

The database rows (teams, skills, numbers, agents, flow versions) are written in one
transaction. The files (the queues file, the flow files) are written inside it, each
replaced whole, and put back as they were if anything after them fails; new agents'
phones are pushed into Asterisk before the commit and taken away again on failure.
Only once the commit is done does the running service take the change: the ACD's
queues and agents, the flows, the numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import yaml

from ari_app.adapters import center_store, flow_files, queue_file
from ari_app.adapters.agent_store import delete_agent
from ari_app.adapters.center_store import CenterStore
from ari_app.adapters.tables import AgentRecord, FlowVersionRecord
from ari_app.domain.agents import AgentState
from ari_app.domain.center import AGENT_DEFAULTS, Center, Change, InForce, Kind, Plan, plan
from ari_app.domain.ivr.check import load_flow
from ari_app.domain.ivr.flow import Problem
from ari_app.services.agents import AgentDirectory, profile_of
from ari_app.services.flows import FlowRegistry
from ari_app.services.phones import push_phone, remove_phone, sip_digest
from ari_app.services.queues import QueueBook

log = structlog.get_logger(__name__)


class CenterRefused(Exception):
    """The change has problems (or could not be made): nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class KindBarred(Exception):
    """The changes touch kinds the asker may not change: nothing was changed."""

    def __init__(self, kinds: list[Kind]) -> None:
        super().__init__(", ".join(kinds))
        self.kinds = kinds


@dataclass
class Applied:
    changes: list[Change]
    passwords: dict[str, str] = field(default_factory=dict)  # new agents' SIP passwords, once
    prompts_checked: str = ""

    def diff(self) -> list[str]:
        return [change.line() for change in self.changes]


def located(problem: Problem) -> str:
    """A problem as a person finds it in the document: `agents.anna.team: no team 'x'`."""
    where = ".".join(str(part) for part in problem.path)
    return f"{where}: {problem.message}" if where else problem.message


def flow_text(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


class CenterDesk:
    def __init__(
        self,
        store: CenterStore,
        agents: AgentDirectory,
        flows: FlowRegistry,
        queues: QueueBook,
        *,
        queue_busy: Callable[[str], list[str]] = lambda name: [],  # callers in the queue
        reached: Callable[[str], bool] = lambda number: True,  # the dialplan sends it here
    ) -> None:
        self.store, self.agents, self.flows, self.queues = store, agents, flows, queues
        self._queue_busy, self._reached = queue_busy, reached
        self._lock = asyncio.Lock()

    async def load_numbers(self) -> None:
        """Give the flows the numbers' table (at start)."""
        numbers = await self.store.catalogue("numbers")
        self.flows.assigned = {number: row["flow"] for number, row in numbers.items()}

    # -- reading --------------------------------------------------------------------------

    async def center(self) -> Center:
        """The center in force. Teams and skills in use count even where none was declared,
        so an export is always a document that applies."""
        records = await self.agents.store.all()
        agents = {r.id: _agent_item(r) for r in records}
        teams = {a["team"]: {"name": a["team"]} for a in agents.values() if a["team"]}
        teams |= await self.store.catalogue("teams")
        used = {skill for a in agents.values() for skill in a["skills"]}
        used |= {skill for q in self.queues.queues.values() for skill in q.rules.skills}
        used |= {
            skill
            for flow in self.flows.flows.values()
            for node in flow.nodes.values()
            for skill in getattr(node, "skills", {}) or {}
        }
        skills = {skill: {"description": ""} for skill in used}
        skills |= await self.store.catalogue("skills")
        return Center(
            teams=teams,
            skills=skills,
            agents=agents,
            queues=self.queues.definitions(),
            flows={name: self.flows.documents.get(name) for name in self.flows.flows},
            numbers=await self.store.catalogue("numbers"),
        )

    async def export(self) -> dict[str, Any]:
        return (await self.center()).document()

    async def check(self, document: Any) -> Plan:
        """What applying the document would change, or its problems; nothing is changed."""
        now = await self._in_force()
        sound_exists = None
        if isinstance(document, dict) and "flows" in document:  # prompts asked only then
            sound_exists, _ = await self.flows.sound_check()
        found = plan(document, now, lambda data: load_flow(data, sound_exists=sound_exists))
        if found.problems:
            return found
        problems = await self._versions_taken(found)
        return Plan((), tuple(problems)) if problems else found

    async def _in_force(self) -> InForce:
        center = await self.center()
        holders = await self.store.team_holders()
        states = {view.record.id: view.status.state for view in await self.agents.views()}

        def busy(kind: Kind, key: str) -> list[str]:
            if kind == "queues":
                return list(self._queue_busy(key))
            if kind == "teams" and key in holders:
                return [f"team '{key}' is held by {', '.join(sorted(holders[key]))}"]
            if kind == "agents" and states.get(key, AgentState.LOGGED_OUT) != AgentState.LOGGED_OUT:
                return [f"agent '{key}' is {states[key].value}: log them out first"]
            return []

        queues = dict(self.queues.queues)
        return InForce(center, dict(self.flows.flows), queues, busy, self._reached)

    async def _versions_taken(self, found: Plan) -> list[Problem]:
        """A version number names one content forever: a stored one must be that content."""
        problems = []
        for change in found.changes:
            if change.kind != "flows" or change.action == "remove":
                continue
            flow = found.flows[change.key]
            stored = await self.store.version(change.key, flow.version)
            if stored is None:
                continue
            was, _ = load_flow(flow_files.parse_text(stored.text, "stored").data)
            if was != flow:
                problems.append(
                    Problem(
                        ("flows", change.key, "version"),
                        f"version {flow.version} is stored with other content: give a new one",
                    )
                )
        return problems

    # -- applying -------------------------------------------------------------------------

    async def apply(
        self,
        document: Any,
        actor: str,
        texts: Mapping[str, str] | None = None,
        *,
        barred: Collection[Kind] = (),
    ) -> Applied:
        """Check, then make every change or none. Raises CenterRefused, or KindBarred when
        the changes touch a kind of `barred` (what the asker's role may not change)."""
        async with self._lock, self.queues.lock:
            found = await self.check(document)
            if found.problems:
                raise CenterRefused([located(p) for p in found.problems])
            touched = sorted({c.kind for c in found.changes if c.kind in barred})
            if touched:
                raise KindBarred(touched)
            if not found.changes:
                return Applied([])
            return await self._apply(found, actor, texts or {})

    async def _apply(self, found: Plan, actor: str, texts: Mapping[str, str]) -> Applied:
        """Asterisk is asked first (the sounds, new phones), so that the transaction holds
        the database only while rows and files are written."""
        now = datetime.now(UTC)
        applied = Applied(list(found.changes))
        flows_change = any(c.kind == "flows" for c in found.changes)
        sound_exists, applied.prompts_checked = (
            await self.flows.sound_check() if flows_change else (None, "")
        )
        files = _Files()
        digests = await self._phones(found, applied)
        try:
            async with self.store.transaction() as connection:
                for change in found.changes:
                    await self._row(connection, change, now, digests, texts, actor, files)
                if found.queues is not None and any(c.kind == "queues" for c in found.changes):
                    definitions = {c.key: c.after for c in found.changes if c.kind == "queues"}
                    files.write(self.queues.path, _queues_text(self.queues.path, definitions))
                if flows_change:
                    report = self.flows.reload_now(sound_exists, applied.prompts_checked)
                    ours = [p for p in report.problems if any(str(f) in p for f in files.paths)]
                    if ours:
                        raise CenterRefused(ours)
        except BaseException:
            files.restore()
            if files.paths:
                self.flows.reload_now(None, "restored")
            for agent_id in applied.passwords:
                await remove_phone(self.agents.ari, f"agent-{agent_id}")
            raise
        self._take(found)
        for change in found.changes:
            if change.kind == "agents" and change.action == "remove":
                await remove_phone(self.agents.ari, f"agent-{change.key}")
        log.info("center_applied", actor=actor, changes=applied.diff())
        return applied

    async def _phones(self, found: Plan, applied: Applied) -> dict[str, str]:
        """Push the phones of new agents (a password each, shown once) and of renamed ones;
        every agent's digest. A refusal takes the new phones pushed so far away again."""
        digests = {record.id: record.sip_digest for record in await self.agents.store.all()}
        try:
            for change in found.changes:
                if change.kind != "agents" or change.action == "remove":
                    continue
                endpoint, name = f"agent-{change.key}", change.after["name"]
                if change.action == "add":
                    password = secrets.token_urlsafe(18)
                    digests[change.key] = sip_digest(endpoint, password)
                    applied.passwords[change.key] = password
                elif change.before["name"] == name:
                    continue
                await push_phone(self.agents.ari, endpoint, name, change.key, digests[change.key])
        except BaseException:
            for agent_id in applied.passwords:
                await remove_phone(self.agents.ari, f"agent-{agent_id}")
            raise
        return digests

    async def _row(
        self,
        connection: Any,
        change: Change,
        now: datetime,
        digests: Mapping[str, str],
        texts: Mapping[str, str],
        actor: str,
        files: _Files,
    ) -> None:
        """Write one change's rows (and a flow's file)."""
        if change.kind in ("teams", "skills", "numbers"):
            if change.action == "remove":
                await center_store.remove(connection, change.kind, change.key)
            else:
                row = {**change.after, "updated_at": now}
                await center_store.put(connection, change.kind, change.key, row)
        elif change.kind == "agents":
            if change.action == "remove":
                await delete_agent(connection, change.key)
                return
            record = AgentRecord(
                id=change.key,
                **change.after,
                sip_digest=digests[change.key],
                created_at=now,
                updated_at=now,
            )
            await center_store.put_agent(connection, record, change.action == "add")
        elif change.kind == "flows":
            await self._flow(connection, change, texts, actor, now, files)

    async def _flow(
        self,
        connection: Any,
        change: Change,
        texts: Mapping[str, str],
        actor: str,
        now: datetime,
        files: _Files,
    ) -> None:
        path = self.flows.file_of(change.key)
        if change.action == "remove":
            files.remove(path)
            return
        in_force = self.flows.flows.get(change.key)
        if in_force is not None and path.exists():  # the way back (a rollback takes it)
            until = now - timedelta(microseconds=1)
            outgoing = _version(change.key, in_force.version, path.read_text(), actor, now, until)
            await center_store.keep_version(connection, outgoing)
        text = texts.get(change.key) or flow_text(change.after)
        version = int(change.after["version"])
        await center_store.keep_version(
            connection, _version(change.key, version, text, actor, now, activated=now)
        )
        files.write(path, text)

    def _take(self, found: Plan) -> None:
        """The running service takes the change (the commit is done)."""
        if found.queues is not None and any(c.kind == "queues" for c in found.changes):
            self.queues.take(dict(found.queues), queue_file.queues_section(self.queues.path))
        keeper = self.agents.keeper
        for change in found.changes:
            if change.kind == "agents" and keeper is not None:
                if change.action == "remove":
                    keeper.profile_removed(change.key)
                else:
                    record = AgentRecord(id=change.key, **change.after, sip_digest="")
                    keeper.profile_changed(profile_of(record))
            if change.kind == "numbers":
                if change.action == "remove":
                    self.flows.assigned.pop(change.key, None)
                else:
                    self.flows.assigned[change.key] = change.after["flow"]


def _agent_item(record: AgentRecord) -> dict[str, Any]:
    item = {key: getattr(record, key) for key in ("name", *AGENT_DEFAULTS)}
    item["skills"] = dict(sorted(item["skills"].items()))
    return item


def _version(
    flow: str, version: int, text: str, actor: str, now: datetime, activated: datetime | None = None
) -> FlowVersionRecord:
    return FlowVersionRecord(
        flow=flow,
        version=version,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        stored_at=now,
        stored_by=actor[:80],
        activated_at=activated,
    )


def _queues_text(path: Path, definitions: dict[str, Any]) -> str:
    def change(queues: dict[str, Any]) -> None:
        for name, body in definitions.items():
            if body is None:
                del queues[name]
            else:
                queues[name] = body

    return queue_file.edited(path, change)


class _Files:
    """Files replaced whole, each with what it held before, to be put back on failure."""

    def __init__(self) -> None:
        self.before: dict[Path, str | None] = {}

    @property
    def paths(self) -> list[Path]:
        return list(self.before)

    def write(self, path: Path, text: str) -> None:
        self.before.setdefault(path, path.read_text() if path.exists() else None)
        queue_file.replace(path, text)

    def remove(self, path: Path) -> None:
        if path.exists():
            self.before.setdefault(path, path.read_text())
            path.unlink()

    def restore(self) -> None:
        for path, text in self.before.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                queue_file.replace(path, text)
