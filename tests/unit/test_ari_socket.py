"""REST requests on the event websocket (adapters.ari_socket, AriEvents, AriRest).

A websocket server on loopback plays Asterisk's side of the protocol: it answers a
RESTRequest with a RESTResponse carrying the same request id, and sends events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve

from ari_app.adapters.ari import AriError, AriEvents, AriRest, AriUnreachable
from ari_app.adapters.ari_socket import FORGET_PROMPT_SECONDS, RestOverSocket, SocketClosed


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))


async def test_an_answer_goes_to_its_own_request_whatever_the_order() -> None:
    rest = RestOverSocket()
    socket = FakeSocket()
    rest.attach(socket)
    first = asyncio.create_task(rest.request("POST", "/channels/c1/answer", {}))
    second = asyncio.create_task(
        rest.request("GET", "/channels/c1/variable", {"variable": "X", "empty": True})
    )
    await asyncio.sleep(0)
    one, two = socket.sent
    assert one == {"type": "RESTRequest", "request_id": one["request_id"],
                   "method": "POST", "uri": "channels/c1/answer"}  # fmt: skip
    assert two["query_strings"] == [
        {"name": "variable", "value": "X"},
        {"name": "empty", "value": "true"},
    ]
    rest.answered({"request_id": two["request_id"], "status_code": 200,
                   "reason_phrase": "OK", "message_body": '{"value": "7"}'})  # fmt: skip
    rest.answered({"request_id": one["request_id"], "status_code": 204,
                   "reason_phrase": "No Content"})  # fmt: skip
    assert await second == (200, "OK", '{"value": "7"}')
    assert await first == (204, "No Content", "")


async def test_a_closed_socket_fails_the_requests_waiting_on_it_at_once() -> None:
    rest = RestOverSocket(timeout=30)
    socket = FakeSocket()
    rest.attach(socket)
    waiting = asyncio.create_task(rest.request("DELETE", "/bridges/b1", {}))
    await asyncio.sleep(0)
    rest.detach(FakeSocket())  # another socket's end changes nothing
    assert not waiting.done()
    rest.detach(socket)
    with pytest.raises(SocketClosed):
        await waiting
    assert not rest.up
    with pytest.raises(SocketClosed):
        await rest.request("DELETE", "/bridges/b1", {})


async def test_an_unanswered_request_times_out_and_a_late_answer_is_dropped() -> None:
    rest = RestOverSocket(timeout=0.05)
    socket = FakeSocket()
    rest.attach(socket)
    with pytest.raises(TimeoutError):
        await rest.request("GET", "/channels", {})
    rest.answered({"request_id": socket.sent[0]["request_id"], "status_code": 200})


def test_a_calls_control_is_carried_while_connected_and_configuration_is_not() -> None:
    rest = RestOverSocket()
    assert not rest.carries("POST", "/channels/c1/answer", {})
    rest.attach(FakeSocket())
    for method, path in (("POST", "/bridges/b1"), ("POST", "/bridges/b1/moh"),
                         ("DELETE", "/playbacks/p1"), ("POST", "/recordings/live/r1/stop"),
                         ("POST", "/applications/ari-app/subscription"),
                         ("POST", "/channels/c1/answer"), ("POST", "/channels/c1/variable"),
                         ("POST", "/bridges/b1/addChannel"), ("POST", "/channels/c2")):  # fmt: skip
        assert rest.carries(method, path, {"channel": "c1"}), path
    for method, path in (("PUT", "/applications/ari-app/eventFilter"),
                         ("PUT", "/asterisk/config/dynamic/res_pjsip/aor/a"),
                         ("GET", "/endpoints/PJSIP"), ("GET", "/sounds"),
                         ("GET", "/asterisk/info")):  # fmt: skip
        assert not rest.carries(method, path, {}), path


def test_what_would_wait_behind_a_prompt_goes_over_http_until_the_prompt_ends() -> None:
    rest = RestOverSocket()
    rest.attach(FakeSocket())
    rest.prompt_started("c1", "p1")
    rest.prompt_started("c1", "p2")  # a second prompt queued behind the first
    waits = [("POST", "/channels/c1/answer", {}), ("POST", "/channels/c1/variable", {}),
             ("POST", "/bridges/b1/addChannel", {"channel": "c1"}),
             ("POST", "/bridges/b1/removeChannel", {"channel": "c2,c1"}),
             ("POST", "/channels/c1/record", {})]  # fmt: skip
    never = [("GET", "/channels/c1/variable", {}), ("POST", "/channels/c1/play/p3", {}),
             ("DELETE", "/channels/c1", {}), ("POST", "/channels/c1/hold", {}),
             ("POST", "/channels/c1/continue", {}), ("DELETE", "/playbacks/p1", {}),
             ("POST", "/channels/c2/answer", {}),
             ("POST", "/bridges/b1/addChannel", {"channel": "c2"})]  # fmt: skip
    for request in waits:
        assert not rest.carries(*request), request
    for request in never:
        assert rest.carries(*request), request
    rest.saw({"type": "PlaybackFinished", "playback": {"id": "p1"}})
    assert rest.playing("c1")  # p2 still plays
    rest.saw({"type": "PlaybackFinished", "playback": {"id": "p2"}})
    assert not rest.playing("c1")
    for request in waits:
        assert rest.carries(*request), request
    rest.prompt_started("c1", "p4")
    rest.saw({"type": "ChannelDestroyed", "channel": {"id": "c9"}})
    assert rest.playing("c1")
    rest.saw({"type": "ChannelDestroyed", "channel": {"id": "c1"}})
    assert not rest.playing("c1")


def test_a_prompt_whose_end_was_missed_is_forgotten_after_a_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rest = RestOverSocket()
    rest.prompt_started("c1", "p1")
    rest.attach(FakeSocket())
    assert rest.playing("c1")
    later = time.monotonic() + FORGET_PROMPT_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    rest.attach(FakeSocket())
    assert not rest.playing("c1")


async def test_a_prompt_asterisk_refused_does_not_keep_its_channel_off_the_socket() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "Channel not found"})

    rest_socket = RestOverSocket()
    rest = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(refuse),
                   socket=rest_socket)  # fmt: skip
    with pytest.raises(AriError):
        await rest.play("c1", "p1", ("sound:hello",))  # the socket is down: over HTTP
    assert not rest_socket.playing("c1")
    await rest.aclose()


@asynccontextmanager
async def fake_asterisk(
    script: list[dict[str, Any]], hold: asyncio.Event
) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """An ARI websocket: answers every RESTRequest at once; once `hold` is set it sends the
    events in `script`, then closes."""
    requests: list[dict[str, Any]] = []

    async def session(connection: ServerConnection) -> None:
        async def answer() -> None:
            async for text in connection:
                request = json.loads(text)
                requests.append(request)
                status = 404 if "missing" in request["uri"] else 200
                body = {"message": "Bridge not found"} if status == 404 else {"id": "b1"}
                await connection.send(json.dumps({
                    "type": "RESTResponse", "request_id": request["request_id"],
                    "status_code": status, "reason_phrase": "x",
                    "message_body": json.dumps(body), "uri": request["uri"],
                }))  # fmt: skip

        answering = asyncio.create_task(answer())
        await hold.wait()
        for event in script:
            await connection.send(json.dumps(event))
        await asyncio.sleep(0.05)
        answering.cancel()
        await connection.close()

    async with serve(session, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield port, requests


async def test_requests_made_while_reconciling_are_answered_on_the_socket_then_events_follow() -> (
    None
):
    hold = asyncio.Event()
    events = [{"type": "StasisStart", "n": 1}, {"type": "ChannelDestroyed", "n": 2}]

    def no_http(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"{request.url} went over HTTP")

    async with fake_asterisk(events, hold) as (port, requests):
        rest_socket = RestOverSocket()
        rest = AriRest(
            f"http://127.0.0.1:{port}", "u", "p",
            transport=httpx.MockTransport(no_http), socket=rest_socket,
        )  # fmt: skip
        stream = AriEvents(f"http://127.0.0.1:{port}", "app", "u", "p", rest=rest_socket)
        seen: list[dict[str, Any]] = []

        async def on_connected() -> None:
            # the websocket is read while reconciling: these are answered on it
            assert await rest.request("POST", "/bridges/b1", type="holding") == {"id": "b1"}
            with pytest.raises(AriError) as missing:
                await rest.request("DELETE", "/bridges/missing")
            assert missing.value.status == 404
            assert "Bridge not found" in str(missing.value)
            hold.set()
            await asyncio.sleep(0.02)  # events sent meanwhile wait for the reconcile

        async for event in stream.stream(on_connected):
            seen.append(event)
            if len(seen) == 2:
                break
        assert [event["n"] for event in seen] == [1, 2]
        assert [r["uri"] for r in requests] == ["bridges/b1", "bridges/missing"]
        assert requests[0]["query_strings"] == [{"name": "type", "value": "holding"}]
        await rest.aclose()


async def test_without_the_socket_requests_go_over_http_and_a_lost_socket_is_unreachable() -> None:
    def http(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"over": "http"})

    rest_socket = RestOverSocket(timeout=30)
    rest = AriRest("http://asterisk", "u", "p", transport=httpx.MockTransport(http),
                   socket=rest_socket)  # fmt: skip
    assert await rest.request("POST", "/bridges/b1") == {"over": "http"}
    socket = FakeSocket()
    rest_socket.attach(socket)
    assert await rest.request("PUT", "/applications/app/eventFilter") == {"over": "http"}
    rest_socket.prompt_started("c1", "p1")
    assert await rest.request("POST", "/channels/c1/answer") == {"over": "http"}
    waiting = asyncio.create_task(rest.request("POST", "/bridges/b1"))
    await asyncio.sleep(0)
    rest_socket.detach(socket)
    with pytest.raises(AriUnreachable):
        await waiting
    await rest.aclose()


async def test_requests_stay_on_http_where_asterisk_does_not_take_them_on_the_socket() -> None:
    def docs(models: dict[str, Any]) -> httpx.MockTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            assert request.url.path == "/ari/api-docs/events.json"
            return httpx.Response(200, json={"apiVersion": "2.0.0", "models": models})

        return httpx.MockTransport(answer)

    newer = AriRest("http://asterisk", "u", "p", transport=docs({"RESTRequest": {}}))
    older = AriRest("http://asterisk", "u", "p", transport=docs({"StasisStart": {}}))
    assert await newer.takes_requests_on_socket()
    assert not await older.takes_requests_on_socket()
    await newer.aclose()
    await older.aclose()
