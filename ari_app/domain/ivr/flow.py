"""IVR flows as data: the node kinds, schedules and caller lists, parsed from plain mappings.

Parsing never raises on bad input: it collects every problem with the path
(keys from the top of the file) where it was found, so the checker can report
them all at once with their line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

DTMF = frozenset("0123456789*#")
SAY_KINDS = frozenset({"digits", "number", "money", "date"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
INPUT_KINDS = frozenset({"menu", "collect"})
Path = tuple[str | int, ...]
# what a menu or collect says before asking again, unless the flow says otherwise
DEFAULT_INVALID = ("sound:invalid", "sound:please-try-again")
DEFAULT_TIMEOUT = ("sound:please-try-again",)
# the project's own prompts (`ari-app prompts build`) live in this folder of Asterisk's sounds
OWN_PROMPTS = "ari-app"


def media_uri(prompt: str) -> str:
    """What ARI plays for a prompt: media with a scheme (`sound:`, `number:` ...) as it is, a
    bare name (one of the project's own prompts) from their folder."""
    return prompt if ":" in prompt else f"sound:{OWN_PROMPTS}/{prompt}"


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]
    next: str
    barge_in: bool = False


@dataclass(frozen=True)
class Say:
    say: str  # digits, number, money, date
    value: str  # a literal or {variable}
    next: str
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Menu:
    prompts: tuple[str, ...]
    options: Mapping[str, str]
    timeout: float = 5.0
    retries: int = 3
    invalid_prompts: tuple[str, ...] = DEFAULT_INVALID
    timeout_prompts: tuple[str, ...] = DEFAULT_TIMEOUT
    on_failure: str | None = None


@dataclass(frozen=True)
class Collect:
    prompts: tuple[str, ...]
    variable: str
    next: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    pattern: str | None = None
    retries: int = 3
    invalid_prompts: tuple[str, ...] = DEFAULT_INVALID
    on_failure: str | None = None


@dataclass(frozen=True)
class Lookup:
    url: str
    next: str
    on_error: str
    method: str = "GET"
    params: Mapping[str, str] = field(default_factory=dict)
    results: Mapping[str, str] = field(default_factory=dict)  # variable <- response field
    timeout: float = 2.0


@dataclass(frozen=True)
class Rule:
    goto: str
    caller_in: str | None = None
    open: str | None = None
    closed: str | None = None
    variable: str | None = None
    equals: str | None = None


@dataclass(frozen=True)
class Branch:
    rules: tuple[Rule, ...]
    otherwise: str


@dataclass(frozen=True)
class Queue:
    queue: str
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transfer:
    to: str
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Voicemail:
    mailbox: str
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hangup:
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Goto:
    target: str


@dataclass(frozen=True)
class Language:
    language: str
    next: str


Node = (
    Play
    | Say
    | Menu
    | Collect
    | Lookup
    | Branch
    | Queue
    | Transfer
    | Voicemail
    | Hangup
    | Goto
    | Language
)


@dataclass(frozen=True)
class Schedule:
    timezone: str
    weekly: Mapping[int, tuple[tuple[time, time], ...]]  # weekday (0 = Monday) -> open spans
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Flow:
    name: str
    version: int
    start: str
    nodes: Mapping[str, Node]
    language: str = "en"
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    lists: Mapping[str, frozenset[str]] = field(default_factory=dict)
    numbers: tuple[str, ...] = ()  # the service numbers whose callers this flow answers


def targets(node: Node) -> list[tuple[str, str]]:
    """The nodes a node can lead to, with the field that names each."""
    found: list[tuple[str, str]] = []
    for name in ("next", "on_failure", "on_error", "otherwise", "target"):
        value = getattr(node, name, None)
        if value is not None:
            found.append((name, value))
    if isinstance(node, Menu):
        found += [(f"options.{digit}", target) for digit, target in node.options.items()]
    if isinstance(node, Branch):
        found += [(f"rules.{i}.goto", rule.goto) for i, rule in enumerate(node.rules)]
    return found


# -- parsing ---------------------------------------------------------------------------


class Reader:
    """Reads one mapping, noting problems instead of raising."""

    def __init__(self, data: Any, path: Path, problems: list[Problem]) -> None:
        self.path, self.problems = path, problems
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.used: set[str] = set()
        if not isinstance(data, dict):
            self.fail("must be a mapping")

    def fail(self, message: str, *key: str | int) -> None:
        self.problems.append(Problem(self.path + key, message))

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, check: Any = None
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail(f"'{key}' is required")
                return None
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.fail(f"'{key}' must be {_article(names)}", key)
            return None if default is ... else default
        if check is not None:
            message = check(value)
            if message:
                self.fail(f"'{key}' {message}", key)
        return value

    def prompts(self, key: str = "prompts", default: Any = ()) -> tuple[str, ...]:
        value = self.get(key, (list, str), list(default) if default is not ... else ...)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        for index, item in enumerate(items):
            if not isinstance(item, str) or not _media_ok(item):
                self.fail(f"prompt {item!r} must be sound:NAME or a file name", key, index)
        return tuple(str(item) for item in items)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                self.fail(f"unknown field '{key}'", key)


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _media_ok(media: str) -> bool:
    if media.startswith("sound:"):
        return bool(re.fullmatch(r"sound:[A-Za-z0-9_./-]+", media)) and ".." not in media
    return bool(re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", media))


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be above 0"


def _not_negative(value: int) -> str | None:
    return None if value >= 0 else "must not be negative"


def _node(name: str, data: Any, problems: list[Problem]) -> Node | None:
    return parse_node(data, ("nodes", name), problems)


def parse_node(data: Any, path: Path, problems: list[Problem]) -> Node | None:
    """One node from its mapping; problems are noted under `path`."""
    r = Reader(data, path, problems)
    kind = r.get("kind", str)
    node: Node | None = None
    if kind == "play":
        node = Play(r.prompts(default=...), r.get("next", str), r.get("barge_in", bool, False))
    elif kind == "say":
        node = Say(
            r.get(
                "say",
                str,
                check=lambda v: (
                    None if v in SAY_KINDS else f"must be one of {', '.join(sorted(SAY_KINDS))}"
                ),
            ),
            str(r.get("value", (str, int, float))),
            r.get("next", str),
            r.prompts(),
        )
    elif kind == "menu":
        options = r.get("options", dict)
        for digit in options or {}:
            if not (isinstance(digit, str | int) and str(digit) in DTMF):
                r.fail(f"option {digit!r} is not one DTMF key (0-9, *, #)", "options", str(digit))
        node = Menu(
            r.prompts(default=...),
            {str(k): str(v) for k, v in (options or {}).items()},
            r.get("timeout", float, 5.0, check=_positive),
            r.get("retries", int, 3, check=_not_negative),
            r.prompts("invalid_prompts", DEFAULT_INVALID),
            r.prompts("timeout_prompts", DEFAULT_TIMEOUT),
            r.get("on_failure", str, None),
        )
    elif kind == "collect":
        node = Collect(
            r.prompts(default=...),
            r.get("variable", str),
            r.get("next", str),
            r.get("min_digits", int, 1, check=_positive),
            r.get("max_digits", int, 20, check=_positive),
            r.get(
                "terminator",
                str,
                "#",
                check=lambda v: None if v in DTMF or v == "" else "must be one DTMF key or empty",
            ),
            r.get("timeout", float, 5.0, check=_positive),
            r.get("inter_digit_timeout", float, 3.0, check=_positive),
            r.get("pattern", str, None, check=_regex_problem),
            r.get("retries", int, 3, check=_not_negative),
            r.prompts("invalid_prompts", DEFAULT_INVALID),
            r.get("on_failure", str, None),
        )
        if node.min_digits > node.max_digits:
            r.fail("'min_digits' is above 'max_digits'", "min_digits")
    elif kind == "lookup":
        node = Lookup(
            r.get(
                "url",
                str,
                check=lambda v: (
                    None
                    if re.match(r"https?://[^/\s]+", v)
                    else "must be an http:// or https:// URL"
                ),
            ),
            r.get("next", str),
            r.get("on_error", str),
            r.get(
                "method",
                str,
                "GET",
                check=lambda v: None if v in ("GET", "POST") else "must be GET or POST",
            ),
            {str(k): str(v) for k, v in (r.get("params", dict, {}) or {}).items()},
            {str(k): str(v) for k, v in (r.get("results", dict, {}) or {}).items()},
            r.get("timeout", float, 2.0, check=_positive),
        )
    elif kind == "branch":
        rules = tuple(
            _rule(i, item, problems, path) for i, item in enumerate(r.get("rules", list, []) or [])
        )
        node = Branch(tuple(rule for rule in rules if rule), r.get("otherwise", str))
    elif kind == "queue":
        skills = r.get("skills", dict, {}) or {}
        for skill, level in skills.items():
            if not (isinstance(level, int) and 1 <= level <= 10):
                r.fail("skill levels are whole numbers from 1 to 10", "skills", str(skill))
        node = Queue(
            r.get("queue", str),
            {str(k): v for k, v in skills.items()},
            r.get("priority", int, 0),
            r.prompts(),
        )
    elif kind == "transfer":
        node = Transfer(str(r.get("to", (str, int))), r.prompts())
    elif kind == "voicemail":
        node = Voicemail(str(r.get("mailbox", (str, int))), r.prompts())
    elif kind == "hangup":
        node = Hangup(r.prompts())
    elif kind == "goto":
        node = Goto(r.get("target", str))
    elif kind == "language":
        node = Language(
            r.get(
                "language",
                str,
                check=lambda v: (
                    None
                    if re.fullmatch(r"[a-z]{2}(_[A-Z]{2})?", v)
                    else "must be a language code such as en or fr_FR"
                ),
            ),
            r.get("next", str),
        )
    elif kind is not None:
        r.fail(f"unknown node kind '{kind}'", "kind")
        return None
    r.finish()
    return node


def _rule(index: int, data: Any, problems: list[Problem], node: Path) -> Rule | None:
    r = Reader(data, (*node, "rules", index), problems)
    rule = Rule(
        r.get("goto", str),
        r.get("caller_in", str, None),
        r.get("open", str, None),
        r.get("closed", str, None),
        r.get("variable", str, None),
        None if (v := r.get("equals", (str, int), None)) is None else str(v),
    )
    conditions = [rule.caller_in, rule.open, rule.closed, rule.variable]
    if sum(c is not None for c in conditions) != 1:
        r.fail("a rule has exactly one of caller_in, open, closed, variable")
    if (rule.variable is None) != (rule.equals is None):
        r.fail("'variable' and 'equals' go together")
    r.finish()
    return rule


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _schedule(name: str, data: Any, problems: list[Problem]) -> Schedule | None:
    r = Reader(data, ("schedules", name), problems)
    zone = r.get("timezone", str)
    weekly: dict[int, tuple[tuple[time, time], ...]] = {}
    for days, spans in (r.get("weekly", dict) or {}).items():
        day_numbers = _days(str(days))
        if day_numbers is None:
            r.fail(f"'{days}' is not a day or range of days (mon, tue-fri)", "weekly", str(days))
            continue
        parsed: list[tuple[time, time]] = []
        for i, span in enumerate(spans if isinstance(spans, list) else [spans]):
            found = _SPAN.match(str(span))
            opens = closes = None
            if found:
                h1, m1, h2, m2 = (int(g) for g in found.groups())
                if h1 < 24 and m1 < 60 and m2 < 60 and (h2 < 24 or (h2, m2) == (24, 0)):
                    opens = time(h1, m1)
                    closes = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
            if opens is None or closes is None or closes <= opens:
                r.fail(
                    f"'{span}' is not an opening span such as 08:00-18:00", "weekly", str(days), i
                )
                continue
            parsed.append((opens, closes))
        for day in day_numbers:
            weekly[day] = weekly.get(day, ()) + tuple(parsed)
    holidays: set[date] = set()
    for i, item in enumerate(r.get("holidays", list, []) or []):
        try:
            holidays.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
        except ValueError:
            r.fail(f"holiday '{item}' is not a date (YYYY-MM-DD)", "holidays", i)
    r.finish()
    return Schedule(zone, weekly, frozenset(holidays)) if zone else None


def _days(text: str) -> list[int] | None:
    first, _, last = text.lower().partition("-")
    if first not in WEEKDAYS or (last and last not in WEEKDAYS):
        return None
    start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
    return list(range(start, end + 1)) if start <= end else None


def parse_flow(data: Any) -> tuple[Flow | None, list[Problem]]:
    """A Flow from the mapping a flow file holds, and every problem found on the way."""
    problems: list[Problem] = []
    r = Reader(data, (), problems)
    name = r.get("flow", str)
    version = r.get("version", int, check=lambda v: None if v >= 1 else "must be 1 or more")
    start = r.get("start", str)
    language = r.get("language", str, "en")
    numbers = tuple(str(n) for n in (r.get("numbers", list, []) or []))
    for index, number in enumerate(numbers):
        if not re.fullmatch(r"[0-9*#+]{1,32}", number):
            r.fail(f"'{number}' is not a service number", "numbers", index)
    nodes_data = r.get("nodes", dict) or {}
    nodes = {
        str(key): node
        for key, value in nodes_data.items()
        if (node := _node(str(key), value, problems)) is not None
    }
    schedules = {
        str(key): schedule
        for key, value in (r.get("schedules", dict, {}) or {}).items()
        if (schedule := _schedule(str(key), value, problems)) is not None
    }
    lists: dict[str, frozenset[str]] = {}
    for key, callers in (r.get("lists", dict, {}) or {}).items():
        if not isinstance(callers, list):
            r.fail("a list of numbers is expected", "lists", str(key))
            continue
        lists[str(key)] = frozenset(str(caller) for caller in callers)
    r.finish()
    if name is None or version is None or start is None or problems:
        return None, problems
    return Flow(name, version, start, nodes, language, schedules, lists, numbers), problems
