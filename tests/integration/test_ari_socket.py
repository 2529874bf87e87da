"""Which ARI requests may ride on the event websocket: measured on the real Asterisk.

Asterisk runs one websocket's requests one after another. A request that waits on a
channel's own thread waits for as long as that channel plays a prompt; on the websocket
it would hold up every other call's requests. `RestOverSocket` keeps such requests on
HTTP while a prompt plays. Here two halves of a Local channel sit in the application,
one of them plays a long prompt, and every request the service makes on a channel is
tried while it plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ari_app.adapters.ari import AriEvents, AriRest
from ari_app.adapters.ari_socket import RestOverSocket
from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.telephony import Observer, read_env_file

pytestmark = pytest.mark.asterisk

# A request answered at once comes back in milliseconds; one that waits behind the
# prompt takes the prompt's length. Far apart, so that a busy machine cannot blur them.
PROMPT = "sound:silence/10,sound:silence/10"
AT_ONCE = 3.0


@dataclass
class Pair:
    rest: AriRest
    socket: RestOverSocket
    app: str
    playing: str  # the half that plays the prompt
    quiet: str  # the other half
    seen: Observer = field(default_factory=Observer)

    async def wait_for(self, kind: str, **match: str) -> dict[str, Any]:
        return await self.seen.wait_for(kind, **match)


@contextlib.asynccontextmanager
async def local_pair(local_asterisk: LocalAsterisk) -> AsyncIterator[Pair]:
    """Both halves of a Local channel answered and in the application, which this test
    plays (the service is not running); the dialplan sends the second half to it."""
    env = read_env_file(local_asterisk.env_file)
    url, user, password = (env[f"ARI_APP_ARI_{key}"] for key in ("URL", "USER", "PASSWORD"))
    app = env.get("ARI_APP_ARI_APPLICATION", "ari-app")
    socket = RestOverSocket(timeout=30)
    rest = AriRest(url, user, password, socket=socket)
    stream = AriEvents(url, app, user, password, rest=socket)
    pair = Pair(rest, socket, app, playing="", quiet="probe-1")

    async def nothing_to_rebuild() -> None:
        return None

    async def read() -> None:
        async for event in stream.stream(nothing_to_rebuild):
            pair.seen.events.append(event)

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(10):
            await stream.connected.wait()
        await rest.subscribe(app, "channel:")
        await rest.originate(pair.quiet, "Local/100@ari-app-services", app, "probe", 30, "probe")
        async with asyncio.timeout(15):
            while not (other := pair.seen.of_type("StasisStart")):
                await asyncio.sleep(0.05)
        pair.playing = other[0]["channel"]["id"]  # the dialplan's half comes first
        await rest.answer(pair.playing)
        await pair.wait_for("StasisStart", channel__id=pair.quiet)
        yield pair
    finally:
        with contextlib.suppress(Exception):
            await rest.hangup(pair.quiet)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await rest.aclose()


async def _timed(request: Any) -> float:
    start = time.monotonic()
    await request
    return time.monotonic() - start


async def test_a_request_on_a_channel_playing_a_prompt_holds_up_no_other_call(
    local_asterisk: LocalAsterisk,
) -> None:
    async with local_pair(local_asterisk) as pair:
        rest, socket, app = pair.rest, pair.socket, pair.app
        playing, quiet = pair.playing, pair.quiet
        await rest.create_bridge("probe-bridge", "mixing")
        try:
            await rest.play(playing, "probe-prompt", tuple(PROMPT.split(",")))
            # what waits on the playing channel goes over HTTP: it waits for the prompt...
            assert not socket.carries("POST", f"/channels/{playing}/variable", {})
            waiting = asyncio.create_task(rest.set_channel_var(playing, "PROBE", "1"))
            await asyncio.sleep(0.5)
            # ...and the other call's requests on the websocket are answered meanwhile
            assert socket.carries("POST", f"/channels/{quiet}/variable", {})
            assert await _timed(rest.set_channel_var(quiet, "PROBE", "2")) < AT_ONCE
            assert await rest.channel_var(quiet, "PROBE") == "2"
            assert not waiting.done()

            # every request the service makes on a channel that the rule lets onto the
            # websocket while that channel plays is answered at once there
            carried = [
                rest.channel(playing),
                rest.channel_var(playing, "CHANNEL"),
                rest.hold(playing),
                rest.unhold(playing),
                rest.mute(playing, "in"),
                rest.unmute(playing, "in"),
                rest.play(playing, "probe-second", ("sound:beep",)),
                rest.snoop(playing, "probe-snoop", app, "probe-snoop", "in", "none"),
            ]
            for request in carried:
                name = request.cr_code.co_name
                assert socket.up
                assert await _timed(request) < AT_ONCE, name
            assert not waiting.done()

            # the prompt ends: the waiting request completes, and the channel's requests
            # ride on the websocket again once its prompts are over
            await rest.stop_playback("probe-prompt")
            await asyncio.wait_for(waiting, AT_ONCE)
            await pair.wait_for("PlaybackFinished", playback__id="probe-second")
            assert not socket.playing(playing)
            assert socket.carries("POST", f"/channels/{playing}/variable", {})
            assert await _timed(rest.add_to_bridge("probe-bridge", playing)) < AT_ONCE
            assert await _timed(rest.remove_from_bridge("probe-bridge", playing)) < AT_ONCE
            # and a hang-up during a prompt is answered at once on the websocket too
            await rest.play(playing, "probe-last", tuple(PROMPT.split(",")))
            assert socket.carries("DELETE", f"/channels/{playing}", {})
            assert await _timed(rest.hangup(playing)) < AT_ONCE
            await pair.wait_for("ChannelDestroyed", channel__id=playing)
            assert socket.up, "the websocket stayed up throughout"
        finally:
            await rest.destroy_bridge("probe-bridge")
