"""Work carried out in order within a lane (one call's) and side by side across lanes.

A call's commands must reach Asterisk in the order they were decided (a bridge before the
channel joins it), but one call's round trips must never hold up another call's: a single
line of work for every call turns each call's few milliseconds of ARI latency into every
other call's wait. A lane's worker lives while it has work and is spawned again by the
next item.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

Item = TypeVar("Item")
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class Lanes(Generic[Item]):
    def __init__(self, spawn: Spawn, carry_out: Callable[[Item], Awaitable[None]]) -> None:
        self._spawn, self._carry_out = spawn, carry_out
        self._queues: dict[str, deque[Item]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def put(self, lane: str, item: Item) -> None:
        queue = self._queues.setdefault(lane, deque())
        queue.append(item)
        if lane not in self._workers:
            self._workers[lane] = self._spawn(self._work(lane, queue))

    def __len__(self) -> int:
        """How many lanes have work now."""
        return len(self._workers)

    def clear(self) -> None:
        """Drop every lane's work (a rebuild after a reconnect decides everything again)."""
        for task in self._workers.values():
            task.cancel()
        self._workers.clear()
        self._queues.clear()

    async def _work(self, lane: str, queue: deque[Item]) -> None:
        me = asyncio.current_task()
        try:
            while queue:
                item = queue.popleft()
                try:
                    await self._carry_out(item)
                except Exception:  # carry_out handles what it expects; never lose the lane
                    log.exception("lane_work_crashed", lane=lane, work=type(item).__name__)
        finally:
            # a clear() may have replaced this worker and queue: leave the new ones alone
            if self._workers.get(lane) is me:
                del self._workers[lane]
                if queue:  # work put while this worker was finishing
                    self._workers[lane] = self._spawn(self._work(lane, queue))
                elif self._queues.get(lane) is queue:
                    del self._queues[lane]
