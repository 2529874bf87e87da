"""Pages of a list: `limit` rows from `offset`, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

LONGEST_PAGE = 1000


@dataclass(frozen=True)
class PageAsked:
    limit: int
    offset: int


def _page(
    limit: Annotated[int, Query(ge=1, le=LONGEST_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageAsked:
    return PageAsked(limit, offset)


Page = Annotated[PageAsked, Depends(_page)]
