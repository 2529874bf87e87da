"""Bad settings give one line naming the setting and a non-zero exit; nothing starts."""

from __future__ import annotations

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import free_port, place_call, run_to_exit, start_service

pytestmark = pytest.mark.asterisk


def _error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("ari-app: error:")]


@pytest.mark.parametrize(
    ("override", "setting", "words"),
    [
        ({"ARI_APP_ARI_URL": "http://127.0.0.1:{free}"}, "ARI_APP_ARI_URL", "cannot reach ARI"),
        ({"ARI_APP_ARI_PASSWORD": "wrong"}, "ARI_APP_ARI_PASSWORD", "401"),
        ({"ARI_APP_AMI_PASSWORD": "wrong"}, "ARI_APP_AMI_PASSWORD", "AMI refused"),
        ({"ARI_APP_AMI_PORT": "{free}"}, "ARI_APP_AMI_HOST", "cannot reach AMI"),
        ({"ARI_APP_DATABASE_URL": "postgresql://::nonsense"}, "ARI_APP_DATABASE_URL", "parse"),
        ({"ARI_APP_DATABASE_URL": "mysql://x@127.0.0.1/db"}, "ARI_APP_DATABASE_URL", "postgresql"),
        (
            {"ARI_APP_DATABASE_URL": "sqlite:////proc/no/such/dir/x.db"},
            "ARI_APP_DATABASE_URL",
            "cannot open",
        ),
        ({"ARI_APP_ARI_URL": "ftp://127.0.0.1"}, "ARI_APP_ARI_URL", "http"),
        ({"ARI_APP_AMI_PORT": "seventy"}, "ARI_APP_AMI_PORT", "integer"),
        ({"ARI_APP_ARI_PASSWORD": ""}, "ARI_APP_ARI_PASSWORD", "not set"),
        (
            {"ARI_APP_QUEUES_FILE": "/proc/no/such/queues.yaml"},
            "ARI_APP_QUEUES_FILE",
            "queues.yaml:1: cannot read",
        ),
    ],
)
async def test_bad_setting_gives_one_line_naming_it_and_exit_2(
    service_env: dict[str, str], override: dict[str, str], setting: str, words: str
) -> None:
    free = free_port()
    env = {**service_env, **{k: v.format(free=free) for k, v in override.items()}}
    code, lines = await run_to_exit(env)
    errors = _error_lines(lines)
    assert code == 2, lines
    assert len(errors) == 1, lines
    assert errors[0].startswith(f"ari-app: error: {setting}: ")
    assert words in errors[0]
    assert not any("Traceback" in line for line in lines)


async def test_a_refused_start_changes_nothing_and_the_running_service_keeps_calls(
    local_asterisk: LocalAsterisk, service_env: dict[str, str]
) -> None:
    running = await start_service(service_env)
    try:
        code, _ = await run_to_exit(
            {**service_env, "ARI_APP_AMI_PASSWORD": "wrong", "ARI_APP_API_PORT": "0"}
        )
        result = await place_call(local_asterisk.settings.sip_port)
    finally:
        await running.stop()
    assert code == 2
    assert result.returncode == 0, result.output
