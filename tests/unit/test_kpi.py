"""The KPIs on a scripted hour of one queue, every figure worked out by hand below.

The hour, 09:00 to 10:00, queue billing (service level target 20 s, short abandon
5 s, FCR window 1 h), agents anna and ben:

  c1 caller A  IVR, queued 09:00:10, anna answers 09:00:18 (wait 8), hold 30 s,
               anna leaves 09:03:18 (180 s: talk 150 + hold 30), wrap-up 30 s
  c2 caller B  queued 09:05:05, ben answers 09:05:45 (wait 40, late), transfers to
               anna at 09:07:45; anna answers 09:07:50, leaves 09:09:50;
               ben wraps up 20 s, anna 10 s
  c3 caller C  queued 09:10:00, hangs up 09:10:03: a short abandon (3 s < 5 s)
  c4 caller D  queued 09:20:00, anna's phone rings, the caller hangs up 09:20:30:
               abandoned during ringing (wait 30)
  c6 caller E  IVR, self-served at 09:26, never queued
  c8 caller G  queued 09:29:50, anna answers 09:30:05 (wait 15: it spans the two
               half hours and belongs to the first), leaves 09:32:05, wrap-up 10 s
  c5 caller A  again at 09:40 (a repeat of c1 within the hour), ben answers
               09:40:10 (wait 10), leaves 09:42:10, wrap-up 10 s, disposition
               "resolved"
  c7 caller F  IVR, blocked at the queue's door 09:50:20 (nobody logged in)
  anna pauses 09:45 for the rest of the hour.

By hand, for the hour:
  came to the queue 7 (c1 c2 c3 c4 c5 c7 c8); blocked 1 (c7); entered 6
  short abandons 1 (c3); offered 5 (c1 c2 c4 c5 c8)
  handled 4 (c1 c2 c5 c8); abandoned 1 (c4)
  waits of the offered: 8 40 30 10 15 -> average 103/5 = 20.6, longest 40
  ASA: (8 + 40 + 10 + 15) / 4 = 18.25
  service level: answered within 20 s: c1 c5 c8 = 3 of 5 offered = 60 %
  handle time: c1 150+30+30 = 210; c2 ben 120+20 + anna 120+10 = 270;
               c5 120+10 = 130; c8 120+10 = 130 -> AHT 740/4 = 185
  wrap-up: 30 + 20 + 10 + 10 + 10 = 80 -> 80/4 = 20
  FCR: c1 repeated by c5 (no); c2 yes; c5 disposition resolved (yes); c8 yes = 75 %
  blocked rate: 1 / (6 + 1) = 14.29 %
  IVR: entered c1 c6 c7 = 3, contained c6 = 1 -> 33.3 %
  anna: on call 180 + 120 + 120 = 420, wrap-up 30 + 10 + 10 = 50 -> handling 470;
        staffed 09:00 to 09:45 = 2700 s (paused after) -> occupancy 17.41 %;
        segments answered c1 c2 c8 = 3, AHT (210 + 130 + 130)/3 = 156.67
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.domain.interaction import (
    AgentAnswered,
    AgentLeft,
    Arrived,
    Blocked,
    Disposed,
    Ended,
    HoldEnded,
    HoldStarted,
    InteractionEvent,
    IvrEntered,
    LeftQueue,
    Queued,
    Record,
    SelfServed,
    WrapUpEnded,
    agent_spans,
    stitch,
)
from ari_app.domain.kpi import (
    Interaction,
    Segment,
    Targets,
    agent_figures,
    intervals,
    ivr_figures,
    queue_figures,
)

HOUR = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
END = HOUR + timedelta(hours=1)
TARGETS = Targets({"billing": 20.0}, short_abandon=5.0, fcr_window=3600.0)


def at(minutes: int, seconds: int = 0) -> datetime:
    return HOUR + timedelta(minutes=minutes, seconds=seconds)


SCRIPT: list[InteractionEvent] = [
    # c1
    Arrived("c1", at(0), "A"),
    IvrEntered("c1", at(0, 2)),
    Queued("c1", at(0, 10), "billing"),
    AgentAnswered("c1", at(0, 18), "anna"),
    HoldStarted("c1", at(1)),
    HoldEnded("c1", at(1, 30)),
    AgentLeft("c1", at(3, 18), "anna"),
    Ended("c1", at(3, 18)),
    WrapUpEnded("c1", at(3, 48), "anna"),
    # c2: the transfer
    Arrived("c2", at(5), "B"),
    Queued("c2", at(5, 5), "billing"),
    AgentAnswered("c2", at(5, 45), "ben"),
    AgentLeft("c2", at(7, 45), "ben"),
    AgentAnswered("c2", at(7, 50), "anna"),
    WrapUpEnded("c2", at(8, 5), "ben"),
    AgentLeft("c2", at(9, 50), "anna"),
    Ended("c2", at(9, 50)),
    WrapUpEnded("c2", at(10), "anna"),
    # c3: a short abandon
    Arrived("c3", at(10), "C"),
    Queued("c3", at(10), "billing"),
    Ended("c3", at(10, 3)),
    # c4: abandoned while anna's phone rang
    Arrived("c4", at(20), "D"),
    Queued("c4", at(20), "billing"),
    Ended("c4", at(20, 30)),
    # c6: self-service
    Arrived("c6", at(25), "E"),
    IvrEntered("c6", at(25)),
    SelfServed("c6", at(26)),
    Ended("c6", at(26)),
    # c8: across the half hour
    Arrived("c8", at(29, 40), "G"),
    Queued("c8", at(29, 50), "billing"),
    AgentAnswered("c8", at(30, 5), "anna"),
    AgentLeft("c8", at(32, 5), "anna"),
    Ended("c8", at(32, 5)),
    WrapUpEnded("c8", at(32, 15), "anna"),
    # c5: caller A again, marked resolved
    Arrived("c5", at(40), "A"),
    Queued("c5", at(40), "billing"),
    AgentAnswered("c5", at(40, 10), "ben"),
    AgentLeft("c5", at(42, 10), "ben"),
    Ended("c5", at(42, 10)),
    WrapUpEnded("c5", at(42, 20), "ben"),
    Disposed("c5", at(42, 15), "billing-question", resolved=True),
    # c7: blocked
    Arrived("c7", at(50), "F"),
    IvrEntered("c7", at(50, 1)),
    Blocked("c7", at(50, 20), "billing"),
    Ended("c7", at(50, 25)),
]
ANNA = [
    (at(0), "available"),
    (at(0, 18), "on_call"),
    (at(3, 18), "wrap_up"),
    (at(3, 48), "available"),
    (at(7, 50), "on_call"),
    (at(9, 50), "wrap_up"),
    (at(10), "available"),
    (at(20), "reserved"),
    (at(20, 30), "available"),
    (at(30, 5), "on_call"),
    (at(32, 5), "wrap_up"),
    (at(32, 15), "available"),
    (at(45), "paused"),
]


def _calls(script: list[InteractionEvent]) -> list[Interaction]:
    records: dict[str, Record] = {}
    for event in script:
        record = stitch(records.get(event.call_id), event)
        if record is not None:
            records[event.call_id] = record
    return [record.interaction for record in records.values()]


CALLS = _calls(SCRIPT)


def test_the_hour_of_the_queue_as_worked_out_by_hand() -> None:
    figures = queue_figures("billing", CALLS, HOUR, END, TARGETS)
    assert (figures.offered, figures.handled, figures.abandoned) == (5, 4, 1)
    assert (figures.short_abandoned, figures.blocked) == (1, 1)
    assert figures.average_wait == pytest.approx(20.6)
    assert figures.longest_wait == 40
    assert figures.asa == pytest.approx(18.25)
    assert figures.service_level == pytest.approx(60.0)
    assert figures.aht == pytest.approx(185.0)
    assert figures.average_wrap_up == pytest.approx(20.0)
    assert figures.fcr == pytest.approx(75.0)
    assert figures.blocked_rate == pytest.approx(100 / 7)


def test_the_ivr_contained_one_call_in_three() -> None:
    figures = ivr_figures(CALLS, HOUR, END)
    assert (figures.entered, figures.contained) == (3, 1)
    assert figures.containment == pytest.approx(100 / 3)


def test_anna_was_busy_470_seconds_of_the_2700_she_was_not_paused() -> None:
    spans = agent_spans("anna", ANNA, END)
    figures = agent_figures("anna", CALLS, spans, HOUR, END)
    assert figures.handled == 3
    assert figures.handling_seconds == pytest.approx(470.0)
    assert figures.staffed_seconds == pytest.approx(2700.0)
    assert figures.occupancy == pytest.approx(100 * 470 / 2700)
    assert figures.aht == pytest.approx((210 + 130 + 130) / 3)


def test_a_call_across_two_half_hours_belongs_to_the_one_it_entered_in() -> None:
    first, second = intervals(HOUR, END, 30)
    early = queue_figures("billing", CALLS, *first, TARGETS, history=CALLS)
    late = queue_figures("billing", CALLS, *second, TARGETS, history=CALLS)
    # first half: c1 c2 c4 c8 offered (c3 short), c8 answered at 09:30:05 but counted here
    assert (early.offered, early.handled, early.abandoned, early.short_abandoned) == (4, 3, 1, 1)
    assert early.service_level == pytest.approx(50.0)  # c1 (8 s) and c8 (15 s) of 4
    assert early.asa == pytest.approx((8 + 40 + 15) / 3)
    assert early.fcr == pytest.approx(100 * 2 / 3)  # c1's caller came back within the hour
    # second half: c5 offered and handled, c7 blocked
    assert (late.offered, late.handled, late.blocked) == (1, 1, 1)
    assert late.blocked_rate == pytest.approx(50.0)
    # anna's second half: on call 120 + wrap-up 10 of 15 minutes staffed (then paused)
    anna = agent_figures("anna", CALLS, agent_spans("anna", ANNA, END), *second)
    assert anna.handling_seconds == pytest.approx(130.0)
    assert anna.staffed_seconds == pytest.approx(900.0)


def test_the_transfer_is_one_interaction_with_two_segments() -> None:
    (c2,) = [call for call in CALLS if call.call_id == "c2"]
    assert [(s.agent_id, s.talk_seconds, s.wrap_up_seconds) for s in c2.segments] == [
        ("ben", 120.0, 20.0),
        ("anna", 120.0, 10.0),
    ]
    assert c2.wait_seconds == 40.0
    assert c2.abandoned_at is None


def test_abandons_are_told_apart_from_answers_and_blocks() -> None:
    by_id = {call.call_id: call for call in CALLS}
    assert by_id["c3"].abandoned_at == at(10, 3)
    assert by_id["c4"].abandoned_at == at(20, 30)
    assert by_id["c4"].wait_seconds == 30.0
    assert by_id["c7"].blocked
    assert by_id["c7"].abandoned_at is None  # blocked, not abandoned
    assert by_id["c6"].queued_at is None
    assert by_id["c1"].segments[0].hold_seconds == 30.0


def test_an_empty_window_has_no_figures_rather_than_zeros() -> None:
    figures = queue_figures("billing", CALLS, END, END + timedelta(hours=1), TARGETS)
    assert (figures.offered, figures.service_level, figures.asa, figures.aht) == (
        0,
        None,
        None,
        None,
    )


def test_events_before_the_arrival_or_out_of_order_change_nothing() -> None:
    assert stitch(None, Queued("x", at(0), "billing")) is None
    record = reduce(
        lambda r, e: stitch(r, e),  # type: ignore[arg-type]
        [Arrived("x", at(0), "Z"), AgentLeft("x", at(1), "anna"), HoldEnded("x", at(2))],
        None,
    )
    assert record is not None
    assert record.interaction == Interaction("x", "Z", at(0))


def test_intervals_are_15_30_or_60_minutes_aligned_to_the_hour() -> None:
    cuts = intervals(at(10), at(50), 15)
    assert cuts[0] == (at(10), at(15))
    assert cuts[-1] == (at(45), at(50))
    assert len(cuts) == 4
    with pytest.raises(ValueError, match="15, 30 or 60"):
        intervals(HOUR, END, 20)


def test_a_caller_sent_on_at_the_longest_wait_is_offered_but_not_abandoned() -> None:
    calls = _calls(
        [
            Arrived("v", at(0), "V"),
            Queued("v", at(0), "billing"),
            LeftQueue("v", at(2)),  # voicemail after 120 s
            Ended("v", at(3)),
            Arrived("n", at(5), "N"),
            Queued("n", at(5), "billing"),
            Blocked("n", at(5), "billing"),  # nobody logged in: sent on at once
            Ended("n", at(6)),
        ]
    )
    figures = queue_figures("billing", calls, HOUR, END, TARGETS)
    assert (figures.offered, figures.handled, figures.abandoned, figures.blocked) == (1, 0, 0, 1)
    assert figures.longest_wait == 120.0
    assert figures.service_level == 0.0


@st.composite
def _random_calls(draw: st.DrawFn) -> list[Interaction]:
    """Calls of a few callers to one queue: answered, abandoned, sent on or blocked."""
    calls = []
    for n in range(draw(st.integers(0, 30))):
        arrived = HOUR + timedelta(seconds=draw(st.floats(0, 7200)))
        queued = arrived + timedelta(seconds=draw(st.floats(0, 30)))
        wait = timedelta(seconds=draw(st.floats(0, 300)))
        fate = draw(st.sampled_from(["answered", "abandoned", "left", "blocked"]))
        caller = draw(st.sampled_from("ABCD"))
        if fate == "answered":
            talk = timedelta(seconds=draw(st.floats(1, 600)))
            segment = Segment("anna", queued + wait, queued + wait + talk, 0.0, 5.0)
            call = Interaction(
                f"c{n}", caller, arrived, queued + wait + talk, queue="billing",
                queued_at=queued, answered_at=queued + wait, segments=(segment,),
                resolved=draw(st.sampled_from([None, True, False])),
            )  # fmt: skip
        else:
            call = Interaction(
                f"c{n}", caller, arrived, queued + wait, queue="billing", queued_at=queued,
                abandoned_at=queued + wait if fate == "abandoned" else None,
                left_at=queued + wait if fate == "left" else None, blocked=fate == "blocked",
            )  # fmt: skip
        calls.append(call)
    return calls


@given(_random_calls())
def test_the_figures_always_add_up(calls: list[Interaction]) -> None:
    figures = queue_figures("billing", calls, HOUR, HOUR + timedelta(hours=3), TARGETS)
    came = [
        c
        for c in calls
        if c.queued_at is not None and HOUR <= c.queued_at < END + timedelta(hours=2)
    ]
    assert figures.offered + figures.short_abandoned + figures.blocked == len(came)
    assert figures.handled + figures.abandoned <= figures.offered
    for percent in (figures.service_level, figures.fcr, figures.blocked_rate):
        assert percent is None or 0.0 <= percent <= 100.0
    if figures.handled:
        assert figures.asa is not None
        assert figures.longest_wait is not None
        assert 0.0 <= figures.asa <= figures.longest_wait
        assert figures.aht is not None
        assert figures.aht > 0
    else:
        assert figures.asa is None
        assert figures.aht is None
