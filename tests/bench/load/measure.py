"""What the load benchmark measures of a run: the processes' CPU and memory from /proc,
the callers' and agents' SIPp logs set against each other, Asterisk's warnings."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ari_app.services.loop_lag import quantile
from tests.bench.load.sipp import CallerRun

TICK = os.sysconf("SC_CLK_TCK")
OVERLOAD = "task processor queue reached"  # Asterisk's warning when a queue backs up


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds of a process (0 when there is none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_memory_mb(pid: int | None) -> float | None:
    """The most resident memory the process ever had (VmHWM)."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": _round(percentile(values, q)) for q in (50, 95, 99)}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class LogTail:
    """Lines appended to a log file since this was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace").splitlines()


# A call is a conversation if the agent answered this long before the caller hung up.
MIN_TALK = 1.0


@dataclass
class Readings:
    """Counters read before and after a run."""

    asterisk_cpu: float
    service_cpu: float
    lag_counts: list[int] | None


@dataclass
class Trial:
    """One run at one rate: every call checked from both ends, and what it cost."""

    center: str
    rate: float
    calls: int
    failed: list[str] = field(default_factory=list)  # one line per failed call, or cause
    overloads: list[str] = field(default_factory=list)
    pdd_ms: list[float] = field(default_factory=list)
    to_agent_ms: list[float] = field(default_factory=list)
    asterisk_cpu_s: float = 0.0
    service_cpu_s: float = 0.0
    lag_counts: list[int] | None = None

    @property
    def passed(self) -> bool:
        return not self.failed and not self.overloads

    def summary(self) -> dict[str, Any]:
        lag = self.lag_counts
        return {
            "rate": self.rate,
            "calls": self.calls,
            "failed": len(self.failed),
            "failures": self.failed[:10],
            "overload_warnings": len(self.overloads),
            "pdd_ms": spread(self.pdd_ms),
            "key_to_agent_invite_ms": spread(self.to_agent_ms),
            "asterisk_cpu_ms_per_call": _round(1000 * self.asterisk_cpu_s / self.calls, 2),
            "python_cpu_ms_per_call": (
                _round(1000 * self.service_cpu_s / self.calls, 2) if lag is not None else None
            ),
            "event_loop_lag_ms": (
                {"p50": quantile(lag, 0.5), "p99": quantile(lag, 0.99), "samples": sum(lag)}
                if lag is not None
                else None
            ),
        }


def judge(
    trial: Trial,
    run: CallerRun,
    agents: dict[str, dict[str, float]],
    before: Readings,
    after: Readings,
    warnings: list[str],
    troubles: Sequence[str] = (),
) -> Trial:
    """Fill the trial in from the callers' and agents' logs, the two readings, Asterisk's
    warnings and (B) the service's reports of calls it could not carry out.

    A call passed if the caller's scenario completed and an agent's phone answered it at
    least `MIN_TALK` seconds before the caller hung up: the conversation took place."""
    steps = run.steps
    invites, answers = agents.get("invite", {}), agents.get("answered", {})
    numbers = set(steps["invite"])
    if len(numbers) < trial.calls:
        trial.failed.append(f"{trial.calls - len(numbers)} calls were never placed")
    for number in sorted(numbers):
        bye = steps["bye"].get(number)
        if number not in steps["done"] or bye is None:
            trial.failed.append(f"{number}: the caller's call did not complete")
        elif number not in invites:
            trial.failed.append(f"{number}: no agent's phone rang")
        elif number not in answers:
            trial.failed.append(f"{number}: an agent's phone rang, and never answered")
        elif answers[number] > bye - MIN_TALK:
            # an agent reached as the caller gave up (or after) is no conversation
            talk = bye - answers[number]
            trial.failed.append(f"{number}: an agent answered {talk:.1f} s before the hang-up")
        if number in steps["answered"]:
            trial.pdd_ms.append(1000 * (steps["answered"][number] - steps["invite"][number]))
        if number in steps["digit"] and number in invites:
            trial.to_agent_ms.append(1000 * (invites[number] - steps["digit"][number]))
    trial.failed.extend(f"the service: {line[:300]}" for line in troubles)
    if run.returncode != 0 and not trial.failed:
        trial.failed.append(f"SIPp exited {run.returncode}: {run.errors.strip()[-300:]}")
    trial.overloads = [line for line in warnings if OVERLOAD in line]
    trial.asterisk_cpu_s = after.asterisk_cpu - before.asterisk_cpu
    trial.service_cpu_s = after.service_cpu - before.service_cpu
    if before.lag_counts is not None and after.lag_counts is not None:
        trial.lag_counts = [b - a for a, b in zip(before.lag_counts, after.lag_counts, strict=True)]
    return trial
