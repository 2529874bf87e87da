"""Errors as RFC 9457 problem details.

Every error answers `application/problem+json` with `title` (the status's phrase),
`status`, `detail` (what went wrong, in words) and `instance` (the path asked);
a refused body also lists its `errors`, one per field.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str  # where: "body.id", "query.limit"
    message: str


class Problem(BaseModel):
    """An error (RFC 9457). A refused queues file adds its `problems`."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None  # a refused request: one per field


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of errors answered as problem details."""
    schema = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        code: {"model": Problem, "description": HTTPStatus(code).phrase,
               "content": {MEDIA_TYPE: schema}}
        for code in codes
    }  # fmt: skip


def problem(
    status: int,
    detail: str,
    instance: str,
    headers: Mapping[str, str] | None = None,
    **more: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        **more,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def install(api: FastAPI) -> None:
    api.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _refused_input)  # type: ignore[arg-type]
    api.add_exception_handler(Exception, _unexpected)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    more: dict[str, Any] = {}
    if isinstance(exc.detail, str):
        detail = exc.detail
    else:  # a structured refusal (a queues file's problems): kept whole
        more = jsonable_encoder(exc.detail) if isinstance(exc.detail, dict) else {}
        detail = more.pop("message", None) or HTTPStatus(exc.status_code).description
        if not more:
            more = {"errors": jsonable_encoder(exc.detail)}
    return problem(exc.status_code, detail, request.url.path, exc.headers, **more)


async def _refused_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": ".".join(str(part) for part in error.get("loc", ())), "message": error["msg"]}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "the request is invalid"
    return problem(422, detail[:1000], request.url.path, errors=errors)


class BodyLimit:
    """Refuse (413, as a problem detail) a request body over `largest` bytes: by its
    Content-Length before anything reads it, or, sent without one, as it arrives (the
    route reading it gets the refusal, and nothing is changed)."""

    def __init__(self, app: ASGIApp, largest: int) -> None:
        self.app, self.largest = app, largest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"a request body may hold at most {self.largest} bytes"
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.largest:
            await problem(413, detail, scope["path"])(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.largest:
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


class NoNulBytes:
    """Refuse (422) a path or query that holds a NUL byte: no name has one, and no
    database could look it up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"]
            or b"%00" in scope["query_string"]
            or b"\x00" in scope["query_string"]
        ):
            detail = "the path or query holds a NUL byte"
            await problem(422, detail, scope["path"].replace("\x00", "%00"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("api_failed", path=request.url.path, method=request.method)
    return problem(500, "the service failed to answer; see its log", request.url.path)
