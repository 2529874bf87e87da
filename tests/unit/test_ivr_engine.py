"""The IVR engine, with no I/O and no event loop: paths through flows, and properties."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.adapters.flow_files import read
from ari_app.domain.ivr.check import load_flow
from ari_app.domain.ivr.engine import (
    CallerHungUp,
    DigitPressed,
    Finish,
    IvrEvent,
    LookupAnswered,
    LookupFailed,
    PlayPrompts,
    PromptsFinished,
    RequestLookup,
    Session,
    StartTimer,
    StopPrompts,
    TimerFired,
    Waiting,
    say_media,
    start,
    step,
)
from ari_app.domain.ivr.flow import Flow, parse_flow
from ari_app.domain.ivr.simulate import WAIT, simulate

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
DEMO_PATH = Path(__file__).resolve().parents[2] / "dialplan" / "flows" / "demo.yaml"


@functools.cache
def _demo() -> Flow:
    flow, problems = load_flow(read(DEMO_PATH).data)
    assert flow is not None, problems
    return flow


def _flow(nodes: dict[str, Any], start_node: str = "m", **extra: Any) -> Flow:
    flow, problems = parse_flow(
        {"flow": "t", "version": 1, "start": start_node, "nodes": nodes, **extra}
    )
    assert flow is not None, problems
    return flow


MENU = {
    "m": {
        "kind": "menu",
        "prompts": ["sound:menu"],
        "options": {"1": "one", "2": "two"},
        "retries": 1,
        "invalid_prompts": ["sound:invalid"],
        "timeout_prompts": ["sound:again"],
        "on_failure": "op",
        "timeout": 4,
    },
    "one": {"kind": "hangup", "prompts": ["sound:bye"]},
    "two": {"kind": "transfer", "to": "PJSIP/200"},
    "op": {"kind": "queue", "queue": "operator"},
}


def _run(flow: Flow, *events: IvrEvent) -> tuple[Session, list[Any]]:
    session, commands = start(flow, "5551234", T0)
    every = list(commands)
    for event in events:
        session, commands = step(session, event, T0, flow)
        every += commands
    return session, every


def test_a_menu_plays_its_prompt_with_barge_in_then_listens() -> None:
    session, commands = _run(_flow(MENU), PromptsFinished())
    assert commands == [PlayPrompts(("sound:menu",), "en", True), StartTimer(1, 4.0)]
    assert session.waiting is Waiting.INPUT


def test_a_valid_digit_takes_its_option_and_is_kept_in_the_path() -> None:
    session, commands = _run(_flow(MENU), PromptsFinished(), DigitPressed("1"))
    assert session.node == "one"
    assert [(s.node, s.note) for s in session.path] == [("m", ""), ("one", "pressed 1")]
    assert commands[-1] == PlayPrompts(("sound:bye",), "en", False)


def test_a_digit_during_the_prompt_stops_it_first() -> None:
    _, commands = _run(_flow(MENU), DigitPressed("2"))
    assert commands[1] == StopPrompts()
    assert isinstance(commands[-1], Finish)
    assert commands[-1].outcome.kind == "transferred"
    assert commands[-1].outcome.detail == {"to": "PJSIP/200"}


def test_an_invalid_digit_scolds_and_asks_again_then_the_failure_target_takes_over() -> None:
    session, commands = _run(_flow(MENU), PromptsFinished(), DigitPressed("9"))
    assert commands[-1] == PlayPrompts(("sound:invalid", "sound:menu"), "en", True)
    assert session.attempt == 2
    session, commands = step(session, PromptsFinished(), T0, _flow(MENU))
    session, commands = step(session, TimerFired(session.seq), T0, _flow(MENU))
    assert session.outcome is not None
    assert (session.outcome.kind, session.outcome.node) == ("queued", "op")
    assert [step_.note for step_ in session.path] == [
        "",
        "invalid 9",
        "timeout",
        "after the last retry",
    ]


def test_a_timeout_plays_the_timeout_prompt() -> None:
    flow = _flow(MENU)
    session, _ = _run(flow, PromptsFinished())
    _, commands = step(session, TimerFired(session.seq), T0, flow)
    assert commands == [PlayPrompts(("sound:again", "sound:menu"), "en", True)]


def test_a_stale_timer_is_ignored() -> None:
    flow = _flow(MENU)
    session, _ = _run(flow, PromptsFinished())
    assert step(session, TimerFired(session.seq - 1), T0, flow) == (session, [])


def test_without_a_failure_target_the_ivr_fails_cleanly() -> None:
    nodes = {**MENU, "m": {**MENU["m"], "retries": 0}}
    del nodes["m"]["on_failure"]
    nodes.pop("op")
    session, commands = _run(_flow(nodes), PromptsFinished(), DigitPressed("7"))
    assert session.outcome is not None
    assert session.outcome.kind == "failed"
    assert isinstance(commands[-1], Finish)


COLLECT = {
    "c": {
        "kind": "collect",
        "prompts": ["sound:enter"],
        "variable": "account",
        "min_digits": 3,
        "max_digits": 5,
        "pattern": "^[1-9][0-9]*$",
        "retries": 1,
        "timeout": 6,
        "inter_digit_timeout": 2,
        "next": "done",
        "on_failure": "op",
    },
    "done": {"kind": "hangup"},
    "op": {"kind": "queue", "queue": "operator"},
}


def test_collect_ends_on_the_terminator_and_keeps_the_digits_in_a_variable() -> None:
    flow = _flow(COLLECT, "c")
    keys = [DigitPressed(d) for d in "1234#"]
    session, commands = _run(flow, PromptsFinished(), *keys)
    assert session.variables == {"account": "1234"}
    assert session.outcome is not None
    assert session.outcome.kind == "self_service"
    timers = [c.seconds for c in commands if isinstance(c, StartTimer)]
    assert timers == [6.0, 2.0, 2.0, 2.0, 2.0]  # first digit, then between digits


def test_collect_ends_by_itself_at_max_digits() -> None:
    session, _ = _run(_flow(COLLECT, "c"), *[DigitPressed(d) for d in "12345"])
    assert session.variables == {"account": "12345"}


def test_collect_ends_when_the_caller_stops_typing_and_enough_digits_are_in() -> None:
    flow = _flow(COLLECT, "c")
    session, _ = _run(flow, PromptsFinished(), *[DigitPressed(d) for d in "123"])
    session, _ = step(session, TimerFired(session.seq), T0, flow)
    assert session.variables == {"account": "123"}


def test_collect_refuses_what_the_pattern_or_the_length_refuses() -> None:
    flow = _flow(COLLECT, "c")
    session, commands = _run(flow, *[DigitPressed(d) for d in "0123#"])
    assert session.attempt == 2
    assert commands[-1] == PlayPrompts(
        ("sound:invalid", "sound:please-try-again", "sound:enter"), "en", True
    )
    session, _ = step(session, DigitPressed("9"), T0, flow)
    session, _ = step(session, DigitPressed("#"), T0, flow)  # too short, last try
    assert session.outcome is not None
    assert session.outcome.node == "op"


LOOKUP = {
    "l": {
        "kind": "lookup",
        "url": "http://backend/balance",
        "params": {"acct": "{account}"},
        "results": {"balance": "data.balance"},
        "next": "s",
        "on_error": "sorry",
    },
    "s": {"kind": "say", "say": "money", "value": "{balance}", "next": "bye"},
    "sorry": {"kind": "hangup", "prompts": ["sound:sorry"]},
    "bye": {"kind": "hangup"},
}


def _lookup_session() -> tuple[Flow, Session, list[Any]]:
    flow = _flow(LOOKUP, "l")
    session, commands = start(flow, "5551234", T0)
    return flow, session, commands


def test_a_lookup_sends_the_variables_and_stores_the_answer() -> None:
    flow, session, commands = _lookup_session()
    assert commands == [RequestLookup(1, "GET", "http://backend/balance", {"acct": ""}, 2.0)]
    session, commands = step(session, LookupAnswered(1, {"data": {"balance": "12.05"}}), T0, flow)
    assert session.variables == {"balance": "12.05"}
    assert commands == [
        PlayPrompts(
            (
                "number:12",
                "sound:digits/dollars",
                "sound:vm-and",
                "number:5",
                "sound:ari-app/cents",
            ),
            "en",
            False,
        )
    ]


def test_a_failed_or_incomplete_lookup_takes_the_error_path() -> None:
    flow, session, _ = _lookup_session()
    failed, _ = step(session, LookupFailed(1, "timeout"), T0, flow)
    assert failed.node == "sorry"
    assert failed.path[-1].note == "lookup failed: timeout"
    lacking, _ = step(session, LookupAnswered(1, {"data": {}}), T0, flow)
    assert lacking.node == "sorry"


def test_a_late_lookup_answer_is_ignored() -> None:
    flow, session, _ = _lookup_session()
    assert step(session, LookupAnswered(7, {"data": {"balance": "1"}}), T0, flow) == (session, [])


SCHEDULED = {
    "b": {
        "kind": "branch",
        "rules": [
            {"caller_in": "vip", "goto": "vip"},
            {"variable": "tier", "equals": "gold", "goto": "vip"},
            {"closed": "office", "goto": "closed"},
        ],
        "otherwise": "open",
    },
    "vip": {"kind": "hangup"},
    "closed": {"kind": "hangup"},
    "open": {"kind": "hangup"},
}
SCHEDULE_EXTRA = {
    "schedules": {
        "office": {
            "timezone": "Europe/Paris",
            "weekly": {"mon-fri": ["08:00-18:00"]},
            "holidays": ["2026-12-25"],
        }
    },
    "lists": {"vip": ["5550100"]},
}


def _branch_at(when: datetime, caller: str = "5551234") -> str:
    flow = _flow(SCHEDULED, "b", **SCHEDULE_EXTRA)
    session, _ = start(flow, caller, when)
    return session.node


def test_business_hours_follow_the_schedules_time_zone_and_holidays() -> None:
    assert _branch_at(datetime(2026, 11, 24, 6, 59, tzinfo=UTC)) == "closed"  # 07:59 Paris
    assert _branch_at(datetime(2026, 11, 24, 7, 0, tzinfo=UTC)) == "open"  # 08:00 Paris
    assert _branch_at(datetime(2026, 11, 24, 16, 59, tzinfo=UTC)) == "open"
    assert _branch_at(datetime(2026, 11, 24, 17, 0, tzinfo=UTC)) == "closed"  # 18:00 Paris
    assert _branch_at(datetime(2026, 11, 28, 10, 0, tzinfo=UTC)) == "closed"  # a Saturday
    assert _branch_at(datetime(2026, 12, 25, 10, 0, tzinfo=UTC)) == "closed"  # a holiday


def test_a_listed_caller_goes_first() -> None:
    assert _branch_at(datetime(2026, 11, 28, 10, 0, tzinfo=UTC), caller="5550100") == "vip"


def test_a_language_node_changes_the_language_of_later_prompts() -> None:
    flow = _flow(
        {
            "l": {"kind": "language", "language": "fr", "next": "p"},
            "p": {"kind": "play", "prompts": ["sound:bonjour"], "next": "h"},
            "h": {"kind": "hangup"},
        },
        "l",
    )
    _, commands = start(flow, "1", T0)
    assert commands == [PlayPrompts(("sound:bonjour",), "fr", False)]


def test_a_play_without_barge_in_ignores_digits() -> None:
    flow = _flow(
        {"p": {"kind": "play", "prompts": ["sound:x"], "next": "h"}, "h": {"kind": "hangup"}}, "p"
    )
    session, _ = start(flow, "1", T0)
    assert step(session, DigitPressed("1"), T0, flow) == (session, [])


def test_a_hang_up_ends_the_ivr_at_any_point_and_nothing_follows() -> None:
    flow = _flow(MENU)
    session, _ = _run(flow, PromptsFinished())
    ended, commands = step(session, CallerHungUp(), T0, flow)
    assert ended.outcome is not None
    assert ended.outcome.kind == "caller_hung_up"
    assert commands == [Finish(ended.outcome)]
    assert step(ended, DigitPressed("1"), T0, flow) == (ended, [])


def test_values_are_said_with_asterisks_own_sounds() -> None:
    assert say_media("number", "42") == ("number:42",)
    assert say_media("digits", "12#") == ("digits:12#",)
    assert say_media("money", "7") == ("number:7", "sound:digits/dollars")
    assert say_media("date", "2026-11-24") == (
        "sound:digits/day-2",
        "sound:digits/mon-10",
        "sound:digits/20",
        "sound:digits/h-4",
        "number:2026",
    )
    assert say_media("number", "not a number") == ()


def test_the_demo_reaches_the_balance_through_the_two_level_menu() -> None:
    transcript = simulate(
        _demo(), "5551234", T0, list("1123456#2"), {"balance": {"balance": "42.50"}}
    )
    nodes = [s.node for s in transcript.session.path] if transcript.session else []
    assert nodes == [
        "hours",
        "welcome",
        "main_menu",
        "account",
        "balance",
        "say_balance",
        "anything_else",
        "goodbye",
    ]
    assert transcript.outcome is not None
    assert transcript.outcome.kind == "self_service"
    assert "number:42" in transcript.prompts


def test_the_demo_sends_a_failed_lookup_to_the_billing_queue() -> None:
    transcript = simulate(_demo(), "5551234", T0, list("1123456#"), {})
    assert transcript.outcome is not None
    assert (transcript.outcome.kind, transcript.outcome.node) == ("queued", "billing_queue")


KEYS = st.lists(st.sampled_from([*"0123456789*#", WAIT]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(KEYS, st.integers(min_value=0, max_value=7 * 24 * 3600), st.booleans())
def test_any_keys_at_any_time_end_in_a_defined_outcome(
    keys: list[str], offset: int, backend_answers: bool
) -> None:
    answers = {"balance": {"balance": "3.10"}} if backend_answers else {}
    transcript = simulate(_demo(), "5551234", T0 + timedelta(seconds=offset), keys, answers)
    assert transcript.outcome is not None
    assert transcript.outcome.kind in {
        "self_service",
        "queued",
        "transferred",
        "voicemail",
        "failed",
    }


EVENTS = st.one_of(
    st.builds(DigitPressed, st.sampled_from(list("0123456789*#"))),
    st.just(PromptsFinished()),
    st.builds(TimerFired, st.integers(0, 6)),
    st.builds(
        LookupAnswered,
        st.integers(0, 6),
        st.sampled_from([{}, {"balance": "1"}, {"balance": {"x": 1}}]),
    ),
    st.builds(LookupFailed, st.integers(0, 6), st.just("boom")),
    st.just(CallerHungUp()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=60))
def test_any_event_order_never_raises_and_nothing_happens_after_the_end(
    events: list[IvrEvent],
) -> None:
    flow = _demo()
    session, _ = start(flow, "5551234", T0)
    for event in events:
        before = session
        session, commands = step(session, event, T0, flow)
        if before.waiting is Waiting.DONE:
            assert (session, commands) == (before, [])
        if session.waiting is Waiting.DONE:
            assert session.outcome is not None
