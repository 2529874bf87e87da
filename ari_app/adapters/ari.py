"""ARI: REST through one pooled httpx client, events through a websocket that reconnects."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from ari_app.adapters.ari_socket import RestOverSocket, SocketClosed

log = structlog.get_logger(__name__)


class AriError(Exception):
    """ARI answered with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status


class AriUnreachable(Exception):
    """ARI could not be reached at all."""


class ReconcileFailed(Exception):
    """Rebuilding the picture of live calls failed; the stream reconnects and tries again."""


def _message(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("message", reply.text))
    except (ValueError, AttributeError):
        return reply.text or reply.reason_phrase


class AriRest:
    """The ARI REST calls the service makes: on the event websocket while it is connected,
    but for configuration and any request that would wait behind a prompt playing on a
    channel (`RestOverSocket.carries`), which go over pooled HTTP, as everything does
    while the websocket is down."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        socket: RestOverSocket | None = None,
    ) -> None:
        self.base_url = base_url
        self.socket = socket
        self._client = httpx.AsyncClient(
            base_url=base_url + "/ari",
            auth=(user, password),
            timeout=timeout,
            transport=transport,
            # every connection kept: a closed one is a new thread in Asterisk and a new TCP
            # connection for the next request; few, since the pool scans them all per request
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **params: Any) -> Any:
        query = {key: value for key, value in params.items() if value is not None}
        if self.socket is not None and self.socket.carries(method, path, query):
            return await self._on_socket(self.socket, method, path, query)
        try:
            reply = await self._client.request(method, path, params=query)
        except httpx.HTTPError as exc:
            raise AriUnreachable(f"{method} {path}: {exc!r}") from exc
        if reply.status_code >= 400:
            raise AriError(method, path, reply.status_code, _message(reply))
        return reply.json() if reply.content else None

    async def _on_socket(
        self, socket: RestOverSocket, method: str, path: str, query: dict[str, Any]
    ) -> Any:
        try:
            status, reason, body = await socket.request(method, path, query)
        except (SocketClosed, TimeoutError, WebSocketException) as exc:
            raise AriUnreachable(f"{method} {path}: {exc!r}") from exc
        if status >= 400:
            raise AriError(method, path, status, _socket_message(body, reason))
        return json.loads(body) if body else None

    # -- the calls the service uses -------------------------------------------

    async def takes_requests_on_socket(self) -> bool:
        """Whether this Asterisk answers REST requests sent on the event websocket (22.4 and
        later, and 20 and 21 releases of the same time): its event models name RESTRequest."""
        try:
            docs = await self.request("GET", "/api-docs/events.json")
        except (AriError, AriUnreachable):
            return False
        return isinstance(docs, dict) and "RESTRequest" in docs.get("models", {})

    async def asterisk_info(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/asterisk/info"))

    async def application(self, app: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/applications/{app}"))

    async def channel(self, channel_id: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/channels/{channel_id}"))

    async def hold(self, channel_id: str) -> None:
        """Indicate hold to the channel: a SIP caller hears music on hold."""
        await self.request("POST", f"/channels/{channel_id}/hold")

    async def unhold(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/hold")

    async def mute(self, channel_id: str, direction: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/mute", direction=direction)

    async def unmute(self, channel_id: str, direction: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/mute", direction=direction)

    async def subscribe(self, app: str, event_source: str) -> None:
        await self.request("POST", f"/applications/{app}/subscription", eventSource=event_source)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def play(
        self, channel_id: str, playback_id: str, media: tuple[str, ...], language: str = "en"
    ) -> None:
        """Play media in order as one playback (ARI takes a comma-separated list)."""
        if self.socket is not None:
            # from now on, what would wait on the channel's thread keeps off the websocket
            self.socket.prompt_started(channel_id, playback_id)
        try:
            await self.request(
                "POST",
                f"/channels/{channel_id}/play/{playback_id}",
                media=",".join(media),
                lang=language,
            )
        except AriError:  # refused: no prompt plays (unreachable: one may)
            if self.socket is not None:
                self.socket.prompt_ended(playback_id)
            raise

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            context=context,
            extension=extension,
            priority=1,
        )

    async def put_config(
        self, config_class: str, object_type: str, object_id: str, fields: dict[str, str]
    ) -> None:
        """Create or update a sorcery object (ARI push configuration), e.g. a PJSIP endpoint."""
        body = {"fields": [{"attribute": k, "value": v} for k, v in fields.items()]}
        path = f"/asterisk/config/dynamic/{config_class}/{object_type}/{object_id}"
        await self._put_json(path, body)

    async def filter_events(self, app: str, types: Iterable[str]) -> None:
        """Have Asterisk send the application only these event types (and the answers to
        REST requests made on its websocket, which the filter would drop too)."""
        body = {"allowed": [{"type": kind} for kind in (*types, "RESTResponse")]}
        await self._put_json(f"/applications/{app}/eventFilter", body)

    async def _put_json(self, path: str, body: dict[str, Any]) -> None:
        try:
            reply = await self._client.put(path, json=body)
        except httpx.HTTPError as exc:
            raise AriUnreachable(f"PUT {path}: {exc!r}") from exc
        if reply.status_code >= 400:
            raise AriError("PUT", path, reply.status_code, _message(reply))

    async def delete_config(self, config_class: str, object_type: str, object_id: str) -> None:
        """Remove a pushed object; one that is not there is fine."""
        try:
            await self.request(
                "DELETE", f"/asterisk/config/dynamic/{config_class}/{object_type}/{object_id}"
            )
        except AriError as exc:
            if exc.status != 404:
                raise

    async def endpoint(self, tech: str, resource: str) -> dict[str, Any]:
        """An endpoint's state (online, offline, unknown) and channels."""
        return dict(await self.request("GET", f"/endpoints/{tech}/{resource}"))

    # -- bridges and originated legs (the ACD) -----------------------------------------

    async def create_bridge(self, bridge_id: str, kind: str) -> None:
        """A bridge of this kind (`holding`, `mixing`); one that exists already is fine."""
        await self.request("POST", f"/bridges/{bridge_id}", type=kind)

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", channel=channel_id)

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel", channel=channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        try:
            await self.request("DELETE", f"/bridges/{bridge_id}")
        except AriError as exc:
            if exc.status != 404:
                raise

    async def bridges(self) -> list[dict[str, Any]]:
        """Every bridge Asterisk holds, with the channels in it."""
        return list(await self.request("GET", "/bridges"))

    async def channels(self) -> list[dict[str, Any]]:
        """Every channel Asterisk holds (in the application or not, ringing or up)."""
        return list(await self.request("GET", "/channels"))

    async def play_on_bridge(self, bridge_id: str, playback_id: str, media: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/play/{playback_id}", media=media)

    async def record_bridge(self, bridge_id: str, name: str, file_format: str) -> None:
        """Record everything the bridge mixes, into a stored recording `name`."""
        await self.request(
            "POST", f"/bridges/{bridge_id}/record", name=name, format=file_format, ifExists="fail"
        )

    async def pause_recording(self, name: str, paused: bool) -> None:
        await self.request("POST" if paused else "DELETE", f"/recordings/live/{name}/pause")

    async def snoop(
        self, channel_id: str, snoop_id: str, app: str, app_args: str, spy: str, whisper: str
    ) -> None:
        """A snoop channel on `channel_id` into the application: it hears the channel's
        audio in the `spy` direction(s) and writes into the `whisper` one(s)."""
        await self.request(
            "POST",
            f"/channels/{channel_id}/snoop/{snoop_id}",
            spy=spy,
            whisper=whisper,
            app=app,
            appArgs=app_args,
        )

    async def stop_recording(self, name: str) -> None:
        """End a live recording and have Asterisk store it."""
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def download_recording(self, name: str, destination: Path) -> None:
        """Stream a stored recording's file into `destination`."""
        path = f"/recordings/stored/{name}/file"
        try:
            async with self._client.stream("GET", path, timeout=20.0) as reply:
                if reply.status_code != 200:
                    await reply.aread()
                    raise AriError("GET", path, reply.status_code, _message(reply))
                with destination.open("wb") as out:
                    async for chunk in reply.aiter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise AriUnreachable(f"GET {path}: {exc!r}") from exc

    async def recording_state(self, name: str) -> str | None:
        """`live` (still recording), `stored` (done, not fetched yet) or None (gone)."""
        for kind in ("live", "stored"):
            try:
                await self.request("GET", f"/recordings/{kind}/{name}")
            except AriError as exc:
                if exc.status != 404:
                    raise
                continue
            return kind
        return None

    async def delete_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")

    async def bridge_music(self, bridge_id: str, music_class: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/moh", mohClass=music_class)

    async def stop_bridge_music(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}/moh")

    async def channel_music(self, channel_id: str, music_class: str) -> None:
        """Music on hold to the channel itself (a prompt played to it stops the music)."""
        await self.request("POST", f"/channels/{channel_id}/moh", mohClass=music_class)

    async def stop_channel_music(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def originate(
        self,
        channel_id: str,
        endpoint: str,
        app: str,
        app_args: str,
        timeout: float,
        caller_id: str,
    ) -> None:
        """Ring an endpoint; the channel enters the application when it is answered."""
        await self.request(
            "POST",
            f"/channels/{channel_id}",
            endpoint=endpoint,
            app=app,
            appArgs=app_args,
            timeout=int(timeout),
            callerId=caller_id,
        )

    async def endpoints(self, tech: str) -> list[dict[str, Any]]:
        return list(await self.request("GET", f"/endpoints/{tech}"))

    async def sounds(self) -> list[dict[str, Any]]:
        """Every sound Asterisk can play, with the languages and formats it has."""
        return list(await self.request("GET", "/sounds"))

    async def playback_exists(self, playback_id: str) -> bool:
        try:
            await self.request("GET", f"/playbacks/{playback_id}")
        except AriError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", reason=reason)

    async def set_channel_var(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable", variable=name, value=value)

    async def channel_var(self, channel_id: str, name: str) -> str:
        """A channel variable's value; empty when it is not set (or the channel is gone)."""
        try:
            reply = await self.request("GET", f"/channels/{channel_id}/variable", variable=name)
        except AriError as exc:
            if exc.status == 404:
                return ""
            raise
        return str(reply.get("value", "")) if reply else ""

    async def global_var(self, name: str) -> str:
        reply = await self.request("GET", "/asterisk/variable", variable=name)
        return str(reply.get("value", "")) if reply else ""

    async def set_global_var(self, name: str, value: str) -> None:
        await self.request("POST", "/asterisk/variable", variable=name, value=value)


def _socket_message(body: str, reason: str) -> str:
    try:
        return str(json.loads(body).get("message", body))
    except (ValueError, AttributeError):
        return body or reason


async def unless_gone(request: Awaitable[Any], gone: tuple[int, ...] = (404, 422)) -> None:
    """Run a stop, hang-up or removal whose target may already be gone (404, or 422: not
    in the application or the bridge any more), which is what was wanted."""
    try:
        await request
    except AriError as exc:
        if exc.status not in gone:
            raise


def events_url(base_url: str, app: str) -> str:
    """The websocket URL of an application's event stream."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"app": app, "subscribeAll": "false"})
    return urlunsplit((scheme, parts.netloc, parts.path + "/ari/events", query, ""))


class AriEvents:
    """The application's event stream; reconnects with backoff until closed.

    After every (re)connect `on_connected` runs before any event of that
    connection is handed out, so the caller can rebuild its picture of live
    calls first; events that arrive meanwhile wait in order. The websocket is
    read all the while, so that REST requests carried on it (`rest`) are
    answered during `on_connected` too.
    """

    def __init__(
        self,
        base_url: str,
        app: str,
        user: str,
        password: str,
        *,
        max_backoff: float = 10.0,
        rest: RestOverSocket | None = None,
    ) -> None:
        self.url = events_url(base_url, app)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.max_backoff = max_backoff
        self.rest = rest
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def stream(
        self, on_connected: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[dict[str, Any]]:
        backoff = 0.2
        while True:
            try:
                async with connect(
                    self.url,
                    additional_headers=self._headers,
                    open_timeout=5,
                    ping_interval=5,
                    ping_timeout=5,
                    close_timeout=2,
                    max_queue=None,
                ) as socket:
                    self.connected.set()
                    log.info("ari_events_connected", url=self.url, reconnects=self.reconnects)
                    inbox: asyncio.Queue[dict[str, Any] | Exception | None] = asyncio.Queue()
                    reader = asyncio.create_task(self._read(socket, inbox), name="ari-reader")
                    if self.rest is not None:
                        self.rest.attach(socket)
                    try:
                        try:
                            await on_connected()
                        except Exception as exc:
                            raise ReconcileFailed(repr(exc)) from exc
                        backoff = 0.2
                        while (item := await inbox.get()) is not None:
                            if isinstance(item, Exception):
                                raise item
                            yield item
                    finally:
                        if self.rest is not None:
                            self.rest.detach(socket)
                        reader.cancel()
            except InvalidStatus as exc:
                log.error("ari_events_refused", status=exc.response.status_code, url=self.url)
            except (OSError, WebSocketException, TimeoutError, ReconcileFailed, ValueError) as exc:
                log.warning("ari_events_lost", error=repr(exc))
            finally:
                if self.connected.is_set():
                    self.reconnects += 1
                self.connected.clear()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)

    async def _read(
        self, socket: Any, inbox: asyncio.Queue[dict[str, Any] | Exception | None]
    ) -> None:
        """Every message of one connection: answers to their requests, events to the inbox;
        then None when the websocket closes cleanly, or the error that ended it."""
        rest = self.rest
        try:
            async for text in socket:
                message = json.loads(text)
                if rest is None:
                    inbox.put_nowait(message)
                elif message.get("type") == "RESTResponse":
                    rest.answered(message)
                else:
                    rest.saw(message)
                    inbox.put_nowait(message)
        except Exception as exc:
            inbox.put_nowait(exc)
        else:
            inbox.put_nowait(None)
        finally:
            if rest is not None:
                # requests waiting on this websocket fail now, not at their timeout
                rest.detach(socket)
