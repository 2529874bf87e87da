"""The queues file: each queue's skills, routing steps, service level and what happens
when a caller has waited too long or nobody is there to answer.

Parsing never raises: every problem is noted with its path (keys from the top
of the file), so `ari-app queues check` and the service report them all with
their line numbers, and a file with any problem changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ari_app.domain.agents import SKILL_NAME
from ari_app.domain.ivr.flow import Hangup, Node, Problem, Reader, Transfer, Voicemail, parse_node
from ari_app.domain.live import AlertThresholds
from ari_app.domain.recording import RecordingPolicy, parse_policy
from ari_app.domain.routing.rules import QueueRules, RoutingStep, Strategy

QUEUE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MUSIC_CLASS = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class Callback:
    """A queue ending: the caller hangs up and keeps their place in line; when their turn
    comes, an agent takes the call and the service dials the caller back."""

    prompts: tuple[str, ...] = ()  # said before the caller is let go
    attempts: int = 3  # calls to the caller before the request is given up
    retry_after: float = 300.0  # seconds between an unanswered call back and the next


ENDINGS = (Voicemail, Transfer, Hangup, Callback)  # what a queue can send a caller to


@dataclass(frozen=True)
class ServiceLevel:
    """The target: `percent` of calls answered within `seconds`."""

    percent: float = 80.0
    seconds: float = 20.0


@dataclass(frozen=True)
class QueueConfig:
    rules: QueueRules
    service_level: ServiceLevel = ServiceLevel()
    music: str = "default"
    announce_every: float | None = 30.0  # position and expected wait; None: never
    ring_timeout: float = 15.0
    max_missed: int = 3  # unanswered rings in a row before the agent is paused
    max_wait: float | None = None
    on_max_wait: Node | Callback | None = None
    when_no_agents: str = "wait"  # or "leave": to on_no_agents when nobody is logged in
    on_no_agents: Node | Callback | None = None
    recording: RecordingPolicy = field(default_factory=RecordingPolicy)  # never, unless said
    alerts: AlertThresholds = field(default_factory=AlertThresholds)  # none, unless said

    @property
    def name(self) -> str:
        return self.rules.name


def parse_queues(data: Any) -> tuple[dict[str, QueueConfig], list[Problem]]:
    """Every queue of a queues file, and every problem found."""
    problems: list[Problem] = []
    top = Reader(data, (), problems)
    queues_data = top.get("queues", dict) or {}
    top.finish()
    queues: dict[str, QueueConfig] = {}
    for name, body in queues_data.items():
        if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
            problems.append(
                Problem(("queues", str(name)), f"queue name {name!r}: lower-case letters, digits")
            )
            continue
        queue = _queue(name, body, problems)
        if queue is not None:
            queues[name] = queue
    problems += _overflow_problems(queues)
    return queues, problems


def _queue(name: str, data: Any, problems: list[Problem]) -> QueueConfig | None:
    path = ("queues", name)
    before = len(problems)
    r = Reader(data, path, problems)
    skills = r.get("skills", dict, {}) or {}
    for skill, level in skills.items():
        if not isinstance(skill, str) or not SKILL_NAME.fullmatch(skill):
            r.fail(f"skill name {skill!r}: lower-case letters, digits, _ and -", "skills")
        elif not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
            r.fail(f"skill '{skill}' level must be a whole number from 1 to 10", "skills", skill)
    strategy = r.get("strategy", str, Strategy.BEST_SKILL.value)
    if strategy not in {s.value for s in Strategy}:
        r.fail(f"'strategy' must be one of {', '.join(s.value for s in Strategy)}", "strategy")
    steps = tuple(_steps(r.get("steps", list, []) or [], path, problems)) or (RoutingStep(),)
    level = r.get("service_level", dict, {}) or {}
    service = Reader(level, (*path, "service_level"), problems)
    service_level = ServiceLevel(
        service.get("percent", float, 80.0, check=_range(1, 100)),
        service.get("seconds", float, 20.0, check=_range(1, 3600)),
    )
    service.finish()
    music = r.get("music", str, "default")
    if music and not MUSIC_CLASS.fullmatch(music):
        r.fail(f"'music' {music!r} is not a music-on-hold class name", "music")
    if r.data.get("announce_every", ...) is None:  # null: the queue never announces
        r.used.add("announce_every")
        announce = None
    else:
        announce = r.get("announce_every", float, 30.0, check=_optional_range(10, 600))
    recording = RecordingPolicy()
    if "recording" in r.data:
        r.used.add("recording")
        policy, problem = parse_policy(r.data["recording"])
        if problem is not None:
            r.fail(problem, "recording")
        recording = policy or recording
    alert = Reader(r.get("alerts", dict, {}) or {}, (*path, "alerts"), problems)
    alerts = AlertThresholds(
        alert.get("longest_wait", float, None, check=_optional_range(1, 7200)),
        alert.get("waiting", int, None, check=_optional_range(1, 10000)),
        alert.get("abandon_rate", float, None, check=_optional_range(0.1, 100)),
        alert.get("service_level", bool, False),
        alert.get("min_calls", int, 5, check=_range(1, 1000)),
    )
    alert.finish()
    ring_timeout = r.get("ring_timeout", float, 15.0, check=_range(5, 120))
    max_missed = r.get("max_missed", int, 3, check=_range(1, 20))
    max_wait = r.get("max_wait", float, None, check=_optional_range(10, 7200))
    on_max_wait = _ending(r, "on_max_wait", path, problems)
    when_no_agents = r.get("when_no_agents", str, "wait")
    if when_no_agents not in ("wait", "leave"):
        r.fail("'when_no_agents' must be wait or leave", "when_no_agents")
    on_no_agents = _ending(r, "on_no_agents", path, problems)
    if max_wait is not None and "on_max_wait" not in r.data:
        r.fail("'max_wait' needs 'on_max_wait' (where the caller goes then)", "max_wait")
    if when_no_agents == "leave" and "on_no_agents" not in r.data:
        r.fail("'when_no_agents: leave' needs 'on_no_agents'", "when_no_agents")
    r.finish()
    if len(problems) > before:
        return None
    return QueueConfig(
        QueueRules(name, dict(skills), steps, Strategy(strategy)),
        service_level,
        music,
        announce,
        ring_timeout,
        max_missed,
        max_wait,
        on_max_wait,
        when_no_agents,
        on_no_agents,
        recording=recording,
        alerts=alerts,
    )


def _steps(items: list[Any], path: tuple[str, ...], problems: list[Problem]) -> list[RoutingStep]:
    steps = []
    for index, item in enumerate(items):
        r = Reader(item, (*path, "steps", index), problems)
        last = index == len(items) - 1
        overflow = r.get("overflow", str, None)
        seconds = r.get("seconds", float, None, check=_optional_range(1, 3600))
        min_level = r.get("min_level", int, 1, check=_range(1, 10))
        r.finish()
        if overflow is not None and not last:
            r.fail("an overflow step must be the last: the steps after it are never reached")
        elif overflow is None and not last and seconds is None:
            r.fail("every step but the last needs 'seconds' (how long it lasts)")
        elif last and overflow is None and seconds is not None:
            r.fail("the last step lasts until the call is answered: no 'seconds' here", "seconds")
        steps.append(RoutingStep(seconds, min_level or 1, overflow))
    return steps


def _ending(
    r: Reader, key: str, path: tuple[str, ...], problems: list[Problem]
) -> Node | Callback | None:
    data = r.get(key, dict, None)
    if data is None:
        return None
    if data.get("kind") == "callback":
        c = Reader(data, (*path, key), problems)
        c.get("kind", str)
        callback = Callback(
            c.prompts(),
            c.get("attempts", int, 3, check=_range(1, 10)),
            c.get("retry_after", float, 300.0, check=_range(10, 86400)),
        )
        c.finish()
        return callback
    node = parse_node(data, (*path, key), problems)
    if node is not None and not isinstance(node, ENDINGS):
        r.fail(f"'{key}' must be a voicemail, transfer, hangup or callback node", key)
        return None
    return node


def _overflow_problems(queues: dict[str, QueueConfig]) -> list[Problem]:
    problems = []
    for name, queue in queues.items():
        last = len(queue.rules.steps) - 1
        target = queue.rules.steps[last].overflow
        if target is None:
            continue
        where = ("queues", name, "steps", last, "overflow")
        if target not in queues:
            problems.append(Problem(where, f"overflow to '{target}', which is not a queue"))
            continue
        seen: list[str] = [name]
        current: str | None = target
        while current is not None and current in queues and current not in seen:
            seen.append(current)
            current = queues[current].rules.steps[-1].overflow
        if current == name:
            problems.append(Problem(where, "overflow loop: " + " -> ".join([*seen, name])))
    return problems


def _range(low: float, high: float) -> Any:
    return lambda value: None if low <= value <= high else f"must be from {low:g} to {high:g}"


def _optional_range(low: float, high: float) -> Any:
    check = _range(low, high)
    return lambda value: None if value is None else check(value)
