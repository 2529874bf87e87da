"""The MQTT publisher's buffer (adapters.mqtt): events all kept, a topic's state once."""

from __future__ import annotations

import json

from ari_app.adapters.mqtt import MqttPublisher


async def _drain(publisher: MqttPublisher) -> list[tuple[str, dict[str, object], bool]]:
    out = []
    while publisher._messages:
        topic, body, retain = await publisher._next()
        out.append((topic, json.loads(body), retain))
    return out


async def test_a_waiting_state_is_replaced_by_the_newer_one_and_events_are_all_kept() -> None:
    publisher = MqttPublisher("mqtt://127.0.0.1:1883")
    publisher.publish("q/billing/stats", {"waiting": 1}, retain=True)
    publisher.publish("calls/c1/events", {"event": "queued"})
    publisher.publish("q/billing/stats", {"waiting": 2}, retain=True)
    publisher.publish("calls/c1/events", {"event": "answered"})
    publisher.publish("q/sales/stats", {"waiting": 0}, retain=True)
    assert await _drain(publisher) == [
        ("q/billing/stats", {"waiting": 2}, True),  # in the first one's place, the latest
        ("calls/c1/events", {"event": "queued"}, False),
        ("calls/c1/events", {"event": "answered"}, False),
        ("q/sales/stats", {"waiting": 0}, True),
    ]
    assert publisher.replaced == 1
    # once sent, the next change of that state is a message of its own
    publisher.publish("q/billing/stats", {"waiting": 3}, retain=True)
    assert await _drain(publisher) == [("q/billing/stats", {"waiting": 3}, True)]


async def test_a_full_buffer_drops_the_oldest_message_and_counts_it() -> None:
    publisher = MqttPublisher("mqtt://127.0.0.1:1883", buffer=2)
    publisher.publish("q/billing/stats", {"waiting": 1}, retain=True)
    publisher.publish("calls/c1/events", {"event": "queued"})
    publisher.publish("calls/c1/events", {"event": "answered"})
    assert publisher.dropped == 1
    # the dropped state no longer waits: a new one is queued, not put in its place
    publisher.publish("q/billing/stats", {"waiting": 2}, retain=True)
    assert publisher.replaced == 0
    assert await _drain(publisher) == [
        ("calls/c1/events", {"event": "answered"}, False),
        ("q/billing/stats", {"waiting": 2}, True),
    ]
