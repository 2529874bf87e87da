"""The dialplan ops edit: rendered from `dialplan/*.conf`, checked against what the
center needs and what the connected Asterisk has, and deployed with a way back."""

from __future__ import annotations

import asyncio
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from ari_app.adapters import flow_files
from ari_app.adapters.asterisk_conf import TemplateError, render
from ari_app.adapters.dialplan_deploy import DialplanInstaller
from ari_app.domain.call import Config
from ari_app.domain.dialplan import Dialplan, Expected, check, reaches, read
from ari_app.services.features import RESULT_CONTEXT
from ari_app.services.phones import PHONES_CONTEXT

log = structlog.get_logger(__name__)

MAIN = "extensions.conf"
CARRIER_CONTEXT = "from-carrier"  # the trunk's endpoint context (asterisk_conf/pjsip.conf)
_CALLS = Config()
SERVICE_CONTEXTS = {
    CARRIER_CONTEXT: "the carrier trunk's calls arrive there",
    PHONES_CONTEXT: "the agents' and supervisors' phones dial from it",
    RESULT_CONTEXT: "the feature codes answer there",
    _CALLS.transfer_context: "the IVR and the queues transfer calls there",
    _CALLS.voicemail_context: "the IVR and the queues send callers to voicemail there",
    _CALLS.goodbye_context: "the queues say goodbye there",
}


FILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}\.conf")


class DialplanRefused(Exception):
    """The dialplan has problems; nothing was installed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Checked:
    files: dict[str, str]  # as Asterisk gets them (placeholders filled in)
    plan: Dialplan
    problems: list[str]


def flow_numbers(flows_dir: Path) -> dict[str, str]:
    """The service numbers the IVR flows answer, each with its flow."""
    numbers: dict[str, str] = {}
    for path in sorted(flows_dir.glob("*.yaml")):
        data = flow_files.read(path).data
        if isinstance(data, dict):
            for number in data.get("numbers") or []:
                numbers[str(number)] = f"flow {data.get('flow', path.stem)}"
    return numbers


class DialplanDesk:
    def __init__(
        self,
        source_dir: Path,
        application: str,
        flows_dir: Path,
        installer: DialplanInstaller | None = None,
        assigned: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.source_dir, self.application, self.flows_dir = source_dir, application, flows_dir
        self.installer = installer
        self._assigned = assigned  # the numbers' table: number -> flow
        self._lock = asyncio.Lock()  # one deploy at a time

    def sources(self) -> dict[str, str]:
        """The dialplan files as ops wrote them."""
        return {path.name: path.read_text() for path in sorted(self.source_dir.glob("*.conf"))}

    async def check(self, sources: Mapping[str, str] | None = None) -> Checked:
        """The files rendered and checked; with an installer, against the applications of
        the connected Asterisk."""
        sources = self.sources() if sources is None else sources
        files, problems = {}, []
        for name, text in sources.items():
            try:
                files[name] = render(text, {"application": self.application}, source=name)
            except TemplateError as exc:
                problems.append(str(exc))
        if MAIN not in files:
            problems.append(f"{MAIN}: there is none")
            return Checked(files, Dialplan({}, []), problems)
        plan = read(files, MAIN)
        applications = await self.installer.applications() if self.installer else None
        numbers = flow_numbers(self.flows_dir)
        numbers |= {number: f"flow {flow}" for number, flow in self._assigned().items()}
        expected = Expected(SERVICE_CONTEXTS, numbers, CARRIER_CONTEXT)
        problems += [str(problem) for problem in check(plan, expected, applications)]
        return Checked(files, plan, problems)

    def reaches(self, number: str) -> bool:
        """Whether the dialplan ops edit sends a carrier's call to the number on to the
        service (a dialplan that does not render reaches nothing)."""
        try:
            files = {
                name: render(text, {"application": self.application}, source=name)
                for name, text in self.sources().items()
            }
        except TemplateError:
            return False
        return MAIN in files and reaches(read(files, MAIN), CARRIER_CONTEXT, number)

    async def deploy(self, sources: Mapping[str, str] | None = None) -> Checked:
        """Check, then install into Asterisk and verify what it loaded. Raises
        DialplanRefused (nothing installed) or DeployFailed (the files before are back)."""
        if self.installer is None:
            raise DialplanRefused(["ARI_APP_ASTERISK_CONFIG_DIR is not set: nowhere to deploy"])
        async with self._lock:
            return await self._deploy(sources)

    async def _deploy(self, sources: Mapping[str, str] | None) -> Checked:
        assert self.installer is not None
        checked = await self.check(sources)
        if checked.problems:
            raise DialplanRefused(checked.problems)
        await self.installer.install(checked.files, entries(checked.plan))
        log.info("dialplan_deployed", files=sorted(checked.files))
        return checked

    async def preview(self, name: str, text: str) -> tuple[Checked, str]:
        """What `put` would deploy, checked as it would be, and the diff; nothing is
        installed or written. Raises DialplanRefused."""
        if not FILE_NAME.fullmatch(name):
            raise DialplanRefused([f"{name}: a dialplan file is named like ari_app.conf"])
        sources = self.sources()
        checked = await self.check({**sources, name: text})
        if checked.problems:
            raise DialplanRefused(checked.problems)
        return checked, _diff(name, sources.get(name, ""), text)

    async def put(self, name: str, text: str) -> tuple[Checked, str]:
        """Replace (or add) one file of the dialplan ops edit and deploy the whole: the
        file is kept only once Asterisk has loaded it. What was deployed and the unified
        diff; raises DialplanRefused or DeployFailed, and then nothing changed."""
        if not FILE_NAME.fullmatch(name):
            raise DialplanRefused([f"{name}: a dialplan file is named like ari_app.conf"])
        if self.installer is None:
            raise DialplanRefused(["ARI_APP_ASTERISK_CONFIG_DIR is not set: nowhere to deploy"])
        async with self._lock:
            sources = self.sources()
            before = sources.get(name, "")
            checked = await self._deploy({**sources, name: text})
            _replace(self.source_dir / name, text)
        return checked, _diff(name, before, text)


def _diff(name: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(lines)


def entries(plan: Dialplan) -> dict[str, frozenset[str]]:
    """What each context must hold once loaded: its extensions and its includes."""
    return {
        name: frozenset(context.extensions()) | {f"include {i}" for i, _, _ in context.includes}
        for name, context in plan.contexts.items()
    }


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    os.replace(temporary, path)
