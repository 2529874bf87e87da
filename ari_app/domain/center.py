"""The center as code: one document for its teams, skills, agents, queues, flows and numbers.

A section the document gives is the whole of its kind: what it leaves out is removed.
A section it leaves out is left as it is. Reading checks every field, and every name
one section gives another (an agent's team and skills, a queue's skills, a number's
flow); the plan is what changes, item by item, in the order it must be applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ari_app.domain.agents import AGENT_ID, SKILL_NAME
from ari_app.domain.ivr.flow import Flow, Problem, Queue, Reader
from ari_app.domain.routing.config import QueueConfig, parse_queues

Kind = Literal["teams", "skills", "agents", "queues", "flows", "numbers"]
KINDS: tuple[Kind, ...] = ("teams", "skills", "agents", "queues", "flows", "numbers")
# removals go the other way: a number before its flow, an agent before its team

TEAM = re.compile(r"[^\x00-\x1f\x7f/]{1,40}")
SERVICE_NUMBER = re.compile(r"[0-9*#+]{1,32}")
PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]*")
RECORDING = ("queue", "always", "never")
AGENT_DEFAULTS: dict[str, Any] = {
    "team": "",
    "skills": {},
    "wrap_up_seconds": 30,
    "recording": "queue",
}

UNREACHED = (
    "the dialplan does not send this number to the service (from-carrier): "
    "add it there first (ari-app dialplan deploy)"
)

FlowLoader = Callable[[Any], tuple[Flow | None, list[Problem]]]


@dataclass(frozen=True)
class Center:
    """Every item of every kind, as plain data (the document's form, defaults filled in)."""

    teams: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    skills: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    agents: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    queues: Mapping[str, Any] = field(default_factory=dict)
    flows: Mapping[str, Any] = field(default_factory=dict)  # name -> the flow's document
    numbers: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def of(self, kind: Kind) -> Mapping[str, Any]:
        return getattr(self, kind)  # type: ignore[no-any-return]

    def document(self) -> dict[str, Any]:
        """The whole center as one document (what `config export` writes)."""
        return {kind: {key: self.of(kind)[key] for key in sorted(self.of(kind))} for kind in KINDS}


@dataclass(frozen=True)
class Change:
    kind: Kind
    key: str
    action: Literal["add", "change", "remove"]
    before: Any
    after: Any

    def line(self) -> str:
        """One line of the diff a person reads: + added, ~ changed, - removed."""
        mark = {"add": "+", "change": "~", "remove": "-"}[self.action]
        what = f"{mark} {self.kind[:-1]} {self.key}"
        if self.action != "change":
            return what
        fields = _changed_fields(self.before, self.after)
        return f"{what}: {', '.join(fields)}" if fields else what


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    problems: tuple[Problem, ...]
    queues: Mapping[str, QueueConfig] | None = None  # the queues in force after, when given
    flows: Mapping[str, Flow] = field(default_factory=dict)  # the flows the document gives

    def diff(self) -> list[str]:
        return [change.line() for change in self.changes]


@dataclass(frozen=True)
class InForce:
    """What the plan is made against: the center now, its flows and queues as loaded, and
    why an item may not go now (a caller in the queue, an agent on a call)."""

    center: Center
    flows: Mapping[str, Flow]
    queues: Mapping[str, QueueConfig]
    busy: Callable[[Kind, str], list[str]] = lambda kind, key: []
    reached: Callable[[str], bool] = lambda number: True  # the dialplan sends it to us


def plan(document: Any, now: InForce, load_flow: FlowLoader) -> Plan:
    """Read the document against the center in force: the changes, or the problems."""
    problems: list[Problem] = []
    top = Reader(document, (), problems)
    given: dict[Kind, dict[str, Any]] = {}
    for kind in KINDS:
        section = top.get(kind, dict, None)
        if section is not None:
            given[kind] = {str(key): value for key, value in section.items()}
    top.finish()
    if not isinstance(document, dict):
        return Plan((), tuple(problems))
    read = {
        "teams": _team,
        "skills": _skill,
        "agents": _agent,
        "numbers": _number,
    }
    after: dict[Kind, dict[str, Any]] = {kind: dict(now.center.of(kind)) for kind in KINDS}
    for kind, section in given.items():
        if kind in read:
            after[kind] = {
                key: item
                for key, body in section.items()
                if (item := read[kind](key, body, problems)) is not None
            }
    queues: Mapping[str, QueueConfig] = now.queues
    if "queues" in given:
        parsed, found = parse_queues({"queues": given["queues"]})
        problems += found
        queues, after["queues"] = parsed, dict(given["queues"])
    flows = _flows(given.get("flows"), now, load_flow, problems)
    if "flows" in given:
        after["flows"] = dict(given["flows"])
    problems += _references(after, queues, flows, now)
    changes = _changes(now, after, queues, flows)
    for change in changes:
        if change.kind == "numbers" and change.action == "add" and not now.reached(change.key):
            problems.append(Problem(("numbers", change.key), UNREACHED))
        if change.action == "remove":
            problems += [
                Problem((change.kind, change.key), reason)
                for reason in now.busy(change.kind, change.key)
            ]
    if problems:
        return Plan((), tuple(problems))
    return Plan(tuple(changes), (), queues if "queues" in given else None, flows)


# -- each kind's items -----------------------------------------------------------------


def _team(key: str, body: Any, problems: list[Problem]) -> dict[str, Any] | None:
    r = Reader({} if body is None else body, ("teams", key), problems)
    if not TEAM.fullmatch(key) or key != key.strip():
        r.fail("a team is 1 to 40 printable characters, no '/' and no space around")
    name = r.get("name", str, key, check=_label(80, empty=False))
    r.finish()
    return {"name": name} if name is not None else None


def _skill(key: str, body: Any, problems: list[Problem]) -> dict[str, Any] | None:
    r = Reader({} if body is None else body, ("skills", key), problems)
    if not SKILL_NAME.fullmatch(key):
        r.fail("a skill is lower-case letters, digits, _ and -, starting with a letter")
    description = r.get("description", str, "", check=_label(200))
    r.finish()
    return {"description": description} if description is not None else None


def _agent(key: str, body: Any, problems: list[Problem]) -> dict[str, Any] | None:
    before = len(problems)
    r = Reader(body, ("agents", key), problems)
    if not AGENT_ID.fullmatch(key):
        r.fail("an agent id is lower-case letters, digits, _ and -")
    name = r.get("name", str, check=_label(80, empty=False))
    team = r.get("team", str, "")
    if team and not TEAM.fullmatch(team):
        r.fail("a team is 1 to 40 printable characters, no '/'", "team")
    skills = r.get("skills", dict, {}) or {}
    for skill, level in skills.items():
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
            r.fail("skill levels are whole numbers from 1 to 10", "skills", str(skill))
    wrap_up = r.get(
        "wrap_up_seconds", int, 30, check=lambda v: None if 0 <= v <= 3600 else "is 0 to 3600"
    )
    recording = r.get("recording", str, "queue")
    if recording not in RECORDING:
        r.fail(f"'recording' is one of {', '.join(RECORDING)}", "recording")
    r.finish()
    if len(problems) > before:
        return None
    return {
        "name": name,
        "team": team,
        "skills": {str(skill): level for skill, level in sorted(skills.items())},
        "wrap_up_seconds": wrap_up,
        "recording": recording,
    }


def _number(key: str, body: Any, problems: list[Problem]) -> dict[str, Any] | None:
    before = len(problems)
    r = Reader(body, ("numbers", key), problems)
    if not SERVICE_NUMBER.fullmatch(key):
        r.fail("a service number is digits, *, # and +, up to 32")
    flow = r.get("flow", str)
    label = r.get("label", str, "", check=_label(80))
    r.finish()
    return {"flow": flow, "label": label} if len(problems) == before else None


def _label(longest: int, *, empty: bool = True) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not empty and not value.strip():
            return "must not be empty"
        if len(value) > longest or not PRINTABLE.fullmatch(value):
            return f"is at most {longest} printable characters"
        return None

    return check


def _flows(
    given: dict[str, Any] | None, now: InForce, load_flow: FlowLoader, problems: list[Problem]
) -> dict[str, Flow]:
    """The flows the document gives, each checked whole, with the version rules of a reload."""
    if given is None:
        return dict(now.flows)
    flows: dict[str, Flow] = {}
    for key, body in given.items():
        flow, found = load_flow(body)
        problems += [Problem(("flows", key, *p.path), p.message) for p in found]
        if flow is None:
            continue
        if flow.name != key:
            problems.append(Problem(("flows", key, "flow"), f"the flow is named '{flow.name}'"))
            continue
        in_force = now.flows.get(key)
        if in_force is not None and flow != in_force and flow.version == in_force.version:
            problems.append(
                Problem(
                    ("flows", key, "version"),
                    f"the flow changed but is still version {flow.version}: give it a new one",
                )
            )
        flows[key] = flow
    return flows


def _references(
    after: Mapping[Kind, Mapping[str, Any]],
    queues: Mapping[str, QueueConfig],
    flows: Mapping[str, Flow],
    now: InForce,
) -> list[Problem]:
    """Every name one kind gives another must be there once the document is applied."""
    problems: list[Problem] = []
    teams, skills = after["teams"], after["skills"]
    for key, agent in after["agents"].items():
        if agent["team"] and agent["team"] not in teams:
            problems.append(Problem(("agents", key, "team"), f"no team '{agent['team']}'"))
        for skill in agent["skills"]:
            if skill not in skills:
                problems.append(Problem(("agents", key, "skills", skill), f"no skill '{skill}'"))
    for name, queue in sorted(queues.items()):
        for skill in queue.rules.skills:
            if skill not in skills:
                problems.append(Problem(("queues", name, "skills", skill), f"no skill '{skill}'"))
    claimed = {number: flow.name for flow in flows.values() for number in flow.numbers}
    for number, target in after["numbers"].items():
        if target["flow"] not in flows:
            problems.append(Problem(("numbers", number, "flow"), f"no flow '{target['flow']}'"))
        elif claimed.get(number, target["flow"]) != target["flow"]:
            problems.append(
                Problem(("numbers", number), f"flow '{claimed[number]}' lists this number")
            )
    for name, flow in sorted(flows.items()):
        for node_name, node in flow.nodes.items():
            if not isinstance(node, Queue):
                continue
            where = ("flows", name, "nodes", node_name)
            if node.queue not in queues:
                problems.append(Problem((*where, "queue"), f"no queue '{node.queue}'"))
            problems += [
                Problem((*where, "skills", skill), f"no skill '{skill}'")
                for skill in node.skills
                if skill not in skills
            ]
    return problems


def _changes(
    now: InForce,
    after: Mapping[Kind, Mapping[str, Any]],
    queues: Mapping[str, QueueConfig],
    flows: Mapping[str, Flow],
) -> list[Change]:
    adds: list[Change] = []
    removes: list[Change] = []
    for kind in KINDS:
        before, wanted = now.center.of(kind), after[kind]
        for key in sorted(wanted):
            if key not in before:
                adds.append(Change(kind, key, "add", None, wanted[key]))
            elif not _same(kind, key, now, queues, flows, before[key], wanted[key]):
                adds.append(Change(kind, key, "change", before[key], wanted[key]))
        removes += [
            Change(kind, key, "remove", before[key], None) for key in before if key not in wanted
        ]
    return adds + sorted(removes, key=lambda c: (-KINDS.index(c.kind), c.key))


def _same(
    kind: Kind,
    key: str,
    now: InForce,
    queues: Mapping[str, QueueConfig],
    flows: Mapping[str, Flow],
    before: Any,
    after: Any,
) -> bool:
    """Equal in force: queues and flows as loaded, whatever way their text writes them."""
    if kind == "queues":
        return now.queues.get(key) == queues.get(key)
    if kind == "flows":
        return now.flows.get(key) == flows.get(key)
    return bool(before == after)


def _changed_fields(before: Any, after: Any) -> list[str]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
