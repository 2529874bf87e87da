"""Render `asterisk_conf/` and `dialplan/` templates: `{{ name }}` placeholders, nothing else.

Asterisk's own syntax uses `${...}`, `$[...]` and `@`, so the placeholders are
the one thing that cannot clash with it. An unknown placeholder is an error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ari_app.settings import LocalAsteriskSettings

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


# asterisk.conf lays out the directories of the project's own chrooted
# instances; an existing Asterisk keeps its own.
LOCAL_ONLY = frozenset({"asterisk.conf"})


def template_values(
    settings: LocalAsteriskSettings,
    *,
    ari_password: str,
    ami_password: str,
    instance_dir: Path | str = "",
    module_dir: str = "",
) -> dict[str, object]:
    """The values the templates use, for one Asterisk."""
    return {
        "voicemail_pin": voicemail_pin(ami_password),
        "ari_password": ari_password,
        "ami_password": ami_password,
        "instance_dir": instance_dir,
        "module_dir": module_dir,
        "ari_user": "ari-app",
        "ami_user": "ari-app",
        "application": settings.application,
        "http_port": settings.http_port,
        "ami_port": settings.ami_port,
        "sip_port": settings.sip_port,
        "rtp_start": settings.rtp_start,
        "rtp_end": settings.rtp_end,
        "carrier_address": settings.carrier_address,
    }


def voicemail_pin(ami_password: str) -> str:
    """The mailboxes' PIN (VoiceMailMain), derived one way from the AMI secret: generated
    with the other secrets, never a default, and the same on every render."""
    digest = hashlib.sha256(f"ari-app voicemail\n{ami_password}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**8).zfill(8)


def render_tree(
    sources: list[Path], values: Mapping[str, object], *, skip: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Render every .conf file of the given folders, keyed by file name."""
    rendered: dict[str, str] = {}
    for folder in sources:
        for path in sorted(folder.glob("*.conf")):
            if path.name in skip:
                continue
            if path.name in rendered:
                raise TemplateError(f"{path}: {path.name} is given by two folders")
            rendered[path.name] = render(path.read_text(), values, source=str(path))
    return rendered
