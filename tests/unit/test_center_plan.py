"""The center's document read against what is in force: pure, no database."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.domain.center import Center, InForce, plan
from ari_app.domain.ivr.check import load_flow
from ari_app.domain.routing.config import parse_queues

FLOW = {
    "flow": "main",
    "version": 1,
    "start": "ask",
    "nodes": {"ask": {"kind": "queue", "queue": "billing", "skills": {"english": 2}}},
}
QUEUES = {"billing": {"skills": {"billing": 3}}}
NOW = Center(
    teams={"billing": {"name": "Billing"}},
    skills={"billing": {"description": ""}, "english": {"description": ""}},
    agents={
        "anna": {
            "name": "Anna",
            "team": "billing",
            "skills": {"billing": 5},
            "wrap_up_seconds": 30,
            "recording": "queue",
        }
    },
    queues=QUEUES,
    flows={"main": FLOW},
    numbers={"150": {"flow": "main", "label": ""}},
)


def _in_force(center: Center = NOW, **extra: Any) -> InForce:
    flow, problems = load_flow(FLOW)
    assert flow is not None, problems
    queues, problems = parse_queues({"queues": QUEUES})
    assert problems == []
    return InForce(center, {"main": flow}, queues, **extra)


def test_the_center_in_force_as_a_document_changes_nothing() -> None:
    found = plan(NOW.document(), _in_force(), load_flow)
    assert (found.changes, found.problems) == ((), ())


def test_an_agents_defaults_count_as_given() -> None:
    document = {"agents": {"anna": {"name": "Anna", "team": "billing", "skills": {"billing": 5}}}}
    assert plan(document, _in_force(), load_flow).changes == ()


def test_removals_come_last_and_in_the_reverse_order_of_the_kinds() -> None:
    """A number goes before its flow, an agent before their team."""
    document = {"teams": {}, "agents": {}, "numbers": {}, "flows": {}, "skills": {}}
    document["queues"] = {}
    found = plan(document, _in_force(), load_flow)
    assert found.problems == ()
    assert found.diff() == [
        "- number 150",
        "- flow main",
        "- queue billing",
        "- agent anna",
        "- skill billing",
        "- skill english",
        "- team billing",
    ]


def test_what_is_busy_cannot_go_and_a_new_number_must_be_reached() -> None:
    def busy(kind: str, key: str) -> list[str]:
        return ["two callers wait"] if kind == "queues" else []

    now = _in_force(busy=busy, reached=lambda number: number.startswith("1"))
    found = plan({"queues": {}, "flows": {}, "numbers": {"299": {"flow": "main"}}}, now, load_flow)
    messages = [(".".join(p.path), p.message) for p in found.problems]
    assert ("queues.billing", "two callers wait") in messages
    assert ("numbers.299.flow", "no flow 'main'") in messages
    assert any(path == "numbers.299" and "dialplan" in m for path, m in messages)


def test_a_change_names_its_fields() -> None:
    document = {"teams": {"billing": {"name": "Billing desk"}}}
    assert plan(document, _in_force(), load_flow).diff() == ["~ team billing: name"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
SECTION = st.dictionaries(
    st.sampled_from(["billing", "anna", "150", "main", "x y", ""]), JSON, max_size=3
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["teams", "skills", "agents", "queues", "flows", "numbers", "other"]),
        SECTION | JSON,
        max_size=4,
    )
    | JSON
)
def test_any_document_gives_changes_or_problems_never_an_exception(document: Any) -> None:
    found = plan(document, _in_force(), load_flow)
    assert not (found.changes and found.problems)
    for problem in found.problems:
        assert problem.message
