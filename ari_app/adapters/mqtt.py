"""MQTT events through aiomqtt. Publishing never waits on the broker.

Messages go into a bounded buffer that one task drains while the broker is
reachable; during an outage the oldest messages are dropped first, and the
number dropped is counted and logged, so call handling is never delayed.

A retained message is a topic's state (a queue's figures, an agent's state): one still
waiting in the buffer is replaced by a newer one for its topic, so the broker gets the
latest state once rather than every step to it. Other messages are events, all sent.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import structlog

log = structlog.get_logger(__name__)


class MqttPublisher:
    def __init__(
        self,
        url: str,
        *,
        buffer: int = 10_000,
        max_backoff: float = 10.0,
        client_id: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.username, self.password = parts.username, parts.password
        self.client_id = client_id
        self.max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.dropped = 0
        self.replaced = 0
        self.buffer = buffer
        self._messages: deque[list[Any]] = deque()  # [topic, body, retain]
        self._retained: dict[str, list[Any]] = {}  # topic -> its retained message waiting
        self._arrived = asyncio.Event()

    def publish(self, topic: str, payload: dict[str, Any] | None, *, retain: bool = False) -> None:
        """Queue one message (None: an empty one, which clears a retained topic); drops the
        oldest one when the buffer is full."""
        body = b"" if payload is None else json.dumps(payload, default=str).encode()
        if retain and (waiting := self._retained.get(topic)) is not None:
            waiting[1] = body
            self.replaced += 1
            return
        if len(self._messages) >= self.buffer:
            self._forget(self._messages.popleft())
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("mqtt_buffer_full", dropped=self.dropped)
        message = [topic, body, retain]
        if retain:
            self._retained[topic] = message
        self._messages.append(message)
        self._arrived.set()

    def _forget(self, message: list[Any]) -> None:
        if message[2] and self._retained.get(message[0]) is message:
            del self._retained[message[0]]

    async def _next(self) -> tuple[str, bytes, bool]:
        while not self._messages:
            self._arrived.clear()
            await self._arrived.wait()
        message = self._messages.popleft()
        self._forget(message)  # a change from now on is a new message
        return message[0], message[1], message[2]

    async def run(self) -> None:
        backoff = 0.2
        pending: tuple[str, bytes, bool] | None = None
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=self.username,
                    password=self.password,
                    identifier=self.client_id,
                    timeout=5,
                ) as client:
                    self.connected.set()
                    log.info("mqtt_connected", host=self.host, port=self.port)
                    backoff = 0.2
                    while True:
                        pending = pending or await self._next()
                        topic, body, retain = pending
                        await client.publish(topic, body, qos=1, retain=retain)
                        pending = None
            except aiomqtt.MqttError as exc:
                log.warning("mqtt_unreachable", host=self.host, port=self.port, error=str(exc))
            finally:
                self.connected.clear()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)
