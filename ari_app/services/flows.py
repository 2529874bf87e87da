"""The flows in force: loaded from a folder, checked, swapped in whole on reload.

A file that fails its check never replaces the version in force; the other
files still load. Calls hold the Flow object they started with, so a reload
changes what new calls get and nothing else. When Asterisk answers, every
prompt is checked against the sounds it has; when it does not, the flows load
with that check left out and the report says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ari_app.adapters import flow_files
from ari_app.domain.ivr.check import SoundExists, load_flow
from ari_app.domain.ivr.flow import Flow, Queue
from ari_app.domain.ivr.sounds import SoundCatalog

log = structlog.get_logger(__name__)


def check_file(
    path: Path, sound_exists: SoundExists | None = None
) -> tuple[Flow | None, list[str]]:
    """The flow in a file, or the problems that keep it out, as `file:line: reason` lines."""
    flow, problems, _ = _read_flow(path, sound_exists)
    return flow, problems


def _read_flow(path: Path, sound_exists: SoundExists | None) -> tuple[Flow | None, list[str], Any]:
    """As check_file, with the file's data (what an export gives of the flow)."""
    document = flow_files.read(path)
    if document.problems:
        return None, [str(problem) for problem in document.problems], None
    flow, problems = load_flow(document.data, sound_exists=sound_exists)
    located = sorted(
        {document.locate(problem) for problem in problems},
        key=lambda found: (found.line, found.message),
    )
    return flow, [str(problem) for problem in located], document.data


@dataclass
class Reload:
    loaded: list[str] = field(default_factory=list)  # "name vN (file)"
    kept: list[str] = field(default_factory=list)  # flows whose new file was refused
    problems: list[str] = field(default_factory=list)
    prompts_checked: str = ""  # against how many sounds, or why not


SoundSource = Callable[[], Awaitable[SoundCatalog]]


def _same_version_changed(in_force: Flow, new: Flow) -> bool:
    """Two contents under one version would make every stored IVR path ambiguous."""
    return new.version == in_force.version and new != in_force


class FlowRegistry:
    def __init__(self, folder: Path, sounds: SoundSource | None = None) -> None:
        self.folder = folder
        self._sounds = sounds
        self.flows: dict[str, Flow] = {}  # by flow name
        self._files: dict[Path, str] = {}  # file -> flow name it last gave
        self._by_number: dict[str, Flow] = {}
        self.assigned: dict[str, str] = {}  # service number -> flow (the numbers' table)
        self.documents: dict[str, Any] = {}  # each flow in force as its file wrote it

    async def reload(self) -> Reload:
        """Read every *.yaml of the folder; keep the previous version of any that fails."""
        return self.reload_now(*await self.sound_check())

    async def sound_check(self) -> tuple[SoundExists | None, str]:
        """How prompts are checked now: against Asterisk's sounds, or not (and why)."""
        if self._sounds is None:
            return None, "not checked: no Asterisk to ask"
        try:
            catalog = await self._sounds()
        except Exception as exc:  # any failure to ask leaves the check out, loudly
            log.warning("prompts_not_checked", reason=repr(exc))
            return None, f"not checked: Asterisk did not answer ({exc})"
        return catalog.has, f"checked against {len(catalog)} sounds"

    def file_of(self, name: str) -> Path:
        """The file a flow comes from, or the one a new flow of that name goes to."""
        owned = [path for path, flow in self._files.items() if flow == name and path.exists()]
        if owned:
            return owned[0]
        path, n = self.folder / f"{name}.yaml", 2
        while path.exists():  # another flow's file (or one that never loaded) stays
            path, n = self.folder / f"{name}-{n}.yaml", n + 1
        return path

    def reload_now(self, sound_exists: SoundExists | None, prompts_checked: str) -> Reload:
        """The reload itself, with the sounds already known (or not checked at all)."""
        report = Reload(prompts_checked=prompts_checked)
        fresh: dict[str, Flow] = {}
        documents: dict[str, Any] = {}
        for path in sorted(self.folder.glob("*.yaml")):
            flow, problems, data = _read_flow(path, sound_exists)
            in_force = self.flows.get(flow.name) if flow is not None else None
            if flow is not None and in_force is not None and _same_version_changed(in_force, flow):
                problems = [
                    f"{path}:1: flow '{flow.name}' changed but is still version {flow.version}; "
                    "give the new content a new version"
                ]
                flow = None
            if flow is None:
                report.problems += problems
                previous = self._files.get(path)
                if previous in self.flows:
                    fresh[previous] = self.flows[previous]
                    documents[previous] = self.documents.get(previous)
                    report.kept.append(f"{previous} v{self.flows[previous].version}")
                continue
            if flow.name in fresh:
                report.problems.append(f"{path}: flow name '{flow.name}' is used by another file")
                continue
            fresh[flow.name] = flow
            documents[flow.name] = data
            self._files[path] = flow.name
            report.loaded.append(f"{flow.name} v{flow.version} ({path.name})")
        owners: dict[str, str] = {}
        for flow in fresh.values():
            for number in flow.numbers:
                if number in owners:
                    report.problems.append(
                        f"number {number} is claimed by flows '{owners[number]}' and '{flow.name}'"
                    )
                owners.setdefault(number, flow.name)
        self.flows, self.documents = fresh, documents
        self._by_number = {number: fresh[name] for number, name in owners.items()}
        log.info(
            "flows_loaded",
            loaded=report.loaded,
            kept=report.kept,
            problems=len(report.problems),
            prompts=prompts_checked,
        )
        for problem in report.problems:
            log.error("flow_refused", problem=problem)
        return report

    def queue_in_use(self, queue: str) -> list[str]:
        """Why the queue cannot be removed now: the flows in force that send callers to it."""
        naming = sorted(
            flow.name
            for flow in self.flows.values()
            if any(isinstance(node, Queue) and node.queue == queue for node in flow.nodes.values())
        )
        return [f"flow(s) {', '.join(naming)} send callers to queue '{queue}'"] if naming else []

    def for_number(self, number: str) -> Flow | None:
        """The flow a caller of this number gets: as the numbers' table says, else the flow
        that lists the number."""
        name = self.assigned.get(number)
        if name is not None and name in self.flows:
            return self.flows[name]
        return self._by_number.get(number)
