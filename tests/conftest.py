"""Fixtures shared by the test folders: databases (SQLite and PostgreSQL) and the local Asterisk."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.settings import LocalAsteriskSettings

POSTGRES_ADMIN_URL = os.environ.get(
    "ARI_APP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

# The test instance of the local Asterisk: its own ports, so a `make run`
# instance on the default ports can keep running beside the tests.
TEST_ASTERISK = {
    "ARI_APP_ASTERISK_INSTANCE": "test",
    "ARI_APP_ASTERISK_SIP_PORT": "25060",
    "ARI_APP_ASTERISK_HTTP_PORT": "28088",
    "ARI_APP_ASTERISK_AMI_PORT": "25038",
    "ARI_APP_ASTERISK_RTP_START": "21000",
    "ARI_APP_ASTERISK_RTP_END": "21999",
}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"ari_app_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs on the embedded default and on the production database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ari_app.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def local_asterisk() -> Iterator[LocalAsterisk]:
    """The real local Asterisk (test instance), up for the whole session."""
    previous = {key: os.environ.get(key) for key in TEST_ASTERISK}
    os.environ.update(TEST_ASTERISK)
    try:
        asterisk = LocalAsterisk(LocalAsteriskSettings())
        asterisk.down()
        asterisk.up()
        yield asterisk
        asterisk.down()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
