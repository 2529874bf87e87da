from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import Service, read_env_file, start_service

pytestmark = pytest.mark.asterisk
FLOWS = Path(__file__).parent / "flows"


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
