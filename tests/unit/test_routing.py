"""The routing core: skills, order across queues, escalation, and the reason for each choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.domain.routing.router import FreeAgent, Router, RoutingError, WaitingCall
from ari_app.domain.routing.rules import QueueRules, RoutingStep, Strategy

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


QUEUES = {
    "billing": QueueRules(
        "billing",
        {"billing": 3},
        (
            RoutingStep(seconds=20, min_level=7),
            RoutingStep(seconds=40, min_level=4),
            RoutingStep(overflow="tier2"),
        ),
    ),
    "tier2": QueueRules("tier2", {"billing": 8}),
    "support": QueueRules("support", {"internet": 1}, strategy=Strategy.LONGEST_IDLE),
    "sales": QueueRules("sales", {"sales": 1}),
}


def agent(agent_id: str, idle_since: float = 0, **skills: int) -> FreeAgent:
    return FreeAgent(agent_id, agent_id.capitalize(), skills, at(idle_since))


def call(
    call_id: str, queue: str, since: float = 0, priority: int = 0, **skills: int
) -> WaitingCall:
    return WaitingCall(call_id, queue, at(since), priority, skills)


def test_an_agent_without_the_skill_or_the_level_is_never_chosen() -> None:
    router = Router(QUEUES)
    router.agent_free(agent("no_skill", sales=9), at(0))
    router.agent_free(agent("too_low", billing=6), at(0))
    assert router.queue_call(call("c1", "billing"), at(1)) == []  # step 1 wants billing >= 7
    assert set(router.calls) == {"c1"}
    assert set(router.free) == {"no_skill", "too_low"}


def test_the_best_level_wins_and_a_tie_goes_to_the_longest_idle() -> None:
    router = Router(QUEUES)
    router.agent_free(agent("anna", idle_since=50, billing=9), at(50))
    router.agent_free(agent("ben", idle_since=10, billing=8), at(50))
    router.agent_free(agent("cleo", idle_since=0, billing=9), at(50))
    (chosen,) = router.queue_call(call("c1", "billing"), at(60))
    assert chosen.agent_id == "cleo"  # billing 9 like Anna, idle for 60 s against 10 s
    assert [c.agent_id for c in chosen.candidates] == ["cleo", "anna", "ben"]
    assert (chosen.free_agents, chosen.qualified) == (3, 3)
    assert "tied on level" in chosen.why
    assert "Cleo" in chosen.why
    assert chosen.requirement == "billing >= 7"
    assert (chosen.queue, chosen.step) == ("billing", 0)


def test_a_longest_idle_queue_ignores_the_level_above_its_minimum() -> None:
    router = Router(QUEUES)
    router.agent_free(agent("expert", idle_since=30, internet=10), at(30))
    router.agent_free(agent("novice", idle_since=0, internet=1), at(30))
    (chosen,) = router.queue_call(call("c1", "support"), at(40))
    assert chosen.agent_id == "novice"
    assert "idle longest" in chosen.why


def test_a_free_agent_takes_the_highest_priority_then_the_longest_waiting_call() -> None:
    router = Router(QUEUES)
    router.queue_call(call("old", "sales", since=0), at(0))
    router.queue_call(call("new", "sales", since=30), at(30))
    router.queue_call(call("vip", "sales", since=50, priority=5), at(50))
    firsts = [router.agent_free(agent(f"a{i}", sales=5), at(60))[0].call_id for i in range(3)]
    assert firsts == ["vip", "old", "new"]


def test_no_queue_starves_while_its_callers_are_the_oldest() -> None:
    router = Router(QUEUES)
    # the agent serves sales and support; support's caller has waited longest
    router.queue_call(call("support_old", "support", since=0), at(0))
    for i in range(5):
        router.queue_call(call(f"sales_{i}", "sales", since=10 + i), at(10 + i))
    (chosen,) = router.agent_free(agent("both", sales=5, internet=5), at(20))
    assert chosen.call_id == "support_old"
    assert chosen.waiting_calls == 6


def test_escalation_lowers_the_level_at_each_step_then_overflows_to_tier_two() -> None:
    router = Router(QUEUES)
    router.agent_free(agent("mid", billing=5), at(0))
    assert router.queue_call(call("c1", "billing"), at(0)) == []
    assert router.step_seconds("c1") == 20
    (chosen,) = router.next_step("c1", at(20))  # step 2: billing >= 4
    assert (chosen.agent_id, chosen.step, chosen.requirement) == ("mid", 1, "billing >= 4")

    router.queue_call(call("c2", "billing"), at(30))
    router.next_step("c2", at(50))
    assert router.step_seconds("c2") == 40
    assert router.next_step("c2", at(90)) == []  # on to tier2, where nobody is free
    assert router.calls["c2"].queue == "tier2"
    assert router.step_seconds("c2") is None  # the last step lasts until answered
    assert router.agent_free(agent("junior", billing=7), at(91)) == []  # tier2 wants 8
    (chosen,) = router.agent_free(agent("expert", billing=9), at(92))
    assert (chosen.call_id, chosen.queue) == ("c2", "tier2")


def test_the_calls_own_skills_add_to_the_queues() -> None:
    router = Router(QUEUES)
    router.agent_free(agent("english_only", sales=5), at(0))
    assert router.queue_call(call("c1", "sales", french=3), at(0)) == []
    (chosen,) = router.agent_free(agent("bilingual", sales=2, french=4), at(1))
    assert chosen.call_id == "c1"
    assert chosen.requirement == "french >= 3, sales >= 1"


def test_new_queue_rules_apply_to_the_next_decision() -> None:
    router = Router(QUEUES)
    router.agent_free(agent("mid", billing=5), at(0))
    router.queue_call(call("c1", "billing"), at(0))
    easier = dict(QUEUES, billing=QueueRules("billing", {"billing": 3}))
    (chosen,) = router.set_queues(easier, at(5))
    assert (chosen.call_id, chosen.agent_id) == ("c1", "mid")


def test_positions_count_within_the_queue_and_across_all() -> None:
    router = Router(QUEUES)
    router.queue_call(call("s1", "sales", since=0), at(0))
    router.queue_call(call("b1", "billing", since=1), at(1))
    router.queue_call(call("s2", "sales", since=2), at(2))
    assert router.positions() == {"s1": (1, 1), "b1": (1, 2), "s2": (2, 3)}


def test_a_call_put_back_after_a_missed_ring_keeps_its_place() -> None:
    router = Router(QUEUES)
    router.queue_call(call("first", "sales", since=0), at(0))
    router.queue_call(call("second", "sales", since=5), at(5))
    (rang,) = router.agent_free(agent("a", sales=5), at(6))
    assert rang.call_id == "first"
    router.queue_call(call("first", "sales", since=0), at(26))  # the agent did not answer
    (again,) = router.agent_free(agent("b", sales=5), at(27))
    assert again.call_id == "first"


def test_an_unknown_queue_is_refused() -> None:
    with pytest.raises(RoutingError, match="unknown queue 'nope'"):
        Router(QUEUES).queue_call(call("c1", "nope"), at(0))


# -- properties ---------------------------------------------------------------------------

SKILLS = st.dictionaries(
    st.sampled_from(["billing", "internet", "sales", "french"]),
    st.integers(1, 10),
    max_size=3,
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("call"),
            st.integers(0, 9),
            st.sampled_from(sorted(QUEUES)),
            st.integers(0, 2),
            SKILLS.filter(lambda s: len(s) <= 1),
        ),
        st.tuples(st.just("free"), st.integers(0, 6), SKILLS),
        st.tuples(st.just("busy"), st.integers(0, 6)),
        st.tuples(st.just("gone"), st.integers(0, 9)),
        st.tuples(st.just("step"), st.integers(0, 9)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(OPERATIONS)
def test_any_sequence_keeps_the_routing_rules(operations: list[tuple[object, ...]]) -> None:
    router = Router(QUEUES)
    skills_of: dict[str, dict[str, int]] = {}
    busy: set[str] = set()  # agents given a call and not freed since
    for clock, operation in enumerate(operations):
        now = at(clock)
        kind = operation[0]
        if kind == "call":
            _, number, queue, priority, own = operation
            call_id = f"c{number}"
            if call_id in router.calls:
                continue
            made = router.queue_call(
                WaitingCall(call_id, str(queue), now, int(priority), dict(own)),
                now,  # type: ignore[arg-type]
            )
        elif kind == "free":
            _, number, skills = operation
            agent_id = f"a{number}"
            skills_of[agent_id] = dict(skills)  # type: ignore[arg-type]
            busy.discard(agent_id)
            waiting = dict(router.calls)
            made = router.agent_free(FreeAgent(agent_id, agent_id, skills_of[agent_id], now), now)
            for assignment in made:  # the best-ranked call this agent qualifies for
                chosen = waiting[assignment.call_id]
                for other in waiting.values():
                    need = QUEUES[other.queue].requirement(other.step, other.skills)
                    if need.met_by(skills_of[agent_id]):
                        better = (-other.priority, other.waiting_since)
                        assert better >= (-chosen.priority, chosen.waiting_since)
        elif kind == "busy":
            router.agent_gone(f"a{operation[1]}")
            made = []
        elif kind == "gone":
            router.remove_call(f"c{operation[1]}")
            made = []
        else:
            before = dict(router.calls)
            made = router.next_step(f"c{operation[1]}", now)
            assert set(router.calls) <= set(before)
        for assignment in made:
            assert assignment.agent_id not in busy  # never two calls to one agent
            assert assignment.call_id not in router.calls
            need = QUEUES[assignment.queue].requirement(assignment.step)
            assert need.met_by(skills_of[assignment.agent_id])  # the skills, at that step
            busy.add(assignment.agent_id)
        # nothing is left that could be paired: no waiting call with a free agent for it
        for waiting_call in router.calls.values():
            need = QUEUES[waiting_call.queue].requirement(waiting_call.step, waiting_call.skills)
            assert not any(need.met_by(free.skills) for free in router.free.values())
        assert not busy & set(router.free)


@settings(max_examples=300, deadline=None)
@given(
    free=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(-20, 20)), max_size=12
    ),
    strategy=st.sampled_from(list(Strategy)),
)
def test_an_arriving_call_takes_the_best_free_agent_by_its_queues_strategy(
    free: list[tuple[int, int, int]], strategy: Strategy
) -> None:
    """The agent chosen, the candidates listed and the counts are those of every qualified
    free agent put in the strategy's order (idle time, none counted past now; level on
    the required skills; then the id), some idle since a moment still to come."""
    queue = QueueRules("q", {"billing": 1, "french": 0}, strategy=strategy)
    router, now = Router({"q": queue}), at(0)
    agents = [
        agent(f"a{n}", idle_since=since, billing=billing, french=french)
        for n, (billing, french, since) in enumerate(free)
    ]
    for each in agents:
        router.agent_free(each, now)
    made = router.queue_call(call("c1", "q"), now)
    need = queue.requirement(0)
    qualified = [a for a in agents if need.met_by(a.skills)]

    def order(a: FreeAgent) -> tuple[object, ...]:
        idle = max(0.0, (now - a.idle_since).total_seconds())
        score = need.score(a.skills)
        best = (-idle, -score) if strategy is Strategy.LONGEST_IDLE else (-score, -idle)
        return (*best, a.agent_id)

    ranked = sorted(qualified, key=order)
    if not ranked:
        assert made == []
        return
    (chosen,) = made
    assert [c.agent_id for c in chosen.candidates] == [a.agent_id for a in ranked[:5]]
    assert chosen.agent_id == ranked[0].agent_id
    assert (chosen.free_agents, chosen.qualified) == (len(agents), len(ranked))
    assert f"of {len(ranked)} free agents" in chosen.why or len(ranked) == 1
