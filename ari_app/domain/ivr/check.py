"""What makes a parsed flow unsafe to put in front of callers, beyond its shape."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable

from ari_app.domain.ivr.flow import (
    INPUT_KINDS,
    Branch,
    Collect,
    Flow,
    Menu,
    Node,
    Problem,
    parse_flow,
    targets,
)

KIND_NAMES = {
    "Play": "play",
    "Say": "say",
    "Menu": "menu",
    "Collect": "collect",
    "Lookup": "lookup",
    "Branch": "branch",
    "Queue": "queue",
    "Transfer": "transfer",
    "Voicemail": "voicemail",
    "Hangup": "hangup",
    "Goto": "goto",
    "Language": "language",
}


def kind_of(node: Node) -> str:
    return KIND_NAMES[type(node).__name__]


def prompts_of(node: Node) -> tuple[str, ...]:
    """Every prompt a node can play."""
    found: tuple[str, ...] = getattr(node, "prompts", ())
    if isinstance(node, Menu):
        found += node.invalid_prompts + node.timeout_prompts
    if isinstance(node, Collect):
        found += node.invalid_prompts
    return found


def check_flow(flow: Flow, *, sound_exists: Callable[[str], bool] | None = None) -> list[Problem]:
    """Dangling targets, unreachable nodes, loops without input, schedules, missing prompts."""
    problems: list[Problem] = []
    if flow.start not in flow.nodes:
        problems.append(Problem(("start",), f"start node '{flow.start}' does not exist"))
    for name, node in flow.nodes.items():
        for field, target in targets(node):
            if target not in flow.nodes:
                problems.append(
                    Problem(
                        ("nodes", name, *field.split(".")),
                        f"'{field}' leads to '{target}', which does not exist",
                    )
                )
        if isinstance(node, Branch):
            problems += _branch_references(flow, name, node)
    problems += _unreachable(flow)
    problems += _loops_without_input(flow)
    for name, schedule in flow.schedules.items():
        try:
            zoneinfo.ZoneInfo(schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(
                Problem(("schedules", name, "timezone"), f"unknown time zone '{schedule.timezone}'")
            )
    if sound_exists is not None:
        for name, node in flow.nodes.items():
            for prompt in prompts_of(node):
                if prompt.startswith("sound:") and not sound_exists(prompt.removeprefix("sound:")):
                    problems.append(
                        Problem(
                            ("nodes", name), f"prompt '{prompt}' is not among Asterisk's sounds"
                        )
                    )
    return problems


def _branch_references(flow: Flow, name: str, node: Branch) -> Iterable[Problem]:
    for index, rule in enumerate(node.rules):
        path = ("nodes", name, "rules", index)
        for schedule in (rule.open, rule.closed):
            if schedule is not None and schedule not in flow.schedules:
                yield Problem(path, f"schedule '{schedule}' does not exist")
        if rule.caller_in is not None and rule.caller_in not in flow.lists:
            yield Problem(path, f"list '{rule.caller_in}' does not exist")


def _unreachable(flow: Flow) -> list[Problem]:
    seen, todo = set(), [flow.start]
    while todo:
        name = todo.pop()
        if name in seen or name not in flow.nodes:
            continue
        seen.add(name)
        todo += [target for _, target in targets(flow.nodes[name])]
    return [
        Problem(("nodes", name), f"node '{name}' cannot be reached from '{flow.start}'")
        for name in flow.nodes
        if name not in seen and flow.start in flow.nodes
    ]


def _loops_without_input(flow: Flow) -> list[Problem]:
    """Cycles through nodes that never wait for a digit would spin forever."""
    passive = {name for name, node in flow.nodes.items() if kind_of(node) not in INPUT_KINDS}
    edges = {name: [t for _, t in targets(flow.nodes[name]) if t in passive] for name in passive}
    problems, state = [], dict.fromkeys(passive, 0)  # 0 new, 1 on the stack, 2 done
    for root in sorted(passive):
        if state[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        trail: list[str] = []
        while stack:
            name, index = stack.pop()
            if index == 0:
                state[name] = 1
                trail.append(name)
            if index < len(edges[name]):
                stack.append((name, index + 1))
                nxt = edges[name][index]
                if state[nxt] == 1:
                    loop = [*trail[trail.index(nxt) :], nxt]
                    problems.append(
                        Problem(("nodes", nxt), "loop with no caller input: " + " -> ".join(loop))
                    )
                elif state[nxt] == 0:
                    stack.append((nxt, 0))
            else:
                state[name] = 2
                trail.pop()
    return problems


def load_flow(
    data: object, *, sound_exists: Callable[[str], bool] | None = None
) -> tuple[Flow | None, list[Problem]]:
    """Parse and check; the flow is returned only when it has no problem at all."""
    flow, problems = parse_flow(data)
    if flow is None:
        return None, problems
    problems = check_flow(flow, sound_exists=sound_exists)
    return (None if problems else flow), problems
