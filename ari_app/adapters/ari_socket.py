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
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

# What goes on the websocket. Asterisk runs one websocket's requests one after another.
# Some requests wait on a channel's own thread, and that thread is busy for as long as
# the channel plays a prompt: on the websocket such a request would hold up every
# call's requests, and the websocket's pings with them. Probed one by one on Asterisk
# 22.10, on a channel playing a prompt: answering it, setting a variable on it and
# adding it to a bridge wait for the prompt's end (taking it out of one is the same
# kind of channel command, treated alike); the requests in NEVER_WAIT answer at once
# (tests/integration/test_ari_socket.py keeps measuring those, and the variable set).
# So a request goes on the websocket unless it may wait on a channel on which a prompt
# the service asked for still plays; such a request goes over HTTP, a connection each.
CARRIED = frozenset({"bridges", "playbacks", "recordings", "channels"})
# (method, what follows channels/{id}/) of the requests that never wait on the channel
NEVER_WAIT = frozenset({
    ("GET", ""), ("DELETE", ""), ("POST", ""),  # its snapshot, hang-up, origination
    ("GET", "variable"), ("POST", "play"), ("POST", "snoop"), ("POST", "continue"),
    ("POST", "hold"), ("DELETE", "hold"), ("POST", "mute"), ("DELETE", "mute"),
    ("POST", "moh"), ("DELETE", "moh"), ("POST", "ring"), ("DELETE", "ring"),
    ("POST", "silence"), ("DELETE", "silence"),
})  # fmt: skip
NAMES_CHANNELS = ("/addChannel", "/removeChannel")
# Configuration, endpoints and sounds stay on HTTP, and so does the event filter:
# Asterisk 22.10 never answers `PUT applications/{app}/eventFilter` sent on the
# websocket, and stops answering that websocket's later requests too.
# A prompt whose end was never seen (the websocket was down) is forgotten after this.
FORGET_PROMPT_SECONDS = 3600.0


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
        # prompts playing: playback id -> (channel id, when it was asked for)
        self._prompts: dict[str, tuple[str, float]] = {}
        self._playing: Counter[str] = Counter()

    @property
    def up(self) -> bool:
        return self._socket is not None

    def carries(self, method: str, path: str, query: Mapping[str, Any]) -> bool:
        if self._socket is None:
            return False
        resource, _, rest = path.lstrip("/").partition("/")
        if resource == "applications":
            return rest.endswith("/subscription")
        if resource not in CARRIED:
            return False
        return not self._playing or not any(
            channel in self._playing for channel in _waits_on(method, resource, rest, query)
        )

    # -- prompts playing on channels ---------------------------------------------------

    def prompt_started(self, channel_id: str, playback_id: str) -> None:
        """A prompt was asked for on the channel: its requests go over HTTP until it ends."""
        if playback_id not in self._prompts:
            self._prompts[playback_id] = (channel_id, time.monotonic())
            self._playing[channel_id] += 1

    def prompt_ended(self, playback_id: str) -> None:
        channel_id, _ = self._prompts.pop(playback_id, ("", 0.0))
        if channel_id:
            self._playing[channel_id] -= 1
            if self._playing[channel_id] <= 0:
                del self._playing[channel_id]

    def saw(self, event: Mapping[str, Any]) -> None:
        """An event off the websocket: a prompt's end, a channel's end."""
        kind = event.get("type")
        if kind == "PlaybackFinished":
            self.prompt_ended(str(event.get("playback", {}).get("id", "")))
        elif kind == "ChannelDestroyed" and self._playing:
            gone = str(event.get("channel", {}).get("id", ""))
            if gone in self._playing:
                for playback_id in [p for p, (c, _) in self._prompts.items() if c == gone]:
                    self.prompt_ended(playback_id)

    def playing(self, channel_id: str) -> bool:
        return channel_id in self._playing

    def attach(self, socket: Socket) -> None:
        self._socket = socket
        # an end missed while the websocket was down would keep a channel on HTTP for good
        horizon = time.monotonic() - FORGET_PROMPT_SECONDS
        for playback_id in [p for p, (_, at) in self._prompts.items() if at < horizon]:
            self.prompt_ended(playback_id)

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


def _waits_on(method: str, resource: str, rest: str, query: Mapping[str, Any]) -> tuple[str, ...]:
    """The channels on whose own thread a request may wait."""
    if resource == "channels":
        channel, _, action = rest.partition("/")
        action = action.split("/", 1)[0]
        return () if (method, action) in NEVER_WAIT else (channel,)
    if rest.endswith(NAMES_CHANNELS):
        return tuple(str(query.get("channel", "")).split(","))
    return ()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
