"""Render `asterisk_conf/` and `dialplan/` templates: `{{ name }}` placeholders, nothing else.

Asterisk's own syntax uses `${...}`, `$[...]` and `@`, so the placeholders are
the one thing that cannot clash with it. An unknown placeholder is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class TemplateError(Exception):
    """A template names a value that was not given."""


def render(text: str, values: Mapping[str, object], *, source: str = "<template>") -> str:
    """Replace every `{{ name }}` in text; raise TemplateError naming file:line otherwise."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            raise TemplateError(f"{source}:{line}: unknown placeholder {{{{ {name} }}}}")
        return str(values[name])

    return _PLACEHOLDER.sub(substitute, text)


def render_tree(sources: list[Path], values: Mapping[str, object]) -> dict[str, str]:
    """Render every .conf file of the given folders, keyed by file name."""
    rendered: dict[str, str] = {}
    for folder in sources:
        for path in sorted(folder.glob("*.conf")):
            if path.name in rendered:
                raise TemplateError(f"{path}: {path.name} is given by two folders")
            rendered[path.name] = render(path.read_text(), values, source=str(path))
    return rendered
