"""Recording policy: which conversations are recorded (pure).

A queue says `always`, `never` or `{sample: P}` (P percent of its conversations,
drawn per call); an agent may override it with `always` or `never` (the default,
`queue`, follows the queue). The draw is passed in, so the decision is testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    SAMPLE = "sample"


@dataclass(frozen=True)
class RecordingPolicy:
    mode: Mode = Mode.NEVER
    percent: float = 100.0  # of conversations, with mode sample


def parse_policy(value: Any) -> tuple[RecordingPolicy | None, str | None]:
    """A queue's `recording` value, or why it is refused."""
    if value in (Mode.ALWAYS.value, Mode.NEVER.value):
        return RecordingPolicy(Mode(value)), None
    if isinstance(value, dict) and set(value) == {"sample"}:
        percent = value["sample"]
        number = isinstance(percent, int | float) and not isinstance(percent, bool)
        if number and 0 < percent <= 100:
            return RecordingPolicy(Mode.SAMPLE, float(percent)), None
        return None, "'recording' sample must be a percentage above 0, at most 100"
    return None, "'recording' must be always, never or {sample: PERCENT}"


def records(queue: RecordingPolicy, agent: str, draw: float) -> bool:
    """Whether this conversation is recorded; `draw` is uniform in [0, 100)."""
    if agent == "always":
        return True
    if agent == "never":
        return False
    if queue.mode is Mode.SAMPLE:
        return draw < queue.percent
    return queue.mode is Mode.ALWAYS
