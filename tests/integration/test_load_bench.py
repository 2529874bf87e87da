"""The load benchmark (`make bench`, tests/bench/load) does not rot: a few calls at
1 call/s through both centers on the test Asterisk give the table and valid JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import REPO

pytestmark = pytest.mark.asterisk


async def test_the_load_benchmark_runs_both_centers_and_writes_its_table_and_json(
    local_asterisk: LocalAsterisk, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bench.load",
        "--smoke",
        "--reuse-asterisk",  # the test instance the session runs (its ports are in the env)
        "--out",
        str(out),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed, _ = await asyncio.wait_for(process.communicate(), 240)
    text = printed.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]

    for row in (
        "max calls/s, zero failures",
        "post-dial delay ms p50/p95/p99",
        "key press to agent INVITE ms p50/p95/p99",
        "Asterisk CPU ms per call",
        "ari_app CPU ms per call",
        "event-loop lag ms p50/p99",
    ):
        assert row in text, text[-3000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    assert report["versions"]["asterisk"].startswith("22.")
    for key in ("A", "B"):
        center = report[key]
        assert center["max_rate"] == 1.0, center["steps"]
        fixed = center["fixed"]
        assert fixed["failed"] == 0, fixed["failures"]
        assert fixed["calls"] == 2
        # every call was measured from both ends: the caller's answer and the agent's INVITE
        assert fixed["pdd_ms"]["p99"] is not None
        assert fixed["pdd_ms"]["p99"] > 0
        assert 0 < fixed["key_to_agent_invite_ms"]["p50"] < 5000
        assert fixed["asterisk_cpu_ms_per_call"] > 0
    b = report["B"]
    assert b["fixed"]["python_cpu_ms_per_call"] > 0
    assert b["fixed"]["event_loop_lag_ms"]["samples"] > 0
    assert b["python_peak_memory_mb"] > 10
    assert report["A"]["fixed"]["python_cpu_ms_per_call"] is None  # no ari_app in A
    assert set(report["targets"]) == {
        "max_rate_ratio_at_least_0.85",
        "python_cpu_at_most_5_ms_per_call",
        "key_to_invite_p99_at_most_250_ms",
        "key_to_invite_p99_no_worse_than_app_queue",
        "event_loop_lag_p99_at_most_10_ms",
    }
