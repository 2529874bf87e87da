"""The queues file, read with the line of every key so problems point at file:line."""

from __future__ import annotations

from pathlib import Path

from ari_app.adapters import flow_files
from ari_app.domain.routing.config import QueueConfig, parse_queues


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
