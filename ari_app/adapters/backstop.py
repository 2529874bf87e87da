"""Reading the files Asterisk appends records to (the CDR backstop, the CEL file).

A reader starts where its checkpoint says (the file's inode and a byte offset) and
hands back whole lines only: a line Asterisk is still writing is left for the next
read. A file that was replaced (another inode) or cut shorter than the checkpoint
is read again from its start; the rows are keyed, so nothing is stored twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Checkpoint:
    inode: int
    offset: int


@dataclass(frozen=True)
class Chunk:
    lines: list[tuple[int, bytes]]  # (offset of the line, the line without its newline)
    checkpoint: Checkpoint  # where the next read starts
    restarted: bool  # the file was replaced or cut: read from its start


def read_lines(path: Path, since: Checkpoint | None, max_bytes: int = 1 << 20) -> Chunk | None:
    """The whole lines after `since`, at most about `max_bytes`; None when there is no file."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        status = os.fstat(handle.fileno())
        offset = 0
        restarted = False
        if since is not None:
            if since.inode == status.st_ino and since.offset <= status.st_size:
                offset = since.offset
            else:
                restarted = True
        handle.seek(offset)
        data = handle.read(max_bytes)
        if b"\n" not in data and len(data) == max_bytes:
            data += handle.readline()  # one line longer than the budget: read it whole
    end = data.rfind(b"\n") + 1  # 0 when there is no whole line yet
    lines: list[tuple[int, bytes]] = []
    position = offset
    for raw in data[:end].split(b"\n")[:-1]:
        if raw.strip():
            lines.append((position, raw))
        position += len(raw) + 1
    return Chunk(lines, Checkpoint(status.st_ino, offset + end), restarted)
