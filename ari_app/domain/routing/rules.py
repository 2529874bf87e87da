"""Queues and their routing steps, as the routing core reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

Skills = Mapping[str, int]  # skill -> level, 1 to 10


class Strategy(StrEnum):
    """How a queue picks among the agents who qualify."""

    BEST_SKILL = "best_skill"  # the highest level on the required skills, then longest idle
    LONGEST_IDLE = "longest_idle"  # longest idle, whatever the level above the minimum


@dataclass(frozen=True)
class RoutingStep:
    """One stage of a call's wait: who may take it, and for how long.

    `min_level` raises the queue's minimum level on every required skill for
    this step (the expert-first step); `seconds` is how long the step lasts
    before the next one (the last step lasts until the call is answered). A step
    with `overflow` is where the call leaves for another queue (its first step),
    keeping the time it has waited.
    """

    seconds: float | None = None
    min_level: int = 1
    overflow: str | None = None


@dataclass(frozen=True)
class QueueRules:
    name: str
    skills: Skills  # required skill -> minimum level
    steps: tuple[RoutingStep, ...] = (RoutingStep(),)
    strategy: Strategy = Strategy.BEST_SKILL

    def requirement(self, step: int, extra: Skills | None = None) -> Requirement:
        """The skills (with levels) an agent needs to take a call at this step; `extra` are
        the call's own (from the IVR node that queued it)."""
        floor = self.steps[step].min_level if step < len(self.steps) else 1
        levels = dict(self.skills)
        for skill, level in (extra or {}).items():
            levels[skill] = max(levels.get(skill, 0), level)
        return Requirement(
            tuple(sorted((skill, max(level, floor)) for skill, level in levels.items()))
        )


def step_reached(
    queues: Mapping[str, QueueRules], queue: str, elapsed: float
) -> tuple[str, int, float | None]:
    """Where a call stands after waiting `elapsed` seconds from the start of `queue`: the
    queue it is in (after overflows), its step, and the seconds left in that step (None:
    the step lasts until the call is answered). Used to resume a wait after a restart."""
    step = 0
    for _ in range(sum(len(rules.steps) for rules in queues.values()) + 1):
        rules = queues[queue]
        current = rules.steps[step]
        if current.overflow is not None and current.overflow in queues:
            queue, step = current.overflow, 0
            continue
        if step + 1 >= len(rules.steps) or current.seconds is None:
            return queue, step, None
        if elapsed < current.seconds:
            return queue, step, current.seconds - elapsed
        elapsed -= current.seconds
        step += 1
    return queue, step, None  # an overflow loop, which the queue check refuses


@dataclass(frozen=True)
class Requirement:
    """Skills with minimum levels, sorted, so equal requirements compare and hash equal."""

    levels: tuple[tuple[str, int], ...]

    def met_by(self, skills: Skills) -> bool:
        return all(skills.get(skill, 0) >= level for skill, level in self.levels)

    def score(self, skills: Skills) -> int:
        """How well an agent matches: the sum of their levels on the required skills."""
        return sum(skills.get(skill, 0) for skill, _ in self.levels)

    def __str__(self) -> str:
        if not self.levels:
            return "no skill required"
        return ", ".join(f"{skill} >= {level}" for skill, level in self.levels)
