"""Installing the dialplan into a running Asterisk: the files written whole into its
configuration folder, `dialplan reload` through AMI, what was loaded read back
through AMI, and the files before put back (and reloaded) if anything fails.

A reload swaps the dialplan whole; channels in calls keep going, each finding its
next step in whatever dialplan is loaded when it gets there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


class Ami(Protocol):
    async def send_action(self, action: dict[str, str], *, listed: bool = False) -> Any: ...


class DeployFailed(Exception):
    """The new dialplan did not load as written; the one before is back in force."""

    def __init__(self, problems: list[str], restored: bool) -> None:
        super().__init__("; ".join(problems))
        self.problems, self.restored = problems, restored


@dataclass(frozen=True)
class Loaded:
    """What Asterisk holds of the contexts asked about: each context's extensions and
    `include <context>` entries; None for a context it does not have."""

    contexts: dict[str, frozenset[str] | None]


def _lines(reply: Any) -> list[str]:
    """The output lines of an AMI Command's answer."""
    messages = reply if isinstance(reply, list) else [reply]
    lines: list[str] = []
    for message in messages:
        output = message.get("Output")
        if output is not None:
            lines += output if isinstance(output, list) else [output]
        elif getattr(message, "content", ""):
            lines += str(message.content).splitlines()
    return lines


class DialplanInstaller:
    def __init__(self, ami: Ami, config_dir: Path) -> None:
        self.ami, self.config_dir = ami, config_dir

    async def command(self, command: str) -> list[str]:
        reply = await self.ami.send_action({"Action": "Command", "Command": command})
        first = reply[0] if isinstance(reply, list) else reply
        if first.get("Response") not in ("Success", "Follows"):
            raise DeployFailed([f"{command}: {first.get('Message', 'refused')}"], restored=False)
        return _lines(reply)

    async def applications(self) -> frozenset[str]:
        """The applications the connected Asterisk has (`core show applications`)."""
        names = set()
        for line in await self.command("core show applications"):
            name, colon, _ = line.strip().partition(":")
            if colon and name and " " not in name.strip():
                names.add(name.strip())
        return frozenset(names)

    async def loaded(self, contexts: list[str]) -> Loaded:
        """What Asterisk has loaded in each of these contexts."""
        found: dict[str, frozenset[str] | None] = {}
        for context in contexts:
            action = {"Action": "ShowDialPlan", "Context": context}
            reply = await self.ami.send_action(action, listed=True)
            messages = reply if isinstance(reply, list) else [reply]
            if messages[0].get("Response") == "Error":
                found[context] = None
                continue
            entries = set()
            for message in messages:
                if message.get("Event") != "ListDialplan":
                    continue
                if message.get("IncludeContext"):
                    entries.add(f"include {message.get('IncludeContext')}")
                elif message.get("Extension"):
                    entries.add(str(message.get("Extension")))
            found[context] = frozenset(entries)
        return Loaded(found)

    async def install(
        self, files: Mapping[str, str], expected: Mapping[str, frozenset[str]]
    ) -> None:
        """Write `files`, reload, and check that every context of `expected` holds its
        extensions; else put the files before back, reload and raise DeployFailed."""
        before = {name: self._read(name) for name in files}
        self._write(files)
        try:
            await self.command("dialplan reload")
            problems = self._missing(await self.loaded(sorted(expected)), expected)
        except DeployFailed as exc:
            problems = exc.problems
        except (OSError, TimeoutError, ConnectionError) as exc:
            problems = [f"AMI: {exc!r}"]
        except Exception as exc:  # whatever it was, the files before go back
            problems = [f"{type(exc).__name__}: {exc}"]
        if not problems:
            log.info("dialplan_installed", files=sorted(files), contexts=len(expected))
            return
        log.error("dialplan_refused_by_asterisk", problems=problems)
        self._write({name: text for name, text in before.items() if text is not None})
        for name, text in before.items():
            if text is None:
                (self.config_dir / name).unlink(missing_ok=True)
        try:
            await self.command("dialplan reload")
        except Exception as exc:
            problems.append(f"and reloading the dialplan before failed: {exc}")
            raise DeployFailed(problems, restored=False) from exc
        raise DeployFailed(problems, restored=True)

    @staticmethod
    def _missing(loaded: Loaded, expected: Mapping[str, frozenset[str]]) -> list[str]:
        problems = []
        for context, extensions in sorted(expected.items()):
            have = loaded.contexts.get(context)
            if have is None:
                problems.append(f"Asterisk did not load context {context!r}")
            elif extensions - have:
                lacking = ", ".join(sorted(extensions - have))
                problems.append(f"Asterisk did not load {lacking} in {context!r}")
        return problems

    def _read(self, name: str) -> str | None:
        try:
            return (self.config_dir / name).read_text()
        except FileNotFoundError:
            return None

    def _write(self, files: Mapping[str, str]) -> None:
        """Each file whole (a temporary file renamed over it): Asterisk never reads half."""
        for name, text in files.items():
            target = self.config_dir / name
            temporary = target.with_name(f".{name}.new")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
