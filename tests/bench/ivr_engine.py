"""`make bench`: the IVR engine's own CPU per step and per call, in pure Python (no Asterisk).

Each scenario is a caller's walk through the demo flow. It is simulated once to
record the events the engine is fed (prompts finished, keys, timers, lookup
answers); the timed part replays those events straight into the engine,
so the figures are the engine's own work: no I/O, no printing, no asyncio.
Memory is the size of the sessions of that many calls waiting in the IVR.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from ari_app.domain.ivr.engine import IvrEvent, Session, start, step
from ari_app.domain.ivr.flow import Flow
from ari_app.domain.ivr.simulate import simulate
from ari_app.services.flows import check_file

DEMO = Path(__file__).resolve().parents[2] / "dialplan" / "flows" / "demo.yaml"
OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, during office hours
CLOSED = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
BALANCE = {"balance": {"balance": "42.50"}}

# name: (caller, time, keys, lookup answers)
SCENARIOS = {
    "billing, balance, goodbye": ("5557777", OPEN, list("1123456#2"), BALANCE),
    "support sub-menu to a queue": ("5557777", OPEN, list("21"), {}),
    "wrong keys and silence to the operator": ("5557777", OPEN, ["7", "_", "8"], {}),
    "closed, to voicemail": ("5557777", CLOSED, [], {}),
}


def _events(flow: Flow, scenario: str) -> tuple[str, datetime, list[IvrEvent]]:
    caller, at, keys, lookups = SCENARIOS[scenario]
    transcript = simulate(flow, caller, at, list(keys), lookups)
    assert transcript.outcome is not None, scenario
    return caller, at, transcript.events


def _replay(flow: Flow, caller: str, at: datetime, events: list[IvrEvent]) -> Session:
    session, _ = start(flow, caller, at)
    for event in events:
        session, _ = step(session, event, at, flow)
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per scenario")
    args = parser.parse_args()
    flow, problems = check_file(DEMO)
    assert flow is not None, problems
    print(f"IVR engine, demo flow ({len(flow.nodes)} nodes), {args.calls} calls per scenario")
    print(f"Python {platform.python_version()} on {platform.machine()}, one core\n")
    print(f"{'scenario':42} {'steps':>5} {'per step':>10} {'per call':>10} {'calls/s':>9}")
    total_steps = total_seconds = 0.0
    for scenario in SCENARIOS:
        caller, at, events = _events(flow, scenario)
        steps = len(events) + 1  # the start, then one step per event
        _replay(flow, caller, at, events)  # warm up
        gc.collect()
        began = time.process_time()
        for _ in range(args.calls):
            _replay(flow, caller, at, events)
        seconds = time.process_time() - began
        per_call = seconds / args.calls
        total_steps += steps * args.calls
        total_seconds += seconds
        print(
            f"{scenario:42} {steps:>5} {per_call / steps * 1e6:>8.1f}µs "
            f"{per_call * 1e6:>8.1f}µs {1 / per_call:>9,.0f}"
        )
    print(f"\nall scenarios: {total_seconds / total_steps * 1e6:.1f} µs of CPU per step")

    caller, at, events = _events(flow, "billing, balance, goodbye")
    tracemalloc.start()
    waiting = [_replay(flow, caller, at, events[:4]) for _ in range(10_000)]
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory: {size / len(waiting) / 1024:.1f} KiB per call waiting in the IVR")


if __name__ == "__main__":
    main()
