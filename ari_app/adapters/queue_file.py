"""The queues file as ops wrote it: edited in place with its comments kept, replaced atomically."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments and key order are kept
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def queues_section(path: Path) -> dict[str, Any]:
    """Each queue's definition as the file writes it (plain data)."""
    data = _yaml().load(path.read_text()) or {}
    return {str(name): _plain(body) for name, body in (data.get("queues") or {}).items()}


def edited(path: Path, change: Callable[[CommentedMap], None]) -> str:
    """The file's text after `change` edits its `queues` mapping; the file is not touched."""
    yaml = _yaml()
    document = yaml.load(path.read_text()) or CommentedMap()
    if not isinstance(document.get("queues"), dict):
        document["queues"] = CommentedMap()
    change(document["queues"])
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def replace(path: Path, text: str) -> None:
    """Write the new text beside the file, then rename it over: never half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    with contextlib.suppress(OSError):
        os.chmod(temporary, path.stat().st_mode & 0o777)
    os.replace(temporary, path)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node
