"""API bearer tokens: made with secrets, stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from ari_app.adapters.db import TokenStore
from ari_app.adapters.tables import ApiToken
from ari_app.adapters.user_store import UserStore

FIRST_ADMIN = "admin"  # the user the first start makes


def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


async def first_admin_token(store: TokenStore, users: UserStore) -> str | None:
    """On first start (no token at all), make the user `admin` (unless there is one)
    and a token for them that does not expire; return it, once."""
    if await store.count() > 0:
        return None
    if await users.get(FIRST_ADMIN) is None:
        now = datetime.now(UTC)
        await users.add({"id": FIRST_ADMIN, "name": "first admin", "role": "admin", "teams": [],
                         "created_at": now, "updated_at": now})  # fmt: skip
    token = secrets.token_urlsafe(32)
    await store.add(
        name="first admin", role="admin", token_hash=hash_token(token), subject=FIRST_ADMIN
    )
    return token


async def mint(store: TokenStore, name: str, role: str, subject: str | None = None) -> str:
    """A new token for `role` (a supervisor's carries their id); returned once."""
    token = secrets.token_urlsafe(32)
    await store.add(name=name, role=role, token_hash=hash_token(token), subject=subject)
    return token


async def check(store: TokenStore, token: str, now: datetime | None = None) -> ApiToken | None:
    """The token's row if it is known, not revoked and not expired."""
    found = await store.find(hash_token(token))
    now = now or datetime.now(UTC)
    if found is None or found.revoked_at is not None:
        return None
    if found.expires_at is not None and found.expires_at <= now:
        return None
    return found
