from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidHandshake
from websockets.sync.client import connect as ws_connect

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import STARTED, Service, read_env_file, start_service

pytestmark = pytest.mark.asterisk
FLOWS = Path(__file__).parent / "flows"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test shows the last lines each service it started logged."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        started = list(STARTED)
        STARTED.clear()
        if report.failed:
            for n, service in enumerate(started, 1):
                report.sections.append((f"service {n} log", "\n".join(service.lines[-80:])))


@pytest.fixture
def service_env(local_asterisk: LocalAsterisk, tmp_path: Path) -> dict[str, str]:
    """Settings for one service process against the test Asterisk, with its own database."""
    return {
        **read_env_file(local_asterisk.env_file),
        "ARI_APP_DATABASE_URL": f"sqlite:///{tmp_path}/ari_app.db",
        "ARI_APP_AMI_PING_SECONDS": "1",
        "ARI_APP_RECONNECT_MAX_SECONDS": "1",
        "ARI_APP_FLOWS_DIR": str(FLOWS),
    }


@pytest.fixture
async def service(service_env: dict[str, str]) -> AsyncIterator[Service]:
    running = await start_service(service_env)
    yield running
    await running.stop()


def _ari_stuck(env: dict[str, str]) -> str | None:
    """What of ARI no longer answers within 5 s (REST, the application list, a websocket)."""
    base, auth = env["ARI_APP_ARI_URL"], (env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
    for path in ("/ari/asterisk/info", "/ari/applications"):
        try:
            httpx.get(base + path, auth=auth, timeout=5.0).raise_for_status()
        except httpx.HTTPError as error:
            return f"GET {path}: {error!r}"
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    url = base.replace("http", "ws", 1) + "/ari/events?app=ari-app-probe"
    try:
        with ws_connect(
            url, additional_headers={"Authorization": f"Basic {token}"}, open_timeout=5
        ):
            pass
    except (OSError, TimeoutError, InvalidHandshake) as error:
        return f"websocket: {error!r}"
    return None


def _backtrace(asterisk: LocalAsterisk, pid: int) -> str:
    """All of Asterisk's threads, for the report of a wedged Asterisk."""
    run = subprocess.run(
        [
            "gdb",
            "-p",
            str(pid),
            "-batch",
            "-ex",
            f"set sysroot {asterisk.root}",
            "-ex",
            "thread apply all bt",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return run.stdout + run.stderr


@pytest.fixture(autouse=True)
def asterisk_still_answers(
    local_asterisk: LocalAsterisk, request: pytest.FixtureRequest
) -> Iterator[None]:
    """After every test: ARI must still answer. A wedged Asterisk fails the test that
    wedged it, with all its threads' stacks saved beside its log, and is restarted so
    the tests after it are not failed by it too."""
    yield
    env = read_env_file(local_asterisk.env_file)
    stuck = _ari_stuck(env)
    if stuck is None:
        return
    pid = local_asterisk.pid()
    report = local_asterisk.instance_dir / "log" / f"wedged-{request.node.name}.txt"
    stacks = _backtrace(local_asterisk, pid) if pid is not None and shutil.which("gdb") else ""
    report.write_text(f"{request.node.nodeid}\n{stuck}\n\n{stacks}")
    local_asterisk.down()
    local_asterisk.up()
    named = [line.strip() for line in stacks.splitlines() if " in " in line and "?? (" not in line]
    pytest.fail(
        f"Asterisk stopped answering ARI after this test ({stuck}); all stacks in {report}; "
        "the named frames:\n" + "\n".join(named[:60])
    )
