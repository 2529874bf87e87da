"""AMI through panoramisk's protocol parser, with our own connection life cycle.

panoramisk's Manager reconnects by itself, re-sends unanswered actions after
`FullyBooted` (an Originate could run twice) and sends Ping without reading the
answer (a half-dead connection goes unnoticed). So we use its AMIProtocol for
parsing and action/response matching only, and own the rest here: one
connection at a time, an action whose connection is lost fails with
AmiDisconnected and is never sent again, and a Ping that is not answered in
time closes the connection and starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = structlog.get_logger(__name__)

EventHandler = Callable[[Message], None]


class AmiDisconnected(Exception):
    """The connection was lost before the action was answered; it was not re-sent."""


class AmiLoginFailed(Exception):
    """Asterisk refused the AMI user or secret."""


class _Connection:
    """The factory object AMIProtocol talks back to, for one TCP connection."""

    forgetable_actions = ()  # every unanswered action is handed to us, to be failed
    save_stream = None

    def __init__(self, dispatch: EventHandler) -> None:
        self.awaiting_actions: list[Any] = []
        self.lost = asyncio.Event()
        self._dispatch = dispatch

    def dispatch(self, message: Message) -> None:
        self._dispatch(message)

    def connection_lost(self, exc: Exception | None) -> None:
        for action in self.awaiting_actions:
            if not action.future.done():
                action.future.set_exception(AmiDisconnected(action["action"]))
        self.awaiting_actions.clear()
        self.lost.set()


class AmiClient:
    """One AMI session kept alive with a checked Ping; events go to registered handlers."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        secret: str,
        *,
        ping_seconds: float = 5.0,
        action_timeout: float = 10.0,
        max_backoff: float = 10.0,
        events: str = "on",
    ) -> None:
        self.host, self.port, self.user, self._secret = host, port, user, secret
        self.events = events  # the event classes Asterisk sends this session ("cdr", "off")
        self.ping_seconds = ping_seconds
        self.action_timeout = action_timeout
        self.max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._protocol: AMIProtocol | None = None
        self._connection: _Connection | None = None
        self._handlers: list[tuple[str, EventHandler]] = []

    def on_event(self, pattern: str, handler: EventHandler) -> None:
        """Call handler for every event whose name matches the shell-style pattern."""
        self._handlers.append((pattern, handler))

    def _dispatch(self, message: Message) -> None:
        name = message.get("Event", "")
        for pattern, handler in self._handlers:
            if fnmatch.fnmatchcase(name, pattern):
                try:
                    handler(message)
                except Exception:
                    log.exception("ami_handler_failed", ami_event=name)

    async def open(self) -> _Connection:
        """Connect and log in once; raise OSError, TimeoutError, AmiDisconnected or AmiLoginFailed.

        An Asterisk that is still booting (or stopping) may accept the connection and drop it
        before answering Login: that is a failed connect like any other, retried by `run`."""
        loop = asyncio.get_running_loop()
        connection = _Connection(self._dispatch)
        _, protocol = await asyncio.wait_for(
            loop.create_connection(AMIProtocol, self.host, self.port), self.action_timeout
        )
        protocol.factory = connection
        protocol.log = logging.getLogger("panoramisk")
        protocol.encoding = "utf8"
        try:
            reply = await self._send(
                protocol,
                {
                    "Action": "Login",
                    "Username": self.user,
                    "Secret": self._secret,
                    "Events": self.events,
                },
            )
        except BaseException:
            protocol.close()
            raise
        if not reply.success:
            protocol.close()
            raise AmiLoginFailed(reply.get("Message", "authentication failed"))
        self._protocol, self._connection = protocol, connection
        return connection

    async def _send(
        self, protocol: AMIProtocol, action: dict[str, str], as_list: bool | None = False
    ) -> Any:
        return await asyncio.wait_for(protocol.send(action, as_list), self.action_timeout)

    async def send_action(self, action: dict[str, str], *, listed: bool = False) -> Any:
        """Send one action and wait for its answer; never re-sent after a reconnect.
        `listed`: the answer may be a list of events (`EventList: start`), given whole."""
        if self._protocol is None or not self.connected.is_set():
            raise AmiDisconnected(action.get("Action", "?"))
        # panoramisk: None looks at the answer (a list when one follows, an error alone)
        return await self._send(self._protocol, action, None if listed else False)

    async def run(self) -> None:
        """Keep a session up forever: connect, watch it with Ping, reconnect with backoff."""
        backoff = 0.2
        while True:
            try:
                connection = await self.open()
            except (OSError, TimeoutError, AmiDisconnected, AmiLoginFailed) as exc:
                log.warning("ami_connect_failed", host=self.host, port=self.port, error=repr(exc))
            else:
                self.connected.set()
                log.info(
                    "ami_connected", host=self.host, port=self.port, reconnects=self.reconnects
                )
                backoff = 0.2
                await self._watch(connection)
                self.connected.clear()
                self.reconnects += 1
                self._close()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)

    async def _watch(self, connection: _Connection) -> None:
        """Return when the connection is lost or stops answering Ping."""
        while not connection.lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.lost.wait(), self.ping_seconds)
                return
            try:
                await asyncio.wait_for(self.send_action({"Action": "Ping"}), self.ping_seconds)
            except (TimeoutError, AmiDisconnected):
                log.warning("ami_ping_unanswered", seconds=self.ping_seconds)
                return

    def _close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
        if self._connection is not None:
            # AMIProtocol.close() hands unanswered actions over without failing them
            self._connection.connection_lost(None)
            self._connection = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """One session for a few actions (a command line's), not kept alive."""
        await self.open()
        self.connected.set()
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        self.connected.clear()
        self._close()
