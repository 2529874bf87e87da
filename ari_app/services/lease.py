"""Who holds the Stasis application: a lease in an Asterisk global variable.

Asterisk hands an application to the last websocket that registered it and
tells the previous one only `ApplicationReplaced`. So before connecting, the
service reads the lease: if another live instance renewed it recently, it
refuses to start instead of silently taking that instance's calls.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass

import structlog

from ari_app.adapters.ari import AriRest

log = structlog.get_logger(__name__)


class ApplicationHeld(Exception):
    """Another running ari-app holds the application."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str
    renewed: float

    def encode(self) -> str:
        return f"{self.host}|{self.pid}|{self.token}|{self.renewed:.0f}"

    @classmethod
    def decode(cls, value: str) -> Holder | None:
        parts = value.split("|")
        if len(parts) != 4:
            return None
        try:
            return cls(parts[0], int(parts[1]), parts[2], float(parts[3]))
        except ValueError:
            return None


def lease_variable(application: str) -> str:
    return "ARI_APP_LEASE_" + re.sub(r"[^A-Za-z0-9_]", "_", application)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    def __init__(self, ari: AriRest, application: str, *, ttl: float = 15.0) -> None:
        self.ari, self.application, self.ttl = ari, application, ttl
        self.variable = lease_variable(application)
        self.me = Holder(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12], 0.0)

    def _stamp(self) -> Holder:
        return Holder(self.me.host, self.me.pid, self.me.token, time.time())

    def other_holder(self, value: str, now: float) -> Holder | None:
        """The live holder that is not us, if any."""
        holder = Holder.decode(value)
        if holder is None or holder.token == self.me.token or now - holder.renewed > self.ttl:
            return None
        if holder.host == self.me.host and not _process_alive(holder.pid):
            return None  # a crashed instance on this machine
        return holder

    async def acquire(self) -> None:
        holder = self.other_holder(await self.ari.global_var(self.variable), time.time())
        if holder is not None:
            age = time.time() - holder.renewed
            raise ApplicationHeld(
                f"application '{self.application}' is held by another ari-app "
                f"(host {holder.host}, pid {holder.pid}, renewed {age:.0f} s ago); stop it first "
                f"or give this one another ARI_APP_ARI_APPLICATION"
            )
        await self.ari.set_global_var(self.variable, self._stamp().encode())

    async def release(self) -> None:
        """Give the application up on a clean stop, so the next instance need not wait."""
        current = Holder.decode(await self.ari.global_var(self.variable))
        if current is not None and current.token == self.me.token:
            await self.ari.set_global_var(self.variable, "")

    async def keep(self, connected: asyncio.Event) -> None:
        """Renew the lease while the service runs (only while ARI is reachable)."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            if not connected.is_set():
                continue
            try:
                await self.ari.set_global_var(self.variable, self._stamp().encode())
            except Exception as exc:
                log.warning("lease_renew_failed", error=repr(exc))
