"""A small self-service backend for the demo flow's balance lookup (`ari-app demo-backend`).

It stands in for a bank's or a shop's own API: GET /balance?account=N answers
{"balance": "42.50"} for the demo accounts and 404 for any other.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

ACCOUNTS = {"123456": "42.50", "555000": "1250", "987654": "0"}


def create_demo_backend() -> FastAPI:
    app = FastAPI(title="ari_app demo self-service backend")

    @app.get("/balance")
    async def balance(account: str) -> dict[str, str]:
        if account not in ACCOUNTS:
            raise HTTPException(status_code=404, detail="no such account")
        return {"account": account, "balance": ACCOUNTS[account]}

    return app
