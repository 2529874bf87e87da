"""The database under test: migrated, on SQLite and on PostgreSQL (`database_url`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import engine_for, migrate
from ari_app.services.flows import FlowRegistry
from tests.db.parts import PushedConfig, api_client


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    migrate(database_url)
    engine = engine_for(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(
    engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, PushedConfig]]:
    """The admin API (admin token) over the test database; ARI takes pushed phones."""
    pushed = PushedConfig()
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(pushed))
    (tmp_path / "flows").mkdir()
    async with api_client(engine, ari, tmp_path, FlowRegistry(tmp_path / "flows")) as (c, _):
        yield c, pushed
