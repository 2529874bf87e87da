"""Self-service backends that IVR lookups ask, over one pooled httpx client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class LookupError_(Exception):
    """The backend did not give a usable answer; the message says why, in a few words."""


class Backends:
    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            transport=transport, follow_redirects=False, limits=httpx.Limits(max_connections=50)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ask(
        self, method: str, url: str, params: Mapping[str, str], timeout: float
    ) -> Mapping[str, Any]:
        """The JSON object the backend answers, or LookupError_."""
        try:
            if method == "POST":
                reply = await self._client.post(url, json=dict(params), timeout=timeout)
            else:
                reply = await self._client.get(url, params=dict(params), timeout=timeout)
        except httpx.TimeoutException as exc:
            raise LookupError_(f"no answer within {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise LookupError_(f"unreachable ({type(exc).__name__})") from exc
        if reply.status_code >= 400:
            raise LookupError_(f"HTTP {reply.status_code}")
        try:
            body = reply.json()
        except ValueError as exc:
            raise LookupError_("the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise LookupError_("the answer is not a JSON object")
        return body
