"""The load benchmark's course: find each center's highest call rate with zero failures
(rates stepped up, then halved between the last pass and the first failure, RFC 7502
style), then run both at one fixed load and measure what each call costs and waits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import platform
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ari_app.adapters.ari import AriError, AriRest
from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.services.phones import (
    PJSIP,
    phone_objects,
    push_phone,
    remove_phone,
    sip_digest,
)
from tests.bench.load.centers import Center, baseline_center, service_center
from tests.bench.load.measure import (
    LogTail,
    Readings,
    Trial,
    cpu_seconds,
    judge,
    peak_memory_mb,
)
from tests.bench.load.sipp import (
    AFTER_KEY_SECONDS,
    AgentPhones,
    answers_options,
    run_callers,
    sipp_version,
)
from tests.integration.telephony import read_env_file


@dataclass(frozen=True)
class Plan:
    agents: int = 240  # per center; the rate is capped where they would all be busy
    start_rate: float = 4.0
    factor: float = 1.5  # each step's rate over the last one's
    bisections: int = 2  # halvings between the last pass and the first failure
    window: float = 20.0  # seconds of arrivals per step
    fixed_window: float = 40.0  # seconds of arrivals at the fixed load
    press_after: float = 1.0  # the caller presses 1 this long into the menu prompt
    talk: float = 4.0  # seconds from the key to the caller's hang-up, less 0.3 s
    max_rate: float | None = None
    database_url: str = ""  # B's database; empty: an SQLite file in the work folder
    mqtt_url: str = "mqtt://127.0.0.1:1883"

    @property
    def ceiling(self) -> float:
        """The rate at which every agent would be busy (a call holds one for its talk)."""
        busy = self.talk + AFTER_KEY_SECONDS + 0.5
        by_agents = self.agents / busy
        return min(by_agents, self.max_rate) if self.max_rate else by_agents


SMOKE = Plan(
    agents=3, start_rate=1.0, bisections=0, window=3.0, fixed_window=3.0, talk=1.0, max_rate=1.0
)


def _event_loop() -> str:
    loop = os.environ.get("ARI_APP_EVENT_LOOP", "uvloop")
    return f"uvloop {version('uvloop')}" if loop == "uvloop" else "asyncio"


async def search_rate(
    plan: Plan, passes: Callable[[float], Awaitable[bool]]
) -> tuple[float | None, str]:
    """Step the rate up by `plan.factor` until a run fails (or every agent would be busy),
    then halve the gap to the failure `plan.bisections` times: the highest rate that
    passed, and what stopped the search."""
    passed: float | None = None
    ceiling = round(plan.ceiling, 1)  # as the rates are rounded
    rate = min(plan.start_rate, ceiling)
    while True:
        if not await passes(rate):
            failed = rate
            break
        passed = rate
        if rate >= ceiling:
            return passed, "agents" if not plan.max_rate else "max_rate"
        rate = min(round(rate * plan.factor, 1), ceiling)
    for _ in range(plan.bisections):
        low = passed or 0.0
        rate = round((low + failed) / 2, 1)
        if rate <= low or rate >= failed:
            break
        if await passes(rate):
            passed = rate
        else:
            failed = rate
    return passed, "failures"


class Bench:
    """The parts every trial uses: the Asterisk, the agents' phones, an ARI client."""

    def __init__(self, asterisk: LocalAsterisk, plan: Plan, folder: Path) -> None:
        self.asterisk = asterisk
        self.plan = plan
        self.folder = folder
        self.env = read_env_file(asterisk.env_file)
        self.sip_port = asterisk.settings.sip_port
        self.messages = asterisk.instance_dir / "log" / "messages.log"
        self.phones = AgentPhones(folder, self.sip_port)
        env = self.env
        self.ari = AriRest(
            env["ARI_APP_ARI_URL"], env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"]
        )
        self._runs = itertools.count(1)
        self._rotations = itertools.count(int(time.time()))

    async def readings(self, center: Center) -> Readings:
        lag = await center.event_loop()
        return Readings(
            cpu_seconds(self.asterisk.pid()),
            cpu_seconds(center.service_pid),
            list(lag["counts"]) if lag is not None else None,
        )

    async def settle(self, center: Center, timeout: float = 60.0) -> list[str]:
        """Until Asterisk holds no channel and (B) every agent is available again. Channels
        still there after `timeout` are a failure of the run: they are listed, then hung
        up, so that the next run starts clean."""
        left: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while left := await self.ari.channels():
                    await asyncio.sleep(0.5)
        for channel in left:
            with contextlib.suppress(AriError):
                await self.ari.hangup(str(channel["id"]))
        await center.all_available(timeout)
        return [
            f"channel left after the calls: {c['name']} {c['state']} "
            f"{(c.get('dialplan') or {}).get('app_name', '')} {c.get('creationtime', '')}"
            for c in left
        ]

    async def trial(self, center: Center, rate: float, seconds: float) -> Trial:
        calls = max(1, round(rate * seconds))
        run_number = next(self._runs)
        before = await self.readings(center)
        warnings = LogTail(self.messages)
        logged = center.log_length()
        run = await run_callers(
            self.folder / f"{center.key}-{run_number:02d}-{rate:g}",
            self.sip_port,
            center.number,
            rate=rate,
            calls=calls,
            prefix=f"9{run_number:03d}",
            press_after=self.plan.press_after,
            talk=self.plan.talk,
        )
        left = await self.settle(center)
        after = await self.readings(center)
        trial = judge(
            Trial(center.key, rate, calls),
            run,
            self.phones.steps(),
            before,
            after,
            warnings.lines(),
            center.troubles(since=logged),
        )
        trial.failed.extend(left)
        outcome = "pass" if trial.passed else f"FAIL ({(trial.failed + trial.overloads)[0]})"
        print(f"  {center.key} {rate:g} calls/s x {calls}: {outcome}", file=sys.stderr)
        return trial

    async def highest_rate(self, center: Center) -> tuple[float | None, str, list[Trial]]:
        """The highest rate that passed, what stopped the search, and every step."""
        trials: list[Trial] = []

        async def passes(rate: float) -> bool:
            trials.append(await self.trial(center, rate, self.plan.window))
            return trials[-1].passed

        passed, stop = await search_rate(self.plan, passes)
        return passed, stop, trials

    @contextlib.asynccontextmanager
    async def service(self) -> AsyncIterator[Center]:
        """B: the service on its own database, its agents' phones reachable and every
        agent available."""
        env = {
            **self.env,
            "ARI_APP_DATABASE_URL": self.plan.database_url or f"sqlite:///{self.folder}/ari_app.db",
            "ARI_APP_MQTT_URL": self.plan.mqtt_url,
        }
        self.rotate_records()
        async with service_center(env, self.folder, self.plan.agents) as center:
            await self.point_phones(center.agents)
            await center.all_available()
            yield center

    def rotate_records(self) -> None:
        """Set Asterisk's CDR and CEL files aside, as an operator rotates them: a service
        started on a fresh database would otherwise first catch up on every call this
        Asterisk ever made (the baseline's among them) while it is being measured."""
        for key in ("ARI_APP_CDR_BACKSTOP", "ARI_APP_CEL_BACKSTOP"):
            path = Path(self.env[key])
            if path.exists():
                path.rename(path.with_name(f"{path.name}.{next(self._rotations)}"))

    async def point_phones(self, users: list[str]) -> None:
        """Give each phone a permanent contact at the agents' SIPp, in place of a
        registration: PJSIP rewrites a registered contact to the REGISTER's source, and
        one SIPp cannot both register and answer. Asterisk's qualify then finds them."""
        aor = dict(phone_objects("", "", "", ""))["aor"]  # a PUT replaces every field
        for user in users:
            await self.ari.put_config(
                PJSIP, "aor", user, {**aor, "contact": self.phones.contact(user)}
            )
        waiting = list(users)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while waiting:
                    endpoint = await self.ari.endpoint("PJSIP", waiting[0])
                    if endpoint.get("state") == "online":
                        waiting.pop(0)
                    else:
                        await asyncio.sleep(0.2)
        if waiting:
            raise RuntimeError(
                f"phones not reachable in 60 s: {waiting}; the agents' SIPp on port "
                f"{self.phones.port} answers OPTIONS: {await answers_options(self.phones.port)}; "
                f"its errors: {self.phones.error_tail()}"
            )

    async def baseline_phones(self, count: int) -> list[str]:
        """The baseline's agents' phones, pushed as the service pushes its agents'."""
        users = [f"agent-base-{index:03d}" for index in range(1, count + 1)]
        for user in users:
            password = secrets.token_hex(8)
            await push_phone(self.ari, user, user, "", sip_digest(user, password))
        await self.point_phones(users)
        return users

    async def remove_baseline_phones(self, users: list[str]) -> None:
        for user in users:
            await remove_phone(self.ari, user)


def _machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release()}


def _scenario(
    center: Center, found: tuple[float | None, str, list[Trial]], fixed: Trial
) -> dict[str, Any]:
    best, limit, steps = found
    return {
        "title": center.title,
        "max_rate": best,
        "limited_by": limit,
        "steps": [step.summary() for step in steps],
        "fixed": fixed.summary(),
    }


@contextlib.asynccontextmanager
async def _bench(asterisk: LocalAsterisk, plan: Plan, folder: Path) -> AsyncIterator[Bench]:
    bench = Bench(asterisk, plan, folder)
    try:
        async with bench.phones:
            yield bench
    finally:
        await bench.ari.aclose()


async def benchmark(asterisk: LocalAsterisk, plan: Plan, folder: Path) -> dict[str, Any]:
    """Both centers, stepped and then at one fixed load; the report."""
    started = time.monotonic()
    async with _bench(asterisk, plan, folder) as bench:
        info = await bench.ari.asterisk_info()
        print(f"A: dialplan + app_queue, {plan.agents} agents", file=sys.stderr)
        members = await bench.baseline_phones(plan.agents)
        async with baseline_center(bench.env, members) as center_a:
            found_a = await bench.highest_rate(center_a)

        print(f"B: ari_app, {plan.agents} agents", file=sys.stderr)
        async with bench.service() as center_b:
            found_b = await bench.highest_rate(center_b)
            best = [rate for rate, _, _ in (found_a, found_b) if rate is not None]
            # 80 % of the lower of the two: both run the same calls, and both should pass
            fixed_rate = round(0.8 * min(best), 1) if len(best) == 2 else plan.start_rate
            fixed_rate = max(0.5, min(fixed_rate, plan.max_rate or fixed_rate))
            print(f"fixed load: {fixed_rate:g} calls/s", file=sys.stderr)
            fixed_b = await bench.trial(center_b, fixed_rate, plan.fixed_window)
            memory = peak_memory_mb(center_b.service_pid)
        async with baseline_center(bench.env, members) as center_a:
            fixed_a = await bench.trial(center_a, fixed_rate, plan.fixed_window)
        await bench.remove_baseline_phones(members)

    report = {
        "benchmark": "load",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started),
        "machine": _machine(),
        "versions": {
            "asterisk": info.get("system", {}).get("version", "unknown"),
            "sipp": sipp_version(),
            "python": platform.python_version(),
            "ari_app": version("ari-app"),
            # the service's event loop (ARI_APP_EVENT_LOOP, uvloop unless the environment
            # says otherwise)
            "event_loop": _event_loop(),
        },
        "plan": dataclasses.asdict(plan) | {"ceiling": round(plan.ceiling, 1)},
        "database": (plan.database_url or "sqlite").split(":", 1)[0],
        "fixed_rate": fixed_rate,
        "A": _scenario(center_a, found_a, fixed_a),
        "B": _scenario(center_b, found_b, fixed_b) | {"python_peak_memory_mb": memory},
    }
    report["ratios"] = ratios(report)
    report["targets"] = targets(report)
    return report


def _ratio(b: float | None, a: float | None) -> float | None:
    return round(b / a, 2) if a and b is not None else None


def ratios(report: dict[str, Any]) -> dict[str, float | None]:
    a, b = report["A"], report["B"]
    fa, fb = a["fixed"], b["fixed"]
    return {
        "max_rate": _ratio(b["max_rate"], a["max_rate"]),
        "pdd_p99": _ratio(fb["pdd_ms"]["p99"], fa["pdd_ms"]["p99"]),
        "key_to_agent_invite_p99": _ratio(
            fb["key_to_agent_invite_ms"]["p99"], fa["key_to_agent_invite_ms"]["p99"]
        ),
        "asterisk_cpu_ms_per_call": _ratio(
            fb["asterisk_cpu_ms_per_call"], fa["asterisk_cpu_ms_per_call"]
        ),
    }


def targets(report: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's targets, each met (True), missed (False) or not measured (None)."""
    a, b = report["A"], report["B"]
    fa, fb = a["fixed"], b["fixed"]
    ratio = report["ratios"]["max_rate"]
    invite_b, invite_a = (
        fb["key_to_agent_invite_ms"]["p99"],
        fa["key_to_agent_invite_ms"]["p99"],
    )
    lag = (fb["event_loop_lag_ms"] or {}).get("p99")
    cpu = fb["python_cpu_ms_per_call"]
    return {
        "max_rate_ratio_at_least_0.85": _ratio_target(ratio, a["limited_by"], b["limited_by"]),
        "python_cpu_at_most_5_ms_per_call": None if cpu is None else cpu <= 5.0,
        "key_to_invite_p99_at_most_250_ms": None if invite_b is None else invite_b <= 250,
        "key_to_invite_p99_no_worse_than_app_queue": (
            None if invite_b is None or invite_a is None else invite_b <= invite_a
        ),
        "event_loop_lag_p99_at_most_10_ms": None if lag is None else lag <= 10,
    }


def _ratio_target(ratio: float | None, limit_a: str, limit_b: str) -> bool | None:
    """A search that ended at the agents' ceiling (or the plan's cap) found no limit of
    that center: its capacity is at least that rate, not that rate."""
    if ratio is None:
        return None
    if ratio >= 0.85:
        return True if limit_a == "failures" else None
    return False if limit_b == "failures" else None


async def profile_service(
    asterisk: LocalAsterisk, plan: Plan, folder: Path, rate: float, output: Path
) -> Trial:
    """B alone at one rate, with py-spy sampling the service: its folded stacks in `output`."""
    async with _bench(asterisk, plan, folder) as bench, bench.service() as center:
        spy = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(center.service_pid),
            "--format",
            "raw",
            "--output",
            str(output),
            "--rate",
            "200",
            "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        trial = await bench.trial(center, rate, plan.fixed_window)
        spy.send_signal(signal.SIGINT)
        await spy.wait()
        return trial
