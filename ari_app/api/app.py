"""The FastAPI application: thin routes over the services."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ari_app.api import (
    agents,
    audit,
    callbacks,
    calls,
    cdrs,
    center,
    dialplan,
    ivr,
    kpis,
    monitor,
    problems,
    queues,
    recordings,
    users,
)
from ari_app.api.deps import ApiContext, Authorized, Context

LARGEST_BODY = 1_048_576  # bytes; a larger request is refused (413)
# every error any route may answer, as the schema documents it
ERRORS = problems.documented(400, 401, 403, 404, 409, 413, 422, 500, 502, 503)


def create_api(context: ApiContext) -> FastAPI:
    # Everything but /healthz wants a token, the schema included; the browsable
    # docs pages are off (they load their scripts from the internet).
    api = FastAPI(
        title="ari_app",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api.state.context = context
    problems.install(api)
    api.add_middleware(problems.BodyLimit, largest=LARGEST_BODY)
    api.add_middleware(problems.NoNulBytes)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Authorized) -> JSONResponse:
        return JSONResponse(api.openapi())

    @api.get("/healthz", tags=["health"])
    async def healthz(ctx: Context) -> JSONResponse:
        """ARI, AMI, database and MQTT state; 503 when calls cannot be handled."""
        ok, parts = await ctx.health()
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", **parts}
        return JSONResponse(body, status_code=200 if ok else 503)

    for part in (calls, ivr, agents, queues, callbacks, recordings, monitor, cdrs, kpis, users,
                 audit, dialplan, center):  # fmt: skip
        api.include_router(part.router, responses=ERRORS)
    return api
