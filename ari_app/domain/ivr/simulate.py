"""Walk a flow with a scripted caller: the engine live calls use, with no Asterisk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ari_app.domain.ivr.check import kind_of
from ari_app.domain.ivr.engine import (
    DigitPressed,
    Finish,
    IvrCommand,
    IvrEvent,
    LookupAnswered,
    LookupFailed,
    Outcome,
    PlayPrompts,
    PromptsFinished,
    RequestLookup,
    Session,
    StartTimer,
    StopPrompts,
    TimerFired,
    start,
    step,
)
from ari_app.domain.ivr.flow import INPUT_KINDS, Flow

WAIT = "_"  # in a digit script: let the input timer run out here
MAX_EVENTS = 10_000


@dataclass
class Transcript:
    lines: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    session: Session | None = None
    prompts: list[str] = field(default_factory=list)
    events: list[IvrEvent] = field(default_factory=list)  # what the engine was fed, in order


def simulate(
    flow: Flow,
    caller: str,
    at: datetime,
    digits: list[str],
    lookups: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> Transcript:
    """Run the flow; each digit is pressed when the flow first listens, `_` lets a timer expire.

    `lookups` gives the answer of each lookup node by name; a node missing from it,
    or mapped to None, fails (as a backend that does not answer would).
    """
    answers = lookups or {}
    script = list(digits)
    transcript = Transcript()
    now = at
    session, commands = start(flow, caller, now)
    entered = 0
    for _ in range(MAX_EVENTS):
        if any(isinstance(command, StopPrompts) for command in commands):
            transcript.lines.append("            (the digit stops the prompt)")
        for new_step in session.path[entered:]:
            note = f" ({new_step.note})" if new_step.note else ""
            kind = kind_of(flow.nodes[new_step.node])
            transcript.lines.append(f"{_clock(at, new_step.at)}  {new_step.node} [{kind}]{note}")
        entered = len(session.path)
        event: IvrEvent | None = None
        listening = kind_of(flow.nodes[session.node]) in INPUT_KINDS
        for command in commands:
            event = _answer(command, script, answers, session, transcript, listening) or event
            if isinstance(command, StartTimer) and isinstance(event, TimerFired):
                now += timedelta(seconds=command.seconds)
        if session.outcome is not None or event is None:
            break
        transcript.events.append(event)
        session, commands = step(session, event, now, flow)
    transcript.session, transcript.outcome = session, session.outcome
    return transcript


def _answer(
    command: IvrCommand,
    script: list[str],
    answers: Mapping[str, Any],
    session: Session,
    transcript: Transcript,
    listening: bool,
) -> IvrEvent | None:
    """What the scripted caller (or backend) does in reply to one command.

    The caller presses a key during a menu's or a collect's prompt (barge-in),
    and otherwise waits for the flow to listen.
    """
    if isinstance(command, PlayPrompts):
        transcript.prompts += command.media
        transcript.lines.append("            play " + ", ".join(command.media))
        if command.barge_in and listening and script and script[0] != WAIT:
            return _press(script, transcript)
        return PromptsFinished()
    if isinstance(command, StopPrompts):
        return None
    if isinstance(command, StartTimer):
        if script and script[0] != WAIT:
            return _press(script, transcript)
        if script:
            script.pop(0)
        transcript.lines.append(f"            no digit for {command.seconds:g} s")
        return TimerFired(command.seq)
    if isinstance(command, RequestLookup):
        answer = answers.get(session.node)
        transcript.lines.append(
            f"            lookup {command.method} {command.url} {dict(command.params)}"
            f" -> {answer if answer is not None else 'no answer'}"
        )
        if answer is None:
            return LookupFailed(command.seq, "no answer in the simulation")
        return LookupAnswered(command.seq, answer)
    assert isinstance(command, Finish)
    detail = " ".join(f"{key}={value}" for key, value in command.outcome.detail.items())
    transcript.lines.append(
        f"outcome: {command.outcome.kind} at {command.outcome.node} {detail}".rstrip()
    )
    return None


def _press(script: list[str], transcript: Transcript) -> DigitPressed:
    digit = script.pop(0)
    transcript.lines.append(f"            caller presses {digit}")
    return DigitPressed(digit)


def _clock(start_at: datetime, at: datetime) -> str:
    seconds = int((at - start_at).total_seconds())
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
