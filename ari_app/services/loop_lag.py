"""How late the event loop runs. A probe sleeps a fixed step and measures how much later
than asked it woke: every call's next step, timer and websocket message waits behind
whatever holds the loop, so this is the delay the service adds to all of them.

The lags are counted in fixed buckets since start (like a Prometheus histogram), so a
reader can take two readings and get the quantiles of what happened in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

BOUNDS_MS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 250.0,
             500.0, 1000.0)  # fmt: skip


def quantile(counts: list[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile q of these counts; None if empty.
    Past the last bound the answer is infinity."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bound, count in zip((*BOUNDS_MS, float("inf")), counts, strict=True):
        seen += count
        if seen >= rank:
            return bound
    return float("inf")


class LoopLag:
    def __init__(self, step: float = 0.05) -> None:
        self.step = step
        self.counts = [0] * (len(BOUNDS_MS) + 1)
        self.worst_ms = 0.0

    def observe(self, lag_ms: float) -> None:
        index = next((i for i, bound in enumerate(BOUNDS_MS) if lag_ms <= bound), len(BOUNDS_MS))
        self.counts[index] += 1
        self.worst_ms = max(self.worst_ms, lag_ms)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.step
            await asyncio.sleep(self.step)
            self.observe(max(0.0, (loop.time() - due) * 1000))

    def report(self) -> dict[str, Any]:
        return {
            "step_ms": self.step * 1000,
            "samples": sum(self.counts),
            "p50_ms": quantile(self.counts, 0.50),
            "p99_ms": quantile(self.counts, 0.99),
            "worst_ms": round(self.worst_ms, 3),
            "bounds_ms": list(BOUNDS_MS),
            "counts": list(self.counts),
        }
