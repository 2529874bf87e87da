"""What makes a parsed flow unsafe to put in front of callers, beyond its shape."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable

from ari_app.domain.ivr.engine import MONEY_UNITS
from ari_app.domain.ivr.flow import (
    INPUT_KINDS,
    Branch,
    Collect,
    Flow,
    Language,
    Menu,
    Node,
    Problem,
    Say,
    media_uri,
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


SoundExists = Callable[[str, str], bool]  # (sound id, language) -> whether Asterisk has it


def kind_of(node: Node) -> str:
    return KIND_NAMES[type(node).__name__]


def prompt_fields(node: Node) -> list[tuple[tuple[str | int, ...], str]]:
    """Every prompt a node can play, with the field (and index) that gives it."""
    fields = ["prompts"]
    if isinstance(node, Menu):
        fields += ["invalid_prompts", "timeout_prompts"]
    if isinstance(node, Collect):
        fields += ["invalid_prompts"]
    found: list[tuple[tuple[str | int, ...], str]] = [
        ((name, index), prompt)
        for name in fields
        for index, prompt in enumerate(getattr(node, name, ()))
    ]
    if isinstance(node, Say) and node.say == "money":
        found += [(("say",), unit) for unit in MONEY_UNITS]
    return found


def prompts_of(node: Node) -> tuple[str, ...]:
    """Every prompt a node can play."""
    return tuple(prompt for _, prompt in prompt_fields(node))


def check_flow(flow: Flow, *, sound_exists: SoundExists | None = None) -> list[Problem]:
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
        problems += _missing_sounds(flow, sound_exists)
    return problems


def _missing_sounds(flow: Flow, sound_exists: SoundExists) -> list[Problem]:
    """Prompts Asterisk lacks in a language the call can be speaking when it plays them."""
    problems = []
    for name, languages in sorted(_languages(flow).items()):
        for field, prompt in prompt_fields(flow.nodes[name]):
            sound = media_uri(prompt).removeprefix("sound:")
            for language in sorted(languages):
                if not sound_exists(sound, language):
                    problems.append(
                        Problem(
                            ("nodes", name, *field),
                            f"prompt '{prompt}' is not among Asterisk's sounds in '{language}'",
                        )
                    )
    return problems


def _languages(flow: Flow) -> dict[str, set[str]]:
    """The languages a call can be speaking in each node it can reach."""
    found: dict[str, set[str]] = {}
    todo = [(flow.start, flow.language)]
    while todo:
        name, language = todo.pop()
        if name not in flow.nodes or language in found.setdefault(name, set()):
            continue
        found[name].add(language)
        node = flow.nodes[name]
        after = node.language if isinstance(node, Language) else language
        todo += [(target, after) for _, target in targets(node)]
    return found


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
    data: object, *, sound_exists: SoundExists | None = None
) -> tuple[Flow | None, list[Problem]]:
    """Parse and check; the flow is returned only when it has no problem at all."""
    flow, problems = parse_flow(data)
    if flow is None:
        return None, problems
    problems = check_flow(flow, sound_exists=sound_exists)
    return (None if problems else flow), problems
