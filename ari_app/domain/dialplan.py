"""The dialplan ops edit (`dialplan/*.conf`), read as Asterisk's pbx_config reads it,
and checked before Asterisk is asked to load it.

`read` follows `#include` from the main file and gives the contexts with their
extensions, steps and includes, and every line it could not read. `check` adds
what would go wrong once loaded: a first step that is not priority 1, a priority
given twice, a `same` with no extension before it, unbalanced brackets, an
application the connected Asterisk does not have, an include or a Goto/Gosub to
a context that is not there, a label a Goto names that its extension lacks, a
context the service or a phone's endpoint sends calls to that is missing, and a
service number that the carrier's context does not reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ari_app.domain.located import Located as Problem

NOT_CONTEXTS = frozenset({"general", "globals"})
_HEADER = re.compile(r"^\[([^\]]+)\]\s*(\(([^)]*)\))?$")
_INCLUDE_FILE = re.compile(r'^#(include|tryinclude)\s+"?([^"]+?)"?$')
_KEYWORD = re.compile(r"^(exten|same|include|switch|eswitch|lswitch|ignorepat)\s*=>?\s*(.*)$")
_PRIORITY = re.compile(r"^(\d+|n|hint)(?:\+(\d+))?(?:\(([A-Za-z0-9_-]+)\))?$")
_APP = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*(?:\((.*)\))?$", re.DOTALL)
JUMPS = frozenset({"goto", "gotoif", "gosub", "gosubif"})


@dataclass(frozen=True)
class Step:
    exten: str
    priority: int
    label: str | None
    app: str
    args: str
    file: str
    line: int


@dataclass
class Context:
    name: str
    file: str
    line: int
    steps: list[Step] = field(default_factory=list)
    includes: list[tuple[str, str, int]] = field(default_factory=list)  # name, file, line

    def extensions(self) -> dict[str, list[Step]]:
        found: dict[str, list[Step]] = {}
        for step in self.steps:
            found.setdefault(step.exten, []).append(step)
        return found


@dataclass
class Dialplan:
    contexts: dict[str, Context]
    problems: list[Problem]


def _strip_comment(line: str) -> str:
    """The line without its `;` comment (a `\\;` is a semicolon, not a comment)."""
    out, escaped = [], False
    for char in line:
        if char == ";" and not escaped:
            break
        escaped = char == "\\" and not escaped
        out.append(char)
    return "".join(out).strip()


def read(files: Mapping[str, str], main: str = "extensions.conf") -> Dialplan:
    """The dialplan of `main` and what it includes (`files`: name to text)."""
    plan = Dialplan({}, [])
    _read_file(files, main, plan, (), _Place())
    return plan


@dataclass
class _Place:
    """Where reading is: the context, and the extension `same` continues."""

    context: Context | None = None
    section: str | None = None
    exten: str | None = None
    priority: int = 0


def _read_file(
    files: Mapping[str, str], name: str, plan: Dialplan, chain: tuple[str, ...], at: _Place
) -> None:
    for number, raw in enumerate(files[name].splitlines(), 1):
        line = _strip_comment(raw)
        if not line:
            continue
        include = _INCLUDE_FILE.match(line)
        if include:
            target = include.group(2).strip()
            if target in (*chain, name):
                plan.problems.append(Problem(name, number, f"{target} includes itself"))
            elif target in files:
                _read_file(files, target, plan, (*chain, name), at)
            elif include.group(1) == "include":
                plan.problems.append(Problem(name, number, f"{target}: no such file"))
            continue
        header = _HEADER.match(line)
        if header:
            _open_context(header.group(1).strip(), name, number, plan, at)
            continue
        if at.section is None:
            plan.problems.append(Problem(name, number, "a line before any [context]"))
            continue
        if at.context is None:  # [general], [globals]: settings
            if "=" not in line:
                plan.problems.append(Problem(name, number, f"not a setting: {line!r}"))
            continue
        _read_line(line, name, number, plan, at)


def _open_context(title: str, file: str, line: int, plan: Dialplan, at: _Place) -> None:
    at.section, at.exten, at.priority = title, None, 0
    if title in NOT_CONTEXTS:
        at.context = None
        return
    if title in plan.contexts:  # Asterisk adds to a context given twice
        at.context = plan.contexts[title]
        return
    at.context = plan.contexts[title] = Context(title, file, line)


def _read_line(line: str, file: str, number: int, plan: Dialplan, at: _Place) -> None:
    assert at.context is not None
    keyword = _KEYWORD.match(line)
    if keyword is None:
        plan.problems.append(Problem(file, number, f"not a dialplan line: {line!r}"))
        return
    kind, rest = keyword.group(1), keyword.group(2).strip()
    if kind == "include":
        at.context.includes.append((rest.split(",")[0].strip(), file, number))
        return
    if kind not in ("exten", "same"):
        return  # switches and ignore patterns: Asterisk's own business
    if kind == "same":
        if at.exten is None:
            plan.problems.append(Problem(file, number, "'same' with no extension before it"))
            return
        exten, step = at.exten, rest
    else:
        exten, _, step = rest.partition(",")
        exten = exten.strip()
        if not exten or not step:
            plan.problems.append(Problem(file, number, "exten => needs extension,priority,app"))
            return
    _read_step(exten, step, kind == "exten", file, number, plan, at)


def _read_step(
    exten: str, text: str, new: bool, file: str, number: int, plan: Dialplan, at: _Place
) -> None:
    assert at.context is not None
    priority_text, _, app_text = text.partition(",")
    priority = _PRIORITY.match(priority_text.strip())
    if priority is None:
        plan.problems.append(Problem(file, number, f"priority {priority_text.strip()!r}"))
        return
    base, plus, label = priority.groups()
    if base == "hint":
        at.exten = exten
        return
    if base == "n":
        if at.exten != exten:
            plan.problems.append(Problem(file, number, f"'n' is the first priority of {exten}"))
            return
        value = at.priority + 1 + int(plus or 0)
    else:
        value = int(base) + int(plus or 0)
    at.exten, at.priority = exten, value
    app = _APP.match(app_text.strip())
    if app is None or not _balanced(app_text):
        plan.problems.append(
            Problem(file, number, f"not an application call: {app_text.strip()!r}")
        )
        return
    at.context.steps.append(
        Step(exten, value, label, app.group(1), app.group(2) or "", file, number)
    )


def _balanced(text: str) -> bool:
    pairs, stack, escaped = {")": "(", "]": "[", "}": "{"}, [], False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def matches(pattern: str, number: str) -> bool:
    """Whether an extension (`100`, `_1XX`, `_X.`, `_[2-4]!`) takes this number."""
    if not pattern.startswith("_"):
        return pattern == number
    regex = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        char = body[i].upper()
        if char == "X":
            regex.append("[0-9]")
        elif char == "Z":
            regex.append("[1-9]")
        elif char == "N":
            regex.append("[2-9]")
        elif char == ".":
            regex.append(".+")
        elif char == "!":
            regex.append(".*")
        elif char == "[":
            end = body.find("]", i)
            if end < 0:
                return False
            regex.append("[" + re.escape(body[i + 1 : end]).replace("\\-", "-") + "]")
            i = end
        else:
            regex.append(re.escape(body[i]))
        i += 1
    return re.fullmatch("".join(regex), number) is not None


@dataclass(frozen=True)
class Expected:
    """What the rest of the center needs of the dialplan."""

    contexts: Mapping[str, str] = field(default_factory=dict)  # context: who sends calls there
    numbers: Mapping[str, str] = field(default_factory=dict)  # number: who answers it
    entry: str = "from-carrier"  # where the carrier's calls arrive


def check(
    plan: Dialplan, expected: Expected, applications: Iterable[str] | None = None
) -> list[Problem]:
    """Every problem of the dialplan, in file and line order. `applications`: those the
    connected Asterisk has (None: not asked)."""
    problems = list(plan.problems)
    known = {app.lower() for app in applications} if applications is not None else None
    for context in plan.contexts.values():
        problems += _check_context(plan, context, known)
    for name, who in expected.contexts.items():
        if name not in plan.contexts:
            problems.append(Problem("dialplan", 0, f"context {name!r} is missing ({who})"))
    if expected.entry in plan.contexts:
        entry = plan.contexts[expected.entry]
        for number, who in expected.numbers.items():
            if not _reaches(plan, expected.entry, number, set()):
                message = f"number {number} ({who}) is not reached from {expected.entry}"
                problems.append(Problem(entry.file, entry.line, message))
    return sorted(problems, key=lambda p: (p.source, p.line, p.message))


def reaches(plan: Dialplan, entry: str, number: str) -> bool:
    """Whether a call to the number, arriving in the entry context, finds an extension."""
    return _reaches(plan, entry, number, set())


def _reaches(plan: Dialplan, name: str, number: str, seen: set[str]) -> bool:
    context = plan.contexts.get(name)
    if context is None or name in seen:
        return False
    seen.add(name)
    if any(matches(exten, number) for exten in context.extensions()):
        return True
    return any(_reaches(plan, included, number, seen) for included, _, _ in context.includes)


def _check_context(plan: Dialplan, context: Context, known: set[str] | None) -> list[Problem]:
    problems = []
    for included, file, line in context.includes:
        if included not in plan.contexts:
            problems.append(Problem(file, line, f"includes {included!r}, which is not there"))
    for exten, steps in context.extensions().items():
        seen: dict[int, Step] = {}
        if steps[0].priority != 1:
            first = steps[0]
            problems.append(
                Problem(
                    first.file, first.line, f"{exten} starts at priority {first.priority}, not 1"
                )
            )
        labels = {step.label for step in steps if step.label is not None}
        for step in steps:
            if step.priority in seen:
                earlier = seen[step.priority]
                message = f"{exten} priority {step.priority} is given twice (line {earlier.line})"
                problems.append(Problem(step.file, step.line, message))
            seen[step.priority] = step
            if known is not None and step.app.lower() not in known:
                message = f"application {step.app} is not in the connected Asterisk"
                problems.append(Problem(step.file, step.line, message))
            if step.app.lower() in JUMPS:
                problems += _check_jump(plan, context, exten, labels, step)
    return problems


def _check_jump(
    plan: Dialplan, context: Context, exten: str, labels: set[str], step: Step
) -> list[Problem]:
    """A Goto or Gosub whose target is written out: its context, extension and label
    must be there (a target with a variable is left to run time)."""
    args = step.args
    if step.app.lower() in ("gotoif", "gosubif"):
        _, _, args = args.partition("?")
        targets = args.split(":")
    else:
        targets = [args]
    problems = []
    for target in targets:
        target = re.sub(r"\(.*\)$", "", target.strip())  # a Gosub's own arguments
        if not target or "$" in target:
            continue
        parts = [part.strip() for part in target.split(",")]
        where, ext = context, exten
        if len(parts) == 3:
            where = plan.contexts.get(parts[0])  # type: ignore[assignment]
            if where is None:
                problems.append(
                    Problem(
                        step.file,
                        step.line,
                        f"{step.app} to context {parts[0]!r}, which is not there",
                    )
                )
                continue
            ext = parts[1]
        elif len(parts) == 2:
            ext = parts[0]
        priority = parts[-1]
        extensions = where.extensions()
        if (
            len(parts) > 1
            and ext not in extensions
            and not any(matches(e, ext) for e in extensions)
        ):
            problems.append(
                Problem(
                    step.file, step.line, f"{step.app} to {where.name},{ext}, which is not there"
                )
            )
            continue
        if not priority.isdigit() and priority != "n":
            own = (
                labels
                if where is context and ext == exten
                else {s.label for s in extensions.get(ext, []) if s.label}
            )
            if priority not in own:
                problems.append(
                    Problem(
                        step.file,
                        step.line,
                        f"{step.app} to label {priority!r}, which {where.name},{ext} lacks",
                    )
                )
    return problems
