"""`python -m tests.bench.ari_messages`: what moving ARI messages costs a Python process,
nothing else: no call logic, no database, no MQTT.

Against the real Asterisk (the load benchmark's instance), over one event websocket
as the service uses it, with the libraries it uses (websockets, json, uvloop): a
request sent as a `RESTRequest` and its `RESTResponse` read (`GET asterisk/info`,
about 1 kB back, the size of an event carrying a channel), one at a time; then a user
event generated the same way, which brings a response and an event. The process's
CPU per round trip gives a message sent plus one read; the difference per user event
gives one more read. With the messages one call of the load benchmark makes (counted
in the service: requests, their responses, events), the product is the least a call
can cost a process that moves its messages this way.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from typing import Any

import uvloop
from websockets.asyncio.client import connect

from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.settings import LocalAsteriskSettings
from tests.bench.load.__main__ import BENCH_ASTERISK
from tests.integration.telephony import read_env_file

APP = "ari-messages"
ROUNDS = 4000
# one call of the load benchmark's B, as counted in the service at 10 calls/s
REQUESTS_A_CALL, EVENTS_A_CALL = 15, 16


async def _timed(socket: Any, rounds: int, method: str, uri: str, reads: int) -> float:
    """CPU seconds per round of one request and its `reads` messages."""
    started = time.process_time()
    for n in range(rounds):
        message = {"type": "RESTRequest", "request_id": str(n), "method": method, "uri": uri}
        await socket.send(json.dumps(message))
        for _ in range(reads):
            json.loads(await socket.recv())
    return (time.process_time() - started) / rounds


async def measure(env: dict[str, str]) -> dict[str, float]:
    auth = f"{env['ARI_APP_ARI_USER']}:{env['ARI_APP_ARI_PASSWORD']}".encode()
    url = env["ARI_APP_ARI_URL"].replace("http://", "ws://") + f"/ari/events?app={APP}"
    headers = {"Authorization": f"Basic {base64.b64encode(auth).decode()}"}
    async with connect(url, additional_headers=headers, compression=None) as socket:
        await _timed(socket, 200, "GET", "asterisk/info", 1)  # warmed up
        round_trip = await _timed(socket, ROUNDS, "GET", "asterisk/info", 1)
        user_event = await _timed(socket, ROUNDS, "POST", f"events/user/probe?application={APP}", 2)
    read = user_event - round_trip
    sent = round_trip - read
    call = REQUESTS_A_CALL * sent + (REQUESTS_A_CALL + EVENTS_A_CALL) * read
    return {"sent_us": sent * 1e6, "read_us": read * 1e6, "call_ms": call * 1e3}


def main() -> None:
    os.environ.update(BENCH_ASTERISK)
    asterisk = LocalAsterisk(LocalAsteriskSettings())
    started = asterisk.pid() is None
    if started:
        asterisk.up()
    try:
        figures = uvloop.run(measure(read_env_file(asterisk.env_file)))
    finally:
        if started:
            asterisk.down()
    print(
        f"ARI over the event websocket, {ROUNDS} rounds each: a message sent "
        f"{figures['sent_us']:.0f} µs, one read {figures['read_us']:.0f} µs of CPU; "
        f"a call's {REQUESTS_A_CALL} requests, their responses and {EVENTS_A_CALL} events: "
        f"{figures['call_ms']:.2f} ms",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
