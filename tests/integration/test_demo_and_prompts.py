"""The demo center with its own spoken prompts, and prompts checked against the real Asterisk."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.demo_backend import ACCOUNTS, create_demo_backend
from ari_app.domain.ivr.simulate import simulate
from ari_app.services.flows import check_file
from ari_app.services.prompts import build, read_prompt_file
from ari_app.settings import REPO_DIR
from tests.integration.conftest import FLOWS
from tests.integration.telephony import (
    Service,
    ari_observer,
    free_port,
    place_call,
    serving,
    start_service,
)

pytestmark = pytest.mark.asterisk
DEMO = REPO_DIR / "dialplan" / "flows" / "demo.yaml"
BALANCE = {"balance": {"balance": ACCOUNTS["123456"]}}


@pytest.fixture(scope="module")
def own_prompts(local_asterisk: LocalAsterisk) -> None:
    """The shipped prompt files, spoken into the test Asterisk (a no-op when unchanged)."""
    sets = []
    for path in sorted((REPO_DIR / "dialplan" / "prompts").glob("*.yaml")):
        prompt_set, problems = read_prompt_file(path)
        assert prompt_set is not None, problems
        sets.append(prompt_set)
    build(sets, local_asterisk.sounds_dir)


@pytest.fixture
async def demo_service(
    service_env: dict[str, str], tmp_path: Path, own_prompts: None
) -> AsyncIterator[Service]:
    port = free_port()
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "demo.yaml").write_text(
        DEMO.read_text().replace("127.0.0.1:8090", f"127.0.0.1:{port}")
    )
    async with serving(create_demo_backend(), port):
        running = await start_service({**service_env, "ARI_APP_FLOWS_DIR": str(folder)})
        try:
            yield running
        finally:
            await running.stop()


async def test_a_caller_walks_the_demo_from_the_menu_to_the_balance(
    local_asterisk: LocalAsterisk, demo_service: Service
) -> None:
    loaded = [line for line in demo_service.lines if "flows_loaded" in line]
    assert '"demo v1 (demo.yaml)"' in loaded[0]
    assert "checked against" in loaded[0]  # the own prompts were found among the sounds
    # 1 during the main menu, the account and #, then 2 ("end this call") at the next menu
    keys = [(4.5, "1"), (2.5, "1"), *[(1.2, d) for d in "23456#"], (9.0, "2")]
    async with ari_observer(demo_service.env) as observer:
        result = await place_call(
            local_asterisk.settings.sip_port, caller="5551234", keys=keys, timeout=90
        )
        assert result.returncode == 0, "\n".join(demo_service.lines[-30:])
        created = await observer.wait_for("ChannelCreated")
        row = await demo_service.call(created["channel"]["id"], timeout=20)
        finished = observer.of_type("PlaybackFinished")
    path = [(step["node"], step["note"]) for step in row["ivr_path"]]
    # the simulator, fed the same keys, predicts the path the real call took
    flow, _ = check_file(DEMO)
    assert flow is not None
    predicted = simulate(flow, "5551234", datetime.now(UTC), list("1123456#2"), BALANCE)
    assert predicted.session is not None
    assert [node for node, _ in path] == [step.node for step in predicted.session.path]
    assert path[-1] == ("goodbye", "pressed 2")
    assert ("balance", "entered 123456") in path
    assert row["ivr_outcome"] == "self_service"
    # the own prompts were played from their files, not skipped as missing
    media = {event["playback"]["media_uri"] for event in finished}
    assert {"sound:ari-app/welcome", "sound:ari-app/main-menu"} <= media
    assert all(event["playback"]["state"] != "failed" for event in finished)
    assert result.ear.audio_seconds() > 8.0


async def _ari_app(env_file: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ari_app",
        "--env-file",
        str(env_file),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO_DIR,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_ivr_check_finds_the_prompts_the_connected_asterisk_lacks(
    local_asterisk: LocalAsterisk, tmp_path: Path, own_prompts: None
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "flow: f\nversion: 1\nstart: a\nnodes:\n"
        "  a:\n    kind: play\n    prompts: [welcome, sound:hello-world]\n    next: b\n"
        "  b:\n    kind: hangup\n    prompts: [sound:no-such-sound, not-built]\n"
    )
    code, out = await _ari_app(local_asterisk.env_file, "ivr", "check", str(flow))
    assert code == 1, out
    assert "prompts checked against the" in out
    assert f"{flow}:11: prompt 'sound:no-such-sound' is not among Asterisk's sounds in 'en'" in out
    assert f"{flow}:11: prompt 'not-built' is not among Asterisk's sounds in 'en'" in out
    assert "'welcome'" not in out
    code, out = await _ari_app(local_asterisk.env_file, "ivr", "check", "--offline", str(flow))
    assert code == 0, out


async def test_ivr_reload_refuses_a_flow_whose_prompt_asterisk_lacks(
    local_asterisk: LocalAsterisk, service_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    hello = (FLOWS / "hello.yaml").read_text()
    (folder / "hello.yaml").write_text(hello)
    running = await start_service({**service_env, "ARI_APP_FLOWS_DIR": str(folder)})
    try:
        (folder / "hello.yaml").write_text(
            hello.replace("version: 1", "version: 2").replace("hello-world", "hello-wrold")
        )
        assert running.token is not None
        args = ["ivr", "reload", "--api", running.api, "--token", running.token]
        code, out = await _ari_app(local_asterisk.env_file, *args)
        assert code == 1, out
        assert "kept    hello v1 (its new file was refused)" in out
        assert "prompt 'sound:hello-wrold' is not among Asterisk's sounds in 'en'" in out
        result = await place_call(local_asterisk.settings.sip_port)
        assert result.returncode == 0, result.output
        assert result.ear.audio_seconds() > 0.8  # version 1 still answers
        code, out = await _ari_app(local_asterisk.env_file, "ivr", "reload", "--api", running.api)
        assert code == 2
        assert "--token" in out
    finally:
        await running.stop()
