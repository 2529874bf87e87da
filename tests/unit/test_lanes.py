"""Work in order within a call's lane, and calls side by side (services.lanes)."""

from __future__ import annotations

import asyncio

import pytest

from ari_app.services.lanes import Lanes
from ari_app.services.loop_lag import BOUNDS_MS, LoopLag, quantile


async def test_a_lane_keeps_its_order_and_a_slow_call_does_not_hold_up_another() -> None:
    done: list[str] = []
    release = asyncio.Event()

    async def carry_out(item: str) -> None:
        if item == "a1":  # call a's first step waits on Asterisk
            await release.wait()
        done.append(item)

    async with asyncio.TaskGroup() as group:
        lanes: Lanes[str] = Lanes(group.create_task, carry_out)
        for lane, item in (("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2")):
            lanes.put(lane, item)
        for _ in range(5):
            await asyncio.sleep(0)
        assert done == ["b1", "b2"]  # b went on while a waited
        assert len(lanes) == 1
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert done == ["b1", "b2", "a1", "a2"]  # a's second step after its first
        assert len(lanes) == 0  # idle lanes leave nothing behind
        lanes.put("a", "a3")  # and a lane comes back with new work
        for _ in range(3):
            await asyncio.sleep(0)
    assert done[-1] == "a3"


async def test_work_that_fails_is_logged_and_the_lane_goes_on() -> None:
    done: list[int] = []

    async def carry_out(item: int) -> None:
        if item == 1:
            raise RuntimeError("refused")
        done.append(item)

    async with asyncio.TaskGroup() as group:
        lanes: Lanes[int] = Lanes(group.create_task, carry_out)
        for item in (1, 2, 3):
            lanes.put("call", item)
    assert done == [2, 3]


def test_loop_lag_quantiles_are_bucket_bounds_and_readings_can_be_subtracted() -> None:
    lag = LoopLag()
    for value in [0.2] * 98 + [8.0, 600.0]:
        lag.observe(value)
    report = lag.report()
    assert report["samples"] == 100
    assert report["p50_ms"] == 0.5
    assert report["p99_ms"] == 10.0
    assert report["worst_ms"] == 600.0
    before = list(lag.counts)
    lag.observe(40.0)
    between = [after - b for after, b in zip(lag.counts, before, strict=True)]
    assert quantile(between, 0.99) == 50.0
    assert quantile([0] * (len(BOUNDS_MS) + 1), 0.5) is None
    lag.observe(5000.0)
    assert lag.counts[-1] == 1  # past the last bound


@pytest.mark.parametrize("lag_ms", [0.0, 0.5, 1000.0])
def test_a_lag_on_a_bound_counts_in_that_bucket(lag_ms: float) -> None:
    lag = LoopLag()
    lag.observe(lag_ms)
    assert quantile(lag.counts, 1.0) == max(0.5, lag_ms)


def test_the_acd_carries_a_calls_work_in_that_calls_lane_and_the_rest_in_its_own() -> None:
    from ari_app.domain.acd import RingAgent, StartAcdTimer
    from ari_app.services.acd import CENTER_LANE, _DestroyBridge, _Hangup, lane_of

    assert lane_of(RingAgent("c1", "anna", "agent-anna", 15)) == "c1"
    assert lane_of(_DestroyBridge("talk-c1")) == "c1"  # after the call's recordings stop
    assert lane_of(_DestroyBridge("wait-c1")) == "c1"
    assert lane_of(_Hangup("c1")) == "c1"
    assert lane_of(StartAcdTimer("ring-c1", 15)) == CENTER_LANE
