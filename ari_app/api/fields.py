"""Text fields the API takes as people type them: names, teams, labels. Control
characters are refused (a NUL byte cannot even be stored in PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True, pattern=PRINTABLE)
]
Team = Annotated[
    str, StringConstraints(min_length=1, max_length=40, strip_whitespace=True, pattern=PRINTABLE)
]
NoTeam = Annotated[str, StringConstraints(max_length=40, strip_whitespace=True, pattern=PRINTABLE)]
Label = Annotated[str, StringConstraints(max_length=80, strip_whitespace=True, pattern=PRINTABLE)]
