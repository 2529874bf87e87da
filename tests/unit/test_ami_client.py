"""The AMI client's life cycle against a scripted AMI peer on loopback (a fake: pure unit tests).

The behaviour against the real Asterisk (login, events) is covered by the
integration tests through the running service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ari_app.adapters.ami import AmiClient, AmiDisconnected, AmiLoginFailed


@dataclass
class FakeAmi:
    """Answers Login and Ping like Asterisk; can go mute or drop a connection."""

    secret: str = "s3cret"
    answer_pings: bool = True
    drop_logins: int = 0
    connections: list[list[dict[str, str]]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        actions: list[dict[str, str]] = []
        self.connections.append(actions)
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(
                    line.split(": ", 1)
                    for line in raw.decode().strip().split("\r\n")
                    if ": " in line
                )
                actions.append(action)
                self.reply(writer, action)
                await writer.drain()

    def reply(self, writer: asyncio.StreamWriter, action: dict[str, str]) -> None:
        name, action_id = action.get("Action", ""), action.get("ActionID", "")
        if name == "Login" and self.drop_logins > 0:
            self.drop_logins -= 1  # a booting Asterisk: the connection closes before the answer
            writer.close()
        elif name == "Login":
            ok = action.get("Secret") == self.secret
            status = "Success" if ok else "Error"
            message = "Authentication accepted" if ok else "Authentication failed"
            reply = f"Response: {status}\r\nActionID: {action_id}\r\nMessage: {message}\r\n\r\n"
            writer.write(reply.encode())
        elif name == "Ping" and self.answer_pings:
            writer.write(
                f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n".encode()
            )

    def send_event(self, text: str) -> None:
        self.writers[-1].write(text.encode())

    def drop(self) -> None:
        self.writers[-1].close()


@contextlib.asynccontextmanager
async def fake_ami(**options: object) -> AsyncIterator[FakeAmi]:
    fake = FakeAmi(**options)  # type: ignore[arg-type]
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake
        for writer in fake.writers:
            writer.close()


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def _until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def _client(fake: FakeAmi, secret: str = "s3cret") -> AmiClient:
    return AmiClient(
        "127.0.0.1",
        fake.port,
        "ari-app",
        secret,
        ping_seconds=0.2,
        action_timeout=1.0,
        max_backoff=0.2,
    )


async def test_a_wrong_secret_is_a_login_failure() -> None:
    async with fake_ami() as fake:
        with pytest.raises(AmiLoginFailed, match="Authentication failed"):
            await _client(fake, secret="wrong").open()


async def test_a_connection_dropped_before_the_login_answer_is_retried() -> None:
    async with fake_ami(drop_logins=2) as fake:
        client = _client(fake)
        async with running(client) as task:
            await _until(client.connected.is_set)
            assert not task.done()
            assert len(fake.connections) == 3


async def test_a_half_dead_connection_is_noticed_by_its_unanswered_ping_and_replaced() -> None:
    async with fake_ami() as fake:
        client = _client(fake)
        async with running(client):
            await _until(client.connected.is_set)
            fake.answer_pings = False  # the TCP connection stays open, nobody answers
            await _until(lambda: len(fake.connections) >= 2)
            fake.answer_pings = True
            await _until(client.connected.is_set)
            assert client.reconnects >= 1


async def test_an_action_cut_off_by_a_lost_connection_fails_and_is_never_sent_again() -> None:
    async with fake_ami() as fake:
        client = _client(fake)
        async with running(client):
            await _until(client.connected.is_set)
            pending = asyncio.create_task(
                client.send_action(
                    {"Action": "Originate", "Channel": "PJSIP/agent1", "Application": "Playback"}
                )
            )
            await _until(lambda: any(a.get("Action") == "Originate" for a in fake.connections[0]))
            fake.drop()
            with pytest.raises(AmiDisconnected):
                await pending
            await _until(lambda: len(fake.connections) >= 2 and client.connected.is_set())
            await asyncio.sleep(0.5)  # time for any replay to show up
            later = [a.get("Action") for conn in fake.connections[1:] for a in conn]
            assert "Originate" not in later


async def test_an_action_while_disconnected_fails_at_once() -> None:
    async with fake_ami() as fake:
        with pytest.raises(AmiDisconnected):
            await _client(fake).send_action({"Action": "Ping"})


async def test_events_reach_the_handlers_whose_pattern_matches() -> None:
    async with fake_ami() as fake:
        client = _client(fake)
        seen: list[str] = []
        client.on_event("Newexten", lambda message: seen.append(message["AppData"]))
        client.on_event("Cdr*", lambda message: seen.append("cdr"))
        async with running(client):
            await _until(client.connected.is_set)
            fake.send_event(
                "Event: Newexten\r\nApplication: Playback\r\nAppData: hello-world\r\n\r\n"
            )
            fake.send_event("Event: Hangup\r\nCause: 16\r\n\r\n")
            await _until(lambda: seen)
        assert seen == ["hello-world"]
