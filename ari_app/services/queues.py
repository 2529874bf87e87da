"""The queues file, read with the line of every key so problems point at file:line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from ari_app.adapters import flow_files, queue_file
from ari_app.domain.routing.config import QueueConfig, parse_queues

log = structlog.get_logger(__name__)


def read_queues(path: Path) -> tuple[dict[str, QueueConfig] | None, list[str]]:
    """The queues of a file, or the problems (as `file:line: reason`) that refuse it whole."""
    document = flow_files.read(path)
    if document.problems:
        return None, [str(problem) for problem in document.problems]
    queues, problems = parse_queues(document.data)
    if problems:
        located = sorted(
            {document.locate(problem) for problem in problems},
            key=lambda found: (found.line, found.message),
        )
        return None, [str(problem) for problem in located]
    return queues, []


class QueueRefused(Exception):
    """A queue change that would leave the queues file wrong: nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class QueueBook:
    """The queues in force: read from the queues file, edited through the API.

    The file stays the one source (queues as code): an edit from the API is checked
    with the whole file as `ari-app queues check` would, written in place (comments
    elsewhere in the file are kept) with an atomic rename, and only then applied, to
    the ACD's next decision. A refused edit changes nothing, neither the file nor the
    routing; neither does a file that cannot be written.
    """

    def __init__(
        self,
        path: Path,
        queues: dict[str, QueueConfig],
        apply: Callable[[dict[str, QueueConfig]], None],
        in_use: Sequence[Callable[[str], list[str]]] = (),
    ) -> None:
        self.path, self.queues, self._apply = path, dict(queues), apply
        self._in_use = in_use  # why a queue cannot go (callers in it, flows naming it)
        self.lock = asyncio.Lock()
        self._definitions = queue_file.queues_section(path)

    def definitions(self) -> dict[str, Any]:
        """Each queue in force, defined as the file writes it."""
        return dict(self._definitions)

    async def put(self, name: str, definition: dict[str, Any]) -> bool:
        """Create or replace one queue; True when it is new. Raises QueueRefused."""
        async with self.lock:
            created = name not in self._definitions

            def change(queues: dict[str, Any]) -> None:
                queues[name] = definition

            await self._write(queue_file.edited(self.path, change))
            return created

    async def delete(self, name: str) -> None:
        """Remove a queue no call waits in and no flow names. Raises KeyError, QueueRefused."""
        async with self.lock:
            if name not in self._definitions:
                raise KeyError(name)
            reasons = [reason for check in self._in_use for reason in check(name)]
            if reasons:
                raise QueueRefused(reasons)

            def change(queues: dict[str, Any]) -> None:
                del queues[name]

            await self._write(queue_file.edited(self.path, change))

    async def reload(self) -> None:
        """Read the file again (after an edit by hand). Raises QueueRefused."""
        async with self.lock:
            queues, problems = read_queues(self.path)
            if queues is None:
                raise QueueRefused(problems)
            self.take(queues, queue_file.queues_section(self.path))

    async def _write(self, text: str) -> None:
        queues, problems = _checked(text, str(self.path))
        if queues is None:
            raise QueueRefused(problems)
        try:
            await asyncio.to_thread(queue_file.replace, self.path, text)
        except OSError as exc:
            raise QueueRefused([f"{self.path} cannot be written: {exc}"]) from exc
        self.take(queues, queue_file.queues_section(self.path))

    def take(self, queues: dict[str, QueueConfig], definitions: dict[str, Any]) -> None:
        self.queues, self._definitions = queues, definitions
        self._apply(queues)
        log.info("queues_changed", queues=sorted(queues))


def _checked(text: str, source: str) -> tuple[dict[str, QueueConfig] | None, list[str]]:
    """As `read_queues`, but the problems name the key (an API caller has no file lines)."""
    document = flow_files.parse_text(text, source)
    if document.problems:
        return None, [problem.message for problem in document.problems]
    queues, problems = parse_queues(document.data)
    if problems:
        return None, [f"{'.'.join(map(str, p.path))}: {p.message}" for p in problems]
    return queues, []
