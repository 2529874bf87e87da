"""`make bench`: the routing core deciding with 1,000 agents and 500 waiting calls.

A center of 10 queues (three routing steps each: experts first, then lower
levels, then an overflow queue), 1,000 agents with two or three skills each
and 500 calls waiting. Most agents are busy, as they are when calls wait; 40
are free but lack the skills the waiting calls need. Each timed decision is
one event the service hands the router: an agent becomes free (and takes the
best call), a call arrives, or a call's step runs out. After each one the
picture is put back (untimed), so every decision sees 1,000 agents and 500
waiting calls. Prints the distribution of the time per decision.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from ari_app.domain.routing.router import FreeAgent, Router, WaitingCall
from ari_app.domain.routing.rules import QueueRules, RoutingStep

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SKILLS = [f"skill{i}" for i in range(10)]


def center(rng: random.Random) -> tuple[Router, list[FreeAgent]]:
    queues = {
        f"q{i}": QueueRules(
            f"q{i}",
            {SKILLS[i]: 2},
            (
                RoutingStep(seconds=20, min_level=7),
                RoutingStep(seconds=40, min_level=4),
                RoutingStep(overflow=f"q{(i + 1) % 10}"),
            )
            if i < 9
            else (RoutingStep(),),
        )
        for i in range(10)
    }
    router = Router(queues)
    agents = [
        FreeAgent(
            f"a{n}",
            f"Agent {n}",
            {skill: rng.randint(1, 10) for skill in rng.sample(SKILLS, rng.randint(2, 3))},
            T0 + timedelta(seconds=rng.uniform(0, 600)),
        )
        for n in range(1000)
    ]
    for n in range(500):
        queue = f"q{rng.randrange(10)}"
        since = T0 + timedelta(seconds=rng.uniform(0, 300))
        router.queue_call(WaitingCall(f"c{n}", queue, since, rng.choice([0, 0, 0, 5])), since)
    for n in range(40):  # free, but with a skill nobody waits for
        router.agent_free(FreeAgent(f"idle{n}", f"Idle {n}", {"unused": 5}, T0), T0)
    return router, agents


ASSIGNED = [0]  # agent-free decisions that gave the agent a call


def measure(
    router: Router, agents: list[FreeAgent], rounds: int, rng: random.Random
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"agent free": [], "call arrives": [], "step runs out": []}
    assigned = ASSIGNED
    now = T0 + timedelta(seconds=600)
    for round_number in range(rounds):
        kind = ("agent free", "call arrives", "step runs out")[round_number % 3]
        if kind == "agent free":
            agent = rng.choice(agents)
            began = time.perf_counter_ns()
            made = router.agent_free(agent, now)
            took = time.perf_counter_ns() - began
            router.agent_gone(agent.agent_id)
            for assignment in made:  # put the call back: 500 wait again
                router.queue_call(
                    WaitingCall(assignment.call_id, assignment.queue, now - timedelta(seconds=30)),
                    now,
                )
        elif kind == "call arrives":
            call = WaitingCall(f"new{round_number}", f"q{rng.randrange(10)}", now)
            began = time.perf_counter_ns()
            router.queue_call(call, now)
            took = time.perf_counter_ns() - began
            router.remove_call(call.call_id)
        else:
            call_id = rng.choice(list(router.calls))
            waiting = router.calls[call_id]
            began = time.perf_counter_ns()
            router.next_step(call_id, now)
            took = time.perf_counter_ns() - began
            router.remove_call(call_id)
            router.queue_call(waiting, now)
        assert len(router.calls) in (500, 501)
        assert len(router.free) == 40
        times[kind].append(took / 1e6)
        if kind == "agent free":
            assigned[0] += bool(made)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30_000)
    args = parser.parse_args()
    rng = random.Random(4)
    router, agents = center(rng)
    measure(router, agents, 1000, rng)  # warm up
    ASSIGNED[0] = 0
    times = measure(router, agents, args.rounds, rng)
    changes = []
    for _ in range(20):
        began = time.perf_counter_ns()
        router.set_queues(router.queues, T0 + timedelta(seconds=600))
        changes.append((time.perf_counter_ns() - began) / 1e6)
    print("routing core: 1,000 agents, 500 waiting calls, 10 queues of 3 steps")
    print(f"Python {platform.python_version()} on {platform.machine()}, one core\n")
    print(f"{'decision':16} {'count':>6} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for kind, samples in [*times.items(), ("all", [t for s in times.values() for t in s])]:
        cuts = statistics.quantiles(samples, n=100)
        print(
            f"{kind:16} {len(samples):>6} {cuts[49]:>7.3f}ms {cuts[89]:>7.3f}ms "
            f"{cuts[98]:>7.3f}ms {max(samples):>7.3f}ms"
        )
    given = ASSIGNED[0] / len(times["agent free"])
    print(f"\n{given:.0%} of the agents who became free were given a call at once")
    print(
        f"a change of queue rules (all 500 calls placed again, then paired): "
        f"median {statistics.median(changes):.2f} ms"
    )


if __name__ == "__main__":
    main()
