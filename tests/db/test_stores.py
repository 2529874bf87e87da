"""The stores on SQLite (embedded default) and PostgreSQL (production), through the migrations."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ari_app.adapters.ari import AriRest
from ari_app.adapters.db import CallStore, TokenStore, Writer, engine_for, migrate, ping
from ari_app.adapters.user_store import UserStore
from ari_app.api.app import create_api
from ari_app.domain.call import Call, HangupSide, Phase
from ari_app.services import tokens
from ari_app.services.calls import call_row
from ari_app.services.flows import FlowRegistry
from tests.db.parts import api_context

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DEMO_FLOWS = Path(__file__).resolve().parents[2] / "dialplan" / "flows"


def _call(call_id: str = "1.1", **changes: object) -> Call:
    base = Call(call_id, "5551234", "100", T0, Phase.ANSWERING)
    return Call(**{**base.__dict__, **changes})  # type: ignore[arg-type]


async def test_a_sqlite_file_logs_ahead_and_syncs_every_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    migrate(url)
    engine = engine_for(url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar()
    finally:
        await engine.dispose()
    assert (mode, synchronous) == ("wal", 2)  # 2: FULL


async def test_migrations_create_the_schema_and_running_them_twice_is_harmless(
    database_url: str, engine: AsyncEngine
) -> None:
    migrate(database_url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"call", "api_token", "alembic_version"} <= tables


async def test_a_call_saved_at_each_step_ends_as_one_complete_row(engine: AsyncEngine) -> None:
    store = CallStore(engine)
    await store.save(call_row(_call()))
    await store.save(call_row(_call(phase=Phase.IVR, answered_at=T0 + timedelta(seconds=1))))
    await store.save(
        call_row(
            _call(
                phase=Phase.ENDED,
                answered_at=T0 + timedelta(seconds=1),
                ended_at=T0 + timedelta(seconds=3),
                hangup_cause=16,
                hangup_cause_text="Normal Clearing",
                hangup_side=HangupSide.SERVICE,
            )
        )
    )
    record = await store.get("1.1")
    assert record is not None
    assert (record.caller, record.dialled, record.phase) == ("5551234", "100", "ended")
    assert record.started_at == T0
    assert record.ended_at == T0 + timedelta(seconds=3)
    assert (record.hangup_cause, record.hangup_side) == (16, "service")
    assert await store.unfinished() == []
    page, total = await store.page(limit=10, offset=0)
    assert total == 1
    assert [r.id for r in page] == ["1.1"]


async def test_unfinished_calls_are_the_ones_without_an_end(engine: AsyncEngine) -> None:
    store = CallStore(engine)
    await store.save(call_row(_call("a")))
    await store.save(call_row(_call("b", phase=Phase.ENDED, ended_at=T0)))
    assert [record.id for record in await store.unfinished()] == ["a"]


async def test_the_writer_keeps_order_and_retries_until_the_write_lands(
    engine: AsyncEngine,
) -> None:
    store = CallStore(engine)
    writer = Writer(engine, max_backoff=0.05)
    failures = iter([True, True, False, False, False])

    async def flaky_save(connection: AsyncConnection, row: dict[str, Any]) -> None:
        if next(failures):
            raise OSError("database briefly away")
        await store.write(connection, row)

    writer.submit("call", flaky_save, call_row(_call()))
    writer.submit("call", flaky_save, call_row(_call(phase=Phase.ENDED, ended_at=T0)))
    task = asyncio.create_task(writer.run())
    await writer.drain(timeout=5)
    task.cancel()
    record = await store.get("1.1")
    assert record is not None
    assert record.phase == "ended"
    assert writer.transactions == 3  # both rows in one transaction, tried three times


async def test_tokens_are_stored_hashed_and_checked_for_expiry_and_revocation(
    engine: AsyncEngine,
) -> None:
    store = TokenStore(engine)
    token = await tokens.first_admin_token(store, UserStore(engine))
    assert token is not None
    assert await tokens.first_admin_token(store, UserStore(engine)) is None  # first start only
    found = await tokens.check(store, token)
    assert found is not None
    assert found.role == "admin"
    assert found.token_hash != token
    assert len(found.token_hash) == 64
    assert await tokens.check(store, token + "x") is None
    await store.add(name="old", role="admin", token_hash=tokens.hash_token("old"))
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE api_token SET expires_at = :t WHERE name = 'old'"), {"t": T0}
        )
    assert await tokens.check(store, "old", now=T0 + timedelta(seconds=1)) is None


async def test_the_api_wants_a_token_except_for_health(engine: AsyncEngine, tmp_path: Path) -> None:
    calls = CallStore(engine)
    token = await tokens.first_admin_token(TokenStore(engine), UserStore(engine))
    await calls.save(call_row(_call()))

    async def health() -> tuple[bool, dict[str, object]]:
        return await ping(engine), {"database": {"reachable": True}}

    flows = FlowRegistry(DEMO_FLOWS)
    await flows.reload()
    ari = AriRest("http://asterisk", "u", "p")
    api = create_api(api_context(engine, ari, tmp_path, flows, health=health))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/api/v1/calls")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/api/v1/calls", headers=wrong)).status_code == 401
        good = {"Authorization": f"Bearer {token}"}
        listed = await client.get("/api/v1/calls", headers=good)
        assert listed.status_code == 200
        assert listed.json()["total"] == 1
        assert listed.json()["items"][0]["caller"] == "5551234"
        assert (await client.get("/api/v1/calls/1.1", headers=good)).json()["dialled"] == "100"
        assert (await client.get("/api/v1/calls/none", headers=good)).status_code == 404
        assert (await client.get("/api/v1/calls?limit=0", headers=good)).status_code == 422
        assert (await client.get("/openapi.json")).status_code == 401
        assert (await client.get("/api/v1/ivr/flows")).status_code == 401
        listed_flows = (await client.get("/api/v1/ivr/flows", headers=good)).json()
        assert listed_flows == [{"name": "demo", "version": 1, "numbers": ["100"], "nodes": 15}]
        reloaded = (await client.post("/api/v1/ivr/reload", headers=good)).json()
        assert reloaded["loaded"] == ["demo v1 (demo.yaml)"]
        schema = (await client.get("/openapi.json", headers=good)).json()
        assert {"/healthz", "/api/v1/calls", "/api/v1/calls/{call_id}"} <= set(schema["paths"])


async def test_a_row_the_database_refuses_is_skipped_and_later_rows_still_land(
    engine: AsyncEngine,
) -> None:
    store = CallStore(engine)
    writer = Writer(engine, max_backoff=0.05)
    refused = {**call_row(_call("bad")), "phase": None}  # NOT NULL: refused for its content
    writer.submit("call", store.write, call_row(_call("before")))
    writer.submit("call", store.write, refused)
    writer.submit("call", store.write, call_row(_call("good")))
    task = asyncio.create_task(writer.run())
    await writer.drain(timeout=5)
    task.cancel()
    assert await store.get("bad") is None
    # the shared transaction was refused whole; then each row on its own: only one lost
    assert await store.get("before") is not None
    assert await store.get("good") is not None
    assert writer.transactions == 4


async def test_an_unfinished_calls_ivr_path_comes_back_from_its_row(engine: AsyncEngine) -> None:
    from ari_app.domain.ivr import engine as ivr
    from ari_app.domain.ivr.flow import parse_flow
    from ari_app.services.calls import call_from_row

    flow, _ = parse_flow(
        {
            "flow": "t",
            "version": 3,
            "start": "out",
            "nodes": {"out": {"kind": "transfer", "to": "1"}},
        }
    )
    session = ivr.Session(
        "t",
        3,
        "5551234",
        "out",
        "en",
        ivr.Waiting.DONE,
        path=(ivr.Step("menu", T0), ivr.Step("out", T0 + timedelta(seconds=4), "pressed 0")),
        outcome=ivr.Outcome("transferred", "out"),
    )
    store = CallStore(engine)
    await store.save(call_row(_call(phase=Phase.LEAVING, flow=flow, ivr=session)))
    (record,) = await store.unfinished()
    back = call_from_row(record).ivr
    assert back is not None
    assert back.path == session.path
    assert back.outcome is not None
    assert back.outcome.kind == "transferred"
    assert (back.flow, back.version) == ("t", 3)


async def test_a_record_changed_before_its_write_is_written_once_with_the_last_state(
    engine: AsyncEngine,
) -> None:
    written: list[dict[str, Any]] = []

    async def write(connection: AsyncConnection, row: dict[str, Any]) -> None:
        written.append(row)

    writer = Writer(engine, gather=0.05)
    runner = asyncio.create_task(writer.run())
    try:
        for step in range(5):  # one moment of a call: five changes to its record
            writer.submit("call", write, {"id": "c1", "step": step}, "c1")
        writer.submit("cdr", write, {"id": "x"})  # no key: every row is written
        writer.submit("call", write, {"id": "c2", "step": 0}, "c2")
        await writer.drain(timeout=2)
        assert written == [{"id": "c1", "step": 4}, {"id": "x"}, {"id": "c2", "step": 0}]
        assert writer.coalesced == 4
        assert writer.transactions == 1  # what waited together went in one transaction
        writer.submit("call", write, {"id": "c1", "step": 5}, "c1")  # after its write: anew
        await writer.drain(timeout=2)
        assert written[-1] == {"id": "c1", "step": 5}
    finally:
        runner.cancel()


async def test_a_job_alone_runs_in_its_turn_between_the_transactions_around_it(
    engine: AsyncEngine,
) -> None:
    done: list[str] = []

    async def write(connection: AsyncConnection, row: dict[str, Any]) -> None:
        done.append(row["id"])

    async def job(row: dict[str, Any]) -> None:
        done.append(f"job {row['id']}")

    writer = Writer(engine, gather=0.05)
    runner = asyncio.create_task(writer.run())
    try:
        writer.submit("call", write, {"id": "a"})
        writer.submit("call", write, {"id": "b"})
        writer.submit_alone("kpi_sums", job, {"id": "sums"})
        writer.submit("call", write, {"id": "c"})
        assert writer.backlog == 4
        await writer.drain(timeout=2)
    finally:
        runner.cancel()
    assert done == ["a", "b", "job sums", "c"]
    assert writer.transactions == 2
    assert writer.backlog == 0


async def test_a_writer_stopped_mid_transaction_lets_it_land_first(engine: AsyncEngine) -> None:
    store = CallStore(engine)
    started = asyncio.Event()

    async def slow_save(connection: AsyncConnection, row: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(0.2)  # the database is slow just as the service stops
        await store.write(connection, row)

    writer = Writer(engine)
    runner = asyncio.create_task(writer.run())
    writer.submit("call", slow_save, call_row(_call("last")))
    await started.wait()
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert await store.get("last") is not None
    # no connection was left checked out: disposing closes them all
    assert engine.pool.checkedout() == 0
