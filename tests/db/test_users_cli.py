"""`ari-app users`: the command line adds users, mints and revokes their tokens, and
audits each change; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from sqlalchemy import select

from ari_app.adapters.db import TokenStore, engine_for
from ari_app.adapters.tables import AuditRecord
from ari_app.services import tokens


def _run(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """The command as an operator runs it: its own process, its own logging."""
    done = subprocess.run(
        [sys.executable, "-m", "ari_app", "users", *argv],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout.strip(), done.stderr


async def _check(database_url: str, token: str) -> bool:
    engine = engine_for(database_url)
    try:
        return await tokens.check(TokenStore(engine), token) is not None
    finally:
        await engine.dispose()


async def _audit(database_url: str) -> list[tuple[str, str, str, int]]:
    engine = engine_for(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(AuditRecord).order_by(AuditRecord.id))  # type: ignore[arg-type]
            return [(r.actor, r.action, r.target, r.outcome) for r in rows]
    finally:
        await engine.dispose()


def test_a_user_gets_a_token_that_works_until_revoked_and_each_step_is_audited(
    database_url: str,
) -> None:
    env = {
        **os.environ,
        "ARI_APP_DATABASE_URL": database_url,
        "ARI_APP_ARI_PASSWORD": "unused",
        "ARI_APP_AMI_PASSWORD": "unused",
        "USER": "ops-person",
        "LOGNAME": "ops-person",
    }
    code, out, _ = _run(env, "add", "sam", "--name", "Sam", "--role", "supervisor",
                        "--team", "billing")  # fmt: skip
    assert (code, out) == (0, "added sam (Sam), supervisor of billing")
    code, token, err = _run(env, "token", "sam", "--days", "7")
    assert code == 0
    assert "shown once" in err
    assert len(token) >= 40  # stdout is the token alone
    assert " " not in token
    assert asyncio.run(_check(database_url, token))
    code, out, _ = _run(env, "list")
    assert out == "sam\tsupervisor\tSam teams=billing\tlive tokens: 1"
    code, _, err = _run(env, "add", "olga", "--name", "Olga", "--role", "ops", "--team", "x")
    assert code == 1
    assert "teams are for supervisors" in err
    code, out, _ = _run(env, "revoke", "sam")
    assert (code, out) == (0, "1 tokens of sam revoked")
    assert not asyncio.run(_check(database_url, token))
    code, _, err = _run(env, "token", "nobody")
    assert (code, err.strip()) == (1, "ari-app: error: no user nobody")
    assert asyncio.run(_audit(database_url)) == [
        ("cli ops-person", "cli users add", "sam", 200),
        ("cli ops-person", "cli users token", "sam", 200),
        ("cli ops-person", "cli users add", "olga", 422),
        ("cli ops-person", "cli users revoke", "sam", 200),
        ("cli ops-person", "cli users token", "nobody", 404),
    ]
    code, _, err = _run(env, "add", "x", "--name", "X", "--role", "boss")
    assert code == 2  # argparse: a role that is none
    assert "invalid choice: 'boss'" in err
