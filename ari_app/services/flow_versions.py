"""IVR flow versions: uploaded (checked, then stored), activated, rolled back.

A stored version is text that passed its check; putting one in force is a change of
the center (`CenterDesk.apply`): the flow file is replaced and the flows reloaded, and
the next caller gets it. Calls in progress keep the version they started with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from ari_app.adapters import flow_files
from ari_app.adapters.center_store import CenterStore, VersionTaken
from ari_app.adapters.tables import FlowVersionRecord
from ari_app.domain.ivr.check import load_flow
from ari_app.services.center import Applied, CenterDesk, CenterRefused


class VersionNotFound(Exception):
    pass


class VersionExists(Exception):
    """This version is stored already, with this very content."""


@dataclass(frozen=True)
class StoredVersion:
    record: FlowVersionRecord
    in_force: bool


class FlowVersions:
    def __init__(self, store: CenterStore, desk: CenterDesk) -> None:
        self.store, self.desk = store, desk

    async def list(self, name: str) -> list[StoredVersion]:
        """Every stored version of the flow, the highest first."""
        in_force = self.desk.flows.flows.get(name)
        return [
            StoredVersion(record, in_force is not None and record.version == in_force.version)
            for record in await self.store.versions(name)
        ]

    async def get(self, name: str, version: int) -> FlowVersionRecord:
        record = await self.store.version(name, version)
        if record is None:
            raise VersionNotFound(f"flow '{name}' has no version {version}")
        return record

    async def upload(self, name: str, text: str, actor: str) -> FlowVersionRecord:
        """Check the text as a flow file is checked and store it; what is in force stays.
        Raises CenterRefused (every problem, by line) or VersionExists."""
        document = flow_files.parse_text(text, name)
        if document.problems:
            raise CenterRefused([str(problem) for problem in document.problems])
        sound_exists, _ = await self.desk.flows.sound_check()
        flow, problems = load_flow(document.data, sound_exists=sound_exists)
        if flow is None:
            located = sorted({document.locate(p) for p in problems}, key=lambda p: p.line)
            raise CenterRefused([str(problem) for problem in located])
        if flow.name != name:
            raise CenterRefused([f"{name}:1: the flow is named '{flow.name}', not '{name}'"])
        in_force = self.desk.flows.flows.get(name)
        stored = await self.store.version(name, flow.version)
        taken = stored is not None and load_flow(flow_files.parse_text(stored.text, "").data)[0]
        if stored is not None and taken == flow:
            raise VersionExists(f"flow '{name}' version {flow.version} is stored already")
        if stored is not None or (
            in_force is not None and in_force.version == flow.version and in_force != flow
        ):
            raise CenterRefused(
                [f"{name}:1: version {flow.version} is taken by other content: give a new one"]
            )
        record = FlowVersionRecord(
            flow=name,
            version=flow.version,
            text=text,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            stored_at=datetime.now(UTC),
            stored_by=actor[:80],
        )
        try:
            await self.store.add_version(record)
        except VersionTaken:  # another upload of this number came first
            raise CenterRefused(
                [f"{name}:1: version {flow.version} is taken by other content: give a new one"]
            ) from None
        return record

    async def activate(self, name: str, version: int, actor: str) -> Applied:
        """Put a stored version in force for the next caller. Raises VersionNotFound,
        CenterRefused (it no longer fits the center: a queue it names is gone...)."""
        record = await self.get(name, version)
        document = flow_files.parse_text(record.text, name).data
        flows = dict((await self.desk.center()).flows)
        flows[name] = document
        return await self.desk.apply({"flows": flows}, actor, texts={name: record.text})

    async def rollback(self, name: str, actor: str) -> Applied:
        """Go back to the version in force before the one in force now."""
        in_force = self.desk.flows.flows.get(name)
        if in_force is None:
            raise VersionNotFound(f"no flow '{name}' is in force")
        earlier = [
            r
            for r in await self.store.versions(name)
            if r.version != in_force.version and r.activated_at is not None
        ]
        if not earlier:
            raise VersionNotFound(f"flow '{name}' has no earlier version that was in force")
        back = max(earlier, key=lambda r: r.activated_at or datetime.min.replace(tzinfo=UTC))
        return await self.activate(name, back.version, actor)
