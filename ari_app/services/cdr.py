"""CDR and channel-event capture: live from AMI, caught up from Asterisk's own files.

A CDR is stored the moment its AMI `Cdr` event arrives (through the ordered
database writer). Beside that, the backstop file Asterisk writes is read from
its checkpoint on start and then every few seconds: whatever the AMI path
missed (the service was down, the AMI link was cut) is stored from there, and
what it already stored is a no-op. Channel events come from their file only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ari_app.adapters.backstop import read_lines
from ari_app.adapters.cdr_store import CdrStore
from ari_app.adapters.db import Writer
from ari_app.domain.cdr import BadRecord, cdr_from_ami, cdr_from_backstop, cel_from_backstop

log = structlog.get_logger(__name__)

PARSERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "cdr": cdr_from_backstop,
    "cel": cel_from_backstop,
}


@dataclass
class Counts:
    live: int = 0  # CDRs that came over AMI
    read: int = 0  # rows stored from the files (those AMI had missed, and every CEL)
    bad: int = 0  # records that could not be stored, logged with the reason
    files: dict[str, bool] = field(default_factory=dict)  # file name -> found


class CdrCapture:
    def __init__(
        self,
        store: CdrStore,
        writer: Writer,
        files: dict[str, Path | None],
        *,
        poll_seconds: float = 2.0,
    ) -> None:
        self.store, self.writer = store, writer
        self.files = {kind: path for kind, path in files.items() if path is not None}
        self.poll_seconds = poll_seconds
        self.counts = Counts()

    def on_ami_cdr(self, fields: dict[str, str]) -> None:
        """AMI handler for `Cdr` events."""
        try:
            row = cdr_from_ami(fields)
        except BadRecord as exc:
            self.counts.bad += 1
            log.error("cdr_refused", source="ami", reason=str(exc), uniqueid=fields.get("UniqueID"))
            return
        self.counts.live += 1
        self.writer.submit("cdr", self._store_live, row)

    async def _store_live(self, connection: AsyncConnection, row: dict[str, Any]) -> None:
        await self.store.write_live(connection, "cdr", row)

    async def catch_up(self, kind: str) -> int:
        """Read `kind`'s file from its checkpoint to its end; the number of rows stored."""
        path = self.files[kind]
        stored = 0
        while True:
            since = await self.store.checkpoint(kind)
            chunk = read_lines(path, since)
            if self.counts.files.get(kind) != (chunk is not None):
                self.counts.files[kind] = chunk is not None
                if chunk is None:
                    log.warning("backstop_missing", kind=kind, path=str(path))
            if chunk is None or chunk.checkpoint == since:
                return stored
            if chunk.restarted:
                log.warning("backstop_replaced", kind=kind, path=str(path))
            rows = []
            for offset, line in chunk.lines:
                try:
                    rows.append(PARSERS[kind](line))
                except BadRecord as exc:
                    self.counts.bad += 1
                    log.error("backstop_line_refused", kind=kind, offset=offset, reason=str(exc))
            added = await self.store.add_read(kind, rows, chunk.checkpoint)
            stored += added
            self.counts.read += added

    async def run(self) -> None:
        """Catch up now, then follow the files; a database outage only delays it."""
        while True:
            for kind in self.files:
                try:
                    stored = await self.catch_up(kind)
                except (SQLAlchemyError, OSError) as exc:
                    log.error("backstop_read_failed", kind=kind, error=repr(exc))
                else:
                    if stored and kind == "cdr":
                        log.info("cdrs_caught_up", stored=stored)
            await asyncio.sleep(self.poll_seconds)
