"""Which conversations are recorded: the queue's policy, the agent's override, the sample."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.domain.recording import Mode, RecordingPolicy, parse_policy, records
from ari_app.domain.routing.config import parse_queues


def test_the_queue_says_always_never_or_a_sample() -> None:
    assert parse_policy("always") == (RecordingPolicy(Mode.ALWAYS), None)
    assert parse_policy("never") == (RecordingPolicy(Mode.NEVER), None)
    assert parse_policy({"sample": 25}) == (RecordingPolicy(Mode.SAMPLE, 25.0), None)
    for bad in ("sometimes", {"sample": 0}, {"sample": 101}, {"sample": "10"}, {"every": 2}, 5):
        policy, problem = parse_policy(bad)
        assert policy is None
        assert problem is not None


@pytest.mark.parametrize(
    ("queue", "agent", "draw", "recorded"),
    [
        (RecordingPolicy(Mode.ALWAYS), "queue", 50.0, True),
        (RecordingPolicy(Mode.NEVER), "queue", 0.0, False),
        (RecordingPolicy(Mode.NEVER), "always", 99.0, True),
        (RecordingPolicy(Mode.ALWAYS), "never", 0.0, False),
        (RecordingPolicy(Mode.SAMPLE, 25), "queue", 24.9, True),
        (RecordingPolicy(Mode.SAMPLE, 25), "queue", 25.0, False),
    ],
)
def test_the_agent_overrides_the_queue_and_the_sample_is_drawn(
    queue: RecordingPolicy, agent: str, draw: float, recorded: bool
) -> None:
    assert records(queue, agent, draw) is recorded


@given(percent=st.floats(0.5, 100))
def test_a_sample_records_its_share_of_evenly_spread_draws(percent: float) -> None:
    policy = RecordingPolicy(Mode.SAMPLE, percent)
    draws = [index / 100 for index in range(10_000)]  # 0.00 to 99.99, evenly
    recorded = sum(records(policy, "queue", draw) for draw in draws)
    assert abs(recorded / len(draws) - percent / 100) <= 0.0001 + 1e-9


def test_a_queue_file_with_a_bad_policy_is_refused_at_its_key() -> None:
    queues, problems = parse_queues({"queues": {"q": {"recording": "sometimes"}}})
    assert [(p.path, p.message) for p in problems] == [
        (("queues", "q", "recording"), "'recording' must be always, never or {sample: PERCENT}")
    ]
    queues, problems = parse_queues({"queues": {"q": {"recording": {"sample": 10}}}})
    assert problems == []
    assert queues["q"].recording == RecordingPolicy(Mode.SAMPLE, 10.0)
