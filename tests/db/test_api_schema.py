"""Schemathesis against the admin API's own OpenAPI schema, with an admin token: no
answer is a 5xx, and every answer matches what the schema says of it (status, media
type, body). On SQLite and PostgreSQL; ARI behind the mock that takes pushed phones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import checks
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import TokenStore
from ari_app.adapters.user_store import UserStore
from ari_app.api.app import create_api
from ari_app.services import tokens
from ari_app.services.flows import FlowRegistry
from tests.db.parts import THROUGH_THE_DATABASE, PushedConfig, api_context

# What the answer must be, whatever was asked: no server error, a status, media type,
# headers and body the schema documents. (Tokens that are none: tests/db/test_roles.py.
# Whether the routes accept every body the schema allows is not asked here: pydantic
# constraints such as stripped whitespace and dict key patterns are not in the schema.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
async def served(
    engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The schema as Schemathesis reads it, and a client with an admin's token."""
    ari = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(PushedConfig()))
    (tmp_path / "flows").mkdir()
    api = create_api(api_context(engine, ari, tmp_path, FlowRegistry(tmp_path / "flows")))
    token = await tokens.first_admin_token(TokenStore(engine), UserStore(engine))
    schema = schemathesis.openapi.from_dict(api.openapi())
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)  # a 500 is an answer
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        yield schema, c


@settings(THROUGH_THE_DATABASE, max_examples=1000)
@given(data=st.data())
async def test_every_answer_matches_the_schema_and_none_is_a_server_error(
    served: tuple[Any, httpx.AsyncClient], data: st.DataObject
) -> None:
    schema, client = served
    operations = [result.ok() for result in schema.get_all_operations()]
    operation = data.draw(st.sampled_from(operations), label="operation")
    case = data.draw(operation.as_strategy(), label="case")
    case.headers = {**(case.headers or {}), **client.headers}  # the admin's token
    kwargs = case.as_transport_kwargs(base_url="http://api")
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), str | bytes):  # a text body: raw content for httpx
        kwargs["content"] = kwargs.pop("data")
    reply = await client.request(**kwargs)
    assert reply.status_code < 500, (case.method, case.formatted_path, reply.text)
    case.validate_response(reply, checks=CHECKS)
