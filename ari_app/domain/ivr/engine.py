"""The IVR engine: one call's walk through a flow, events in, commands out.

The same engine runs live calls (ARI playbacks, DTMF and timers at the edge)
and `ari-app ivr simulate`. It never raises on caller input: every digit, time
out, lookup answer or hang-up leads to a defined next state or outcome.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ari_app.domain.ivr.flow import (
    Branch,
    Collect,
    Flow,
    Goto,
    Hangup,
    Language,
    Lookup,
    Menu,
    Node,
    Play,
    Queue,
    Say,
    Schedule,
    Transfer,
    Voicemail,
    media_uri,
)

MAX_HOPS = 50  # nodes entered without waiting for anything: a guard the checker makes moot


class Waiting(StrEnum):
    PROMPTS = "prompts"
    INPUT = "input"
    LOOKUP = "lookup"
    DONE = "done"


class Then(StrEnum):
    """What follows when the prompts of the current node finish."""

    INPUT = "input"
    NEXT = "next"
    FINISH = "finish"


@dataclass(frozen=True)
class Step:
    node: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    """How the IVR ended. `self_service` calls count toward IVR containment."""

    kind: str  # self_service, queued, transferred, voicemail, caller_hung_up, failed
    node: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    flow: str
    version: int
    caller: str
    node: str
    language: str
    waiting: Waiting
    then: Then = Then.NEXT
    variables: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    digits: str = ""
    seq: int = 0  # numbers timers and lookups, so stale ones are ignored
    path: tuple[Step, ...] = ()
    outcome: Outcome | None = None


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptsFinished:
    pass


@dataclass(frozen=True)
class DigitPressed:
    digit: str


@dataclass(frozen=True)
class TimerFired:
    seq: int


@dataclass(frozen=True)
class LookupAnswered:
    seq: int
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class LookupFailed:
    seq: int
    reason: str


@dataclass(frozen=True)
class CallerHungUp:
    pass


IvrEvent = (
    PromptsFinished | DigitPressed | TimerFired | LookupAnswered | LookupFailed | CallerHungUp
)


# -- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayPrompts:
    media: tuple[str, ...]
    language: str
    barge_in: bool


@dataclass(frozen=True)
class StopPrompts:
    pass


@dataclass(frozen=True)
class StartTimer:
    seq: int
    seconds: float


@dataclass(frozen=True)
class RequestLookup:
    seq: int
    method: str
    url: str
    params: Mapping[str, str]
    timeout: float


@dataclass(frozen=True)
class Finish:
    outcome: Outcome


IvrCommand = PlayPrompts | StopPrompts | StartTimer | RequestLookup | Finish
Result = tuple[Session, list[IvrCommand]]


# -- entering nodes ----------------------------------------------------------------------


def start(flow: Flow, caller: str, now: datetime) -> Result:
    """Begin a call at the flow's start node."""
    session = Session(flow.name, flow.version, caller, flow.start, flow.language, Waiting.DONE)
    return _enter(session, flow, flow.start, now, "")


def resume(
    flow: Flow, caller: str, node: str, variables: Mapping[str, str], language: str, now: datetime
) -> Result:
    """Re-enter a node (its prompts again) after the service restarted in the middle of it."""
    node = node if node in flow.nodes else flow.start
    session = Session(
        flow.name,
        flow.version,
        caller,
        node,
        language or flow.language,
        Waiting.DONE,
        variables=dict(variables),
    )
    return _enter(session, flow, node, now, "resumed after a restart")


def _enter(
    session: Session, flow: Flow, name: str, now: datetime, note: str, hops: int = 0
) -> Result:
    if hops > MAX_HOPS:
        return _finish(session, "failed", {"reason": "too many nodes without caller input"})
    node = flow.nodes[name]
    session = replace(
        session, node=name, attempt=1, digits="", path=(*session.path, Step(name, now, note))
    )
    immediate = _immediate_target(node, session, flow, now)
    if immediate is not None:
        target, session = immediate
        return _enter(session, flow, target, now, "", hops + 1)
    if isinstance(node, Lookup):
        seq = session.seq + 1
        params = {key: _fill(value, session.variables) for key, value in node.params.items()}
        return replace(session, waiting=Waiting.LOOKUP, seq=seq), [
            RequestLookup(seq, node.method, node.url, params, node.timeout)
        ]
    if isinstance(node, Menu | Collect):
        return _prompt(session, flow, now, node.prompts, barge_in=True, then=Then.INPUT)
    if isinstance(node, Play):
        return _prompt(session, flow, now, node.prompts, barge_in=node.barge_in, then=Then.NEXT)
    if isinstance(node, Say):
        media = node.prompts + say_media(node.say, _fill(node.value, session.variables))
        return _prompt(session, flow, now, media, barge_in=False, then=Then.NEXT)
    # the nodes that end the IVR, after their own prompts if they have any
    assert isinstance(node, Queue | Transfer | Voicemail | Hangup)
    return _prompt(session, flow, now, node.prompts, barge_in=False, then=Then.FINISH)


def _immediate_target(
    node: Node, session: Session, flow: Flow, now: datetime
) -> tuple[str, Session] | None:
    if isinstance(node, Goto):
        return node.target, session
    if isinstance(node, Language):
        return node.next, replace(session, language=node.language)
    if isinstance(node, Branch):
        return _evaluate(node, session, flow, now), session
    return None


def _prompt(
    session: Session,
    flow: Flow,
    now: datetime,
    media: tuple[str, ...],
    *,
    barge_in: bool,
    then: Then,
) -> Result:
    if not media:
        return _prompts_done(replace(session, waiting=Waiting.PROMPTS, then=then), flow, now)
    return replace(session, waiting=Waiting.PROMPTS, then=then), [
        PlayPrompts(tuple(map(media_uri, media)), session.language, barge_in)
    ]


def _finish(session: Session, kind: str, detail: Mapping[str, Any]) -> Result:
    outcome = Outcome(kind, session.node, detail)
    return replace(session, waiting=Waiting.DONE, outcome=outcome), [Finish(outcome)]


def _finish_at(session: Session, node: Node) -> Result:
    if isinstance(node, Queue):
        return _finish(
            session,
            "queued",
            {"queue": node.queue, "skills": dict(node.skills), "priority": node.priority},
        )
    if isinstance(node, Transfer):
        return _finish(session, "transferred", {"to": node.to})
    if isinstance(node, Voicemail):
        return _finish(session, "voicemail", {"mailbox": node.mailbox})
    assert isinstance(node, Hangup)
    return _finish(session, "self_service", {})


# -- reacting ----------------------------------------------------------------------------


def step(session: Session, event: IvrEvent, now: datetime, flow: Flow) -> Result:
    """Apply one event to a call's IVR session."""
    if session.waiting is Waiting.DONE:
        return session, []
    if isinstance(event, CallerHungUp):
        return _finish(session, "caller_hung_up", {})
    node = flow.nodes[session.node]
    if isinstance(event, PromptsFinished):
        return (
            _prompts_done(session, flow, now)
            if session.waiting is Waiting.PROMPTS
            else (session, [])
        )
    if isinstance(event, DigitPressed):
        return _digit(session, node, event.digit, flow, now)
    if isinstance(event, TimerFired):
        if session.waiting is not Waiting.INPUT or event.seq != session.seq:
            return session, []
        return _timed_out(session, node, flow, now)
    if session.waiting is not Waiting.LOOKUP or event.seq != session.seq:
        return session, []
    assert isinstance(node, Lookup)
    if isinstance(event, LookupFailed):
        return _enter(session, flow, node.on_error, now, f"lookup failed: {event.reason}")
    variables = dict(session.variables)
    for variable, path in node.results.items():
        value = _dig(event.fields, path)
        if value is None:
            return _enter(session, flow, node.on_error, now, f"lookup answer lacks '{path}'")
        variables[variable] = str(value)
    return _enter(replace(session, variables=variables), flow, node.next, now, "")


def _prompts_done(session: Session, flow: Flow, now: datetime) -> Result:
    node = flow.nodes[session.node]
    if session.then is Then.INPUT:
        assert isinstance(node, Menu | Collect)
        return _wait_for_input(session, node, first=True)
    if session.then is Then.NEXT:
        assert isinstance(node, Play | Say)
        return _enter(session, flow, node.next, now, "")
    return _finish_at(session, node)


def _wait_for_input(session: Session, node: Menu | Collect, *, first: bool) -> Result:
    seq = session.seq + 1
    seconds = node.inter_digit_timeout if isinstance(node, Collect) and not first else node.timeout
    return replace(session, waiting=Waiting.INPUT, seq=seq), [StartTimer(seq, seconds)]


def _digit(session: Session, node: Node, digit: str, flow: Flow, now: datetime) -> Result:
    if session.waiting not in (Waiting.PROMPTS, Waiting.INPUT):
        return session, []
    if session.waiting is Waiting.PROMPTS:
        if isinstance(node, Play) and node.barge_in:
            return _barge(_enter(session, flow, node.next, now, f"skipped with {digit}"))
        if not isinstance(node, Menu | Collect):
            return session, []  # no barge-in here: the digit is ignored
        session = replace(session, waiting=Waiting.INPUT)
        return _barge(_input(session, node, digit, flow, now))
    assert isinstance(node, Menu | Collect)
    return _input(session, node, digit, flow, now)


def _barge(result: Result) -> Result:
    session, commands = result
    return session, [StopPrompts(), *commands]


def _input(session: Session, node: Menu | Collect, digit: str, flow: Flow, now: datetime) -> Result:
    if isinstance(node, Menu):
        if digit in node.options:
            return _enter(session, flow, node.options[digit], now, f"pressed {digit}")
        return _retry(session, node, flow, now, f"invalid {digit}", node.invalid_prompts)
    if node.terminator and digit == node.terminator:
        return _complete(session, node, flow, now)
    digits = session.digits + digit
    session = replace(session, digits=digits)
    if len(digits) >= node.max_digits:
        return _complete(session, node, flow, now)
    return _wait_for_input(session, node, first=False)


def _complete(session: Session, node: Collect, flow: Flow, now: datetime) -> Result:
    digits = session.digits
    too_short = len(digits) < node.min_digits
    if too_short or (node.pattern is not None and not re.fullmatch(node.pattern, digits)):
        return _retry(session, node, flow, now, f"rejected '{digits}'", node.invalid_prompts)
    variables = {**session.variables, node.variable: digits}
    return _enter(replace(session, variables=variables), flow, node.next, now, f"entered {digits}")


def _timed_out(session: Session, node: Node, flow: Flow, now: datetime) -> Result:
    if isinstance(node, Collect):
        if session.digits:
            return _complete(session, node, flow, now)
        return _retry(session, node, flow, now, "timeout", node.invalid_prompts)
    assert isinstance(node, Menu)
    return _retry(session, node, flow, now, "timeout", node.timeout_prompts)


def _retry(
    session: Session,
    node: Menu | Collect,
    flow: Flow,
    now: datetime,
    why: str,
    scolding: tuple[str, ...],
) -> Result:
    path = (*session.path, Step(session.node, now, why))
    if session.attempt > node.retries:
        session = replace(session, path=path)
        if node.on_failure is not None:
            return _enter(session, flow, node.on_failure, now, "after the last retry")
        return _finish(
            session, "failed", {"reason": f"no valid input after {session.attempt} tries"}
        )
    again = replace(session, attempt=session.attempt + 1, digits="", path=path)
    return _prompt(again, flow, now, scolding + node.prompts, barge_in=True, then=Then.INPUT)


# -- conditions, values, media -----------------------------------------------------------


def _evaluate(node: Branch, session: Session, flow: Flow, now: datetime) -> str:
    for rule in node.rules:
        if rule.caller_in is not None and session.caller in flow.lists[rule.caller_in]:
            return rule.goto
        if rule.open is not None and is_open(flow.schedules[rule.open], now):
            return rule.goto
        if rule.closed is not None and not is_open(flow.schedules[rule.closed], now):
            return rule.goto
        if rule.variable is not None and session.variables.get(rule.variable) == rule.equals:
            return rule.goto
    return node.otherwise


def is_open(schedule: Schedule, now: datetime) -> bool:
    """Whether the schedule is open at this instant, in the schedule's own time zone."""
    local = now.astimezone(zoneinfo.ZoneInfo(schedule.timezone))
    if local.date() in schedule.holidays:
        return False
    moment = local.time().replace(tzinfo=None)
    return any(
        opens <= moment < closes for opens, closes in schedule.weekly.get(local.weekday(), ())
    )


_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _fill(template: str, variables: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), ""), template)


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data if isinstance(data, str | int | float) and not isinstance(data, bool) else None


# dollars, and, cents: Asterisk's core sounds have no "cents", so it is one of our own prompts
MONEY_UNITS = ("sound:digits/dollars", "sound:vm-and", media_uri("cents"))


def say_media(kind: str, value: str) -> tuple[str, ...]:
    """Asterisk media that say a value; a value that cannot be said is spelled out."""
    value = value.strip()
    if kind == "number" and re.fullmatch(r"-?\d{1,9}", value):
        return (f"number:{int(value)}",)
    if kind == "money" and re.fullmatch(r"-?\d{1,9}(\.\d{1,2})?", value):
        units, _, cents = value.partition(".")
        media: tuple[str, ...] = (f"number:{int(units)}", MONEY_UNITS[0])
        if cents and int(cents.ljust(2, "0")):
            media += (MONEY_UNITS[1], f"number:{int(cents.ljust(2, '0'))}", MONEY_UNITS[2])
        return media
    if kind == "date":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return _spell(value)
        return (
            f"sound:digits/day-{(day.weekday() + 1) % 7}",
            f"sound:digits/mon-{day.month - 1}",
            *_ordinal(day.day),
            f"number:{day.year}",
        )
    return _spell(value)


def _ordinal(day: int) -> tuple[str, ...]:
    if day <= 20 or day % 10 == 0:
        return (f"sound:digits/h-{day}",)
    return (f"sound:digits/{day - day % 10}", f"sound:digits/h-{day % 10}")


def _spell(value: str) -> tuple[str, ...]:
    digits = "".join(ch for ch in value if ch in "0123456789*#")
    return (f"digits:{digits}",) if digits else ()
