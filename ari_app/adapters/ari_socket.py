"""ARI REST requests carried on the event websocket (RESTRequest / RESTResponse).

Asterisk 22.4 and later answer REST requests sent as websocket messages. A request
there costs a fraction of an HTTP request on either side: no request line, headers or
connection pool to build and parse. Asterisk runs one websocket's requests one after
another, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping
from typing import Any, Protocol

# The requests that go on the websocket: those that never wait on a channel's own
# thread. Asterisk runs one websocket's requests one after another, and a request that
# waits on a channel (set a variable, answer, mute, continue, add it to a bridge or take
# it out) waits while that channel plays a prompt: on the websocket it would hold up
# every call's requests, and the websocket's pings with them. Those go over HTTP, a
# connection each. So do configuration and the event filter: Asterisk 22.10 never
# answers `PUT applications/{app}/eventFilter` sent on the websocket, and stops
# answering that websocket's later requests too.
CARRIED = frozenset({"bridges", "playbacks", "recordings"})
WAITS_ON_CHANNEL = ("/addChannel", "/removeChannel")


class Socket(Protocol):
    async def send(self, message: str) -> None: ...


class SocketClosed(Exception):
    """The websocket went away before the request's answer came."""


class RestOverSocket:
    """Requests out on the connected websocket; their answers matched back by request id."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._socket: Socket | None = None
        self._waiting: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._ids = itertools.count(1)

    @property
    def up(self) -> bool:
        return self._socket is not None

    def carries(self, path: str) -> bool:
        if self._socket is None:
            return False
        resource = path.lstrip("/").split("/", 1)[0]
        if resource == "applications":
            return path.endswith("/subscription")
        return resource in CARRIED and not path.endswith(WAITS_ON_CHANNEL)

    def attach(self, socket: Socket) -> None:
        self._socket = socket

    def detach(self, socket: Socket) -> None:
        """That websocket is gone: every request still waiting on it fails."""
        if self._socket is not socket:
            return
        self._socket = None
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():
                answer.set_exception(SocketClosed("the ARI websocket closed"))

    def answered(self, message: Mapping[str, Any]) -> None:
        """A RESTResponse came: hand it to its request (a late one, after a timeout, is dropped)."""
        answer = self._waiting.pop(str(message.get("request_id")), None)
        if answer is not None and not answer.done():
            answer.set_result(message)

    async def request(
        self, method: str, path: str, query: Mapping[str, Any]
    ) -> tuple[int, str, str]:
        """(status, reason, body) of one request. Raises SocketClosed or TimeoutError."""
        socket = self._socket
        if socket is None:
            raise SocketClosed("the ARI websocket is not connected")
        request_id = str(next(self._ids))
        message: dict[str, Any] = {
            "type": "RESTRequest",
            "request_id": request_id,
            "method": method,
            "uri": path.lstrip("/"),
        }
        if query:
            message["query_strings"] = [
                {"name": name, "value": _text(value)} for name, value in query.items()
            ]
        answer = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            await socket.send(json.dumps(message))
            async with asyncio.timeout(self.timeout):
                reply = await answer
        finally:
            self._waiting.pop(request_id, None)
        return (
            int(reply.get("status_code", 0)),
            str(reply.get("reason_phrase", "")),
            str(reply.get("message_body") or ""),
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
