"""Text the API takes as people type it: names, teams, labels (control characters are
refused: a NUL byte cannot even be stored in PostgreSQL), and whole files as bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Request
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


async def text_body(request: Request, largest: int, what: str) -> str:
    """A request's body as UTF-8 text of at most `largest` bytes (413, 422 otherwise)."""
    body = await request.body()
    if len(body) > largest:
        raise HTTPException(413, f"{what} holds at most {largest} bytes")
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise HTTPException(422, f"{what} is UTF-8 text") from None
