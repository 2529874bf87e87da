"""Live statistics on MQTT (retained) and through the API, and the queues' alerts.

Topics, under `<prefix>/<center>/` (prefix ARI_APP_MQTT_TOPIC_PREFIX):

- `queues/<queue>/stats` (retained): waiting, longest wait, agents by state, the
  rolling 15 minutes and today (offered, handled, abandoned, service level, ASA,
  abandonment); sent when a figure changes, at most once a second.
- `agents/<agent>/state` (retained): state, since, reason; sent on every change.
- `alerts`: {"queue", "metric", "raised", "value", "threshold", "at"} when a queue's
  alert is raised or cleared; the same goes to the log.
- `calls/<call>/events`: each call's own events (services/calls.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import structlog

from ari_app.domain.acd import Acd
from ari_app.domain.kpi import Interaction
from ari_app.domain.live import LiveStats

log = structlog.get_logger(__name__)

# topic below the center, body (None: an empty message), retain
Publish = Callable[[str, dict[str, Any] | None, bool], None]


class LiveService:
    def __init__(
        self,
        acd: Acd,
        publish: Publish | None,
        *,
        short_abandon: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.acd, self._publish, self._clock = acd, publish, clock
        self.stats = LiveStats(short_abandon, self._sl_seconds)
        self._sent: dict[str, dict[str, Any]] = {}  # queue -> the figures last sent

    def load(self, calls: list[Interaction]) -> None:
        """Today's calls from the database, so that a restart does not start the day over."""
        waits = []
        for call in calls:
            if not call.queue or call.queued_at is None or call.blocked:
                continue
            self.stats.queued(call.call_id, call.queue, call.queued_at)
            end = call.answered_at or call.abandoned_at or call.left_at
            if end is not None:
                waits.append((end, call))
            elif call.ended_at is not None:
                self.stats.forget(call.call_id)  # it ended with no outcome we know
        for end, call in sorted(waits, key=lambda pair: pair[0]):
            answered = call.answered_at is not None
            self.stats.wait_ended(
                call.call_id,
                end,
                answered=answered,
                abandoned=not answered and bool(call.abandoned_at),
            )
        log.info("live_stats_loaded", calls=len(calls), waiting=self.stats.waiting())

    # -- events in (from the interaction log and the ACD) -------------------------------

    # A queue's figures go out on `run`'s next tick (within a second): figured at every
    # call's every step, they cost about as much as the call's routing did.

    def queued(self, call_id: str, queue: str, at: datetime) -> None:
        self.stats.queued(call_id, queue, at)

    def wait_ended(self, call_id: str, at: datetime, *, answered: bool, abandoned: bool) -> None:
        self.stats.wait_ended(call_id, at, answered=answered, abandoned=abandoned)

    def blocked(self, call_id: str) -> None:
        self.stats.forget(call_id)

    def agent_state(self, agent_id: str, state: str, reason: str, at: datetime) -> None:
        self.stats.agent_state(agent_id, state, reason, at)
        body = self.stats.agent(agent_id, at)
        if self._publish is not None and body is not None:
            self._publish(f"agents/{agent_id}/state", body, True)

    def agent_removed(self, agent_id: str) -> None:
        """A deleted agent leaves the figures, and its retained state leaves the broker
        (an empty retained message clears a topic)."""
        if self.stats.agent_removed(agent_id) and self._publish is not None:
            self._publish(f"agents/{agent_id}/state", None, True)

    # -- figures out ---------------------------------------------------------------------

    def _serving(self, queue: str) -> set[str]:
        """The agents with the queue's skills at its lowest step's level."""
        config = self.acd.queues.get(queue)
        if config is None:
            return set()
        need = config.rules.requirement(len(config.rules.steps) - 1)
        return {
            agent_id
            for agent_id, profile in self.acd.profiles.items()
            if need.met_by(profile.skills)
        }

    def _sl_seconds(self, queue: str) -> float:
        config = self.acd.queues.get(queue)
        return config.service_level.seconds if config else 20.0

    def queue(self, queue: str) -> dict[str, Any]:
        return self.stats.queue(queue, self._clock(), self._serving(queue))

    def queues(self) -> list[dict[str, Any]]:
        return [self.queue(name) for name in sorted(set(self.acd.queues) | set(self.stats.queues))]

    def agents(self) -> list[dict[str, Any]]:
        now = self._clock()
        self._learn_agents(now)
        return [body for a in sorted(self.stats.agents) if (body := self.stats.agent(a, now))]

    def _learn_agents(self, now: datetime) -> None:
        """Agents the ACD knows but no change was seen for since the start."""
        for agent_id, status in self.acd.statuses.items():
            if agent_id not in self.stats.agents:
                since = status.since or now
                self.stats.agent_state(agent_id, status.state.value, status.reason or "", since)

    def _send(self, queue: str, figures: dict[str, Any]) -> None:
        config = self.acd.queues.get(queue)
        if config is not None:
            for alert in self.stats.alerts(
                queue, figures, config.alerts, config.service_level.percent
            ):
                body = asdict(alert)
                if alert.raised:
                    log.warning("queue_alert", **body)
                else:
                    log.info("queue_alert_cleared", **body)
                if self._publish is not None:
                    self._publish("alerts", body, False)
        steady = {**figures, "longest_wait": round(figures["longest_wait"])}
        steady.pop("at")
        if self._sent.get(queue) == steady:
            return
        self._sent[queue] = steady
        if self._publish is not None:
            self._publish(f"queues/{queue}/stats", {**figures, **steady}, True)

    async def run(self, every: float = 1.0) -> None:
        """Move the figures with the clock: waits grow, old calls leave the window."""
        self._learn_agents(self._clock())
        for agent_id in list(self.stats.agents):
            body = self.stats.agent(agent_id, self._clock())
            if self._publish is not None and body is not None:
                self._publish(f"agents/{agent_id}/state", body, True)
        while True:
            for figures in self.queues():
                self._send(str(figures["queue"]), figures)
            await asyncio.sleep(every)
